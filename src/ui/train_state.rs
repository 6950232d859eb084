//! The Train view's runtime state and logic: the training job, its step records as they arrive,
//! the run history (read from earlier runs' folders on a worker thread, never per frame), and
//! [`handle`] for the view's commands.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::background::{self, file_dialog, DialogKind};
use super::command::{AppCommand, ChatCommand, CommandSender, RunSummary, TrainCommand, View};
use crate::jobs::TrainingJob;
use crate::train::{StepRecord, TrainEvent, TrainOutcome, TrainSettings};

pub use super::command::TrainPath;

/// Where the current (or last) run stands.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainStatus {
    Idle,
    Running,
    Done { checkpoint: PathBuf },
    Stopped { checkpoint: Option<PathBuf>, step: usize },
    Failed(String),
}

/// An earlier run's loss curve and newest checkpoint, as read once by the history thread.
pub struct PastRun {
    pub out: PathBuf,
    pub losses: Vec<[f64; 2]>,
    pub checkpoint: Option<PathBuf>,
    /// Its curve is overlaid on the loss chart.
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
    /// The run list changed or a run ended since the history was read.
    pub history_stale: bool,
    /// A history thread is reading.
    pub history_reading: bool,
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
            history_stale: true,
            history_reading: false,
        }
    }
}

impl TrainState {
    pub fn is_running(&self) -> bool {
        self.status == TrainStatus::Running
    }
}

/// Runs remembered at most.
pub const RUNS_MAX: usize = 20;

/// Appends `out` to the run list (oldest first), once.
pub fn remember_run(runs: &mut Vec<PathBuf>, out: PathBuf) {
    runs.retain(|p| p != &out);
    runs.push(out);
    let n = runs.len();
    if n > RUNS_MAX {
        runs.drain(..n - RUNS_MAX);
    }
}

/// The logic step: applies training events until none is left or `budget` has passed, then
/// starts reading the run history when it is stale.
pub fn update(t: &mut TrainState, runs: &[PathBuf], tx: &CommandSender, budget: Duration) {
    let start = Instant::now();
    while start.elapsed() < budget {
        let Some(job) = &t.job else { break };
        let Ok(ev) = job.events.try_recv() else { break };
        apply_event(t, ev);
    }
    if t.history_stale && !t.history_reading {
        t.history_stale = false;
        t.history_reading = background::read_history(tx, runs.to_vec());
    }
}

fn apply_event(t: &mut TrainState, ev: TrainEvent) {
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
            t.history_stale = true;
        }
    }
}

/// What the train logic reads and changes.
pub struct TrainCx<'a> {
    pub state: &'a mut TrainState,
    pub form: &'a mut TrainSettings,
    /// Output folders of runs started here (persisted).
    pub runs: &'a mut Vec<PathBuf>,
    pub tx: &'a CommandSender,
}

/// Carries out a Train-view command.
pub fn handle(c: TrainCommand, cx: TrainCx<'_>) {
    let TrainCx { state, form, runs, tx } = cx;
    match c {
        TrainCommand::Start { resume } => {
            if state.is_running() {
                return;
            }
            let mut s = form.clone();
            s.resume = resume;
            if let Err(e) = s.validate() {
                state.status = TrainStatus::Failed(e);
                return;
            }
            for (what, p) in [
                ("base model", &s.model),
                ("training data", &s.data),
                ("output folder", &s.out),
            ] {
                if p.as_os_str().is_empty() {
                    state.status = TrainStatus::Failed(format!("choose the {what} first"));
                    return;
                }
            }
            // The old job (finished) goes; its thread has ended.
            state.job = None;
            match TrainingJob::spawn(s.clone(), tx.notify()) {
                Ok(job) => {
                    state.job = Some(job);
                    state.status = TrainStatus::Running;
                    if !resume {
                        state.records.clear();
                    }
                    state.warnings.clear();
                    remember_run(runs, s.out.clone());
                    state.history_stale = true;
                }
                Err(e) => state.status = TrainStatus::Failed(format!("could not start the training thread: {e}")),
            }
        }
        TrainCommand::Stop => {
            if let Some(j) = &state.job {
                j.stop();
            }
        }
        TrainCommand::ChatWithCheckpoint(p) => {
            tx.send(AppCommand::SetView(View::Chat));
            tx.send(ChatCommand::OpenModel(p));
        }
        TrainCommand::PickPath(which) => {
            let (title, kind) = match which {
                TrainPath::Model => ("Base model folder", DialogKind::Folder),
                TrainPath::Data => (
                    "Training data (s1K schema)",
                    DialogKind::File(Some(("s1K rows", &["jsonl", "json", "parquet"]))),
                ),
                TrainPath::Out => ("Output folder", DialogKind::Folder),
            };
            file_dialog(tx, title, kind, move |p| TrainCommand::SetPath(which, p).into());
        }
        TrainCommand::SetPath(which, p) => match which {
            TrainPath::Model => form.model = p,
            TrainPath::Data => form.data = p,
            TrainPath::Out => form.out = p,
        },
        TrainCommand::HistoryRead(read) => {
            state.history_reading = false;
            state.history = read
                .into_iter()
                .map(
                    |RunSummary {
                         out,
                         losses,
                         checkpoint,
                     }| PastRun {
                        shown: state.history.iter().any(|r| r.shown && r.out == out),
                        out,
                        losses,
                        checkpoint,
                    },
                )
                .collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::command::Command;

    /// A stale history starts one read, not one per frame; the answer replaces the list and keeps
    /// which curves were shown; a run ending makes it stale again.
    #[test]
    fn history_is_read_once_per_change() {
        let (tx, rx) = CommandSender::channel(std::sync::Arc::new(|| {}));
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir_all(run.join("checkpoint-2")).unwrap();
        std::fs::write(run.join("checkpoint-2/trainer_state.json"), "{}").unwrap();
        std::fs::write(
            run.join("trainer_log.jsonl"),
            "{\"step\":1,\"total_steps\":2,\"loss\":2.5,\"lr\":0.1,\"grad_norm\":1.0,\"epoch\":0.5,\"tokens_per_s\":1.0,\"elapsed\":1.0,\"remaining\":1.0}\n",
        )
        .unwrap();
        let runs = vec![run.clone(), dir.path().join("gone")];
        let mut t = TrainState::default();
        for _ in 0..5 {
            update(&mut t, &runs, &tx, Duration::from_millis(1));
        }
        let read = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Command::Train(c @ TrainCommand::HistoryRead(_))) => c,
            other => panic!("{other:?}"),
        };
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "read more than once"
        );
        t.history.push(PastRun {
            out: run.clone(),
            losses: Vec::new(),
            checkpoint: None,
            shown: true,
        });
        let mut form = TrainSettings::default();
        let mut list = runs.clone();
        handle(
            read,
            TrainCx {
                state: &mut t,
                form: &mut form,
                runs: &mut list,
                tx: &tx,
            },
        );
        assert!(!t.history_reading && !t.history_stale);
        assert_eq!(t.history.len(), 1, "a folder without trainer_log.jsonl is left out");
        let h = &t.history[0];
        assert_eq!((h.losses.clone(), h.shown), (vec![[1.0, 2.5]], true));
        assert_eq!(h.checkpoint.as_deref(), Some(run.join("checkpoint-2").as_path()));
        update(&mut t, &runs, &tx, Duration::from_millis(1));
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        apply_event(&mut t, TrainEvent::Finished(TrainOutcome::Failed("x".into())));
        update(&mut t, &runs, &tx, Duration::from_millis(1));
        assert!(matches!(
            rx.recv_timeout(Duration::from_secs(10)),
            Ok(Command::Train(TrainCommand::HistoryRead(_)))
        ));
    }
}
