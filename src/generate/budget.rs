//! Budget forcing (s1, "Simple test-time scaling", §3.1; the lm-evaluation-harness fork's
//! `vllm_causallms.py`, `_model_generate`): a state machine, independent of any model, that
//! consumes sampled tokens and decides what the model is fed next.
//!
//! - Thinking opens with a start delimiter appended after the generation prompt.
//! - When the model tries to end thinking (an end-of-thinking sequence, or end of turn) before the
//!   minimum is reached, or while ignores remain (s1's `thinking_n_ignore`), the end is dropped and
//!   the ignore string ("Wait") is appended instead; the next token may not end the thinking
//!   (s1 runs each round with vLLM's `min_tokens=1`). An empty ignore string just drops the end.
//! - When thinking reaches the maximum, the answer delimiter and "Final Answer:" are appended
//!   (after a newline if the thinking does not end with one); the answer runs to end of turn.
//!   After an ignored end, s1's loop gives each round its own budget and cuts the thinking
//!   afterwards ([`PastMax`]): the default follows it.
//! - A natural end appends the answer delimiter.
//!
//! Delimiters are strings; their ids come from the tokenizer, so multi-token delimiters work: the
//! tokens of a partly emitted end sequence are held back, and on a match the caller rewinds its
//! KV cache over the ones it already fed.

pub use super::budget_config::{BudgetConfig, BudgetError, MaxThinking, PastMax, ThinkingFormat};
use super::codec::Codec;
pub use answer_now::AnswerNow;
use overrun::Overrun;

mod answer_now;
mod delims;
mod overrun;

use delims::{encode, prefix_start};

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
    /// The end delimiters that take several tokens, as text: also matched across token
    /// boundaries (a token that merges the delimiter's last characters with what follows).
    end_texts: Vec<String>,
    /// The thinking start, when it may not reappear in the answer (`ThinkingFormat::reopen_banned`).
    reopen_ids: Vec<u32>,
    reopen_text: String,
    /// Fed when thinking is off but the template opened it (`ThinkingFormat::close_at_once`).
    close_ids: Vec<u32>,
    thinking_on: bool,
    min: usize,
    max: Option<usize>,
    num_ignore: usize,
    past_max: PastMax,
    max_new_tokens: usize,
    // state
    phase: Phase,
    thinking_tokens: usize,
    answer_tokens: usize,
    generated: usize,
    pending: Vec<u32>,
    /// Answer tokens held back while they may be the start of a several-token thinking start.
    answer_pending: Vec<u32>,
    /// Tokens banned at the current answer position: each began a dropped re-opening.
    reopen_bans: Vec<u32>,
    /// Everything fed after the prompt's last token (that one included): where a dropped
    /// re-opening rewinds to.
    fed: Vec<u32>,
    last_thinking: Option<u32>,
    waits: usize,
    /// Ignored ends so far: the round of s1's loop (round 0 ran before any ignore).
    round: usize,
    /// Tokens sampled in this round, its end included (what vLLM's `max_tokens` counts).
    round_tokens: usize,
    /// The next sampled token may not end the thinking (vLLM's `min_tokens=1` of a round).
    ban_next: bool,
    /// Past the maximum in s1's loop: the model goes on unseen until its rounds end.
    overrun: Option<Overrun>,
    forced_end: bool,
    cut: bool,
    stopped: Option<StopReason>,
    events: Vec<BudgetEvent>,
    injections: Vec<Injection>,
}

impl BudgetForcer {
    /// Resolves `cfg` against the tokenizer. `max_new_tokens` bounds everything generated after
    /// the prompt (delimiters and injections included); `eos_ids` end the turn. `auto_room` is
    /// what s1's `auto` budget is taken from: its `max_gen_toks` less the longest prompt of the
    /// batch; `auto` = `auto_room` - thinking start - forced end - 100 (left for the answer).
    pub fn new(
        cfg: &BudgetConfig,
        codec: &dyn Codec,
        eos_ids: &[u32],
        max_new_tokens: usize,
        auto_room: usize,
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
        let end_texts = f
            .end
            .iter()
            .zip(&end_seqs)
            .filter(|(_, ids)| ids.len() > 1)
            .map(|(e, _)| e.clone())
            .collect();
        // Lenient: with thinking off these may never be needed, and s1's format has them off.
        let lenient = |text: &str| codec.encode(text).unwrap_or_default();
        let reopen_ids = if f.reopen_banned && !f.start.is_empty() {
            lenient(&f.start)
        } else {
            Vec::new()
        };
        let close_ids = if f.answer_start.is_empty() {
            Vec::new()
        } else {
            lenient(&f.close_at_once())
        };
        let ignore_ids = codec.encode(&cfg.ignore_str).map_err(BudgetError::Codec)?;
        let extends = cfg.min_thinking > 0 || cfg.num_ignore > 0;
        if cfg.thinking && extends && ignore_ids.is_empty() {
            // An empty ignore string bans or drops single tokens; a dropped multi-token end
            // would leave the model's logits behind the rewound position.
            if let Some(multi) = f.end.iter().zip(&end_seqs).find(|(_, ids)| ids.len() > 1) {
                return Err(BudgetError::EmptyIgnoreMultiToken(multi.0.clone()));
            }
        }
        let max = match cfg.max_thinking {
            MaxThinking::Unlimited => None,
            MaxThinking::Tokens(n) => Some(n),
            MaxThinking::Auto => Some(auto_room.saturating_sub(start_ids.len() + forced_ids.len() + 100)),
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
            end_texts,
            reopen_text: if reopen_ids.is_empty() {
                String::new()
            } else {
                f.start.clone()
            },
            reopen_ids,
            close_ids,
            thinking_on: cfg.thinking,
            min: cfg.min_thinking,
            max,
            num_ignore: cfg.num_ignore,
            past_max: cfg.past_max,
            max_new_tokens,
            phase: Phase::Answer,
            thinking_tokens: 0,
            answer_tokens: 0,
            generated: 0,
            pending: Vec::new(),
            answer_pending: Vec::new(),
            reopen_bans: Vec::new(),
            fed: Vec::new(),
            last_thinking: None,
            waits: 0,
            round: 0,
            round_tokens: 0,
            // s1 sets `min_tokens=1` for its first round too when ignores are asked for.
            ban_next: cfg.num_ignore > 0,
            overrun: None,
            forced_end: false,
            cut: false,
            stopped: None,
            events: Vec::new(),
            injections: Vec::new(),
        })
    }

    /// The tokens to append to the prompt before the first sample. `prompt_has_start` says the
    /// chat template already opened thinking (some templates end with `<think>\n`): then no
    /// second start is appended, and with thinking off the block is closed at once.
    pub fn start(&mut self, prompt_has_start: bool, codec: &dyn Codec) -> Vec<u32> {
        if !self.thinking_on {
            self.phase = Phase::Answer;
            if prompt_has_start && !self.close_ids.is_empty() {
                let feed = self.close_ids.clone();
                self.inject(InjectionKind::AnswerStart, feed.clone());
                self.generated += feed.len();
                self.fed.extend(&feed);
                return feed;
            }
            return Vec::new();
        }
        self.phase = Phase::Thinking;
        let mut feed = Vec::new();
        if !prompt_has_start {
            feed = self.start_ids.clone();
            self.inject(InjectionKind::ThinkingStart, feed.clone());
        }
        if self.max == Some(0) {
            let ends_nl = Self::ends_with_newline(codec, &feed);
            feed.extend(self.force_end(ends_nl));
        }
        self.generated += feed.len();
        self.fed.extend(&feed);
        feed
    }

    /// Tells the forcer the prompt's last token (before [`Self::start`]): a dropped re-opening of
    /// thinking at the very start of the answer rewinds to it.
    pub fn set_prompt_end(&mut self, last: Option<u32>) {
        self.fed = last.into_iter().collect();
    }

    /// The ids the sampler must not pick now: an end of thinking right after an ignored end
    /// (vLLM's `min_tokens=1` in each of s1's rounds), or before the minimum when no ignore
    /// string is set (then ends are suppressed, like vLLM's `min_tokens`).
    pub fn banned(&self) -> Vec<u32> {
        if self.phase == Phase::Answer {
            return self.answer_banned();
        }
        if self.phase != Phase::Thinking {
            return Vec::new();
        }
        let below_min = self.overrun.is_none() && self.ignore_ids.is_empty() && self.thinking_tokens < self.min;
        if self.ban_next || below_min {
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

    fn ends_with_newline(codec: &dyn Codec, ids: &[u32]) -> bool {
        codec.decode(ids).map(|s| s.ends_with('\n')).unwrap_or(false)
    }

    /// The forced end: newline unless the thinking's text ends with one, answer delimiter,
    /// final-answer prefix.
    fn force_end(&mut self, ends_nl: bool) -> Vec<u32> {
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

    /// The forced end after the last visible thinking token.
    fn force_end_here(&mut self, codec: &dyn Codec) -> Vec<u32> {
        let last: Vec<u32> = self.last_thinking.into_iter().collect();
        let ends_nl = Self::ends_with_newline(codec, &last);
        self.force_end(ends_nl)
    }

    /// Consumes the sampled token `id` and says what to feed next.
    pub fn on_token(&mut self, id: u32, codec: &dyn Codec) -> Step {
        let step = match self.phase {
            Phase::Thinking if self.overrun.is_some() => self.on_overrun(id, codec),
            Phase::Thinking => self.on_thinking(id, codec),
            Phase::Answer => self.on_answer(id, codec),
            Phase::Done => Step::Stop(StopReason::EndOfTurn),
        };
        self.account(&step);
        step
    }

    /// Books a step: what it feeds counts as generated; a stop, or reaching the token limit,
    /// ends generation.
    fn account(&mut self, step: &Step) {
        match step {
            Step::Feed { rewind, feed } => {
                self.generated = self.generated + feed.len() - rewind;
                self.fed.truncate(self.fed.len().saturating_sub(*rewind));
                self.fed.extend(feed);
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
    }

    /// Set once generation is over: after a `Stop`, or after a `Feed` that reached the token
    /// limit (the caller records that feed as output but samples no more).
    pub fn stopped(&self) -> Option<StopReason> {
        self.stopped
    }

    /// Ends generation here (a stop, or the caller cancelled): held-back tokens become thinking.
    pub fn finish(&mut self) {
        if self.overrun.is_none() {
            for t in std::mem::take(&mut self.pending) {
                self.emit_thinking(t);
            }
        }
        for t in std::mem::take(&mut self.answer_pending) {
            self.emit_answer(t);
        }
        self.phase = Phase::Done;
    }

    fn emit_answer(&mut self, id: u32) {
        self.answer_tokens += 1;
        self.events.push(BudgetEvent::Token {
            phase: Phase::Answer,
            id,
        });
    }

    /// An ignored end: counts it and starts the next round of s1's loop.
    fn next_round(&mut self) {
        self.waits += 1;
        self.round += 1;
        self.round_tokens = 0;
        self.ban_next = true;
    }

    fn on_thinking(&mut self, id: u32, codec: &dyn Codec) -> Step {
        self.round_tokens += 1;
        self.ban_next = false;
        let mut cand = std::mem::take(&mut self.pending);
        cand.push(id);
        if let Some(end) = self.find_end(&cand, id, codec) {
            // Tokens before the delimiter are thinking, and so is the text of its first token
            // before it (`lead`, fed again); the delimiter's tokens but the last were fed.
            for &t in &cand[..end.start] {
                self.emit_thinking(t);
            }
            let rewind = cand.len() - 1 - end.start;
            for &t in &end.lead {
                self.emit_thinking(t);
            }
            let lead = end.lead;
            let with_lead = |ids: Vec<u32>| -> Vec<u32> { lead.iter().copied().chain(ids).collect() };
            if self.must_extend() {
                self.next_round();
                let ids = self.ignore_ids.clone();
                self.inject(InjectionKind::Ignore, ids.clone());
                let Some(max) = self.max else {
                    ids.iter().for_each(|&t| self.emit_thinking(t));
                    return Step::Feed {
                        rewind,
                        feed: with_lead(ids),
                    };
                };
                if self.past_max == PastMax::Cut {
                    ids.iter().for_each(|&t| self.emit_thinking(t));
                    let mut feed = with_lead(ids);
                    if self.thinking_tokens >= max {
                        feed.extend(self.force_end_here(codec));
                    }
                    return Step::Feed { rewind, feed };
                }
                // s1: the ignore string is part of the thinking that is cut at the maximum.
                let visible = ids.len().min(max.saturating_sub(self.thinking_tokens));
                ids[..visible].iter().for_each(|&t| self.emit_thinking(t));
                if self.thinking_tokens >= max {
                    self.overrun = Some(Overrun {
                        keep: self.generated - rewind + lead.len() + visible,
                        tail: Vec::new(),
                    });
                }
                return Step::Feed {
                    rewind,
                    feed: with_lead(ids),
                };
            }
            let ids = self.answer_ids.clone();
            self.inject(InjectionKind::AnswerStart, ids.clone());
            self.phase = Phase::Answer;
            return Step::Feed {
                rewind,
                feed: with_lead(ids),
            };
        }
        // Hold back the longest suffix that may still become an end delimiter.
        let hold = (1..=cand.len())
            .rev()
            .find(|&n| {
                let suffix = &cand[cand.len() - n..];
                self.end_seqs.iter().any(|s| s.len() > n && s.starts_with(suffix))
            })
            .unwrap_or(0)
            .max(self.text_hold(&cand, &self.end_texts, codec));
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
                if self.past_max == PastMax::S1 && self.round > 0 && self.round_tokens < max {
                    // s1: this round has a budget of its own and goes on; the thinking will be
                    // cut here, after `id`.
                    self.overrun = Some(Overrun {
                        keep: self.generated + 1,
                        tail: cand,
                    });
                    return Step::Feed {
                        rewind: 0,
                        feed: vec![id],
                    };
                }
                let mut feed = vec![id];
                feed.extend(self.force_end_here(codec));
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

    /// Ignored ends of thinking, those of s1's hidden rounds past the maximum included.
    pub fn waits_injected(&self) -> usize {
        self.waits
    }

    /// The ignored ends that only the minimum asked for: those past the Waits setting
    /// (`num_ignore`). The first `num_ignore` ignored ends are the setting's, whatever the
    /// minimum says, since they would have come without it.
    pub fn waits_for_min(&self) -> usize {
        self.waits.saturating_sub(self.num_ignore)
    }

    pub fn forced_end(&self) -> bool {
        self.forced_end
    }

    /// The thinking was cut at the maximum after s1's hidden rounds ([`PastMax::S1`]).
    pub fn thinking_cut(&self) -> bool {
        self.cut
    }

    pub fn injections(&self) -> &[Injection] {
        &self.injections
    }

    /// The resolved maximum, `None` when unlimited.
    pub fn max_thinking(&self) -> Option<usize> {
        self.max
    }
}
