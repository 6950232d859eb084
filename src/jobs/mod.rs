//! Long work off the UI thread: the one job runner (named thread, bounded events, cancel token,
//! a panic becomes the job's Failed event), the inference worker, and the training, evaluation and
//! curation jobs. Each job only runs a core function (`train::run`, `eval::run`,
//! `curate::steps::run`) that the CLI calls directly; nothing here knows about egui (a UI passes
//! a `Notify` to be woken).

pub mod curation;
pub mod downloads;
pub mod evaluation;
pub mod inference;
pub mod job;
pub mod remote_training;
pub mod training;

pub use crate::cancel::CancelToken;
pub use crate::eval::{EvalEvent, EvalRequest};
pub use crate::generate::Delta;
pub use curation::{CurateEvent, CurateJob, CurateReader};
pub use downloads::{Download, DownloadEvent, DownloadJob};
pub use evaluation::EvalJob;
pub use inference::{InferenceEvent, InferenceHandle, InferenceRequest, ModelInfo, Notify};
pub use job::{Job, JobEvent};
pub use training::TrainingJob;
