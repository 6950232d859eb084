//! Evaluation: benchmarks (the question sets, bundled or a user's file), budget sweeps through the
//! engine's budget forcing, the s1 metrics (Control, Scaling, Performance), the test-time-scaling
//! plot, and one evaluation from request to metrics with its progress events.

pub mod benchmarks;
pub mod continuation;
pub mod endpoint;
pub mod events;
pub mod metrics;
pub mod plot;
pub mod presets;
pub mod remote;
pub mod remote_request;
pub mod remote_sweep;
pub mod run;
pub mod sweep;

pub use events::EvalEvent;
pub use run::{run, EvalRequest};
