//! The evaluation job: a sweep (`eval::sweep::run`) on a named thread ("s1-eval"), its samples
//! and progress over a bounded channel (the last event is always `Finished`), a cancel token for
//! Stop, and a notifier that wakes the UI.

use std::path::PathBuf;

use crossbeam_channel::{bounded, Receiver};

use super::{CancelToken, Notify};
use crate::eval::sweep::{self, Progress, Sample, SweepConfig};
use crate::eval::{bench, metrics};
use crate::model::{load_model, LoadOptions};

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct EvalRequest {
    pub model: PathBuf,
    pub bench: String,
    pub config: SweepConfig,
    pub out: PathBuf,
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

pub struct EvalJob {
    pub events: Receiver<EvalEvent>,
    pub cancel: CancelToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn run(
    req: &EvalRequest,
    cancel: &CancelToken,
    send: &mut dyn FnMut(EvalEvent),
) -> Result<metrics::SweepMetrics, String> {
    let bench = bench::load(&req.bench, None)?;
    let model = load_model(&req.model, &LoadOptions::default()).map_err(|e| format!("{}: {e}", req.model.display()))?;
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
    pub fn spawn(req: EvalRequest, notify: Notify) -> std::io::Result<Self> {
        let (tx, rx) = bounded(1024);
        let cancel = CancelToken::new();
        let c = cancel.clone();
        let thread = std::thread::Builder::new().name("s1-eval".into()).spawn(move || {
            let mut send = |e| {
                let _ = tx.send(e);
                notify();
            };
            let r = run(&req, &c, &mut send);
            send(EvalEvent::Finished(r));
        })?;
        Ok(Self {
            events: rx,
            cancel,
            thread: Some(thread),
        })
    }

    pub fn stop(&self) {
        self.cancel.cancel();
    }

    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl Drop for EvalJob {
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
