//! Evaluation: benchmarks (the question sets, bundled or a user's file), budget sweeps through the
//! engine's budget forcing, the s1 metrics (Control, Scaling, Performance) and the
//! test-time-scaling plot.

pub mod benchmarks;
pub mod metrics;
pub mod plot;
pub mod presets;
pub mod sweep;
