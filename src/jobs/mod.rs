//! Long work off the UI thread: cancel tokens (and, with the app, worker threads and events).

mod cancel;

pub use cancel::CancelToken;
