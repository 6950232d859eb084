//! Continuous batching: sequences join between decode steps (their prompt prefilled when they
//! are admitted), each with its own parameters and budget state, and leave when they finish,
//! are cancelled, or their reader is gone. Every step feeds one token to each sequence that
//! needs exactly one, through the decoder together, so the weights are read once for all of
//! them (the CPU batch step for f32 on the CPU, `Decoder::step_batch` on CUDA and in bf16/f16);
//! a sequence that must be fed several tokens (an injected "Wait", a forced end) is fed on its
//! own. Greedy results equal those of [`chat`](super::chat) for each sequence, whenever it was
//! admitted (on the CPU in f32 exactly; elsewhere up to the rounding of a matrix product over
//! several rows instead of one). The server's engine thread and [`chat_batch`] both drive one.

use candle_core::Tensor;

use super::budget::AnswerNow;
use super::codec::Codec;
use super::engine::{build_prompt, GenerateError, GenerateParams, Generation, Prompt};
use super::seq::{Next, SeqState};
use super::stream::Delta;
use crate::cancel::CancelToken;
use crate::model::{ChatMessage, Decoder, KvCache, LoadedModel, Logits};

/// A sequence's number in its scheduler, in order of admission.
pub type SeqId = u64;

/// What the owner of a sequence may do while it runs: cancel it, or end its thinking now.
/// Cloned by the scheduler and by whoever steers the sequence (an HTTP handler, the chat).
#[derive(Clone, Debug, Default)]
pub struct SeqControl {
    pub cancel: CancelToken,
    pub answer_now: AnswerNow,
}

/// What a sequence's sink receives, in order: deltas as they come, then exactly one of
/// `Finished` or `Failed` (none when the sink said it was gone, or when admission failed: then
/// [`Scheduler::admit`] returns the error).
#[derive(Debug)]
pub enum SeqEvent {
    Delta(Delta),
    Finished(Box<Generation>),
    /// A decode step failed; every sequence of the step gets this and is dropped.
    Failed(String),
}

/// A sink's answer: go on, or drop the sequence at the next step (its reader left).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkFlow {
    Continue,
    Gone,
}

/// Where a sequence's events go: a callback, usually sending into a channel.
pub type Sink<'s> = Box<dyn FnMut(SeqEvent) -> SinkFlow + 's>;

struct Active<'s> {
    state: SeqState,
    cache: KvCache,
    logits: Vec<f32>,
    control: SeqControl,
    sink: Sink<'s>,
    gone: bool,
    /// The one token this step feeds it in the batch.
    single: Option<u32>,
}

impl Active<'_> {
    fn send(&mut self, ev: SeqEvent) {
        if (self.sink)(ev) == SinkFlow::Gone {
            self.gone = true;
        }
    }
}

/// Sequences sharing decode steps over one loaded model.
pub struct Scheduler<'m, 's> {
    model: &'m LoadedModel,
    context: usize,
    capacity: usize,
    active: Vec<Active<'s>>,
    next_id: SeqId,
}

impl<'m, 's> Scheduler<'m, 's> {
    /// Room for `capacity` sequences at once (at least one), each within `context` positions
    /// (`None`, or more than the model supports: the model's own context length).
    pub fn new(model: &'m LoadedModel, capacity: usize, context: Option<usize>) -> Self {
        let max = model.decoder.config().max_position_embeddings;
        Self {
            model,
            context: context.map_or(max, |c| c.min(max)),
            capacity: capacity.max(1),
            active: Vec::new(),
            next_id: 0,
        }
    }

    /// The positions each sequence may use (prompt and output).
    pub fn context(&self) -> usize {
        self.context
    }

    /// Sequences running now.
    pub fn len(&self) -> usize {
        self.active.len()
    }

    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    /// Whether another sequence may be admitted now.
    pub fn has_room(&self) -> bool {
        self.active.len() < self.capacity
    }

    /// Renders `messages` with the chat template and admits them ([`Scheduler::admit`]).
    pub fn admit_chat(
        &mut self,
        messages: &[ChatMessage],
        params: &GenerateParams,
        control: SeqControl,
        sink: Sink<'s>,
    ) -> Result<SeqId, GenerateError> {
        let prompt = build_prompt(self.model, messages, &params.budget)?;
        self.admit(&prompt, params, control, sink)
    }

    /// Starts a sequence: checks its room, prefills its prompt (the other sequences wait for
    /// it) and joins it to the next step. Admitted past the capacity, it still runs: the
    /// capacity is for the caller to keep ([`Scheduler::has_room`]). On an error nothing was
    /// admitted and the sink has received no event.
    pub fn admit(
        &mut self,
        prompt: &Prompt,
        params: &GenerateParams,
        control: SeqControl,
        mut sink: Sink<'s>,
    ) -> Result<SeqId, GenerateError> {
        let tok = &self.model.tokenizer;
        let mut events = Vec::new();
        let (mut state, feed) = SeqState::start(
            0,
            self.context,
            tok,
            prompt,
            &tok.special.eos_ids,
            tok.max_token_id,
            params,
            &mut |ev| events.push(Delta::from(ev)),
        )?;
        let mut cache = self.model.decoder.new_cache();
        let logits = feed_one(&self.model.decoder, &mut cache, &feed)?;
        state.prefilled();
        let gone = events.into_iter().any(|d| sink(SeqEvent::Delta(d)) == SinkFlow::Gone);
        self.active.push(Active {
            state,
            cache,
            logits,
            control,
            sink,
            gone,
            single: None,
        });
        let id = self.next_id;
        self.next_id += 1;
        Ok(id)
    }

    /// One decode step for every running sequence: each samples its next token (or ends its
    /// thinking, when asked), streams its deltas and is fed; finished ones get their
    /// [`Generation`] and leave, as do those whose sink is gone. On a model error every
    /// running sequence gets [`SeqEvent::Failed`] and is dropped, and the error is returned.
    pub fn step(&mut self) -> Result<(), GenerateError> {
        match self.step_inner() {
            Ok(()) => Ok(()),
            Err(e) => {
                let msg = e.to_string();
                for mut a in self.active.drain(..) {
                    a.send(SeqEvent::Failed(msg.clone()));
                }
                Err(e)
            }
        }
    }

    fn step_inner(&mut self) -> Result<(), GenerateError> {
        let dec = &self.model.decoder;
        let codec: &dyn Codec = &self.model.tokenizer;
        let mut kept = Vec::with_capacity(self.active.len());
        for mut a in std::mem::take(&mut self.active) {
            if a.gone {
                continue;
            }
            let mut sink_gone = false;
            let next = {
                let sink = &mut a.sink;
                a.state.next(
                    &mut a.logits,
                    codec,
                    &a.control.cancel,
                    a.control.answer_now.is_requested(),
                    &mut |ev| {
                        if sink(SeqEvent::Delta(Delta::from(ev))) == SinkFlow::Gone {
                            sink_gone = true;
                        }
                    },
                )
            };
            a.gone |= sink_gone;
            match next {
                Next::Done(reason) => {
                    let mut events = Vec::new();
                    let gen = a.state.finish(reason, codec, &mut |ev| events.push(Delta::from(ev)));
                    let mut sink = a.sink;
                    for d in events {
                        if sink(SeqEvent::Delta(d)) == SinkFlow::Gone {
                            break;
                        }
                    }
                    sink(SeqEvent::Finished(Box::new(gen)));
                    continue;
                }
                Next::Feed { rewind, feed } => {
                    if rewind > 0 {
                        let len = a.cache.len();
                        a.cache.truncate(len.saturating_sub(rewind));
                    }
                    match feed.len() {
                        0 => {}
                        1 => a.single = Some(feed[0]),
                        _ => a.logits = feed_one(dec, &mut a.cache, &feed)?,
                    }
                }
            }
            kept.push(a);
        }
        self.active = kept;
        let tokens: Vec<u32> = self.active.iter().filter_map(|a| a.single).collect();
        if tokens.is_empty() {
            return Ok(());
        }
        let mut batch: Vec<&mut KvCache> = self
            .active
            .iter_mut()
            .filter(|a| a.single.is_some())
            .map(|a| &mut a.cache)
            .collect();
        if batch.len() > 1 && dec.can_step_cpu_batch(&batch) {
            let hidden = dec.step_cpu_batch(&tokens, &mut batch)?;
            let rows = dec.head_cpu_batch(&hidden)?;
            let fed = self.active.iter_mut().filter(|a| a.single.is_some());
            for (a, l) in fed.zip(rows) {
                a.logits = l;
                a.single = None;
            }
        } else if batch.len() > 1 && dec.can_step_batch() {
            let rows = dec.step_batch(&tokens, &mut batch)?;
            let fed = self.active.iter_mut().filter(|a| a.single.is_some());
            for (a, l) in fed.zip(rows) {
                a.logits = l;
                a.single = None;
            }
        } else {
            drop(batch);
            for a in &mut self.active {
                if let Some(t) = a.single.take() {
                    a.logits = feed_one(dec, &mut a.cache, &[t])?;
                }
            }
        }
        Ok(())
    }
}

/// Feeds `tokens` after the cache's end and returns the logits after the last of them.
fn feed_one(dec: &Decoder, cache: &mut KvCache, tokens: &[u32]) -> Result<Vec<f32>, GenerateError> {
    let ids = Tensor::new(tokens, dec.device())?.unsqueeze(0)?;
    Ok(dec
        .forward(&ids, Some(cache), Logits::Last)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

/// Several conversations generated at once, each with its own parameters and budget state,
/// through one [`Scheduler`] (all admitted first, then stepped to the end). Greedy results
/// equal those of [`chat`](super::chat) for each conversation.
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
    let results: std::cell::RefCell<Vec<Option<Generation>>> = std::cell::RefCell::new(vec![None; conversations.len()]);
    let mut sched = Scheduler::new(model, conversations.len(), None);
    for (i, (msgs, p)) in conversations.iter().zip(params).enumerate() {
        let control = SeqControl {
            cancel: cancel.clone(),
            answer_now: AnswerNow::new(),
        };
        let slots = &results;
        sched.admit_chat(
            msgs,
            p,
            control,
            Box::new(move |ev| {
                if let SeqEvent::Finished(g) = ev {
                    slots.borrow_mut()[i] = Some(*g);
                }
                SinkFlow::Continue
            }),
        )?;
    }
    while !sched.is_empty() {
        sched.step()?;
    }
    drop(sched);
    results
        .into_inner()
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| GenerateError::Candle(candle_core::Error::Msg("a sequence did not finish".into())))
}
