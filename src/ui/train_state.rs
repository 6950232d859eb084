//! The Train view's runtime state and commands: the training job, its step records as they
//! arrive, the run history read from earlier runs' trainer_log.jsonl, and the pickers.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::app::{Command, StudioApp};
use crate::jobs::TrainingJob;
use crate::train::{StepRecord, TrainEvent, TrainOutcome};

/// Which path a picker fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainPath {
    Model,
    Data,
    Out,
}

/// Where the current (or last) run stands.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainStatus {
    Idle,
    Running,
    Done { checkpoint: PathBuf },
    Stopped { checkpoint: Option<PathBuf>, step: usize },
    Failed(String),
}

/// An earlier run's loss curve.
pub struct PastRun {
    pub out: PathBuf,
    pub losses: Vec<[f64; 2]>,
    pub shown: bool,
}

/// Runtime state of the Train view (not persisted; the form is in `Settings::train`).
pub struct TrainState {
    pub job: Option<TrainingJob>,
    pub status: TrainStatus,
    pub records: Vec<StepRecord>,
    pub total_steps: usize,
    pub examples: usize,
    pub warnings: Vec<String>,
    pub last_checkpoint: Option<PathBuf>,
    pub history: Vec<PastRun>,
    pub history_loaded: bool,
}

impl Default for TrainState {
    fn default() -> Self {
        Self {
            job: None,
            status: TrainStatus::Idle,
            records: Vec::new(),
            total_steps: 0,
            examples: 0,
            warnings: Vec::new(),
            last_checkpoint: None,
            history: Vec::new(),
            history_loaded: false,
        }
    }
}

impl TrainState {
    pub fn is_running(&self) -> bool {
        self.status == TrainStatus::Running
    }
}

/// The losses of a run folder's trainer_log.jsonl (`[step, loss]`).
pub fn read_losses(out: &Path) -> Vec<[f64; 2]> {
    std::fs::read_to_string(out.join("trainer_log.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<StepRecord>(l).ok())
        .map(|r| [r.step as f64, r.loss])
        .collect()
}

impl StudioApp {
    /// Applies training events until none is left or `budget` has passed.
    pub(super) fn drain_training(&mut self, budget: Duration) {
        let start = Instant::now();
        while start.elapsed() < budget {
            let Some(job) = &self.train.job else { return };
            let Ok(ev) = job.events.try_recv() else { return };
            self.apply_train_event(ev);
        }
    }

    fn apply_train_event(&mut self, ev: TrainEvent) {
        let t = &mut self.train;
        match ev {
            TrainEvent::Started {
                examples, total_steps, ..
            } => {
                t.examples = examples;
                t.total_steps = total_steps;
            }
            TrainEvent::Warning(w) => t.warnings.push(w),
            TrainEvent::Step(r) => {
                // A resumed run logs its steps again from the checkpoint on.
                t.records.retain(|old| old.step < r.step);
                t.records.push(r);
            }
            TrainEvent::Checkpoint { path, .. } => t.last_checkpoint = Some(path),
            TrainEvent::Finished(outcome) => {
                t.status = match outcome {
                    TrainOutcome::Done { final_checkpoint, .. } => {
                        t.last_checkpoint = Some(final_checkpoint.clone());
                        TrainStatus::Done {
                            checkpoint: final_checkpoint,
                        }
                    }
                    TrainOutcome::Stopped { last_checkpoint, step } => TrainStatus::Stopped {
                        checkpoint: last_checkpoint,
                        step,
                    },
                    TrainOutcome::Failed(e) => TrainStatus::Failed(e),
                };
                t.history_loaded = false;
            }
        }
    }

    pub(super) fn load_history(&mut self) {
        if self.train.history_loaded {
            return;
        }
        let shown: Vec<PathBuf> = self
            .train
            .history
            .iter()
            .filter(|r| r.shown)
            .map(|r| r.out.clone())
            .collect();
        self.train.history = self
            .settings
            .train_runs
            .iter()
            .filter(|p| p.join("trainer_log.jsonl").exists())
            .map(|p| PastRun {
                out: p.clone(),
                losses: read_losses(p),
                shown: shown.contains(p),
            })
            .collect();
        self.train.history_loaded = true;
    }

    /// Carries out a Train-view command.
    pub(super) fn handle_train_command(&mut self, c: Command) {
        match c {
            Command::StartTraining { resume } => {
                if self.train.is_running() {
                    return;
                }
                let mut s = self.settings.train.clone();
                s.resume = resume;
                if let Err(e) = s.validate() {
                    self.train.status = TrainStatus::Failed(e);
                    return;
                }
                for (what, p) in [
                    ("base model", &s.model),
                    ("training data", &s.data),
                    ("output folder", &s.out),
                ] {
                    if p.as_os_str().is_empty() {
                        self.train.status = TrainStatus::Failed(format!("choose the {what} first"));
                        return;
                    }
                }
                // The old job (finished) goes; its thread has ended.
                self.train.job = None;
                match TrainingJob::spawn(s.clone(), self.notify.clone()) {
                    Ok(job) => {
                        self.train.job = Some(job);
                        self.train.status = TrainStatus::Running;
                        if !resume {
                            self.train.records.clear();
                        }
                        self.train.warnings.clear();
                        self.settings.remember_run(s.out.clone());
                        self.train.history_loaded = false;
                    }
                    Err(e) => {
                        self.train.status = TrainStatus::Failed(format!("could not start the training thread: {e}"))
                    }
                }
            }
            Command::StopTraining => {
                if let Some(j) = &self.train.job {
                    j.stop();
                }
            }
            Command::ChatWithCheckpoint(p) => {
                self.command(Command::SetView(super::settings::View::Chat));
                self.command(Command::OpenModel(p));
            }
            Command::SetTrainPath(which, p) => match which {
                TrainPath::Model => self.settings.train.model = p,
                TrainPath::Data => self.settings.train.data = p,
                TrainPath::Out => self.settings.train.out = p,
            },
            _ => {}
        }
    }
}
