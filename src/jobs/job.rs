//! A background job: work on a named thread, its events over a bounded channel, a cancel token
//! for Stop, and a notifier that wakes the UI after each event. The work's last event says how it
//! ended; should the work panic, the runner sends its failed event instead (with the panic's
//! message), so a view never waits on a job that is gone. Dropping the job cancels it and waits
//! for the thread (draining events so a blocked sender can finish).

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crossbeam_channel::{bounded, Receiver};

use super::{CancelToken, Notify};

/// The events of a job's protocol, which must be able to end it as failed: what the runner
/// sends when the work panics.
pub trait JobEvent: Send + 'static {
    /// The protocol's last event for a failure with `message`.
    fn failed(message: String) -> Self;
}

pub struct Job<E> {
    pub events: Receiver<E>,
    pub cancel: CancelToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<E: JobEvent> Job<E> {
    /// Runs `work` on a thread called `name`; each event it emits is queued (waiting when the UI
    /// is behind rather than dropping one) and `notify` is called. A panic in `work` ends the job
    /// with `E::failed` naming the job and the panic's message.
    pub fn run(
        name: &str,
        notify: Notify,
        work: impl FnOnce(&CancelToken, &mut dyn FnMut(E)) + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, rx) = bounded(1024);
        let cancel = CancelToken::new();
        let c = cancel.clone();
        let job = name.to_string();
        let thread = std::thread::Builder::new().name(name.into()).spawn(move || {
            let mut emit = |e| {
                // Nobody listens once the job was dropped: then the event has nowhere to go.
                let _ = tx.send(e);
                notify();
            };
            if let Err(message) = catch_crash(&job, || work(&c, &mut emit)) {
                emit(E::failed(message));
            }
        })?;
        Ok(Self {
            events: rx,
            cancel,
            thread: Some(thread),
        })
    }
}

/// Runs `f`; a panic inside it becomes the message a failed event carries ("`what` crashed: …").
/// The one place panics are caught: the job runner, and the long-lived workers per request.
/// Whatever `f` touched is dropped or reset by the caller after a panic, never used half-done,
/// hence `AssertUnwindSafe`.
pub fn catch_crash<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        format!(
            "{what} crashed: {} (this is a bug; please report it)",
            panic_message(payload.as_ref())
        )
    })
}

/// The text a panic was raised with (`panic!("...")` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".into()
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[derive(Debug, PartialEq)]
    enum Ev {
        Step(usize),
        Failed(String),
    }

    impl JobEvent for Ev {
        fn failed(message: String) -> Self {
            Ev::Failed(message)
        }
    }

    fn events(job: &Job<Ev>) -> Vec<Ev> {
        let mut out = Vec::new();
        while let Ok(e) = job.events.recv_timeout(Duration::from_secs(10)) {
            out.push(e);
        }
        out
    }

    /// A panicking job still ends with its failed event, naming the job and the panic, after
    /// what it sent before (without the runner's catch the thread just died: no last event).
    #[test]
    fn a_panic_ends_the_job_as_failed() {
        let job = Job::run("s1-test", Arc::new(|| {}), |_, emit| {
            emit(Ev::Step(1));
            panic!("step {} went wrong", 1);
        })
        .unwrap();
        let evs = events(&job);
        assert_eq!(evs.len(), 2, "{evs:?}");
        assert_eq!(evs[0], Ev::Step(1));
        let Ev::Failed(msg) = &evs[1] else { panic!("{evs:?}") };
        assert!(msg.starts_with("s1-test crashed: step 1 went wrong"), "{msg}");
        assert!(job.is_finished());
    }

    /// A `&'static str` payload reads as well as a formatted one; a job that ends normally gets
    /// no extra event.
    #[test]
    fn panic_payloads_and_normal_ends() {
        let job = Job::run("s1-test", Arc::new(|| {}), |_, _: &mut dyn FnMut(Ev)| panic!("plain")).unwrap();
        assert_eq!(
            events(&job),
            [Ev::Failed(
                "s1-test crashed: plain (this is a bug; please report it)".into()
            )]
        );
        let job = Job::run("s1-test", Arc::new(|| {}), |_, emit| emit(Ev::Step(7))).unwrap();
        assert_eq!(events(&job), [Ev::Step(7)]);
        assert_eq!(panic_message(&42_u8), "a panic without a message");
    }
}
