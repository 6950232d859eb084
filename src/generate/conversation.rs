//! A chat conversation as the chat panel shows it: user turns and assistant turns whose thinking
//! is kept as segments (model text, injected ignore strings) with the point where the budget
//! forced the end, built from the inference worker's deltas. No UI types here.

use super::budget::{InjectionKind, StopReason};
use super::engine::Generation;
use super::stream::Delta;
use crate::model::ChatMessage;

/// Who wrote a piece of the thinking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SegmentKind {
    Model,
    /// The ignore string budget forcing put in place of an end of thinking.
    Injected,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    pub kind: SegmentKind,
    pub text: String,
}

/// An assistant reply, streaming or done.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AssistantTurn {
    pub thinking: Vec<Segment>,
    pub answer: String,
    /// Thinking tokens at which the budget forced the end.
    pub forced_end_at: Option<usize>,
    pub thinking_tokens: usize,
    pub answer_tokens: usize,
    /// Ignored ends of thinking (`Generation::waits_injected`), both kinds.
    pub waits: usize,
    /// Of `waits`, those only the minimum asked for (past the Waits setting).
    pub waits_for_min: usize,
    /// The Waits setting it ran under: the first this many ignored ends are the setting's.
    pub waits_asked: usize,
    /// Decode rate: live while streaming (over the tokens after the first), the engine's at the end.
    pub tokens_per_s: f64,
    /// Seconds from the start of the request to the first sampled token.
    pub first_token_s: Option<f64>,
    pub stop_reason: Option<StopReason>,
    pub error: Option<String>,
    /// The budget it ran under, for display ("max 512, min 0, 2 waits").
    pub budget_label: String,
    #[serde(skip)]
    pending_injected: usize,
    /// (tokens sampled, decode seconds) at the first token: where the live rate starts.
    #[serde(skip)]
    rate_from: Option<(usize, f64)>,
}

/// `waits` ignored ends of thinking, `for_min` of them only for the minimum (past the Waits
/// setting), as people read it: "2 waits + 3 for the minimum", "3 waits for the minimum",
/// "2 waits". The chat view and `s1-studio generate` both say it so.
pub fn waits_label(waits: usize, for_min: usize) -> String {
    let from_setting = waits - for_min.min(waits);
    let n_waits = |n: usize| {
        if n == 1 {
            "1 wait".to_string()
        } else {
            format!("{n} waits")
        }
    };
    match (from_setting, for_min) {
        (w, 0) => n_waits(w),
        (0, m) => format!("{} for the minimum", n_waits(m)),
        (w, m) => format!("{} + {m} for the minimum", n_waits(w)),
    }
}

impl AssistantTurn {
    pub fn new(budget_label: impl Into<String>) -> Self {
        Self {
            budget_label: budget_label.into(),
            ..Default::default()
        }
    }

    /// A reply under a Waits setting of `waits`: ignored ends past it are the minimum's.
    pub fn with_waits_asked(mut self, waits: usize) -> Self {
        self.waits_asked = waits;
        self
    }

    /// The waits, the setting's and the minimum's apart: "2 waits + 3 for the minimum",
    /// "3 waits for the minimum", "2 waits".
    pub fn waits_label(&self) -> String {
        waits_label(self.waits, self.waits_for_min)
    }

    /// The whole thinking text.
    pub fn thinking_text(&self) -> String {
        self.thinking.iter().map(|s| s.text.as_str()).collect()
    }

    pub fn is_done(&self) -> bool {
        self.stop_reason.is_some() || self.error.is_some()
    }

    fn push_thinking(&mut self, kind: SegmentKind, text: &str) {
        if text.is_empty() {
            return;
        }
        match self.thinking.last_mut() {
            Some(last) if last.kind == kind => last.text.push_str(text),
            _ => self.thinking.push(Segment {
                kind,
                text: text.to_string(),
            }),
        }
    }

    /// Applies one streamed delta.
    pub fn apply(&mut self, delta: &Delta) {
        match delta {
            Delta::Thinking(t) => {
                let mut rest = t.as_str();
                if self.pending_injected > 0 {
                    let mut cut = self.pending_injected.min(rest.len());
                    while !rest.is_char_boundary(cut) {
                        cut += 1;
                    }
                    self.pending_injected -= cut.min(self.pending_injected);
                    self.push_thinking(SegmentKind::Injected, &rest[..cut]);
                    rest = &rest[cut..];
                }
                self.push_thinking(SegmentKind::Model, rest);
            }
            Delta::Answer(t) => self.answer.push_str(t),
            Delta::Injected {
                kind,
                at_thinking_token,
                text,
                ..
            } => match kind {
                InjectionKind::Ignore => {
                    self.waits += 1;
                    self.waits_for_min = self.waits.saturating_sub(self.waits_asked);
                    self.pending_injected += text.len();
                    // A marker even if the ignore string is empty.
                    self.thinking.push(Segment {
                        kind: SegmentKind::Injected,
                        text: String::new(),
                    });
                }
                InjectionKind::ForcedEnd => self.forced_end_at = Some(*at_thinking_token),
                InjectionKind::ThinkingStart | InjectionKind::AnswerStart => {}
            },
            Delta::Counts {
                thinking,
                answer,
                sampled,
                prefill_s,
                decode_s,
            } => {
                self.thinking_tokens = *thinking;
                self.answer_tokens = *answer;
                match self.rate_from {
                    None if *sampled > 0 => {
                        self.first_token_s = Some(prefill_s + decode_s);
                        self.rate_from = Some((*sampled, *decode_s));
                    }
                    Some((n0, t0)) if *sampled > n0 && *decode_s > t0 => {
                        self.tokens_per_s = (sampled - n0) as f64 / (decode_s - t0);
                    }
                    _ => {}
                }
            }
        }
    }

    /// Takes the final figures of a finished generation.
    pub fn finish(&mut self, g: &Generation) {
        self.thinking_tokens = g.thinking_tokens;
        self.answer_tokens = g.answer_tokens;
        self.waits = g.waits_injected;
        self.waits_for_min = g.waits_for_min;
        if g.tokens_per_s > 0.0 {
            self.tokens_per_s = g.tokens_per_s;
        }
        self.stop_reason = Some(g.stop_reason);
        if g.forced_end && self.forced_end_at.is_none() {
            self.forced_end_at = Some(g.thinking_tokens);
        }
        // The streamed text is the source; fall back to the final text if a delta was lost.
        if self.answer.is_empty() && !g.answer.is_empty() {
            self.answer = g.answer.clone();
        }
        if self.thinking.is_empty() && !g.thinking.is_empty() {
            self.push_thinking(SegmentKind::Model, &g.thinking);
        }
    }
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Turn {
    User(String),
    Assistant(AssistantTurn),
}

/// Splits a long streamed text into pieces whose boundaries never move as the text grows: a
/// piece ends at the first newline after `min` bytes, or at the first char boundary after `4 * min`
/// bytes when there is no newline. A view lays out each piece on its own, so only the last (growing)
/// piece is laid out again per frame and the cost of a frame stays flat as a trace gets long.
pub fn stable_chunks(text: &str, min: usize) -> impl Iterator<Item = &str> {
    let min = min.max(1);
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = rest.len();
        if rest.len() > min {
            let mut from = min;
            while !rest.is_char_boundary(from) {
                from += 1;
            }
            let hard = (4 * min).min(rest.len());
            end = match rest[from..].find('\n') {
                Some(i) if from + i < hard => from + i + 1,
                _ if hard < rest.len() => {
                    let mut h = hard;
                    while !rest.is_char_boundary(h) {
                        h += 1;
                    }
                    h
                }
                _ => rest.len(),
            };
        }
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

/// The conversation of the chat panel.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Conversation {
    pub turns: Vec<Turn>,
}

impl Conversation {
    /// The messages to send: the system prompt (if any), then user turns and earlier answers
    /// (thinking is not sent back, as s1 and Qwen3's templates do).
    pub fn messages(&self, system: Option<&str>) -> Vec<ChatMessage> {
        let mut out = Vec::new();
        if let Some(s) = system.filter(|s| !s.trim().is_empty()) {
            out.push(ChatMessage::new("system", s));
        }
        for t in &self.turns {
            match t {
                Turn::User(u) => out.push(ChatMessage::new("user", u)),
                Turn::Assistant(a) if a.is_done() && a.error.is_none() => {
                    out.push(ChatMessage::new("assistant", a.answer.trim()))
                }
                Turn::Assistant(_) => {}
            }
        }
        out
    }

    /// The last assistant turn, if the conversation ends with one.
    pub fn last_assistant_mut(&mut self) -> Option<&mut AssistantTurn> {
        match self.turns.last_mut() {
            Some(Turn::Assistant(a)) => Some(a),
            _ => None,
        }
    }

    /// A title from the first user message: its first line, at most `max` characters.
    pub fn title(&self, max: usize) -> Option<String> {
        let first = self.turns.iter().find_map(|t| match t {
            Turn::User(u) => u.lines().map(str::trim).find(|l| !l.is_empty()),
            Turn::Assistant(_) => None,
        })?;
        let mut title: String = first.chars().take(max).collect();
        if first.chars().count() > max {
            title.push('…');
        }
        Some(title)
    }

    /// Drops the last assistant turn so that it can be generated again.
    pub fn pop_assistant(&mut self) -> bool {
        if matches!(self.turns.last(), Some(Turn::Assistant(_))) {
            self.turns.pop();
            true
        } else {
            false
        }
    }
}

/// A conversation as the chat keeps it on disk: one JSON file each, named `<id>.json`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SavedConversation {
    /// The file's name without `.json` (not stored inside the file).
    #[serde(skip)]
    pub id: String,
    #[serde(default)]
    pub title: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub updated: u64,
    pub conversation: Conversation,
}

#[cfg(test)]
mod tests {
    #[test]
    fn stable_chunks_keep_their_boundaries_as_the_text_grows() {
        let text: String = (0..400).map(|i| format!("line {i} with ünïcode\n")).collect::<String>() + &"x".repeat(300);
        let full: Vec<&str> = stable_chunks(&text, 64).collect();
        assert_eq!(full.concat(), text);
        assert!(full.len() > 20);
        assert!(full.iter().all(|c| c.len() <= 4 * 64 + 4));
        for cut in (1..text.len()).filter(|&c| text.is_char_boundary(c)).step_by(97) {
            let part: Vec<&str> = stable_chunks(&text[..cut], 64).collect();
            assert_eq!(part.concat(), &text[..cut]);
            // All pieces but the last are pieces of the full text.
            assert_eq!(&part[..part.len() - 1], &full[..part.len() - 1], "cut at {cut}");
        }
    }
    use super::*;

    #[test]
    fn injected_ignore_text_is_marked_even_when_split_across_deltas() {
        let mut a = AssistantTurn::new("max 10");
        a.apply(&Delta::Thinking("Let me".into()));
        a.apply(&Delta::Injected {
            kind: InjectionKind::Ignore,
            at_thinking_token: 2,
            text: "Wait".into(),
        });
        a.apply(&Delta::Thinking("Wa".into()));
        a.apply(&Delta::Thinking("it, no".into()));
        a.apply(&Delta::Injected {
            kind: InjectionKind::ForcedEnd,
            at_thinking_token: 9,
            text: "\n<|im_start|>answer\nFinal Answer:".into(),
        });
        a.apply(&Delta::Answer("Final Answer: 4".into()));
        assert_eq!(
            a.thinking,
            vec![
                Segment {
                    kind: SegmentKind::Model,
                    text: "Let me".into()
                },
                Segment {
                    kind: SegmentKind::Injected,
                    text: "Wait".into()
                },
                Segment {
                    kind: SegmentKind::Model,
                    text: ", no".into()
                },
            ]
        );
        assert_eq!(a.thinking_text(), "Let meWait, no");
        assert_eq!(a.waits, 1);
        assert_eq!(a.forced_end_at, Some(9));
    }

    fn counts(sampled: usize, decode_s: f64) -> Delta {
        Delta::Counts {
            thinking: sampled,
            answer: 0,
            sampled,
            prefill_s: 0.5,
            decode_s,
        }
    }

    #[test]
    fn the_rate_and_the_first_token_time_are_live() {
        let mut a = AssistantTurn::new("");
        assert_eq!((a.tokens_per_s, a.first_token_s), (0.0, None));
        a.apply(&counts(1, 0.25));
        assert_eq!(a.first_token_s, Some(0.75));
        // The rate counts the tokens after the first, over the time since it.
        a.apply(&counts(3, 0.75));
        assert!((a.tokens_per_s - 4.0).abs() < 1e-9, "{}", a.tokens_per_s);
        a.apply(&counts(13, 2.25));
        assert!((a.tokens_per_s - 6.0).abs() < 1e-9, "{}", a.tokens_per_s);
        assert_eq!(a.first_token_s, Some(0.75));
    }

    #[test]
    fn waits_of_the_minimum_are_told_apart_from_the_setting() {
        let ignore = Delta::Injected {
            kind: InjectionKind::Ignore,
            at_thinking_token: 1,
            text: "Wait".into(),
        };
        let mut a = AssistantTurn::new("").with_waits_asked(2);
        a.apply(&ignore);
        assert_eq!(a.waits_label(), "1 wait");
        for _ in 0..4 {
            a.apply(&ignore);
        }
        assert_eq!((a.waits, a.waits_for_min), (5, 3));
        assert_eq!(a.waits_label(), "2 waits + 3 for the minimum");
        let mut b = AssistantTurn::new("");
        b.apply(&ignore);
        assert_eq!(b.waits_label(), "1 wait for the minimum");
    }

    #[test]
    fn history_sends_answers_without_thinking() {
        let mut c = Conversation::default();
        c.turns.push(Turn::User("2+2?".into()));
        let mut a = AssistantTurn::new("");
        a.apply(&Delta::Thinking("hmm".into()));
        a.apply(&Delta::Answer(" 4 ".into()));
        a.stop_reason = Some(StopReason::EndOfTurn);
        c.turns.push(Turn::Assistant(a));
        c.turns.push(Turn::User("and 3+3?".into()));
        let m = c.messages(Some("Be brief."));
        let roles: Vec<_> = m.iter().map(|m| (m.role.as_str(), m.content.as_str())).collect();
        assert_eq!(
            roles,
            vec![
                ("system", "Be brief."),
                ("user", "2+2?"),
                ("assistant", "4"),
                ("user", "and 3+3?")
            ]
        );
    }
}
