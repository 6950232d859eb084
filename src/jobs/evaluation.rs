//! The evaluation job: `eval::run` on a named thread ("s1-eval"), its events (`EvalEvent`, the
//! last always `Finished`) over the job's bounded channel, a cancel token for Stop, and a
//! notifier that wakes the UI.

use super::job::{Job, JobEvent};
use super::Notify;
use crate::eval::{EvalEvent, EvalRequest};

/// A running (or finished) sweep.
pub type EvalJob = Job<EvalEvent>;

impl JobEvent for EvalEvent {
    fn failed(message: String) -> Self {
        EvalEvent::Finished(Err(message))
    }
}

impl EvalJob {
    /// Starts the sweep `req` on its own thread ("s1-eval").
    pub fn spawn(req: EvalRequest, notify: Notify) -> std::io::Result<Self> {
        Job::run("s1-eval", notify, move |cancel, emit| {
            // The result also arrived as the last event.
            let _ = crate::eval::run(&req, cancel, emit);
        })
    }
}
