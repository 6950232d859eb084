//! The app shell and what no view may do on the UI thread, driven through egui_kittest: the
//! workspace folder is created by a worker thread (its answer arrives as a command), past
//! training runs are read once by the history thread, never by a frame; the theme switch, the
//! footer's RAM, the views' shortcuts and the running jobs' dots on the tabs.

use crate::common;

use std::time::Duration;

use common::gui::{app, harness, step_until};
use egui::accesskit::Role;
use egui::{Key, Modifiers};
use egui_kittest::kittest::Queryable;
use s1_studio::model::device::DeviceChoice;
use s1_studio::ui::settings::{Theme, View};
use s1_studio::ui::{AppCommand, Settings, StudioApp};

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

/// eframe's storage, in memory: what `save` writes, `load_settings` reads back.
#[derive(Default)]
struct MemoryStorage(std::collections::HashMap<String, String>);

impl eframe::Storage for MemoryStorage {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.into(), value);
    }
    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }
    fn flush(&mut self) {}
}

fn dark(h: &egui_kittest::Harness<'static, s1_studio::ui::StudioApp>) -> bool {
    h.ctx.global_style().visuals.dark_mode
}

/// Opens the footer's theme menu and picks `choice`.
fn pick_theme(h: &mut egui_kittest::Harness<'static, StudioApp>, choice: &str) {
    h.get_by_role_and_label(Role::ComboBox, "Theme").click();
    h.run();
    h.get_by_label(choice).click();
    h.run();
}

/// The theme switch changes egui's visuals at once, is saved with the settings, and a studio
/// started from the saved settings opens in it.
#[test]
fn the_theme_switch_changes_the_visuals_and_persists() {
    use eframe::App;
    let mut h = harness(app(Settings::default()));
    h.run();
    assert!(dark(&h), "no desktop preference: dark, egui's fallback");
    pick_theme(&mut h, "Light");
    assert_eq!(h.state().settings.theme, Theme::Light);
    assert!(!dark(&h), "the click did not switch egui to light visuals");
    let mut storage = MemoryStorage::default();
    h.state_mut().save(&mut storage);
    let restored = StudioApp::load_settings(Some(&storage));
    assert_eq!(restored.theme, Theme::Light);
    let mut h2 = harness(app(restored));
    h2.run();
    assert!(!dark(&h2), "the saved theme was not applied at start");
    pick_theme(&mut h2, "Dark");
    assert!(dark(&h2));
    pick_theme(&mut h2, "Follow system");
    assert_eq!(h2.state().settings.theme, Theme::System);
}

/// The footer reads the machine on its own thread: RAM (the app's and the system's) once the
/// first sample is in; without a CUDA device, "No GPU" (why is in its tooltip), never an error.
#[test]
fn the_footer_shows_the_ram() {
    let mut h = harness(app(Settings::default()));
    step_until(
        &mut h,
        Duration::from_secs(30),
        |_| {},
        |a| !a.devices.is_empty() && a.system.failed.is_none(),
    );
    let start = std::time::Instant::now();
    while h.query_by_label_contains("RAM: app ").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no RAM reading in the footer"
        );
        std::thread::sleep(Duration::from_millis(50));
        h.run();
    }
    h.get_by_label_contains(" GiB · system ");
    let cuda = h.state().devices.iter().any(|d| d.choice != DeviceChoice::Cpu);
    if !cuda {
        h.get_by_label("No GPU").hover();
        h.run();
        assert!(
            h.query_by_label_contains("CUDA").is_some(),
            "the tooltip does not say why there is no GPU"
        );
    }
    // The status line stays: the model's.
    h.get_by_label("No model loaded");
}

fn view(h: &egui_kittest::Harness<'static, s1_studio::ui::StudioApp>) -> View {
    h.state().settings.view
}

/// Ctrl+1..4 open the views (the tabs' tooltips say so), but not while a text field has the
/// focus: there the keys belong to the typing.
#[test]
fn ctrl_digits_switch_views_but_not_while_typing() {
    let mut h = harness(app(Settings::default()));
    h.run();
    assert_eq!(view(&h), View::Chat);
    h.key_press_modifiers(Modifiers::COMMAND, Key::Num2);
    h.run();
    assert_eq!(view(&h), View::Train);
    h.key_press_modifiers(Modifiers::COMMAND, Key::Num4);
    h.run();
    assert_eq!(view(&h), View::Evaluate);
    h.get_by_label("Curate").hover();
    h.run();
    h.get_by_label_contains("Curate (Ctrl+1)");

    h.get_by_role_and_label(Role::TextInput, "Workspace folder").focus();
    h.run();
    h.get_by_role_and_label(Role::TextInput, "Workspace folder")
        .type_text("ws");
    h.run();
    h.key_press_modifiers(Modifiers::COMMAND, Key::Num2);
    h.run();
    assert_eq!(view(&h), View::Evaluate, "Ctrl+2 switched views while typing");
    assert_eq!(h.state().workspace_input, "ws");
    h.key_press(Key::Escape);
    h.run();
    assert!(!h
        .get_by_role_and_label(Role::TextInput, "Workspace folder")
        .is_focused());
    h.key_press_modifiers(Modifiers::COMMAND, Key::Num2);
    h.run();
    assert_eq!(view(&h), View::Train, "Ctrl+2 after leaving the field");
}

/// A training or evaluation running while another view shows puts a dot on its tab, with its
/// progress in the tooltip; a click goes there (where the tab is plain again).
#[test]
fn a_running_job_shows_on_its_tab_from_other_views() {
    use s1_studio::train::StepRecord;
    use s1_studio::ui::eval_state::EvalStatus;
    use s1_studio::ui::train_state::TrainStatus;
    let mut h = harness(app(Settings::default()));
    h.run();
    assert!(h.query_by_label("Train •").is_none());
    h.get_by_label("Train");
    // What the training job's events leave in the Train view's state after step 3 of 10.
    let t = &mut h.state_mut().train;
    t.status = TrainStatus::Running;
    t.records.push(StepRecord {
        step: 3,
        total_steps: 10,
        loss: 1.5,
        lr: 1e-5,
        grad_norm: 1.0,
        epoch: 0.3,
        tokens_per_s: 100.0,
        elapsed: 6.0,
        remaining: 14.0,
    });
    let e = &mut h.state_mut().eval;
    e.status = EvalStatus::Running;
    e.progress = Some(s1_studio::eval::sweep::Progress {
        done: 4,
        total: 36,
        resumed: 0,
    });
    h.run();
    assert!(h.query_by_label("Train").is_none(), "the Train tab shows no dot");
    h.get_by_label("Train •").hover();
    h.run();
    h.get_by_label_contains("Training: step 3 of 10 · about 14 s left");
    h.get_by_label("Evaluate •").hover();
    h.run();
    h.get_by_label_contains("Evaluating: 4 of 36 samples");
    h.get_by_label("Train •").click();
    // The Train view shows a spinner while its job runs: step, do not wait for it to settle.
    h.run_steps(2);
    assert_eq!(view(&h), View::Train);
    h.get_by_label("Train");
    h.get_by_label("Evaluate •");
    assert!(h.query_by_label("Chat •").is_none(), "nothing is generating");
    // Nothing left running to stop when the harness ends.
    h.state_mut().train.status = TrainStatus::Idle;
    h.state_mut().eval.status = EvalStatus::Idle;
}
