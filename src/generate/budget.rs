//! Budget forcing (s1, "Simple test-time scaling", §3.1; the lm-evaluation-harness fork's
//! `vllm_causallms.py`): a state machine, independent of any model, that consumes sampled tokens
//! and decides what the model is fed next.
//!
//! - Thinking opens with a start delimiter appended after the generation prompt.
//! - When the model tries to end thinking (an end-of-thinking sequence, or end of turn) before the
//!   minimum is reached, or while ignores remain (s1's `thinking_n_ignore`), the end is dropped and
//!   the ignore string ("Wait") is appended instead.
//! - When thinking reaches the maximum, the answer delimiter and "Final Answer:" are appended
//!   (after a newline if the thinking does not end with one); the answer runs to end of turn.
//! - A natural end appends the answer delimiter.
//!
//! Delimiters are strings; their ids come from the tokenizer, so multi-token delimiters work: the
//! tokens of a partly emitted end sequence are held back, and on a match the caller rewinds its
//! KV cache over the ones it already fed.

use super::codec::Codec;

/// The strings that delimit thinking in a model's chat format.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ThinkingFormat {
    /// Appended after the generation prompt to open thinking.
    pub start: String,
    /// Emitting any of these ends thinking.
    pub end: Vec<String>,
    /// Appended when thinking ends, to open the answer.
    pub answer_start: String,
}

impl ThinkingFormat {
    /// s1 / s1.1: `<|im_start|>think` … `<|im_start|>answer`.
    pub fn s1() -> Self {
        Self {
            start: "<|im_start|>think".into(),
            end: vec!["<|im_start|>".into()],
            answer_start: "<|im_start|>answer".into(),
        }
    }

    /// DeepSeek-R1 / Qwen3 style: `<think>` … `</think>`.
    pub fn think_tags() -> Self {
        Self {
            start: "<think>".into(),
            end: vec!["</think>".into()],
            answer_start: "</think>".into(),
        }
    }
}

/// The thinking budget's upper end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MaxThinking {
    Unlimited,
    Tokens(usize),
    /// s1's "auto": max generation tokens - prompt - delimiters - 100 (left for the answer).
    Auto,
}

impl std::str::FromStr for MaxThinking {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "none" | "unlimited" => Ok(Self::Unlimited),
            n => n
                .parse()
                .map(Self::Tokens)
                .map_err(|_| format!("`{n}`: expected a number of tokens, `auto` or `unlimited`")),
        }
    }
}

/// Settings of budget forcing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct BudgetConfig {
    /// Off: no thinking delimiters are appended and the model answers directly.
    pub thinking: bool,
    pub min_thinking: usize,
    pub max_thinking: MaxThinking,
    /// How many times an end of thinking is ignored (s1's `thinking_n_ignore`).
    pub num_ignore: usize,
    /// Appended in place of an ignored end of thinking.
    pub ignore_str: String,
    /// Appended after the answer delimiter when the budget forces the end.
    pub final_answer: String,
    pub format: ThinkingFormat,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            thinking: true,
            min_thinking: 0,
            max_thinking: MaxThinking::Unlimited,
            num_ignore: 0,
            ignore_str: "Wait".into(),
            final_answer: "Final Answer:".into(),
            format: ThinkingFormat::s1(),
        }
    }
}

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    #[error("the minimum thinking ({min} tokens) is above the maximum ({max} tokens)")]
    MinAboveMax { min: usize, max: usize },
    #[error("the {what} `{text}` is empty or encodes to no tokens")]
    EmptyDelimiter { what: &'static str, text: String },
    #[error("extending thinking needs a non-empty ignore string when an end delimiter is several tokens (`{0}`)")]
    EmptyIgnoreMultiToken(String),
    #[error("tokenizer: {0}")]
    Codec(String),
}

/// Where generation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Thinking,
    Answer,
    Done,
}

/// What the controller appended on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InjectionKind {
    ThinkingStart,
    /// The ignore string, in place of an end of thinking.
    Ignore,
    /// The answer delimiter after a natural end of thinking.
    AnswerStart,
    /// The answer delimiter and final-answer prefix after the budget ran out.
    ForcedEnd,
}

/// An injection and where in the thinking it happened.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Injection {
    pub kind: InjectionKind,
    /// Thinking tokens before it.
    pub at_thinking_token: usize,
    pub ids: Vec<u32>,
}

/// What the controller reports, in order, for the caller to stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BudgetEvent {
    /// A token of the output: thinking (the ignore strings included) or answer (the final-answer
    /// prefix included).
    Token {
        phase: Phase,
        id: u32,
    },
    Injected(Injection),
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndOfTurn,
    MaxTokens,
    Cancelled,
}

/// What to do after a sampled token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Drop the last `rewind` positions from the model's cache, then feed `feed`.
    Feed {
        rewind: usize,
        feed: Vec<u32>,
    },
    Stop(StopReason),
}

/// The budget-forcing controller for one generation.
#[derive(Debug, Clone)]
pub struct BudgetForcer {
    start_ids: Vec<u32>,
    end_seqs: Vec<Vec<u32>>,
    eos_ids: Vec<u32>,
    answer_ids: Vec<u32>,
    forced_ids: Vec<u32>,
    /// Index in `forced_ids` where the final-answer prefix (answer text) starts.
    forced_prefix_start: usize,
    newline_ids: Vec<u32>,
    ignore_ids: Vec<u32>,
    thinking_on: bool,
    min: usize,
    max: Option<usize>,
    num_ignore: usize,
    max_new_tokens: usize,
    // state
    phase: Phase,
    thinking_tokens: usize,
    answer_tokens: usize,
    generated: usize,
    pending: Vec<u32>,
    last_thinking: Option<u32>,
    waits: usize,
    forced_end: bool,
    stopped: Option<StopReason>,
    events: Vec<BudgetEvent>,
    injections: Vec<Injection>,
}

fn encode(codec: &dyn Codec, what: &'static str, text: &str) -> Result<Vec<u32>, BudgetError> {
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
fn prefix_start(codec: &dyn Codec, forced: &[u32], final_answer: &str) -> usize {
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

impl BudgetForcer {
    /// Resolves `cfg` against the tokenizer. `max_new_tokens` bounds everything generated after
    /// the prompt (delimiters and injections included); `eos_ids` end the turn.
    pub fn new(
        cfg: &BudgetConfig,
        codec: &dyn Codec,
        eos_ids: &[u32],
        max_new_tokens: usize,
    ) -> Result<Self, BudgetError> {
        let f = &cfg.format;
        let (start_ids, answer_ids, forced_ids, newline_ids, end_seqs) = if cfg.thinking {
            let end_seqs = f
                .end
                .iter()
                .map(|e| encode(codec, "end-of-thinking delimiter", e))
                .collect::<Result<Vec<_>, _>>()?;
            if end_seqs.is_empty() {
                return Err(BudgetError::EmptyDelimiter {
                    what: "end-of-thinking delimiter",
                    text: String::new(),
                });
            }
            (
                encode(codec, "thinking start", &f.start)?,
                encode(codec, "answer delimiter", &f.answer_start)?,
                encode(
                    codec,
                    "forced end",
                    &format!("{}\n{}", f.answer_start, cfg.final_answer),
                )?,
                encode(codec, "newline", "\n")?,
                end_seqs,
            )
        } else {
            Default::default()
        };
        let forced_prefix_start = prefix_start(codec, &forced_ids, &cfg.final_answer);
        let ignore_ids = codec.encode(&cfg.ignore_str).map_err(BudgetError::Codec)?;
        let extends = cfg.min_thinking > 0 || cfg.num_ignore > 0;
        if cfg.thinking && extends && ignore_ids.is_empty() {
            if let Some(multi) = f.end.iter().zip(&end_seqs).find(|(_, ids)| ids.len() > 1) {
                return Err(BudgetError::EmptyIgnoreMultiToken(multi.0.clone()));
            }
        }
        let max = match cfg.max_thinking {
            MaxThinking::Unlimited => None,
            MaxThinking::Tokens(n) => Some(n),
            MaxThinking::Auto => Some(max_new_tokens.saturating_sub(start_ids.len() + forced_ids.len() + 100)),
        };
        if let Some(max) = max {
            if cfg.thinking && cfg.min_thinking > max {
                return Err(BudgetError::MinAboveMax {
                    min: cfg.min_thinking,
                    max,
                });
            }
        }
        Ok(Self {
            start_ids,
            end_seqs,
            eos_ids: eos_ids.to_vec(),
            answer_ids,
            forced_ids,
            forced_prefix_start,
            newline_ids,
            ignore_ids,
            thinking_on: cfg.thinking,
            min: cfg.min_thinking,
            max,
            num_ignore: cfg.num_ignore,
            max_new_tokens,
            phase: Phase::Answer,
            thinking_tokens: 0,
            answer_tokens: 0,
            generated: 0,
            pending: Vec::new(),
            last_thinking: None,
            waits: 0,
            forced_end: false,
            stopped: None,
            events: Vec::new(),
            injections: Vec::new(),
        })
    }

    /// The tokens to append to the prompt before the first sample. `prompt_has_start` says the
    /// chat template already opened thinking (some templates end with `<think>\n`).
    pub fn start(&mut self, prompt_has_start: bool, codec: &dyn Codec) -> Vec<u32> {
        if !self.thinking_on {
            self.phase = Phase::Answer;
            return Vec::new();
        }
        self.phase = Phase::Thinking;
        let mut feed = Vec::new();
        if !prompt_has_start {
            feed = self.start_ids.clone();
            self.inject(InjectionKind::ThinkingStart, feed.clone());
        }
        if self.max == Some(0) {
            let before = feed.clone();
            feed.extend(self.force_end(codec, &before));
        }
        self.generated += feed.len();
        feed
    }

    /// The ids the sampler must not pick now: an end of thinking while it would be ignored and no
    /// ignore string is set (then ends are suppressed, like vLLM's `min_tokens`).
    pub fn banned(&self) -> Vec<u32> {
        if self.phase == Phase::Thinking && self.ignore_ids.is_empty() && self.must_extend() {
            let mut b: Vec<u32> = self.end_seqs.iter().filter(|s| s.len() == 1).map(|s| s[0]).collect();
            b.extend(&self.eos_ids);
            b
        } else {
            Vec::new()
        }
    }

    fn must_extend(&self) -> bool {
        self.waits < self.num_ignore || self.thinking_tokens < self.min
    }

    fn inject(&mut self, kind: InjectionKind, ids: Vec<u32>) {
        let inj = Injection {
            kind,
            at_thinking_token: self.thinking_tokens,
            ids,
        };
        self.injections.push(inj.clone());
        self.events.push(BudgetEvent::Injected(inj));
    }

    fn emit_thinking(&mut self, id: u32) {
        self.thinking_tokens += 1;
        self.last_thinking = Some(id);
        self.events.push(BudgetEvent::Token {
            phase: Phase::Thinking,
            id,
        });
    }

    /// The forced end: newline if needed, answer delimiter, final-answer prefix. `context` holds
    /// tokens appended in this same step before it (when the thinking is still empty).
    fn force_end(&mut self, codec: &dyn Codec, context: &[u32]) -> Vec<u32> {
        let last: Vec<u32> = match self.last_thinking {
            Some(t) => vec![t],
            None => context.to_vec(),
        };
        let ends_nl = codec.decode(&last).map(|s| s.ends_with('\n')).unwrap_or(false);
        let mut feed = Vec::new();
        if !ends_nl {
            feed.extend(&self.newline_ids);
        }
        feed.extend(&self.forced_ids);
        self.forced_end = true;
        self.inject(InjectionKind::ForcedEnd, feed.clone());
        // The final-answer prefix is streamed as answer text (not counted as generated answer
        // tokens); the delimiter is not text of either part.
        let prefix_start = feed.len() - self.forced_ids.len() + self.forced_prefix_start;
        for &id in &feed[prefix_start..] {
            self.events.push(BudgetEvent::Token {
                phase: Phase::Answer,
                id,
            });
        }
        self.phase = Phase::Answer;
        feed
    }

    /// Consumes the sampled token `id` and says what to feed next.
    pub fn on_token(&mut self, id: u32, codec: &dyn Codec) -> Step {
        let step = match self.phase {
            Phase::Thinking => self.on_thinking(id, codec),
            Phase::Answer => self.on_answer(id),
            Phase::Done => Step::Stop(StopReason::EndOfTurn),
        };
        match &step {
            Step::Feed { rewind, feed } => {
                self.generated = self.generated + feed.len() - rewind;
                if self.generated >= self.max_new_tokens {
                    // What was fed is part of the output, but nothing more is sampled.
                    self.finish();
                    self.stopped = Some(StopReason::MaxTokens);
                }
            }
            Step::Stop(reason) => {
                self.finish();
                self.stopped = Some(*reason);
            }
        }
        step
    }

    /// Set once generation is over: after a `Stop`, or after a `Feed` that reached the token
    /// limit (the caller records that feed as output but samples no more).
    pub fn stopped(&self) -> Option<StopReason> {
        self.stopped
    }

    /// Ends generation here (a stop, or the caller cancelled): held-back tokens become thinking.
    pub fn finish(&mut self) {
        for t in std::mem::take(&mut self.pending) {
            self.emit_thinking(t);
        }
        self.phase = Phase::Done;
    }

    fn on_answer(&mut self, id: u32) -> Step {
        if self.eos_ids.contains(&id) {
            return Step::Stop(StopReason::EndOfTurn);
        }
        self.answer_tokens += 1;
        self.events.push(BudgetEvent::Token {
            phase: Phase::Answer,
            id,
        });
        Step::Feed {
            rewind: 0,
            feed: vec![id],
        }
    }

    fn on_thinking(&mut self, id: u32, codec: &dyn Codec) -> Step {
        let mut cand = std::mem::take(&mut self.pending);
        cand.push(id);
        let eos = self.eos_ids.contains(&id);
        let matched = if eos {
            Some(1)
        } else {
            self.end_seqs.iter().filter(|s| cand.ends_with(s)).map(Vec::len).max()
        };
        if let Some(len) = matched {
            // Tokens before the delimiter are thinking; the delimiter's first len-1 were fed.
            let keep = cand.len() - len;
            for &t in &cand[..keep] {
                self.emit_thinking(t);
            }
            let rewind = len - 1;
            if self.must_extend() {
                self.waits += 1;
                let ids = self.ignore_ids.clone();
                self.inject(InjectionKind::Ignore, ids.clone());
                for &t in &ids {
                    self.emit_thinking(t);
                }
                if let Some(max) = self.max {
                    if self.thinking_tokens >= max {
                        let mut feed = ids;
                        feed.extend(self.force_end(codec, &[]));
                        return Step::Feed { rewind, feed };
                    }
                }
                return Step::Feed { rewind, feed: ids };
            }
            let ids = self.answer_ids.clone();
            self.inject(InjectionKind::AnswerStart, ids.clone());
            self.phase = Phase::Answer;
            return Step::Feed { rewind, feed: ids };
        }
        // Hold back the longest suffix that may still become an end delimiter.
        let hold = (1..=cand.len())
            .rev()
            .find(|&n| {
                let suffix = &cand[cand.len() - n..];
                self.end_seqs.iter().any(|s| s.len() > n && s.starts_with(suffix))
            })
            .unwrap_or(0);
        let confirmed = cand.len() - hold;
        for &t in &cand[..confirmed] {
            self.emit_thinking(t);
        }
        self.pending = cand[confirmed..].to_vec();
        if let Some(max) = self.max {
            if self.thinking_tokens + self.pending.len() >= max {
                for t in std::mem::take(&mut self.pending) {
                    self.emit_thinking(t);
                }
                let mut feed = vec![id];
                feed.extend(self.force_end(codec, &[]));
                return Step::Feed { rewind: 0, feed };
            }
        }
        Step::Feed {
            rewind: 0,
            feed: vec![id],
        }
    }

    /// Events since the last call, in order.
    pub fn drain_events(&mut self) -> Vec<BudgetEvent> {
        std::mem::take(&mut self.events)
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Thinking tokens so far (ignore strings included, delimiters excluded).
    pub fn thinking_tokens(&self) -> usize {
        self.thinking_tokens
    }

    pub fn answer_tokens(&self) -> usize {
        self.answer_tokens
    }

    pub fn waits_injected(&self) -> usize {
        self.waits
    }

    pub fn forced_end(&self) -> bool {
        self.forced_end
    }

    pub fn injections(&self) -> &[Injection] {
        &self.injections
    }

    /// The resolved maximum, `None` when unlimited.
    pub fn max_thinking(&self) -> Option<usize> {
        self.max
    }
}
