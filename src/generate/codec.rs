//! The two things generation needs from a tokenizer, behind a trait so that the budget-forcing
//! controller and the generation loop are tested with scripted fakes.

use crate::model::TextTokenizer;

pub trait Codec {
    /// Token ids of `text` (special-token strings map to their ids).
    fn encode(&self, text: &str) -> Result<Vec<u32>, String>;
    /// Text of `ids`, special tokens included.
    fn decode(&self, ids: &[u32]) -> Result<String, String>;
}

impl Codec for TextTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        TextTokenizer::encode(self, text).map_err(|e| e.to_string())
    }

    fn decode(&self, ids: &[u32]) -> Result<String, String> {
        TextTokenizer::decode(self, ids).map_err(|e| e.to_string())
    }
}
