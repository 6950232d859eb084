//! Short one-off work the UI thread must not do itself (a file dialog, creating the workspace
//! folder, reading past runs, listing devices), each on its own named thread. The result comes
//! back as a [`Command`] into the same channel as the views' commands, so it is handled in the
//! logic step like any click.

use std::path::{Path, PathBuf};

use super::command::{AppCommand, Command, CommandSender, RunSummary, TrainCommand};
use crate::train::StepRecord;

/// Runs `work` on a thread called `name` and sends what it returns. False when the thread could
/// not be started.
pub fn spawn(name: &str, tx: &CommandSender, work: impl FnOnce() -> Option<Command> + Send + 'static) -> bool {
    let tx = tx.clone();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            if let Some(c) = work() {
                tx.send_blocking(c);
            }
        })
        .is_ok()
}

/// What a file dialog asks for.
#[derive(Debug, Clone, Copy)]
pub enum DialogKind {
    Folder,
    /// A file, with a filter (its name and extensions) when given.
    File(Option<(&'static str, &'static [&'static str])>),
    /// A path to save to.
    Save,
}

/// A native file dialog on its own thread (it blocks until the user answers); `then` turns the
/// chosen path into the command to send. Cancelling sends nothing.
pub fn file_dialog(
    tx: &CommandSender,
    title: &'static str,
    kind: DialogKind,
    then: impl FnOnce(PathBuf) -> Command + Send + 'static,
) {
    let started = spawn("s1-file-dialog", tx, move || {
        let d = rfd::FileDialog::new().set_title(title);
        let picked = match kind {
            DialogKind::Folder => d.pick_folder(),
            DialogKind::File(None) => d.pick_file(),
            DialogKind::File(Some((name, exts))) => d.add_filter(name, exts).pick_file(),
            DialogKind::Save => d.save_file(),
        };
        picked.map(then)
    });
    if !started {
        tx.send(AppCommand::Notice(
            "could not open a file dialog; paste the path instead".into(),
        ));
    }
}

/// Creates the workspace folder off the UI thread; answers with `WorkspaceReady`.
pub fn make_workspace(tx: &CommandSender, dir: PathBuf) {
    let started = spawn("s1-workspace-dir", tx, move || {
        let r = std::fs::create_dir_all(&dir)
            .map(|()| dir.clone())
            .map_err(|e| format!("workspace {}: {e}", dir.display()));
        Some(AppCommand::WorkspaceReady(r).into())
    });
    if !started {
        tx.send(AppCommand::Notice("could not start the workspace thread".into()));
    }
}

/// Lists the devices this build can use (the CUDA driver is queried) once, off the UI thread.
pub fn list_devices(tx: &CommandSender) {
    spawn("s1-devices", tx, || {
        Some(AppCommand::Devices(crate::model::device::available_devices()).into())
    });
}

/// Reads each run folder's loss curve and newest checkpoint on a thread; answers with
/// `HistoryRead` (runs without a trainer_log.jsonl are left out). False when the thread could
/// not be started.
pub fn read_history(tx: &CommandSender, runs: Vec<PathBuf>) -> bool {
    spawn("s1-run-history", tx, move || {
        let read = runs
            .into_iter()
            .filter(|p| p.join("trainer_log.jsonl").exists())
            .map(|out| RunSummary {
                losses: read_losses(&out),
                checkpoint: crate::train::checkpoint::latest_checkpoint(&out).map(|(_, dir)| dir),
                out,
            })
            .collect();
        Some(TrainCommand::HistoryRead(read).into())
    })
}

/// The losses of a run folder's trainer_log.jsonl (`[step, loss]`); unreadable lines are skipped.
pub fn read_losses(out: &Path) -> Vec<[f64; 2]> {
    std::fs::read_to_string(out.join("trainer_log.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<StepRecord>(l).ok())
        .map(|r| [r.step as f64, r.loss])
        .collect()
}
