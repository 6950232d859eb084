//! Incremental detokenization that never splits a UTF-8 character: byte-level tokens of one
//! character are held back until the character is complete.

use super::codec::Codec;

/// Turns a stream of ids into text deltas.
#[derive(Debug, Default, Clone)]
pub struct IncrementalDecoder {
    ids: Vec<u32>,
    prefix_offset: usize,
    read_offset: usize,
    text: String,
}

impl IncrementalDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one id; returns the new text, if a whole character is now complete.
    pub fn push(&mut self, codec: &dyn Codec, id: u32) -> Option<String> {
        self.ids.push(id);
        let prefix = codec.decode(&self.ids[self.prefix_offset..self.read_offset]).ok()?;
        let full = codec.decode(&self.ids[self.prefix_offset..]).ok()?;
        if full.len() <= prefix.len() || full.ends_with('\u{FFFD}') {
            return None;
        }
        let delta = match full.get(prefix.len()..) {
            Some(d) if full.starts_with(&prefix) => d.to_string(),
            // The decoder rewrote earlier text (rare): resynchronise on the whole text.
            _ => {
                let all = codec.decode(&self.ids).ok()?;
                let d = all.get(self.text.len()..).unwrap_or_default().to_string();
                self.text = all;
                self.prefix_offset = self.read_offset;
                self.read_offset = self.ids.len();
                return (!d.is_empty()).then_some(d);
            }
        };
        self.prefix_offset = self.read_offset;
        self.read_offset = self.ids.len();
        self.text.push_str(&delta);
        Some(delta)
    }

    /// Text emitted so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Every id pushed.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Whatever is still held back (an incomplete character at the very end), decoded as is.
    pub fn flush(&mut self, codec: &dyn Codec) -> Option<String> {
        let all = codec.decode(&self.ids).ok()?;
        let d = all.get(self.text.len()..)?.to_string();
        self.text = all;
        self.prefix_offset = self.ids.len();
        self.read_offset = self.ids.len();
        (!d.is_empty()).then_some(d)
    }
}
