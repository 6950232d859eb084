//! The generation loop: prompt -> (thinking, answer) under budget forcing, streamed as deltas.

use candle_core::Tensor;

use super::budget::{AnswerNow, BudgetConfig, BudgetError, Injection, MaxThinking, StopReason};
use super::codec::Codec;
use super::sampler::SamplingParams;
use super::seq::{Next, SeqState};
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
    Ok(Prompt {
        ids: encode_with_bos(model, &text)?,
        has_thinking_start,
    })
}

/// A plain prompt (no chat template), tokenized as is: a completion's. Thinking, when on,
/// opens after it, unless the text already ends with the format's start.
pub fn text_prompt(model: &LoadedModel, text: &str, budget: &BudgetConfig) -> Result<Prompt, ModelError> {
    let budget = effective_budget(budget);
    let start = budget.format.start.trim();
    Ok(Prompt {
        ids: encode_with_bos(model, text)?,
        has_thinking_start: budget.thinking && !start.is_empty() && text.trim_end().ends_with(start),
    })
}

/// A plain prompt given as token ids, fed as they are (checked against the vocabulary and the
/// context). Thinking, when on, opens after it unless its text already ends with the format's
/// start.
pub fn ids_prompt(model: &LoadedModel, ids: &[u32], budget: &BudgetConfig) -> Result<Prompt, ModelError> {
    let max = model.tokenizer.max_token_id;
    if let Some((i, id)) = ids.iter().enumerate().find(|(_, &id)| id > max) {
        return Err(ModelError::Tokenizer(format!(
            "prompt token {i} is {id}, outside the vocabulary (0..={max})"
        )));
    }
    let context = model.decoder.config().max_position_embeddings;
    if ids.len() >= context {
        return Err(ModelError::Tokenizer(format!(
            "the prompt has {} tokens; the context holds {context}",
            ids.len()
        )));
    }
    let budget = effective_budget(budget);
    let start = budget.format.start.trim();
    let has_thinking_start = budget.thinking && !start.is_empty() && {
        let tail = &ids[ids.len().saturating_sub(16)..];
        model.tokenizer.decode(tail)?.trim_end().ends_with(start)
    };
    Ok(Prompt {
        ids: ids.to_vec(),
        has_thinking_start,
    })
}

/// Tokenizes `text`, with the BOS token first when the tokenizer asks for one.
fn encode_with_bos(model: &LoadedModel, text: &str) -> Result<Vec<u32>, ModelError> {
    // Refused before encoding: a text past what the context can hold would only cost the
    // tokenizer memory (a 200 MB question asked it for gigabytes).
    let context = model.decoder.config().max_position_embeddings;
    let limit = model.tokenizer.chars_for_tokens(context);
    if text.len() > limit && text.chars().nth(limit).is_some() {
        return Err(ModelError::PromptTooLong {
            chars: text.chars().count(),
            context,
        });
    }
    model.tokenizer.encode_with_bos(text)
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
