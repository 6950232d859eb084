//! Supervised fine-tuning with the s1 recipe (S1_RECIPE.md §2-3): data rendering and the loss
//! mask, the chunked head + cross-entropy, AdamW with warmup and cosine decay, gradient
//! accumulation and clipping, checkpoints, and the training loop that reports each step.

pub mod alloc;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod launch;
pub mod loss;
pub mod mask;
pub mod memory;
pub mod optim;
pub mod parity;
pub mod preview;
pub mod quickstart;
pub mod runs;
pub mod step;
pub mod trainer;

pub use config::{LoraSettings, TrainSettings};
pub use trainer::{run, StepRecord, TrainEvent, TrainOutcome};
