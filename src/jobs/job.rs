//! A background job: work on a named thread, its events over a bounded channel, a cancel token
//! for Stop, and a notifier that wakes the UI after each event. Dropping the job cancels it and
//! waits for the thread (draining events so a blocked sender can finish).

use crossbeam_channel::{bounded, Receiver};

use super::{CancelToken, Notify};

pub struct Job<E> {
    pub events: Receiver<E>,
    pub cancel: CancelToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<E: Send + 'static> Job<E> {
    /// Runs `work` on a thread called `name`; each event it emits is queued (waiting when the UI
    /// is behind rather than dropping one) and `notify` is called.
    pub fn run(
        name: &str,
        notify: Notify,
        work: impl FnOnce(&CancelToken, &mut dyn FnMut(E)) + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, rx) = bounded(1024);
        let cancel = CancelToken::new();
        let c = cancel.clone();
        let thread = std::thread::Builder::new().name(name.into()).spawn(move || {
            work(&c, &mut |e| {
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
}

impl<E> Job<E> {
    pub fn stop(&self) {
        self.cancel.cancel();
    }

    /// Whether the thread has ended (its events may still be queued).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl<E> Drop for Job<E> {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(t) = self.thread.take() {
            while !t.is_finished() {
                while self.events.try_recv().is_ok() {}
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let _ = t.join();
        }
    }
}
