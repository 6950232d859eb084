//! Short one-off work the UI thread must not do itself (a file dialog, creating the workspace
//! folder, reading past runs, listing devices), each on its own named thread. The result comes
//! back as a [`Command`] into the same channel as the views' commands, so it is handled in the
//! logic step like any click.

use std::path::PathBuf;
use std::time::{Duration, Instant};

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

/// A dialog that returned nothing sooner than this after it was asked for never opened: rfd's
/// portal backend (and its zenity fallback) give up at once where no desktop portal service
/// runs, as on a bare Xvfb desktop, and report that only to the log, exactly as a cancel looks.
/// No one answers a dialog that fast, so a quick "nothing" is taken as "could not open".
pub const DIALOG_OPENED_AT_LEAST: Duration = Duration::from_millis(700);

/// What the view says when its dialog could not open (it then focuses the path's field).
pub fn dialog_failed_message(title: &str) -> String {
    format!(
        "The file dialog ({title}) could not open on this desktop (no desktop portal service or \
         zenity): type the path in the field instead"
    )
}

/// A native file dialog on its own thread (it blocks until the user answers); `then` turns the
/// chosen path into the command to send. Cancelling sends nothing; a dialog that could not open
/// (see [`DIALOG_OPENED_AT_LEAST`]) puts [`dialog_failed_message`] in the status bar.
pub fn file_dialog(
    tx: &CommandSender,
    title: &'static str,
    kind: DialogKind,
    then: impl FnOnce(PathBuf) -> Command + Send + 'static,
) {
    file_dialog_or(tx, title, kind, then, |msg| AppCommand::Notice(msg).into());
}

/// [`file_dialog`], with `failed` turning the message of a dialog that could not open (or whose
/// thread could not start) into the command that tells the view, so the view can show it beside
/// the path's field and focus that field.
pub fn file_dialog_or(
    tx: &CommandSender,
    title: &'static str,
    kind: DialogKind,
    then: impl FnOnce(PathBuf) -> Command + Send + 'static,
    failed: impl FnOnce(String) -> Command + Send + 'static,
) {
    let failed = std::sync::Arc::new(std::sync::Mutex::new(Some(failed)));
    let on_thread = failed.clone();
    let started = spawn("s1-file-dialog", tx, move || {
        let asked = Instant::now();
        let d = rfd::FileDialog::new().set_title(title);
        let picked = match kind {
            DialogKind::Folder => d.pick_folder(),
            DialogKind::File(None) => d.pick_file(),
            DialogKind::File(Some((name, exts))) => d.add_filter(name, exts).pick_file(),
            DialogKind::Save => d.save_file(),
        };
        match picked {
            Some(p) => Some(then(p)),
            None if asked.elapsed() < DIALOG_OPENED_AT_LEAST => {
                take(&on_thread).map(|f| f(dialog_failed_message(title)))
            }
            None => None,
        }
    });
    if !started {
        if let Some(f) = take(&failed) {
            tx.send(f(format!(
                "could not start the file dialog's thread ({title}): type the path in the field instead"
            )));
        }
    }
}

/// The callback inside `slot`, once (a poisoned lock still hands it over).
fn take<T>(slot: &std::sync::Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
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

/// Expands the files and glob patterns typed (`data/*.jsonl, extra.parquet`) on a thread;
/// `then` gets the files found, in order and once each, and a line for each entry that named
/// no file. False when the thread could not be started.
pub fn resolve_paths(
    tx: &CommandSender,
    typed: String,
    then: impl FnOnce(Vec<PathBuf>, Vec<String>) -> Command + Send + 'static,
) -> bool {
    spawn("s1-resolve-paths", tx, move || {
        let (files, problems) = expand_paths(&typed);
        Some(then(files, problems))
    })
}

/// The files `typed` names: entries separated by commas, semicolons or new lines, each a path
/// or a glob pattern (`*`, `?`, `[..]`), relative ones from the working folder as on the
/// command line. Returns the files (each once, in order) and what is wrong with each entry
/// that named none: no such file, a folder, a pattern matching no file or not a pattern.
pub fn expand_paths(typed: &str) -> (Vec<PathBuf>, Vec<String>) {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut problems = Vec::new();
    let add = |p: PathBuf, files: &mut Vec<PathBuf>| {
        if !files.contains(&p) {
            files.push(p);
        }
    };
    for entry in typed.split([',', ';', '\n']).map(str::trim).filter(|e| !e.is_empty()) {
        if entry.contains(['*', '?', '[']) {
            match glob::glob(entry) {
                Err(e) => problems.push(format!("{entry}: not a valid pattern ({e})")),
                Ok(paths) => {
                    let found: Vec<PathBuf> = paths.filter_map(Result::ok).filter(|p| p.is_file()).collect();
                    if found.is_empty() {
                        problems.push(format!("{entry}: matched no file"));
                    }
                    for p in found {
                        add(p, &mut files);
                    }
                }
            }
        } else {
            let p = PathBuf::from(entry);
            if p.is_file() {
                add(p, &mut files);
            } else if p.is_dir() {
                problems.push(format!("{entry}: is a folder, not a file (try {entry}/*.jsonl)"));
            } else {
                problems.push(format!("{entry}: no such file"));
            }
        }
    }
    (files, problems)
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

/// Reads the shape of the training base model (its config.json) for the Train view's memory
/// estimate.
pub fn read_model_config(tx: &CommandSender, model: PathBuf) {
    let path = model.clone();
    let started = spawn("s1-train-config", tx, move || {
        let r = crate::model::ModelConfig::from_hf_file(&model.join("config.json")).map_err(|e| e.to_string());
        Some(TrainCommand::ModelConfigRead(model, Box::new(r)).into())
    });
    if !started {
        tx.send(TrainCommand::ModelConfigRead(
            path,
            Box::new(Err("could not start the config reader thread".into())),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paths and globs typed for an import: files in order and once each; every entry that
    /// names no file is said, with the entry.
    #[test]
    fn typed_paths_and_globs() {
        let d = tempfile::tempdir().unwrap();
        let p = |n: &str| d.path().join(n);
        for n in ["b.jsonl", "a.jsonl", "c.parquet"] {
            std::fs::write(p(n), "{}\n").unwrap();
        }
        std::fs::create_dir(p("sub.jsonl")).unwrap();
        let s = |n: &str| p(n).display().to_string();
        let typed = format!(
            "{}; {},{}\n{}, {}, {}, {}",
            s("*.jsonl"),
            s("c.parquet"),
            s("a.jsonl"),
            s("missing.jsonl"),
            s("sub.jsonl"),
            s("*.csv"),
            s("[")
        );
        let (files, problems) = expand_paths(&typed);
        assert_eq!(files, vec![p("a.jsonl"), p("b.jsonl"), p("c.parquet")]);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert_eq!(problems[0], format!("{}: no such file", s("missing.jsonl")));
        assert!(problems[1].starts_with(&format!("{}: is a folder", s("sub.jsonl"))));
        assert_eq!(problems[2], format!("{}: matched no file", s("*.csv")));
        assert!(problems[3].contains("not a valid pattern"), "{}", problems[3]);
        assert_eq!(expand_paths(" , ;\n"), (vec![], vec![]));
    }
}
