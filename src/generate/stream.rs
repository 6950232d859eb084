//! What a generation streams as it goes: borrowed events for the caller of `generate`
//! ([`StreamEvent`]) and their owned form for other threads ([`Delta`]).

use super::budget::{Injection, InjectionKind};

/// A streamed piece of output.
#[derive(Debug, Clone, Copy)]
pub enum StreamEvent<'a> {
    Thinking(&'a str),
    Answer(&'a str),
    /// The controller appended something (the ignore string, a delimiter, a forced end); `text`
    /// is what it appended, decoded. The ignore string's text also arrives as thinking.
    Injected {
        injection: &'a Injection,
        text: &'a str,
    },
    /// Token counts and timing so far, after each sampled token (and after "answer now").
    Counts {
        thinking: usize,
        answer: usize,
        /// Tokens sampled so far.
        sampled: usize,
        /// Seconds the prompt took (its logits arrived then).
        prefill_s: f64,
        /// Seconds since the prompt's logits arrived: sampled / decode_s is the decode rate.
        decode_s: f64,
    },
}

/// A streamed piece of a generation, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    Thinking(String),
    Answer(String),
    Injected {
        kind: InjectionKind,
        at_thinking_token: usize,
        text: String,
    },
    Counts {
        thinking: usize,
        answer: usize,
        sampled: usize,
        prefill_s: f64,
        decode_s: f64,
    },
}

impl From<StreamEvent<'_>> for Delta {
    fn from(ev: StreamEvent<'_>) -> Self {
        match ev {
            StreamEvent::Thinking(t) => Delta::Thinking(t.to_string()),
            StreamEvent::Answer(t) => Delta::Answer(t.to_string()),
            StreamEvent::Injected { injection, text } => Delta::Injected {
                kind: injection.kind,
                at_thinking_token: injection.at_thinking_token,
                text: text.to_string(),
            },
            StreamEvent::Counts {
                thinking,
                answer,
                sampled,
                prefill_s,
                decode_s,
            } => Delta::Counts {
                thinking,
                answer,
                sampled,
                prefill_s,
                decode_s,
            },
        }
    }
}
