//! One sequence's generation state ([`SeqState`]): budget forcing, sampling, detokenizing and
//! timing, advanced one sampled token at a time. [`generate`](super::generate) drives one of
//! them; the [`Scheduler`](super::Scheduler) drives many that share decode steps.

use std::time::Instant;

use super::budget::{BudgetEvent, BudgetForcer, Phase, Step, StopReason};
use super::codec::Codec;
use super::detok::IncrementalDecoder;
use super::engine::{effective_budget, GenerateError, GenerateParams, Generation, Prompt};
use super::sampler::Sampler;
use super::stream::StreamEvent;
use crate::cancel::CancelToken;
use crate::model::ModelError;

/// One sequence's generation state: budget forcing, sampling, detokenizing, timing. The same
/// state machine serves one generation ([`generate`]) and many at once ([`generate_batch`]).
pub(super) struct SeqState {
    forcer: BudgetForcer,
    sampler: Sampler,
    thinking: IncrementalDecoder,
    answer: IncrementalDecoder,
    output_ids: Vec<u32>,
    prompt_tokens: usize,
    started: Instant,
    prefill_s: f64,
    decode_start: Instant,
    sampled: usize,
}

/// What a sequence needs after a sampled token.
pub(super) enum Next {
    Feed { rewind: usize, feed: Vec<u32> },
    Done(StopReason),
}

impl SeqState {
    /// Checks the room left and starts the forcer; returns the state and the tokens to feed
    /// first (the prompt and the opening delimiter).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start(
        position: usize,
        context: usize,
        codec: &dyn Codec,
        prompt: &Prompt,
        eos_ids: &[u32],
        max_token_id: u32,
        params: &GenerateParams,
        on_event: &mut dyn FnMut(StreamEvent<'_>),
    ) -> Result<(Self, Vec<u32>), GenerateError> {
        let room = context.saturating_sub(position + prompt.ids.len());
        if prompt.ids.is_empty() || room == 0 {
            return Err(ModelError::ContextOverflow {
                prompt: prompt.ids.len(),
                reserve: 1,
                context,
            }
            .into());
        }
        let max_new = params.max_new_tokens.unwrap_or(room).min(room);
        // s1: auto = max_gen_toks - longest prompt - delimiters - 100; with no token limit
        // the context is the limit, which already leaves the prompt out.
        let auto_room = match params.max_new_tokens {
            Some(g) => g
                .saturating_sub(params.auto_prompt_tokens.unwrap_or(prompt.ids.len()))
                .min(room),
            None => room,
        };
        let budget = effective_budget(&params.budget);
        let mut st = Self {
            forcer: BudgetForcer::new(&budget, codec, eos_ids, max_new, auto_room)?,
            sampler: Sampler::new(params.sampling.clone(), max_token_id),
            thinking: IncrementalDecoder::new(),
            answer: IncrementalDecoder::new(),
            output_ids: Vec::new(),
            prompt_tokens: prompt.ids.len(),
            started: Instant::now(),
            prefill_s: 0.0,
            decode_start: Instant::now(),
            sampled: 0,
        };
        let mut feed = prompt.ids.clone();
        st.forcer.set_prompt_end(prompt.ids.last().copied());
        let opening = st.forcer.start(prompt.has_thinking_start, codec);
        feed.extend(&opening);
        st.output_ids.extend(&opening);
        stream(&mut st.forcer, codec, &mut st.thinking, &mut st.answer, on_event);
        Ok((st, feed))
    }

    /// The prompt's logits arrived: decoding starts.
    pub(super) fn prefilled(&mut self) {
        self.prefill_s = self.started.elapsed().as_secs_f64();
        self.decode_start = Instant::now();
    }

    /// Samples from `logits` and advances the forcer; with `answer_now` while thinking, ends
    /// the thinking instead ([`BudgetForcer::force_end_now`]; `logits` go unused).
    pub(super) fn next(
        &mut self,
        logits: &mut [f32],
        codec: &dyn Codec,
        cancel: &CancelToken,
        answer_now: bool,
        on_event: &mut dyn FnMut(StreamEvent<'_>),
    ) -> Next {
        if cancel.is_cancelled() {
            self.forcer.finish();
            return Next::Done(StopReason::Cancelled);
        }
        let forced = if answer_now {
            self.forcer.force_end_now(codec)
        } else {
            None
        };
        let step = match forced {
            Some(step) => step,
            None => {
                let id = self.sampler.sample(logits, &self.forcer.banned());
                self.sampled += 1;
                self.forcer.on_token(id, codec)
            }
        };
        stream(&mut self.forcer, codec, &mut self.thinking, &mut self.answer, on_event);
        on_event(StreamEvent::Counts {
            thinking: self.forcer.thinking_tokens(),
            answer: self.forcer.answer_tokens(),
            sampled: self.sampled,
            prefill_s: self.prefill_s,
            decode_s: self.decode_start.elapsed().as_secs_f64(),
        });
        match step {
            Step::Stop(reason) => Next::Done(reason),
            Step::Feed { rewind, feed } => {
                if rewind > 0 {
                    self.output_ids.truncate(self.output_ids.len().saturating_sub(rewind));
                }
                self.output_ids.extend(&feed);
                match self.forcer.stopped() {
                    Some(reason) => Next::Done(reason),
                    None => Next::Feed { rewind, feed },
                }
            }
        }
    }

    pub(super) fn finish(
        mut self,
        stop_reason: StopReason,
        codec: &dyn Codec,
        on_event: &mut dyn FnMut(StreamEvent<'_>),
    ) -> Generation {
        stream(&mut self.forcer, codec, &mut self.thinking, &mut self.answer, on_event);
        for (dec, phase) in [(&mut self.thinking, Phase::Thinking), (&mut self.answer, Phase::Answer)] {
            if let Some(rest) = dec.flush(codec) {
                on_event(if phase == Phase::Thinking {
                    StreamEvent::Thinking(&rest)
                } else {
                    StreamEvent::Answer(&rest)
                });
            }
        }
        let decode_s = self.decode_start.elapsed().as_secs_f64();
        Generation {
            thinking: self.thinking.text().to_string(),
            answer: self.answer.text().to_string(),
            prompt_tokens: self.prompt_tokens,
            thinking_tokens: self.forcer.thinking_tokens(),
            answer_tokens: self.forcer.answer_tokens(),
            waits_injected: self.forcer.waits_injected(),
            waits_for_min: self.forcer.waits_for_min(),
            forced_end: self.forcer.forced_end(),
            thinking_cut: self.forcer.thinking_cut(),
            max_thinking: self.forcer.max_thinking(),
            stop_reason,
            injections: self.forcer.injections().to_vec(),
            output_ids: self.output_ids,
            prefill_s: self.prefill_s,
            decode_s,
            tokens_per_s: if decode_s > 0.0 {
                self.sampled as f64 / decode_s
            } else {
                0.0
            },
        }
    }
}

fn stream(
    forcer: &mut BudgetForcer,
    codec: &dyn Codec,
    thinking: &mut IncrementalDecoder,
    answer: &mut IncrementalDecoder,
    on_event: &mut dyn FnMut(StreamEvent<'_>),
) {
    for ev in forcer.drain_events() {
        match ev {
            BudgetEvent::Token {
                phase: Phase::Answer,
                id,
            } => {
                if let Some(d) = answer.push(codec, id) {
                    on_event(StreamEvent::Answer(&d));
                }
            }
            BudgetEvent::Token { id, .. } => {
                if let Some(d) = thinking.push(codec, id) {
                    on_event(StreamEvent::Thinking(&d));
                }
            }
            BudgetEvent::Injected(inj) => {
                let text = codec.decode(&inj.ids).unwrap_or_default();
                on_event(StreamEvent::Injected {
                    injection: &inj,
                    text: &text,
                })
            }
        }
    }
}
