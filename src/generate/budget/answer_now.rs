//! "Answer now": the user ends the thinking at once, and the forcer ends it as the budget's
//! maximum would (newline, answer delimiter, final-answer prefix). Budget forcing's own rules
//! are untouched: this is an extra input, not a change of the recipe.

use super::{BudgetForcer, Phase, Step};
use crate::cancel::CancelToken;
use crate::generate::codec::Codec;

/// "Answer now": a cloneable flag the chat sets to end the thinking at once, polled before
/// each sample like the cancel token ([`BudgetForcer::force_end_now`]).
#[derive(Clone, Debug, Default)]
pub struct AnswerNow(CancelToken);

impl AnswerNow {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks for the answer: the thinking ends before the next sample.
    pub fn request(&self) {
        self.0.cancel();
    }

    pub fn is_requested(&self) -> bool {
        self.0.is_cancelled()
    }
}

impl BudgetForcer {
    /// Ends the thinking now, with the forced end the maximum would append; the minimum and
    /// the Waits setting are overridden (the user asked). Held-back tokens (a possible start of
    /// a several-token end delimiter) become thinking first. In s1's hidden rounds past the
    /// maximum the thinking is cut at the maximum, as when the rounds run out. Returns what to
    /// feed (instead of sampling), or `None` when the thinking is already over.
    pub fn force_end_now(&mut self, codec: &dyn Codec) -> Option<Step> {
        if self.phase != Phase::Thinking {
            return None;
        }
        self.ban_next = false;
        let step = if self.overrun.is_some() {
            self.cut_now(codec)
        } else {
            for t in std::mem::take(&mut self.pending) {
                self.emit_thinking(t);
            }
            Step::Feed {
                rewind: 0,
                feed: self.force_end_here(codec),
            }
        };
        self.account(&step);
        Some(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::budget::{BudgetConfig, BudgetEvent, InjectionKind, MaxThinking, ThinkingFormat};

    /// Longest-match tokenizer over a fixed vocabulary (id = index); `</think>` takes three tokens.
    struct Toy;

    const VOCAB: &[&str] = &[
        "<|im_start|>",
        "<|im_end|>",
        "think",
        "answer",
        "\n",
        "Wait",
        "Final",
        " Answer",
        ":",
        "a",
        "b",
        "</",
        ">",
        "<think>",
    ];

    fn id(s: &str) -> u32 {
        VOCAB.iter().position(|v| *v == s).unwrap() as u32
    }

    impl Codec for Toy {
        fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
            let mut out = Vec::new();
            let mut rest = text;
            while !rest.is_empty() {
                let (i, len) = VOCAB
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| rest.starts_with(**v))
                    .map(|(i, v)| (i as u32, v.len()))
                    .max_by_key(|x| x.1)
                    .ok_or_else(|| format!("cannot encode {rest:?}"))?;
                out.push(i);
                rest = &rest[len..];
            }
            Ok(out)
        }
        fn decode(&self, ids: &[u32]) -> Result<String, String> {
            Ok(ids.iter().map(|&i| VOCAB[i as usize]).collect())
        }
    }

    fn forcer(cfg: BudgetConfig) -> BudgetForcer {
        let mut f = BudgetForcer::new(&cfg, &Toy, &[id("<|im_end|>")], 1000, 1000).unwrap();
        f.start(false, &Toy);
        f.drain_events();
        f
    }

    fn answer_text(events: &[BudgetEvent]) -> String {
        events
            .iter()
            .filter_map(|e| match e {
                BudgetEvent::Token {
                    phase: Phase::Answer,
                    id,
                } => Some(VOCAB[*id as usize]),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn answer_now_forces_the_end_as_the_maximum_would_even_below_the_minimum() {
        let mut f = forcer(BudgetConfig {
            min_thinking: 50,
            num_ignore: 2,
            max_thinking: MaxThinking::Unlimited,
            ..Default::default()
        });
        for t in ["a", "b"] {
            assert!(matches!(f.on_token(id(t), &Toy), Step::Feed { rewind: 0, .. }));
        }
        f.drain_events();
        let step = f.force_end_now(&Toy).expect("thinking was on");
        // s1's forced end: a newline (the thinking does not end with one), the answer
        // delimiter, a newline and "Final Answer:".
        let want = Toy.encode("\n<|im_start|>answer\nFinal Answer:").unwrap();
        assert_eq!(step, Step::Feed { rewind: 0, feed: want });
        assert_eq!(f.phase(), Phase::Answer);
        assert!(f.forced_end());
        assert_eq!(f.thinking_tokens(), 2);
        assert_eq!(f.waits_injected(), 0);
        let last = f.injections().last().unwrap();
        assert_eq!((last.kind, last.at_thinking_token), (InjectionKind::ForcedEnd, 2));
        assert_eq!(answer_text(&f.drain_events()), "Final Answer:");
        // Once answering, there is nothing more to end.
        assert!(f.force_end_now(&Toy).is_none());
    }

    #[test]
    fn held_back_tokens_become_thinking_before_the_forced_end() {
        let mut f = forcer(BudgetConfig {
            format: ThinkingFormat::think_tags(),
            max_thinking: MaxThinking::Unlimited,
            ..Default::default()
        });
        f.on_token(id("a"), &Toy);
        // "</" may start "</think>": held back, not yet thinking.
        f.on_token(id("</"), &Toy);
        assert_eq!(f.thinking_tokens(), 1);
        let Some(Step::Feed { rewind: 0, feed }) = f.force_end_now(&Toy) else {
            panic!("expected a feed");
        };
        assert_eq!(f.thinking_tokens(), 2);
        assert_eq!(feed, Toy.encode("\n</think>\nFinal Answer:").unwrap());
    }

    #[test]
    fn answer_now_past_the_maximum_cuts_s1s_hidden_rounds() {
        let mut f = forcer(BudgetConfig {
            max_thinking: MaxThinking::Tokens(3),
            num_ignore: 1,
            ..Default::default()
        });
        f.on_token(id("a"), &Toy);
        // An early end: ignored ("Wait" is the second thinking token).
        f.on_token(id("<|im_start|>"), &Toy);
        // "b" reaches the maximum in the round after the ignore: s1's loop goes on unseen.
        f.on_token(id("b"), &Toy);
        f.on_token(id("a"), &Toy);
        assert_eq!(f.thinking_tokens(), 3);
        let Some(Step::Feed { rewind, feed }) = f.force_end_now(&Toy) else {
            panic!("expected a feed");
        };
        assert_eq!(rewind, 1, "the hidden token is taken back");
        assert!(f.thinking_cut());
        assert_eq!(f.thinking_tokens(), 3);
        assert!(feed.ends_with(&Toy.encode("<|im_start|>answer\nFinal Answer:").unwrap()));
    }
}
