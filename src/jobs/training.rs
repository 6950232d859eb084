//! The training job: `train::run` on a named thread ("s1-train"); the last event is always
//! `Finished`.

use super::job::{Job, JobEvent};
use super::Notify;
use crate::train::{TrainEvent, TrainOutcome, TrainSettings};

/// A running (or finished) training job.
pub type TrainingJob = Job<TrainEvent>;

impl JobEvent for TrainEvent {
    fn failed(message: String) -> Self {
        TrainEvent::Finished(TrainOutcome::Failed(message))
    }
}

impl TrainingJob {
    /// Starts `settings` on its own thread.
    pub fn spawn(settings: TrainSettings, notify: Notify) -> std::io::Result<Self> {
        Job::run("s1-train", notify, move |cancel, emit| {
            crate::train::run(&settings, cancel, emit);
        })
    }
}
