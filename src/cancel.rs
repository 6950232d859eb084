//! The cancel token every layer polls: at the bottom, so that core modules need not import jobs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Called after every event a worker sends, so that a UI wakes up (the UI's `request_repaint`;
/// a no-op headless). Here, at the bottom, so that any layer's worker can take one.
pub type Notify = Arc<dyn Fn() + Send + Sync>;

/// A cloneable flag a job polls between steps; the UI's Stop button (or Ctrl-C) sets it.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
