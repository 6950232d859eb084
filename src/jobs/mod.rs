//! Long work off the UI thread: cancel tokens, the inference worker, the training and evaluation jobs. The same jobs drive the
//! CLI and the GUI; nothing here knows about egui (a UI passes a `Notify` to be woken).

pub mod curation;
pub mod evaluation;
pub mod inference;
pub mod job;
pub mod training;

pub use crate::cancel::CancelToken;
pub use crate::eval::{EvalEvent, EvalRequest};
pub use crate::generate::Delta;
pub use curation::{CurateEvent, CurateJob, CurateReader};
pub use evaluation::EvalJob;
pub use inference::{InferenceEvent, InferenceHandle, InferenceRequest, ModelInfo, Notify};
pub use job::{Job, JobEvent};
pub use training::TrainingJob;
