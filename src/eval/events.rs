//! What an evaluation reports as it goes (the protocol the Evaluate view and the jobs follow).

use super::metrics::SweepMetrics;
use super::sweep::{Progress, Sample};

/// An evaluation's progress. Order: `Started` once (when the sweep knows its size), then
/// `Sample` and `Progress` as each sample finishes (a `Progress` follows every `Sample`), and
/// `Finished` last, always: after the whole sweep, after a Stop (with the metrics of what
/// finished), or in place of everything else when the model, the benchmark or the output folder
/// cannot be read (then it may be the only event).
#[derive(Debug, Clone)]
pub enum EvalEvent {
    /// The model and benchmark loaded; `total` samples in the sweep, of which `earlier` are the
    /// ones a previous run left in samples.jsonl.
    Started {
        total: usize,
        earlier: Vec<Sample>,
    },
    /// One sample, graded.
    Sample(Box<Sample>),
    Progress(Progress),
    /// The end: the metrics of every sample of the sweep, or what went wrong.
    Finished(Result<SweepMetrics, String>),
}
