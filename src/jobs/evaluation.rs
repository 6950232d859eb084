//! The evaluation job: a sweep (`eval::sweep::run`) on a named thread ("s1-eval"), its samples
//! and progress over a bounded channel (the last event is always `Finished`), a cancel token for
//! Stop, and a notifier that wakes the UI.

use std::path::PathBuf;

use super::job::Job;
use super::{CancelToken, Notify};
use crate::eval::sweep::{self, Progress, Sample, SweepConfig};
use crate::eval::{benchmarks, metrics};
use crate::model::{load_model, DeviceChoice, LoadOptions};

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct EvalRequest {
    pub model: PathBuf,
    pub bench: String,
    pub config: SweepConfig,
    pub out: PathBuf,
    /// Where the model runs (opened on the job's thread).
    pub device: DeviceChoice,
}

#[derive(Debug, Clone)]
pub enum EvalEvent {
    /// The model and benchmark loaded; `earlier` are the samples a previous run left.
    Started {
        total: usize,
        earlier: Vec<Sample>,
    },
    Sample(Box<Sample>),
    Progress(Progress),
    /// The end: the metrics of every sample, or what went wrong.
    Finished(Result<metrics::SweepMetrics, String>),
}

/// A running (or finished) sweep.
pub type EvalJob = Job<EvalEvent>;

fn run(
    req: &EvalRequest,
    cancel: &CancelToken,
    send: &mut dyn FnMut(EvalEvent),
) -> Result<metrics::SweepMetrics, String> {
    let bench = benchmarks::load(&req.bench, None)?;
    let opts = LoadOptions {
        device: req.device.open().map_err(|e| format!("{e:#}"))?,
        ..LoadOptions::default()
    };
    let model = load_model(&req.model, &opts).map_err(|e| format!("{}: {e}", req.model.display()))?;
    let keys: Vec<String> = req.config.settings.iter().map(|s| s.key()).collect();
    let earlier: Vec<Sample> = sweep::read_samples(&req.out.join("samples.jsonl"))
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|s| keys.contains(&s.setting) && s.sample < req.config.samples)
        .collect();
    let mut started = false;
    let all = sweep::run(&model, &bench, &req.config, &req.out, cancel, &mut |p, s| {
        if !started {
            started = true;
            send(EvalEvent::Started {
                total: p.total,
                earlier: earlier.clone(),
            });
        }
        if let Some(s) = s {
            send(EvalEvent::Sample(Box::new(s.clone())));
        }
        send(EvalEvent::Progress(p));
    })?;
    Ok(metrics::compute(&all))
}

impl EvalJob {
    /// Starts the sweep `req` on its own thread ("s1-eval").
    pub fn spawn(req: EvalRequest, notify: Notify) -> std::io::Result<Self> {
        Job::run("s1-eval", notify, move |cancel, emit| {
            let r = run(&req, cancel, emit);
            emit(EvalEvent::Finished(r));
        })
    }
}
