//! The Train view's runtime state and logic: the training job, its step records as they arrive,
//! the run history (read from earlier runs' folders on a worker thread, never per frame), the
//! prompt that Start raises on a folder that already holds a run (resume, a new suffixed folder,
//! or replace after a second confirmation, the old run moved aside, never deleted), and
//! [`handle`] for the view's commands.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::background::{self, file_dialog_or, DialogKind};
use super::command::{AppCommand, ChatCommand, CommandSender, RunChoice, RunSummary, TrainCommand, View};
use crate::jobs::TrainingJob;
use crate::train::preview::DataPreview;
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

/// An earlier run as read once by the history thread.
pub struct PastRun {
    pub out: PathBuf,
    /// Its name (run.json, else the folder name); edited in place, saved when the field is left.
    pub name: String,
    pub losses: Vec<[f64; 2]>,
    /// The last step logged (or the newest checkpoint's step, when later).
    pub steps: usize,
    pub total_steps: usize,
    /// The newest checkpoint.
    pub checkpoint: Option<PathBuf>,
    /// Every complete checkpoint, by step.
    pub checkpoints: Vec<(usize, PathBuf)>,
    /// What could not be read (a malformed or cut-short log line, a missing log).
    pub notes: Vec<String>,
    /// Its curve is overlaid on the loss chart.
    pub shown: bool,
}

/// Start met an output folder that already holds a run: the view asks what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPrompt {
    /// The folder and the run it holds.
    pub out: PathBuf,
    pub existing: RunSummary,
    /// Where "Start in a new folder" would write.
    pub next_free: PathBuf,
    /// Replace was chosen: the second confirmation is showing.
    pub confirm_replace: bool,
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
    /// The existing-run prompt, while it is open.
    pub prompt: Option<RunPrompt>,
    /// The output folder is being checked or its old run moved aside: Start waits.
    pub checking: bool,
    /// Where the last replaced run was moved (shown, so the user can find it).
    pub replaced: Option<(PathBuf, PathBuf)>,
    /// The data preview and the settings it was made with (to tell when it is stale).
    pub preview: Option<(PreviewKey, Result<DataPreview, String>)>,
    /// A preview is being made.
    pub previewing: Option<PreviewKey>,
    /// The file dialog for this path could not open (said beside its field; cleared when the
    /// path is set).
    pub dialog_error: Option<(TrainPath, String)>,
    /// The path field to focus in the next frame (its dialog could not open).
    pub focus: Option<TrainPath>,
    /// Where the next run trains: here, or handed to torchrun, Ray, Slurm or SkyPilot.
    pub remote: super::train_export_ui::RemoteChoice,
    /// The base model's shape (for the memory estimate) and the path it was read from.
    pub model_config: Option<(PathBuf, Result<crate::model::ModelConfig, String>)>,
    /// A config is being read from this path.
    pub reading_config: Option<PathBuf>,
}

/// What a data preview depends on.
pub type PreviewKey = (PathBuf, PathBuf, usize, crate::train::mask::LossMask);

/// The form's preview key.
pub fn preview_key(s: &TrainSettings) -> PreviewKey {
    (s.model.clone(), s.data.clone(), s.block_size, s.loss_mask)
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
            prompt: None,
            checking: false,
            replaced: None,
            preview: None,
            previewing: None,
            dialog_error: None,
            focus: None,
            remote: Default::default(),
            model_config: None,
            reading_config: None,
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
    /// The Slurm login node over SSH (persisted).
    pub ssh: &'a super::train_export_ui::SshForm,
    pub tx: &'a CommandSender,
}

/// The form as settings for a run, or what is missing.
fn run_settings(form: &TrainSettings, resume: bool) -> Result<TrainSettings, String> {
    let mut s = form.clone();
    s.resume = resume;
    s.validate()?;
    for (what, p) in [
        ("base model", &s.model),
        ("training data", &s.data),
        ("output folder", &s.out),
    ] {
        if p.as_os_str().is_empty() {
            return Err(format!("choose the {what} first"));
        }
    }
    Ok(s)
}

/// Starts the training job on the form's settings (the output folder was checked, or this is a
/// resume).
fn start(
    state: &mut TrainState,
    form: &TrainSettings,
    login: &super::train_export_ui::SshForm,
    runs: &mut Vec<PathBuf>,
    tx: &CommandSender,
    resume: bool,
) {
    let s = match run_settings(form, resume) {
        Ok(s) => s,
        Err(e) => {
            state.status = TrainStatus::Failed(e);
            return;
        }
    };
    // The old job (finished) goes; its thread has ended.
    state.job = None;
    let spawned = match state.remote.target {
        None => TrainingJob::spawn(s.clone(), tx.notify()),
        Some(_) => {
            let (opts, spec) = super::train_export_ui::launch_parts(&state.remote, login, &s);
            TrainingJob::spawn_remote(s.clone(), opts, spec, tx.notify())
        }
    };
    match spawned {
        Ok(job) => {
            state.job = Some(job);
            state.status = TrainStatus::Running;
            if !resume {
                state.records.clear();
                state.last_checkpoint = None;
            }
            state.warnings.clear();
            remember_run(runs, s.out.clone());
            state.history_stale = true;
        }
        Err(e) => state.status = TrainStatus::Failed(format!("could not start the training thread: {e}")),
    }
}

/// Carries out a Train-view command.
pub fn handle(c: TrainCommand, cx: TrainCx<'_>) {
    let TrainCx {
        state,
        form,
        runs,
        ssh,
        tx,
    } = cx;
    let busy = state.is_running() || state.checking || state.prompt.is_some();
    match c {
        TrainCommand::Start { resume } => {
            if busy {
                return;
            }
            match run_settings(form, resume) {
                Err(e) => state.status = TrainStatus::Failed(e),
                Ok(_) if resume => start(state, form, ssh, runs, tx, true),
                // A fresh start never overwrites: the folder is checked first, off the UI thread.
                Ok(s) => {
                    state.checking = true;
                    background::check_run(tx, s.out);
                }
            }
        }
        TrainCommand::RunChecked {
            out,
            existing,
            next_free,
        } => {
            state.checking = false;
            if state.is_running() {
                return;
            }
            form.out = out.clone();
            match existing {
                None => start(state, form, ssh, runs, tx, false),
                Some(existing) => {
                    state.prompt = Some(RunPrompt {
                        out,
                        existing: *existing,
                        next_free,
                        confirm_replace: false,
                    })
                }
            }
        }
        TrainCommand::Choose(choice) => {
            let Some(p) = state.prompt.as_mut() else { return };
            match choice {
                RunChoice::Replace => p.confirm_replace = true,
                RunChoice::ConfirmReplace if !p.confirm_replace => {}
                RunChoice::ConfirmReplace => {
                    let out = p.out.clone();
                    state.prompt = None;
                    state.checking = true;
                    background::move_run_aside(tx, out);
                }
                RunChoice::Cancel => state.prompt = None,
                RunChoice::Resume => {
                    let can = !p.existing.checkpoints.is_empty();
                    if can {
                        form.out = p.out.clone();
                        state.prompt = None;
                        start(state, form, ssh, runs, tx, true);
                    }
                }
                RunChoice::NewFolder => {
                    form.out = p.next_free.clone();
                    state.prompt = None;
                    start(state, form, ssh, runs, tx, false);
                }
            }
        }
        TrainCommand::MovedAside(r) => {
            state.checking = false;
            match r {
                Ok(to) => {
                    // The old run stays in the history under its new folder.
                    let out = form.out.clone();
                    runs.retain(|p| p != &out);
                    remember_run(runs, to.clone());
                    state.replaced = Some((out, to));
                    start(state, form, ssh, runs, tx, false);
                }
                Err(e) => state.status = TrainStatus::Failed(e),
            }
        }
        TrainCommand::Stop => {
            if let Some(j) = &state.job {
                j.stop();
            }
        }
        TrainCommand::Attach => {
            if busy {
                return;
            }
            let (_, spec) = super::train_export_ui::launch_parts(&state.remote, ssh, form);
            state.job = None;
            match TrainingJob::spawn_attach(form.out.clone(), spec, tx.notify()) {
                Ok(job) => {
                    state.job = Some(job);
                    state.status = TrainStatus::Running;
                    state.records.clear();
                    state.last_checkpoint = None;
                    state.warnings.clear();
                    remember_run(runs, form.out.clone());
                    state.history_stale = true;
                }
                Err(e) => state.status = TrainStatus::Failed(format!("could not start the watching thread: {e}")),
            }
        }
        TrainCommand::QuickStart => super::first_run::prepare_finetune(tx),
        TrainCommand::QuickStartReady(r) => match *r {
            Ok(s) => {
                *form = s;
                tx.send(TrainCommand::Start { resume: false });
            }
            Err(e) => state.status = TrainStatus::Failed(e),
        },
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
            file_dialog_or(
                tx,
                title,
                kind,
                move |p| TrainCommand::SetPath(which, p).into(),
                move |msg| TrainCommand::DialogFailed(which, msg).into(),
            );
        }
        TrainCommand::DialogFailed(which, msg) => {
            state.dialog_error = Some((which, msg));
            state.focus = Some(which);
        }
        TrainCommand::SetPath(which, p) => {
            if state.dialog_error.as_ref().is_some_and(|(w, _)| *w == which) {
                state.dialog_error = None;
            }
            match which {
                TrainPath::Model => form.model = p,
                TrainPath::Data => form.data = p,
                TrainPath::Out => form.out = p,
            }
        }
        TrainCommand::Rename(out, name) => background::rename_run(tx, out, name),
        TrainCommand::HistoryStale => state.history_stale = true,
        TrainCommand::PreviewData => {
            if state.previewing.is_some() {
                return;
            }
            if form.model.as_os_str().is_empty() || form.data.as_os_str().is_empty() {
                let key = preview_key(form);
                state.preview = Some((key, Err("choose the base model and the training data first".into())));
                return;
            }
            state.previewing = Some(preview_key(form));
            background::preview_data(tx, form.clone());
        }
        TrainCommand::ReadModelConfig => {
            let path = form.model.clone();
            let known = state.model_config.as_ref().is_some_and(|(p, _)| *p == path);
            if path.as_os_str().is_empty() || known || state.reading_config.is_some() {
                return;
            }
            state.reading_config = Some(path.clone());
            background::read_model_config(tx, path);
        }
        TrainCommand::ModelConfigRead(path, r) => {
            state.reading_config = None;
            state.model_config = Some((path, *r));
        }
        TrainCommand::PreviewRead(r) => {
            if let Some(key) = state.previewing.take() {
                state.preview = Some((key, *r));
            }
        }
        TrainCommand::HistoryRead(read) => {
            state.history_reading = false;
            state.history = read
                .into_iter()
                .map(|r| PastRun {
                    shown: state.history.iter().any(|h| h.shown && h.out == r.out),
                    checkpoint: r.checkpoint().map(PathBuf::from),
                    out: r.out,
                    name: r.name,
                    losses: r.losses,
                    steps: r.steps,
                    total_steps: r.total_steps,
                    checkpoints: r.checkpoints,
                    notes: r.notes,
                })
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
            name: String::new(),
            losses: Vec::new(),
            steps: 0,
            total_steps: 0,
            checkpoint: None,
            checkpoints: Vec::new(),
            notes: Vec::new(),
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
                ssh: &Default::default(),
                tx: &tx,
            },
        );
        assert!(!t.history_reading && !t.history_stale);
        assert_eq!(t.history.len(), 1, "a folder without a run is left out");
        let h = &t.history[0];
        assert_eq!((h.losses.clone(), h.shown, h.steps), (vec![[1.0, 2.5]], true, 2));
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
