//! A toy tokenizer and a scripted model for the budget-forcing tests (tests/budget_forcing.rs,
//! tests/thinking_scripted.rs): generation's state machine run against a model whose every next
//! token is known.

use std::collections::VecDeque;

use s1_studio::generate::{Codec, GenerateError, LanguageModel};

/// Longest-match tokenizer over a fixed vocabulary; id = index.
pub struct ToyCodec {
    pub vocab: Vec<&'static str>,
}

impl ToyCodec {
    pub fn from_vocab(vocab: &[&'static str]) -> Self {
        Self { vocab: vocab.to_vec() }
    }

    pub fn id(&self, s: &str) -> u32 {
        self.vocab
            .iter()
            .position(|v| *v == s)
            .unwrap_or_else(|| panic!("{s} not in vocab")) as u32
    }

    pub fn ids(&self, words: &[&str]) -> Vec<u32> {
        words.iter().map(|w| self.id(w)).collect()
    }
}

impl Codec for ToyCodec {
    fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        let mut out = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let (id, len) = self
                .vocab
                .iter()
                .enumerate()
                .filter(|(_, v)| rest.starts_with(**v))
                .map(|(i, v)| (i as u32, v.len()))
                .max_by_key(|x| x.1)
                .ok_or_else(|| format!("cannot encode {rest:?}"))?;
            out.push(id);
            rest = &rest[len..];
        }
        Ok(out)
    }

    fn decode(&self, ids: &[u32]) -> Result<String, String> {
        Ok(ids.iter().map(|&i| self.vocab[i as usize]).collect())
    }
}

/// Replays a script of (token, runner-up) whatever was fed: each `feed` returns logits that peak
/// on the next token (10) and on its runner-up (5, what a sampler picks when the first is
/// banned), then the end of the turn. It keeps the sequence the model holds (after rewinds).
pub struct ScriptedModel {
    pub script: VecDeque<(u32, Option<u32>)>,
    /// Logits per step (may run past the tokenizer, as Qwen2.5's padded embedding does).
    pub vocab: usize,
    pub held: Vec<u32>,
    pub eos: u32,
}

impl ScriptedModel {
    pub fn new(script: impl IntoIterator<Item = (u32, Option<u32>)>, vocab: usize, eos: u32) -> Self {
        Self {
            script: script.into_iter().collect(),
            vocab,
            held: Vec::new(),
            eos,
        }
    }
}

impl LanguageModel for ScriptedModel {
    fn feed(&mut self, tokens: &[u32]) -> Result<Vec<f32>, GenerateError> {
        self.held.extend_from_slice(tokens);
        let (next, second) = self.script.pop_front().unwrap_or((self.eos, None));
        let mut logits = vec![0.0; self.vocab];
        if let Some(s) = second {
            logits[s as usize] = 5.0;
        }
        logits[next as usize] = 10.0;
        Ok(logits)
    }

    fn rewind(&mut self, n: usize) {
        let len = self.held.len();
        self.held.truncate(len - n);
    }

    fn position(&self) -> usize {
        self.held.len()
    }

    fn context_len(&self) -> usize {
        4096
    }
}
