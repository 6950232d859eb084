//! The generation loop: prompt -> (thinking, answer) under budget forcing, streamed as deltas.

use std::time::Instant;

use candle_core::Tensor;

use super::budget::{BudgetConfig, BudgetError, BudgetEvent, BudgetForcer, Injection, Phase, Step, StopReason};
use super::codec::Codec;
use super::detok::IncrementalDecoder;
use super::sampler::{Sampler, SamplingParams};
use crate::jobs::CancelToken;
use crate::model::{ChatMessage, Decoder, KvCache, LoadedModel, Logits, ModelError};

/// Something that turns tokens into next-token logits: the decoder with its cache, or a scripted
/// fake in tests.
pub trait LanguageModel {
    /// Appends `tokens` after the current position and returns the f32 logits `[vocab]` that
    /// follow the last of them.
    fn feed(&mut self, tokens: &[u32]) -> Result<Vec<f32>, GenerateError>;
    /// Forgets the last `n` positions.
    fn rewind(&mut self, n: usize);
    /// Positions held.
    fn position(&self) -> usize;
    /// The most positions the model supports.
    fn context_len(&self) -> usize;
}

/// The decoder and its KV cache, for one conversation.
pub struct DecoderSession<'a> {
    decoder: &'a Decoder,
    cache: KvCache,
}

impl<'a> DecoderSession<'a> {
    pub fn new(decoder: &'a Decoder) -> Self {
        Self {
            decoder,
            cache: decoder.new_cache(),
        }
    }
}

impl LanguageModel for DecoderSession<'_> {
    fn feed(&mut self, tokens: &[u32]) -> Result<Vec<f32>, GenerateError> {
        let ids = Tensor::new(tokens, self.decoder.device())?.unsqueeze(0)?;
        let logits = self.decoder.forward(&ids, Some(&mut self.cache), Logits::Last)?;
        Ok(logits.flatten_all()?.to_vec1::<f32>()?)
    }

    fn rewind(&mut self, n: usize) {
        let len = self.cache.len();
        self.cache.truncate(len.saturating_sub(n));
    }

    fn position(&self) -> usize {
        self.cache.len()
    }

    fn context_len(&self) -> usize {
        self.decoder.config().max_position_embeddings
    }
}

/// What can stop a generation with an error.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Budget(#[from] BudgetError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("model: {0}")]
    Candle(#[from] candle_core::Error),
}

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
    /// Token counts so far, after each sampled token.
    Counts {
        thinking: usize,
        answer: usize,
    },
}

/// Everything one generation needs besides the model and the prompt.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct GenerateParams {
    pub sampling: SamplingParams,
    pub budget: BudgetConfig,
    /// Bound on every token generated after the prompt; `None`: up to the context length.
    pub max_new_tokens: Option<usize>,
}

/// The prompt as token ids.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub ids: Vec<u32>,
    /// The chat template already opened thinking (e.g. ends with `<think>\n`).
    pub has_thinking_start: bool,
}

/// The result of one generation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Generation {
    pub thinking: String,
    pub answer: String,
    pub prompt_tokens: usize,
    pub thinking_tokens: usize,
    pub answer_tokens: usize,
    pub waits_injected: usize,
    pub forced_end: bool,
    /// The thinking budget in force (`None`: unlimited).
    pub max_thinking: Option<usize>,
    pub stop_reason: StopReason,
    pub injections: Vec<Injection>,
    /// Every token after the prompt, as the model saw it (delimiters and injections included).
    pub output_ids: Vec<u32>,
    pub prefill_s: f64,
    pub decode_s: f64,
    /// Sampled tokens per second of decoding.
    pub tokens_per_s: f64,
}

/// Runs one generation under budget forcing, streaming deltas to `on_event`.
#[allow(clippy::too_many_arguments)]
pub fn generate(
    model: &mut dyn LanguageModel,
    codec: &dyn Codec,
    prompt: &Prompt,
    eos_ids: &[u32],
    max_token_id: u32,
    params: &GenerateParams,
    cancel: &CancelToken,
    on_event: &mut dyn FnMut(StreamEvent<'_>),
) -> Result<Generation, GenerateError> {
    let context = model.context_len();
    let room = context.saturating_sub(model.position() + prompt.ids.len());
    if prompt.ids.is_empty() || room == 0 {
        return Err(ModelError::ContextOverflow {
            prompt: prompt.ids.len(),
            reserve: 1,
            context,
        }
        .into());
    }
    let max_new = params.max_new_tokens.unwrap_or(room).min(room);
    let mut forcer = BudgetForcer::new(&params.budget, codec, eos_ids, max_new)?;
    let mut sampler = Sampler::new(params.sampling.clone(), max_token_id);
    let mut thinking = IncrementalDecoder::new();
    let mut answer = IncrementalDecoder::new();
    let mut output_ids: Vec<u32> = Vec::new();

    let started = Instant::now();
    let mut feed = prompt.ids.clone();
    let opening = forcer.start(prompt.has_thinking_start, codec);
    feed.extend(&opening);
    output_ids.extend(&opening);
    stream(&mut forcer, codec, &mut thinking, &mut answer, on_event);
    let mut logits = model.feed(&feed)?;
    let prefill_s = started.elapsed().as_secs_f64();
    let decode_start = Instant::now();
    let mut sampled = 0usize;
    let stop_reason = loop {
        if cancel.is_cancelled() {
            forcer.finish();
            break StopReason::Cancelled;
        }
        let id = sampler.sample(&mut logits, &forcer.banned());
        sampled += 1;
        let step = forcer.on_token(id, codec);
        stream(&mut forcer, codec, &mut thinking, &mut answer, on_event);
        on_event(StreamEvent::Counts {
            thinking: forcer.thinking_tokens(),
            answer: forcer.answer_tokens(),
        });
        match step {
            Step::Stop(reason) => break reason,
            Step::Feed { rewind, feed } => {
                if rewind > 0 {
                    model.rewind(rewind);
                    output_ids.truncate(output_ids.len().saturating_sub(rewind));
                }
                output_ids.extend(&feed);
                if let Some(reason) = forcer.stopped() {
                    break reason;
                }
                if !feed.is_empty() {
                    logits = model.feed(&feed)?;
                }
            }
        }
    };
    stream(&mut forcer, codec, &mut thinking, &mut answer, on_event);
    for (dec, phase) in [(&mut thinking, Phase::Thinking), (&mut answer, Phase::Answer)] {
        if let Some(rest) = dec.flush(codec) {
            on_event(if phase == Phase::Thinking {
                StreamEvent::Thinking(&rest)
            } else {
                StreamEvent::Answer(&rest)
            });
        }
    }
    let decode_s = decode_start.elapsed().as_secs_f64();
    Ok(Generation {
        thinking: thinking.text().to_string(),
        answer: answer.text().to_string(),
        prompt_tokens: prompt.ids.len(),
        thinking_tokens: forcer.thinking_tokens(),
        answer_tokens: forcer.answer_tokens(),
        waits_injected: forcer.waits_injected(),
        forced_end: forcer.forced_end(),
        max_thinking: forcer.max_thinking(),
        stop_reason,
        injections: forcer.injections().to_vec(),
        output_ids,
        prefill_s,
        decode_s,
        tokens_per_s: if decode_s > 0.0 { sampled as f64 / decode_s } else { 0.0 },
    })
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

/// Renders `messages` with the model's chat template and tokenizes them.
pub fn build_prompt(
    model: &LoadedModel,
    messages: &[ChatMessage],
    budget: &BudgetConfig,
) -> Result<Prompt, ModelError> {
    let text = model.template.render(messages, true, Some(budget.thinking))?;
    let has_thinking_start = budget.thinking && {
        let start = budget.format.start.trim();
        !start.is_empty() && text.trim_end().ends_with(start)
    };
    let mut ids = model.tokenizer.encode(&text)?;
    if model.tokenizer.special.add_bos {
        if let Some(bos) = model
            .tokenizer
            .special
            .bos
            .as_deref()
            .and_then(|b| model.tokenizer.token_to_id(b))
        {
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
    }
    Ok(Prompt {
        ids,
        has_thinking_start,
    })
}

/// Runs a conversation through a loaded model with budget forcing (a fresh KV cache).
pub fn chat(
    model: &LoadedModel,
    messages: &[ChatMessage],
    params: &GenerateParams,
    cancel: &CancelToken,
    on_event: &mut dyn FnMut(StreamEvent<'_>),
) -> Result<Generation, GenerateError> {
    let prompt = build_prompt(model, messages, &params.budget)?;
    let mut session = DecoderSession::new(&model.decoder);
    generate(
        &mut session,
        &model.tokenizer,
        &prompt,
        &model.tokenizer.special.eos_ids,
        model.tokenizer.max_token_id,
        params,
        cancel,
        on_event,
    )
}
