//! Generation: sampling, budget forcing, incremental detokenization and the generation loop.

pub mod budget;
pub mod budget_config;
pub mod codec;
pub mod conversation;
pub mod detok;
pub mod engine;
pub mod sampler;
pub mod scheduler;
mod seq;
pub mod stream;

pub use budget::{
    AnswerNow, BudgetConfig, BudgetError, BudgetEvent, BudgetForcer, Injection, InjectionKind, MaxThinking, PastMax,
    Phase, Step, StopReason, ThinkingFormat,
};
pub use codec::Codec;
pub use detok::IncrementalDecoder;
pub use engine::{
    build_prompt, chat, chat_steered, effective_budget, generate, generate_steered, ids_prompt, text_prompt,
    DecoderSession, GenerateError, GenerateParams, Generation, LanguageModel, Prompt,
};
pub use sampler::{Sampler, SamplingParams};
pub use scheduler::{chat_batch, Scheduler, SeqControl, SeqEvent, SeqId, Sink, SinkFlow};
pub use stream::{Delta, StreamEvent};
