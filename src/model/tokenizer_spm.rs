//! SentencePiece vocabularies from GGUF metadata (`tokenizer.ggml.model` = `llama`: Llama 1/2,
//! Mistral v0.1, Phi-3, ...), rebuilt as a `tokenizers` BPE that tokenizes as llama.cpp's
//! `llm_tokenizer_spm` does.
//!
//! llama.cpp prefixes the text with a space (`add_space_prefix`, on unless the metadata says
//! otherwise), writes spaces as `▁`, starts from one symbol per character and repeatedly merges
//! the adjacent pair whose concatenation is a token with the highest score (the leftmost on a
//! tie); a final symbol that is no token becomes its UTF-8 bytes as `<0xXX>` tokens. A BPE whose
//! merges are every split of every token into two tokens, ranked by the merged token's score,
//! with byte fallback, does the same.

use std::path::Path;

use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::{DecoderWrapper, NormalizerWrapper, Tokenizer};

use super::error::{ModelError, Result};

/// llama.cpp's token types that take part in merges: normal, user-defined and byte tokens can
/// all be the concatenation of two symbols there; control and unknown tokens are matched whole.
const CONTROL: i64 = 3;
const UNKNOWN: i64 = 2;

/// Builds the tokenizer from the vocabulary (`tokens`, `scores`, llama.cpp token `types`).
pub(super) fn spm_tokenizer(
    path: &Path,
    tokens: &[String],
    scores: &[f32],
    types: &[i64],
    add_space_prefix: bool,
) -> Result<Tokenizer> {
    if scores.len() != tokens.len() {
        return Err(ModelError::bad(
            path,
            format!(
                "metadata `tokenizer.ggml.scores` has {} entries for {} tokens",
                scores.len(),
                tokens.len()
            ),
        ));
    }
    let vocab: tokenizers::models::bpe::Vocab = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
    let mergeable = |i: usize| !matches!(types.get(i), Some(&CONTROL) | Some(&UNKNOWN));
    // Every split of every token into two tokens, ranked by the merged token's score (higher
    // first), then by its id, then by the left part's length (a stable order for ties).
    let mut merges: Vec<(f32, usize, usize, String, String)> = Vec::new();
    for (id, tok) in tokens.iter().enumerate() {
        if !mergeable(id) || tok.chars().nth(1).is_none() {
            continue;
        }
        for (cut, _) in tok.char_indices().skip(1) {
            let (a, b) = tok.split_at(cut);
            let known = |s: &str| vocab.get(s).is_some_and(|&i| mergeable(i as usize));
            if known(a) && known(b) {
                merges.push((scores[id], id, cut, a.to_string(), b.to_string()));
            }
        }
    }
    merges.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    let merges: Vec<(String, String)> = merges.into_iter().map(|m| (m.3, m.4)).collect();
    let unk = types
        .iter()
        .position(|&t| t == UNKNOWN)
        .and_then(|i| tokens.get(i))
        .cloned()
        .unwrap_or_else(|| "<unk>".into());
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .byte_fallback(true)
        .fuse_unk(true)
        .unk_token(unk)
        .build()
        .map_err(|e| ModelError::bad(path, format!("GGUF SentencePiece tokenizer: {e}")))?;
    let mut inner = Tokenizer::new(bpe);
    let replace = |from: &str, to: &str| {
        Replace::new(from, to).map_err(|e| ModelError::bad(path, format!("GGUF SentencePiece tokenizer: {e}")))
    };
    let mut normalizers: Vec<NormalizerWrapper> = Vec::new();
    if add_space_prefix {
        normalizers.push(Prepend::new("▁".into()).into());
    }
    normalizers.push(replace(" ", "▁")?.into());
    inner
        .with_normalizer(Some(NormalizerSequence::new(normalizers)))
        .map_err(|e| ModelError::bad(path, format!("GGUF SentencePiece tokenizer: {e}")))?;
    let mut decoders: Vec<DecoderWrapper> = vec![
        DecoderWrapper::Replace(replace("▁", " ")?),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ];
    if add_space_prefix {
        decoders.push(Strip::new(' ', 1, 0).into());
    }
    inner.with_decoder(Some(DecoderSequence::new(decoders)));
    Ok(inner)
}
