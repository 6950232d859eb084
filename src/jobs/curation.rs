//! The curation job and the curation reader: both only run [`steps::run_to_end`] on a named
//! thread with their own connection to the workspace (events in the order [`CurateEvent`]
//! documents). The job runs one step at a time ("s1-curate"); the reader ("s1-curate-reader")
//! is a long-lived thread for what the view asks while a step may be running (the inspector's
//! question, Include/Exclude): WAL lets its reads proceed beside a step, and a write waits for
//! the step's transaction there, never on the UI thread.

use std::path::PathBuf;

use crossbeam_channel::{bounded, Sender, TrySendError};

use super::job::{catch_crash, Job, JobEvent};
use crate::curate::steps;
pub use crate::curate::steps::{CurateEvent, Report, Step};
use crate::workspace::Workspace;

pub type CurateJob = Job<CurateEvent>;

impl JobEvent for CurateEvent {
    fn failed(message: String) -> Self {
        CurateEvent::Finished(Err(message))
    }
}

/// Starts a step on the workspace in `dir`.
pub fn start(dir: PathBuf, step: Step, notify: super::Notify) -> std::io::Result<CurateJob> {
    Job::run("s1-curate", notify, move |cancel, send| match Workspace::open(&dir) {
        Ok(mut ws) => steps::run_to_end(Ok(&mut ws), &step, cancel, send),
        Err(e) => steps::run_to_end(Err(format!("{e:#}")), &step, cancel, send),
    })
}

/// Requests the reader may hold before [`CurateReader::send`] refuses one.
const READER_QUEUE: usize = 64;

/// The reader thread: quick steps (Inspect, Mark) on its own, kept connection, one after the
/// other, each ending in its `Finished` event.
pub struct CurateReader {
    // Dropped before `job`, so that the thread sees the end of the requests and the job's drop
    // can wait for it.
    requests: Sender<(PathBuf, Step)>,
    job: Job<CurateEvent>,
}

impl CurateReader {
    pub fn start(notify: super::Notify) -> std::io::Result<Self> {
        let (requests, rx) = bounded::<(PathBuf, Step)>(READER_QUEUE);
        let job = Job::run("s1-curate-reader", notify, move |cancel, send| {
            // The workspace open now, kept between requests (opening migrates, which writes).
            let mut open: Option<(PathBuf, Workspace)> = None;
            for (dir, step) in rx {
                if open.as_ref().is_none_or(|(d, _)| *d != dir) {
                    open = None;
                    match Workspace::open_existing(&dir) {
                        Ok(ws) => open = Some((dir, ws)),
                        Err(e) => {
                            steps::run_to_end(Err(format!("{e:#}")), &step, cancel, &mut *send);
                            continue;
                        }
                    }
                }
                if let Some((_, ws)) = open.as_mut() {
                    // A panic in one request fails that request (its Finished event) and the
                    // reader keeps serving, as the inference worker does; the connection is
                    // reopened in case the panic left it mid-transaction.
                    let what = format!("s1-curate-reader ({})", step.label());
                    let run = catch_crash(&what, || steps::run_to_end(Ok(ws), &step, cancel, &mut *send));
                    if let Err(message) = run {
                        open = None;
                        send(CurateEvent::failed(message));
                    }
                }
            }
        })?;
        Ok(Self { requests, job })
    }

    /// Queues `step` on the workspace in `dir`; an error when the thread is gone or too far
    /// behind.
    pub fn send(&self, dir: PathBuf, step: Step) -> Result<(), String> {
        self.requests.try_send((dir, step)).map_err(|e| match e {
            TrySendError::Full(_) => "the curation reader is busy; try again".to_string(),
            TrySendError::Disconnected(_) => "the curation reader stopped".to_string(),
        })
    }

    pub fn events(&self) -> &crossbeam_channel::Receiver<CurateEvent> {
        &self.job.events
    }
}
