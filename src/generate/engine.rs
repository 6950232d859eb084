//! The generation loop: prompt -> (thinking, answer) under budget forcing, streamed as deltas.

use std::time::Instant;

use candle_core::Tensor;

use super::budget::{
    AnswerNow, BudgetConfig, BudgetError, BudgetEvent, BudgetForcer, Injection, MaxThinking, Phase, Step, StopReason,
};
use super::codec::Codec;
use super::detok::IncrementalDecoder;
use super::sampler::{Sampler, SamplingParams};
use super::stream::StreamEvent;
use crate::cancel::CancelToken;
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

/// Everything one generation needs besides the model and the prompt.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct GenerateParams {
    pub sampling: SamplingParams,
    pub budget: BudgetConfig,
    /// Bound on every token generated after the prompt; `None`: up to the context length.
    pub max_new_tokens: Option<usize>,
    /// The prompt length s1's `auto` thinking budget subtracts from `max_new_tokens`: the
    /// longest prompt of the batch (lm-eval hands a task's prompts to vLLM in one call);
    /// `None`: this prompt's length.
    pub auto_prompt_tokens: Option<usize>,
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
    /// Of `waits_injected`, those only the minimum asked for (past the Waits setting).
    pub waits_for_min: usize,
    pub forced_end: bool,
    /// The thinking was cut at the maximum after ignored ends (s1's loop, `PastMax::S1`).
    pub thinking_cut: bool,
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

/// One sequence's generation state: budget forcing, sampling, detokenizing, timing. The same
/// state machine serves one generation ([`generate`]) and many at once ([`generate_batch`]).
struct SeqState {
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
enum Next {
    Feed { rewind: usize, feed: Vec<u32> },
    Done(StopReason),
}

impl SeqState {
    /// Checks the room left and starts the forcer; returns the state and the tokens to feed
    /// first (the prompt and the opening delimiter).
    #[allow(clippy::too_many_arguments)]
    fn start(
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
    fn prefilled(&mut self) {
        self.prefill_s = self.started.elapsed().as_secs_f64();
        self.decode_start = Instant::now();
    }

    /// Samples from `logits` and advances the forcer; with `answer_now` while thinking, ends
    /// the thinking instead ([`BudgetForcer::force_end_now`]; `logits` go unused).
    fn next(
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

    fn finish(
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
    let never = AnswerNow::new();
    generate_steered(
        model,
        codec,
        prompt,
        eos_ids,
        max_token_id,
        params,
        cancel,
        &never,
        on_event,
    )
}

/// [`generate`], and the thinking ends at once when `answer_now` is set (the chat's button).
#[allow(clippy::too_many_arguments)]
pub fn generate_steered(
    model: &mut dyn LanguageModel,
    codec: &dyn Codec,
    prompt: &Prompt,
    eos_ids: &[u32],
    max_token_id: u32,
    params: &GenerateParams,
    cancel: &CancelToken,
    answer_now: &AnswerNow,
    on_event: &mut dyn FnMut(StreamEvent<'_>),
) -> Result<Generation, GenerateError> {
    let (mut st, feed) = SeqState::start(
        model.position(),
        model.context_len(),
        codec,
        prompt,
        eos_ids,
        max_token_id,
        params,
        on_event,
    )?;
    let mut logits = model.feed(&feed)?;
    st.prefilled();
    let stop_reason = loop {
        match st.next(&mut logits, codec, cancel, answer_now.is_requested(), on_event) {
            Next::Done(reason) => break reason,
            Next::Feed { rewind, feed } => {
                if rewind > 0 {
                    model.rewind(rewind);
                }
                if !feed.is_empty() {
                    logits = model.feed(&feed)?;
                }
            }
        }
    };
    Ok(st.finish(stop_reason, codec, on_event))
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

/// The budget as generation applies it: a maximum of 0 thinking tokens with a format other
/// than s1's is thinking off (the template's own "no thinking" prompt, or its opened block
/// closed at once); s1's keeps its rule (`<|im_start|>think`, then the forced end at once).
pub fn effective_budget(budget: &BudgetConfig) -> std::borrow::Cow<'_, BudgetConfig> {
    if budget.thinking && budget.max_thinking == MaxThinking::Tokens(0) && !budget.format.is_s1() {
        std::borrow::Cow::Owned(BudgetConfig {
            thinking: false,
            ..budget.clone()
        })
    } else {
        std::borrow::Cow::Borrowed(budget)
    }
}

/// Renders `messages` with the model's chat template and tokenizes them. The template gets
/// `enable_thinking` = whether thinking is on ([`effective_budget`]): Qwen3's then writes its
/// empty think block itself. `has_thinking_start` is set when the rendered prompt ends with the
/// format's start (R1 distills, QwQ), thinking on or off.
pub fn build_prompt(
    model: &LoadedModel,
    messages: &[ChatMessage],
    budget: &BudgetConfig,
) -> Result<Prompt, ModelError> {
    let budget = effective_budget(budget);
    let text = model.template.render(messages, true, Some(budget.thinking))?;
    let has_thinking_start = {
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
    chat_steered(model, messages, params, cancel, &AnswerNow::new(), on_event)
}

/// [`chat`] with an "answer now" flag ([`generate_steered`]).
pub fn chat_steered(
    model: &LoadedModel,
    messages: &[ChatMessage],
    params: &GenerateParams,
    cancel: &CancelToken,
    answer_now: &AnswerNow,
    on_event: &mut dyn FnMut(StreamEvent<'_>),
) -> Result<Generation, GenerateError> {
    let prompt = build_prompt(model, messages, &params.budget)?;
    let mut session = DecoderSession::new(&model.decoder);
    generate_steered(
        &mut session,
        &model.tokenizer,
        &prompt,
        &model.tokenizer.special.eos_ids,
        model.tokenizer.max_token_id,
        params,
        cancel,
        answer_now,
        on_event,
    )
}

/// Several conversations generated at once, each with its own parameters and budget state.
/// Prompts are prefilled one by one; then every decode step that feeds one token to several
/// sequences runs them through the decoder together (the weights read once for all of them,
/// on the CPU path), while a sequence that must be fed several tokens (an injected "Wait" or a
/// forced end) is fed on its own. Greedy results equal those of [`chat`] for each conversation.
pub fn chat_batch(
    model: &LoadedModel,
    conversations: &[Vec<ChatMessage>],
    params: &[GenerateParams],
    cancel: &CancelToken,
) -> Result<Vec<Generation>, GenerateError> {
    if conversations.len() != params.len() {
        return Err(GenerateError::Candle(candle_core::Error::Msg(format!(
            "{} conversations but {} parameter sets",
            conversations.len(),
            params.len()
        ))));
    }
    let dec = &model.decoder;
    let codec: &dyn Codec = &model.tokenizer;
    let eos = &model.tokenizer.special.eos_ids;
    let max_id = model.tokenizer.max_token_id;
    let context = dec.config().max_position_embeddings;
    let n = conversations.len();
    let mut caches: Vec<KvCache> = (0..n).map(|_| dec.new_cache()).collect();
    let mut states: Vec<Option<SeqState>> = Vec::with_capacity(n);
    let mut logits: Vec<Vec<f32>> = Vec::with_capacity(n);
    let feed_one = |cache: &mut KvCache, tokens: &[u32]| -> Result<Vec<f32>, GenerateError> {
        let ids = Tensor::new(tokens, dec.device())?.unsqueeze(0)?;
        Ok(dec
            .forward(&ids, Some(cache), Logits::Last)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    };
    for (i, (msgs, p)) in conversations.iter().zip(params).enumerate() {
        let prompt = build_prompt(model, msgs, &p.budget)?;
        let (mut st, feed) = SeqState::start(0, context, codec, &prompt, eos, max_id, p, &mut |_| {})?;
        logits.push(feed_one(&mut caches[i], &feed)?);
        st.prefilled();
        states.push(Some(st));
    }
    let mut results: Vec<Option<Generation>> = (0..n).map(|_| None).collect();
    while states.iter().any(Option::is_some) {
        let mut singles: Vec<(usize, u32)> = Vec::new();
        for i in 0..n {
            let Some(mut st) = states[i].take() else { continue };
            match st.next(&mut logits[i], codec, cancel, false, &mut |_| {}) {
                Next::Done(reason) => results[i] = Some(st.finish(reason, codec, &mut |_| {})),
                Next::Feed { rewind, feed } => {
                    states[i] = Some(st);
                    if rewind > 0 {
                        let len = caches[i].len();
                        caches[i].truncate(len.saturating_sub(rewind));
                    }
                    match feed.len() {
                        0 => {}
                        1 => singles.push((i, feed[0])),
                        _ => logits[i] = feed_one(&mut caches[i], &feed)?,
                    }
                }
            }
        }
        if singles.is_empty() {
            continue;
        }
        let tokens: Vec<u32> = singles.iter().map(|s| s.1).collect();
        let mut batch: Vec<&mut KvCache> = caches
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| singles.iter().any(|s| s.0 == *i))
            .map(|(_, c)| c)
            .collect();
        if batch.len() > 1 && dec.can_step_cpu_batch(&batch) {
            let hidden = dec.step_cpu_batch(&tokens, &mut batch)?;
            for ((i, _), l) in singles.iter().zip(dec.head_cpu_batch(&hidden)?) {
                logits[*i] = l;
            }
        } else {
            drop(batch);
            for &(i, t) in &singles {
                logits[i] = feed_one(&mut caches[i], &[t])?;
            }
        }
    }
    results
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| GenerateError::Candle(candle_core::Error::Msg("a sequence did not finish".into())))
}
