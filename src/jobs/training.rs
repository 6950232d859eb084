//! The training job: `train::run` on a named thread ("s1-train"), its events over a bounded
//! channel (the last one is always `Finished`), a cancel token for Stop, and a notifier that
//! wakes the UI after each event.

use crossbeam_channel::{bounded, Receiver};

use super::{CancelToken, Notify};
use crate::train::{TrainEvent, TrainSettings};

/// A running (or finished) training job.
pub struct TrainingJob {
    pub events: Receiver<TrainEvent>,
    pub cancel: CancelToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TrainingJob {
    /// Starts `settings` on its own thread.
    pub fn spawn(settings: TrainSettings, notify: Notify) -> std::io::Result<Self> {
        let (tx, rx) = bounded(1024);
        let cancel = CancelToken::new();
        let c = cancel.clone();
        let thread = std::thread::Builder::new().name("s1-train".into()).spawn(move || {
            crate::train::run(&settings, &c, &mut |e| {
                // A full channel means the UI is behind: wait for it rather than drop a step.
                let _ = tx.send(e);
                notify();
            });
        })?;
        Ok(Self {
            events: rx,
            cancel,
            thread: Some(thread),
        })
    }

    pub fn stop(&self) {
        self.cancel.cancel();
    }

    /// Whether the thread has ended (its events may still be queued).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl Drop for TrainingJob {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(t) = self.thread.take() {
            // Drain so a blocked sender can finish, then wait for the last checkpoint write.
            while !t.is_finished() {
                while self.events.try_recv().is_ok() {}
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let _ = t.join();
        }
    }
}
