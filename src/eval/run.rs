//! One evaluation from a request to its metrics, as the Evaluate view runs it: the model opened
//! on its device, the benchmark, the samples a previous run left in the output folder, then the
//! sweep (`sweep::run`) reporting [`EvalEvent`]s. The caller chooses the thread (jobs runs it
//! on "s1-eval").

use std::path::PathBuf;

use super::events::EvalEvent;
use super::sweep::{self, Sample, SweepConfig};
use super::{benchmarks, metrics};
use crate::cancel::CancelToken;
use crate::model::{load_model, DeviceChoice, LoadOptions};

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct EvalRequest {
    pub model: PathBuf,
    /// A named benchmark or a JSONL file (`bench::load`).
    pub bench: String,
    pub config: SweepConfig,
    /// The output folder (samples.jsonl, resumable).
    pub out: PathBuf,
    /// Where the model runs (opened on the calling thread).
    pub device: DeviceChoice,
}

/// Runs `req` to its end, reporting through `emit` in the order [`EvalEvent`] gives; the last
/// event is always `Finished`, whose result is also returned.
pub fn run(
    req: &EvalRequest,
    cancel: &CancelToken,
    emit: &mut dyn FnMut(EvalEvent),
) -> Result<metrics::SweepMetrics, String> {
    let result = sweep_all(req, cancel, emit);
    emit(EvalEvent::Finished(result.clone()));
    result
}

fn sweep_all(
    req: &EvalRequest,
    cancel: &CancelToken,
    emit: &mut dyn FnMut(EvalEvent),
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
            emit(EvalEvent::Started {
                total: p.total,
                earlier: earlier.clone(),
            });
        }
        if let Some(s) = s {
            emit(EvalEvent::Sample(Box::new(s.clone())));
        }
        emit(EvalEvent::Progress(p));
    })?;
    Ok(metrics::compute(&all))
}
