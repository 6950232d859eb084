//! The app shell and what no view may do on the UI thread, driven through egui_kittest: the
//! workspace folder is created by a worker thread (its answer arrives as a command), and past
//! training runs are read once by the history thread, never by a frame.

mod common;

use std::time::Duration;

use common::gui::{app, harness, step_until};
use egui_kittest::kittest::Queryable;
use s1_studio::ui::settings::View;
use s1_studio::ui::{AppCommand, Settings};

#[test]
fn choosing_a_workspace_creates_the_folder_off_the_ui_thread() {
    let d = tempfile::tempdir().unwrap();
    let mut h = harness(app(Settings::default()));
    h.run();
    let ws = d.path().join("projects/s1/ws");
    h.state().command(AppCommand::SetWorkspace(ws.clone()));
    step_until(
        &mut h,
        Duration::from_secs(30),
        |_| {},
        |a| a.settings.workspace.is_some(),
    );
    assert!(ws.is_dir());
    h.run();
    h.get_by_label(&format!("Workspace: {}", ws.display()));
    // A file in the way: the top bar says why, beside the workspace field, and the workspace
    // stays as it was.
    std::fs::write(d.path().join("a-file"), "x").unwrap();
    let bad = d.path().join("a-file/ws");
    h.state().command(AppCommand::SetWorkspace(bad.clone()));
    step_until(&mut h, Duration::from_secs(30), |_| {}, |a| a.workspace_error.is_some());
    assert_eq!(h.state().settings.workspace.as_ref(), Some(&ws));
    h.run();
    h.get_by_label_contains(&format!("workspace {}", bad.display()));
}

/// Frames read nothing from disk: the run history (loss curves, each run's newest checkpoint)
/// is what the history thread read when the run list changed or a run ended. Before, every frame
/// listed each run's folder for its checkpoint, so a checkpoint removed meanwhile vanished from
/// the list at once.
#[test]
fn past_runs_are_read_once_not_every_frame() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    std::fs::create_dir_all(run.join("checkpoint-3")).unwrap();
    std::fs::write(run.join("checkpoint-3/trainer_state.json"), "{}").unwrap();
    let line = serde_json::json!({
        "step": 3, "total_steps": 3, "loss": 1.25, "lr": 1e-5, "grad_norm": 1.0, "epoch": 1.0,
        "tokens_per_s": 10.0, "elapsed": 1.0, "remaining": 0.0
    });
    std::fs::write(run.join("trainer_log.jsonl"), format!("{line}\n")).unwrap();
    let s = Settings {
        view: View::Train,
        train_runs: vec![run.clone()],
        ..Default::default()
    };
    let mut h = harness(app(s));
    step_until(&mut h, Duration::from_secs(30), |_| {}, |a| a.train.history.len() == 1);
    h.run();
    h.get_by_label("Run history (1)").click();
    h.run();
    h.get_by_label_contains("3 steps/3, last loss 1.2500");
    let chat_buttons =
        |h: &egui_kittest::Harness<'static, s1_studio::ui::StudioApp>| h.query_all_by_label("checkpoint-3").count();
    assert_eq!(chat_buttons(&h), 1, "the run's checkpoint (opens in Chat)");
    std::fs::remove_dir_all(run.join("checkpoint-3")).unwrap();
    for _ in 0..5 {
        h.step();
    }
    h.run();
    assert_eq!(chat_buttons(&h), 1, "a frame looked at the run folder again");
}
