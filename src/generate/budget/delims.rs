//! Delimiters in the sampled tokens: ends of thinking (as token sequences, and as text across
//! token boundaries for the ones that take several tokens), and the thinking start re-opened
//! in the answer, which [`ThinkingFormat::reopen_banned`](super::ThinkingFormat) forbids.
//!
//! A tokenizer without `<think>`/`</think>` as tokens spells them in pieces (`</`, `think`,
//! `>`), and its merges may fuse the last piece with what follows (`>\n\n`) or the first with
//! what precedes (`.</`): the token sequence of the delimiter then never appears, but its text
//! does. Such a match ends the thinking where the delimiter's text begins: the text of that
//! token before it is thinking (encoded again and fed), what follows it is dropped.
//!
//! Re-opening: a one-token start is banned from the answer's sampling. A several-token one is
//! held back while it may be forming and, once complete, dropped: the cache is rewound to
//! before its first token, and that token is banned at that position (each drop bans one more,
//! so the answer always moves on).

use super::{BudgetError, BudgetForcer, Step, StopReason};
use crate::generate::codec::Codec;

/// A delimiter's ids; an empty encoding is an error naming it.
pub(super) fn encode(codec: &dyn Codec, what: &'static str, text: &str) -> Result<Vec<u32>, BudgetError> {
    let ids = codec.encode(text).map_err(BudgetError::Codec)?;
    if ids.is_empty() {
        return Err(BudgetError::EmptyDelimiter {
            what,
            text: text.into(),
        });
    }
    Ok(ids)
}

/// Where, in the forced-end ids, the final-answer prefix starts: the largest suffix whose text
/// holds the prefix.
pub(super) fn prefix_start(codec: &dyn Codec, forced: &[u32], final_answer: &str) -> usize {
    if final_answer.trim().is_empty() {
        return forced.len();
    }
    (0..forced.len())
        .rev()
        .find(|&k| {
            codec
                .decode(&forced[k..])
                .is_ok_and(|s| s.contains(final_answer.trim()))
        })
        .unwrap_or(forced.len())
}

/// An end of thinking at the end of the candidate tokens.
#[derive(Debug)]
pub(super) struct EndAt {
    /// Index of the token where the delimiter begins.
    pub(super) start: usize,
    /// The text of that token before the delimiter, encoded (text-level matches only).
    pub(super) lead: Vec<u32>,
}

/// The largest `k` such that the text of `cand[k..]` contains one of `texts`, with the text
/// before it in that token.
fn text_match(cand: &[u32], texts: &[String], codec: &dyn Codec) -> Option<(usize, String)> {
    if texts.is_empty() {
        return None;
    }
    let whole = codec.decode(cand).ok()?;
    if !texts.iter().any(|t| whole.contains(t.as_str())) {
        return None;
    }
    (0..cand.len()).rev().find_map(|k| {
        let text = codec.decode(&cand[k..]).ok()?;
        let pos = texts.iter().filter_map(|t| text.find(t.as_str())).min()?;
        Some((k, text[..pos].to_string()))
    })
}

impl BudgetForcer {
    /// The end of thinking that `cand` (held-back tokens, then the sampled `id`) ends with.
    pub(super) fn find_end(&self, cand: &[u32], id: u32, codec: &dyn Codec) -> Option<EndAt> {
        if self.eos_ids.contains(&id) {
            return Some(EndAt {
                start: cand.len() - 1,
                lead: Vec::new(),
            });
        }
        if let Some(len) = self.end_seqs.iter().filter(|s| cand.ends_with(s)).map(Vec::len).max() {
            return Some(EndAt {
                start: cand.len() - len,
                lead: Vec::new(),
            });
        }
        let (start, lead) = text_match(cand, &self.end_texts, codec)?;
        let lead = if lead.is_empty() {
            Vec::new()
        } else {
            codec.encode(&lead).unwrap_or_default()
        };
        Some(EndAt { start, lead })
    }

    /// How many of the last tokens of `cand` to hold back because their text ends with a
    /// proper beginning of one of `texts`.
    pub(super) fn text_hold(&self, cand: &[u32], texts: &[String], codec: &dyn Codec) -> usize {
        if texts.is_empty() {
            return 0;
        }
        let Ok(whole) = codec.decode(cand) else { return 0 };
        let Some(prefix) = texts
            .iter()
            .flat_map(|t| (1..t.len()).filter(|&n| t.is_char_boundary(n)).map(|n| &t[..n]))
            .filter(|p| whole.ends_with(p))
            .max_by_key(|p| p.len())
        else {
            return 0;
        };
        (1..=cand.len())
            .find(|&n| {
                codec
                    .decode(&cand[cand.len() - n..])
                    .is_ok_and(|s| s.len() >= prefix.len() && s.ends_with(prefix))
            })
            .unwrap_or(0)
    }

    /// Banned in the answer: a one-token thinking start, and the first tokens of the
    /// several-token starts dropped at this position.
    pub(super) fn answer_banned(&self) -> Vec<u32> {
        let mut b = self.reopen_bans.clone();
        if self.reopen_ids.len() == 1 {
            b.push(self.reopen_ids[0]);
        }
        b
    }

    /// A token of the answer: it ends the turn, is answer text, or completes a re-opening of
    /// thinking that is dropped.
    pub(super) fn on_answer(&mut self, id: u32, codec: &dyn Codec) -> Step {
        if self.eos_ids.contains(&id) {
            return Step::Stop(StopReason::EndOfTurn);
        }
        if self.reopen_ids.len() < 2 {
            self.emit_answer(id);
            return Step::Feed {
                rewind: 0,
                feed: vec![id],
            };
        }
        let mut cand = std::mem::take(&mut self.answer_pending);
        cand.push(id);
        let texts = [self.reopen_text.clone()];
        if let Some((k, _)) = text_match(&cand, &texts, codec) {
            // The fed tokens of cand are the last cand.len() - 1 of `fed`; the one before
            // cand[k] is fed again so that the next logits follow it.
            let fed_before = self.fed.len().checked_sub(cand.len() - 1 + 1);
            if let Some(prev) = fed_before.map(|i| self.fed[i + k]) {
                for &t in &cand[..k] {
                    self.emit_answer(t);
                }
                self.reopen_bans.push(cand[k]);
                return Step::Feed {
                    rewind: cand.len() - k,
                    feed: vec![prev],
                };
            }
        }
        let hold = self.text_hold(&cand, &texts, codec);
        let confirmed = cand.len() - hold;
        if confirmed > 0 {
            self.reopen_bans.clear();
        }
        for &t in &cand[..confirmed] {
            self.emit_answer(t);
        }
        self.answer_pending = cand[confirmed..].to_vec();
        Step::Feed {
            rewind: 0,
            feed: vec![id],
        }
    }
}
