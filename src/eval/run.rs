//! One evaluation from a request to its files, the one path both front-ends take (`s1-studio eval`
//! and the Evaluate view): the model opened on its device, the benchmark, the samples a previous
//! run left in the output folder, the sweep (`sweep::run`) reporting [`EvalEvent`]s, then
//! metrics.json and scaling.svg beside samples.jsonl. The caller chooses the thread (jobs runs it
//! on "s1-eval", the CLI on its main thread).

use std::path::{Path, PathBuf};

use candle_core::DType;

use super::events::EvalEvent;
use super::remote::{EvalEndpoint, RemoteModel};
use super::sweep::{self, Sample, SweepConfig};
use super::{benchmarks, metrics, plot, remote_sweep};
use crate::cancel::CancelToken;
use crate::grade::Kind;
use crate::model::{load_model, DeviceChoice, LoadOptions};

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct EvalRequest {
    pub model: PathBuf,
    /// A named benchmark or a JSONL file (`benchmarks::load`).
    pub bench: String,
    /// Grade as this kind (None: the benchmark's own).
    pub kind: Option<Kind>,
    pub config: SweepConfig,
    /// The output folder (samples.jsonl, resumable).
    pub out: PathBuf,
    /// Where the model runs (opened on the calling thread).
    pub device: DeviceChoice,
    /// None: the checkpoint's own (f32 on the CPU).
    pub dtype: Option<DType>,
    /// Generate through this OpenAI-compatible endpoint (s1's loop over `/completions`)
    /// instead of loading `model`; `device` and `dtype` are then unused.
    pub endpoint: Option<EvalEndpoint>,
}

impl EvalRequest {
    /// The model's name in metrics.json and on the plot: its path, or `MODEL @ URL`.
    pub fn model_name(&self) -> String {
        match &self.endpoint {
            Some(e) => format!("{} @ {}", e.model, e.client.base_url),
            None => self.model.display().to_string(),
        }
    }

    pub fn samples_path(&self) -> PathBuf {
        self.out.join("samples.jsonl")
    }
    pub fn metrics_path(&self) -> PathBuf {
        self.out.join("metrics.json")
    }
    pub fn plot_path(&self) -> PathBuf {
        self.out.join("scaling.svg")
    }
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
    if req.config.samples == 0 {
        return Err("samples must be at least 1".into());
    }
    if req.config.batch == 0 {
        return Err("batch must be at least 1".into());
    }
    let bench = benchmarks::load(&req.bench, req.kind)?;
    // The output folder before the model: a path that cannot be a folder is said at once, by
    // name, not after a long load.
    std::fs::create_dir_all(&req.out)
        .map_err(|e| format!("output folder {}: cannot create it ({e})", req.out.display()))?;
    let keys: Vec<String> = req.config.settings.iter().map(|s| s.key()).collect();
    let earlier: Vec<Sample> = sweep::read_samples(&req.out.join("samples.jsonl"))
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|s| keys.contains(&s.setting) && s.sample < req.config.samples)
        .collect();
    let mut started = false;
    let mut on_progress = |p: sweep::Progress, s: Option<&Sample>| {
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
    };
    let all = match &req.endpoint {
        Some(endpoint) => {
            if endpoint.concurrency == 0 {
                return Err("concurrency must be at least 1".into());
            }
            let remote = RemoteModel::open(endpoint)?;
            remote_sweep::run(&remote, &bench, &req.config, &req.out, cancel, &mut on_progress)?
        }
        None => {
            let opts = LoadOptions {
                device: req.device.open().map_err(|e| format!("{e:#}"))?,
                dtype: req.dtype,
                dequantize: false,
            };
            let model = load_model(&req.model, &opts).map_err(|e| format!("loading {}: {e}", req.model.display()))?;
            sweep::run(&model, &bench, &req.config, &req.out, cancel, &mut on_progress)?
        }
    };
    let m = metrics::compute(&all);
    if !all.is_empty() {
        write_outputs(req, &bench.name, &m)?;
    }
    Ok(m)
}

/// metrics.json (the metrics with the benchmark and model named) and scaling.svg.
fn write_outputs(req: &EvalRequest, bench: &str, m: &metrics::SweepMetrics) -> Result<(), String> {
    let write = |path: &Path, text: &str| std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()));
    let mut json = serde_json::to_value(m).map_err(|e| format!("metrics: {e}"))?;
    json["benchmark"] = serde_json::json!(bench);
    json["model"] = serde_json::json!(req.model_name());
    let text = serde_json::to_string_pretty(&json).map_err(|e| format!("metrics: {e}"))?;
    write(&req.metrics_path(), &text)?;
    let svg = plot::scaling_svg(m, &format!("{bench} — {}", req.model_name()));
    write(&req.plot_path(), &svg)
}
