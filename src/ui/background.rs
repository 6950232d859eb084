//! Short one-off work the UI thread must not do itself (a file dialog, creating the workspace
//! folder, reading past runs, listing devices), each on its own named thread. The result comes
//! back as a [`Command`] into the same channel as the views' commands, so it is handled in the
//! logic step like any click.

use std::path::PathBuf;

use super::command::{AppCommand, Command, CommandSender, TrainCommand};
use crate::train::runs;

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

/// Reads each run folder (name, loss curve, last step, checkpoints, notes on what could not be
/// read) on a thread; answers with `HistoryRead` (folders that hold no run are left out). False
/// when the thread could not be started.
pub fn read_history(tx: &CommandSender, runs: Vec<PathBuf>) -> bool {
    spawn("s1-run-history", tx, move || {
        let read = runs.iter().filter_map(|p| runs::read_run(p)).collect();
        Some(TrainCommand::HistoryRead(read).into())
    })
}

/// Checks off the UI thread whether `out` already holds a run before a fresh start; answers
/// with `RunChecked`.
pub fn check_run(tx: &CommandSender, out: PathBuf) {
    let started = spawn("s1-run-check", tx, move || {
        let existing = runs::read_run(&out).map(Box::new);
        let next_free = runs::next_free(&out);
        Some(
            TrainCommand::RunChecked {
                out,
                existing,
                next_free,
            }
            .into(),
        )
    });
    if !started {
        tx.send(AppCommand::Notice("could not start the run-check thread".into()));
    }
}

/// Moves the run in `out` aside (`<out>.replaced-<UTC time>`) off the UI thread; answers with
/// `MovedAside`.
pub fn move_run_aside(tx: &CommandSender, out: PathBuf) {
    let started = spawn("s1-run-aside", tx, move || {
        Some(TrainCommand::MovedAside(runs::move_aside(&out)).into())
    });
    if !started {
        tx.send(TrainCommand::MovedAside(Err(
            "could not start the thread that moves the run aside".into(),
        )));
    }
}

/// Writes a run's name off the UI thread, then has the history read again (a failure is a
/// notice naming the file).
pub fn rename_run(tx: &CommandSender, out: PathBuf, name: String) {
    spawn("s1-run-rename", tx, move || match runs::set_run_name(&out, &name) {
        Ok(()) => Some(TrainCommand::HistoryStale.into()),
        Err(e) => Some(AppCommand::Notice(format!("could not rename the run: {e}")).into()),
    });
}

/// Renders the training data for the Train view's preview on a thread; answers with
/// `PreviewRead`.
pub fn preview_data(tx: &CommandSender, settings: crate::train::TrainSettings) {
    let started = spawn("s1-train-preview", tx, move || {
        Some(TrainCommand::PreviewRead(Box::new(crate::train::preview::preview(&settings))).into())
    });
    if !started {
        tx.send(TrainCommand::PreviewRead(Box::new(Err(
            "could not start the preview thread".into(),
        ))));
    }
}
