//! s1's hidden rounds past the maximum ([`PastMax::S1`](super::PastMax::S1)): after an ignored end, each round of
//! s1's loop has a `max_tokens` of its own, so the model goes on past the thinking budget; when
//! its rounds are over, the thinking is cut at the maximum and ended as the last round ended
//! (vllm_causallms.py, `_model_generate`).

use super::{BudgetForcer, InjectionKind, Phase, Step, StopReason};
use crate::generate::codec::Codec;

/// The hidden rounds of s1's loop after the thinking reached the maximum.
#[derive(Debug, Clone)]
pub(super) struct Overrun {
    /// `generated` right after the last visible thinking token: where the cache is cut back to.
    pub(super) keep: usize,
    /// The last tokens sampled, to match multi-token end delimiters.
    pub(super) tail: Vec<u32>,
}

/// How the last of s1's rounds ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RoundEnd {
    /// The model ended its thinking (vLLM's finish reason `stop`).
    Natural,
    /// The round used its whole budget (finish reason `length`); `ends_nl`: its text ends with
    /// a newline.
    Length { ends_nl: bool },
}

impl BudgetForcer {
    /// A token of the hidden rounds past the maximum (s1's loop, [`PastMax::S1`](super::PastMax::S1)).
    pub(super) fn on_overrun(&mut self, id: u32, codec: &dyn Codec) -> Step {
        self.round_tokens += 1;
        self.ban_next = false;
        let Some(ov) = self.overrun.as_mut() else {
            return Step::Stop(StopReason::EndOfTurn);
        };
        ov.tail.push(id);
        let tail = std::mem::take(&mut ov.tail);
        let matched = self.find_end(&tail, id, codec).map(|e| tail.len() - e.start);
        if let Some(ov) = self.overrun.as_mut() {
            ov.tail = tail;
        }
        let max = self.max.unwrap_or(usize::MAX);
        if let Some(len) = matched {
            let room = self.generated - (len - 1) + self.ignore_ids.len() < self.max_new_tokens;
            if self.waits < self.num_ignore && room {
                self.next_round();
                if let Some(ov) = self.overrun.as_mut() {
                    ov.tail.clear();
                }
                return Step::Feed {
                    rewind: len - 1,
                    feed: self.ignore_ids.clone(),
                };
            }
            return self.end_cut(RoundEnd::Natural);
        }
        if self.round_tokens >= max || self.generated + 1 >= self.max_new_tokens {
            // The round ran out (or there is no room left to go on: taken as running out).
            let ends_nl = Self::ends_with_newline(codec, &[id]);
            return self.end_cut(RoundEnd::Length { ends_nl });
        }
        if let Some(ov) = self.overrun.as_mut() {
            let keep_from = ov
                .tail
                .len()
                .saturating_sub(self.end_seqs.iter().map(Vec::len).max().unwrap_or(1));
            ov.tail.drain(..keep_from);
        }
        Step::Feed {
            rewind: 0,
            feed: vec![id],
        }
    }

    /// "Answer now" during the hidden rounds: the thinking is cut at the maximum and the end
    /// forced there, as when the last round runs out.
    pub(super) fn cut_now(&mut self, codec: &dyn Codec) -> Step {
        let last: Vec<u32> = self.last_thinking.into_iter().collect();
        let ends_nl = Self::ends_with_newline(codec, &last);
        self.end_cut(RoundEnd::Length { ends_nl })
    }

    /// s1's end after its rounds: the thinking is cut at the maximum (the hidden tokens are
    /// rewound) and ended as the last round ended.
    fn end_cut(&mut self, how: RoundEnd) -> Step {
        let keep = self.overrun.take().map_or(self.generated, |o| o.keep);
        let rewind = self.generated.saturating_sub(keep);
        self.cut = true;
        let feed = match how {
            RoundEnd::Natural => {
                let ids = self.answer_ids.clone();
                self.inject(InjectionKind::AnswerStart, ids.clone());
                self.phase = Phase::Answer;
                ids
            }
            RoundEnd::Length { ends_nl } => self.force_end(ends_nl),
        };
        Step::Feed { rewind, feed }
    }
}
