//! Every path can be typed as well as picked, driven through egui_kittest: a workspace typed in
//! the top bar reaches Curate; a file dialog that cannot open (rfd's portal backend without a
//! desktop portal, as on a bare Xvfb desktop) says so in the view and focuses the path's field;
//! a curation import takes several files and glob patterns and reports each.
//!
//! The dialogs here are rfd's real ones, made unable to open for every test of this file: the
//! session bus points nowhere and no display is set, so the portal and its zenity fallback both
//! give up at once, whatever desktop the tests run on.

mod common;

use std::path::Path;
use std::time::Duration;

use common::gui::{app, harness, step_until};
use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use s1_studio::ui::settings::View;
use s1_studio::ui::{Settings, StudioApp};

/// No desktop portal and no display for the dialogs of this test binary (set once, before any
/// app starts).
fn no_dialogs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::env::set_var("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/s1-studio-test-bus");
        std::env::remove_var("DISPLAY");
        std::env::remove_var("WAYLAND_DISPLAY");
    });
}

fn type_into(h: &mut Harness<'static, StudioApp>, label: &str, text: &str) {
    h.get_by_role_and_label(Role::TextInput, label).focus();
    h.run();
    h.get_by_role_and_label(Role::TextInput, label).type_text(text);
    h.run();
}

fn focused(h: &Harness<'static, StudioApp>, label: &str) -> bool {
    h.get_by_role_and_label(Role::TextInput, label).is_focused()
}

/// Curate needs a workspace; with the folder typed in the top bar (Enter), it is created off
/// the UI thread and Curate opens on it. A folder that cannot be made is named beside the field.
#[test]
fn a_typed_workspace_reaches_curate() {
    no_dialogs();
    let d = tempfile::tempdir().unwrap();
    let mut h = harness(app(Settings {
        view: View::Curate,
        ..Default::default()
    }));
    h.run();
    h.get_by_label_contains("Type a workspace folder in the top bar");
    assert!(h.query_by_label("Use the sample pool").is_none());

    std::fs::write(d.path().join("a-file"), "x").unwrap();
    let bad = d.path().join("a-file/ws");
    type_into(&mut h, "Workspace folder", &bad.display().to_string());
    h.get_by_label("Use").click();
    step_until(&mut h, Duration::from_secs(30), |_| {}, |a| a.workspace_error.is_some());
    h.run();
    h.get_by_label_contains(&format!("workspace {}", bad.display()));
    assert_eq!(h.state().settings.workspace, None);

    let ws = d.path().join("projects/ws");
    h.state_mut().workspace_input.clear();
    type_into(&mut h, "Workspace folder", &ws.display().to_string());
    h.key_press(egui::Key::Enter);
    step_until(
        &mut h,
        Duration::from_secs(30),
        |_| {},
        |a| a.settings.workspace.is_some(),
    );
    assert_eq!(h.state().settings.workspace.as_deref(), Some(ws.as_path()));
    assert!(ws.is_dir());
    assert_eq!(h.state().workspace_error, None, "the earlier error cleared");
    step_until(&mut h, Duration::from_secs(60), |_| {}, |a| a.curate.snapshot.is_some());
    h.run();
    h.get_by_label(&format!("Workspace: {}", ws.display()));
    h.get_by_label("Use the sample pool");
}

/// Waits for the dialog thread's answer (it gives up at once here) and draws it.
fn wait_for(h: &mut Harness<'static, StudioApp>, done: impl Fn(&StudioApp) -> bool) {
    step_until(h, Duration::from_secs(30), |_| {}, done);
    h.run();
    h.run();
}

/// Each picker whose dialog cannot open says so where it was clicked and puts the cursor in the
/// path's field: the workspace (top bar), Evaluate's model and output folder, Curate's import.
#[test]
fn a_dialog_that_cannot_open_says_so_and_focuses_the_field() {
    no_dialogs();
    let d = tempfile::tempdir().unwrap();
    let mut h = harness(app(Settings {
        view: View::Evaluate,
        ..Default::default()
    }));
    h.run();
    h.get_by_label("Choose workspace…").click();
    wait_for(&mut h, |a| a.workspace_error.is_some());
    let msg = h.state().workspace_error.clone().unwrap();
    assert!(msg.contains("could not open") && msg.contains("type the path"), "{msg}");
    assert!(h.query_all_by_label_contains("could not open").count() >= 1);
    assert!(focused(&h, "Workspace folder"));

    h.get_by_label("GGUF file…").click();
    wait_for(&mut h, |a| a.eval.notice.is_some());
    h.get_by_label_contains("The file dialog (GGUF model) could not open");
    assert!(focused(&h, "Model"), "the model field takes the focus");
    h.state_mut().eval.notice = None;
    h.get_by_label("Output folder…").click();
    wait_for(&mut h, |a| a.eval.notice.is_some());
    assert!(focused(&h, "Output folder"));
    assert!(!focused(&h, "Model"));

    // Curate's import: the message in the view, the cursor in Files.
    let ws = d.path().join("ws");
    h.state_mut().settings.workspace = Some(ws.clone());
    h.state_mut().settings.view = View::Curate;
    step_until(&mut h, Duration::from_secs(60), |_| {}, |a| a.curate.snapshot.is_some());
    h.run();
    h.query_all_by_label("Browse…").next().unwrap().click();
    wait_for(&mut h, |a| a.curate.error.is_some());
    h.get_by_label_contains("The file dialog (Questions to import) could not open");
    assert!(focused(&h, "Files"));
}

/// Writes the first `n` lines of a shared pool file to `to`.
fn head(pool: &str, n: usize, to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/pool")
        .join(pool);
    let text = std::fs::read_to_string(&from).unwrap_or_else(|e| panic!("this test needs {}: {e}", from.display()));
    let lines: Vec<&str> = text.lines().take(n).collect();
    std::fs::write(to, lines.join("\n") + "\n").unwrap();
}

/// Several files and a glob pattern typed into Files are imported together; each file's result
/// is listed, and an entry that names no file is said, by name, while the others are imported.
#[test]
fn an_import_takes_several_files_and_globs() {
    no_dialogs();
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    head("aime_1983_2023.jsonl", 5, &data.join("aime.jsonl"));
    head("olympiadbench_en_comp_675.jsonl", 3, &data.join("olympiad.jsonl"));
    head("math_train.jsonl", 4, &d.path().join("math.jsonl"));
    let mut h = harness(app(Settings {
        view: View::Curate,
        workspace: Some(d.path().join("ws")),
        ..Default::default()
    }));
    step_until(&mut h, Duration::from_secs(60), |_| {}, |a| a.curate.snapshot.is_some());
    h.run();
    let missing = d.path().join("missing.jsonl");
    let typed = format!(
        "{}/*.jsonl, {}; {}",
        data.display(),
        d.path().join("math.jsonl").display(),
        missing.display()
    );
    type_into(&mut h, "Files", &typed);
    h.get_by_label("Import").click();
    h.step();
    assert!(h.state().curate.is_running(), "the import runs from the click on");
    step_until(
        &mut h,
        Duration::from_secs(120),
        |_| {},
        |a| !a.curate.is_running() && a.curate.log.iter().any(|l| l.contains("pool:")),
    );
    h.run();
    let c = &h.state().curate;
    assert_eq!(c.snapshot.as_ref().unwrap().rows.len(), 12, "5 + 3 + 4 questions");
    let report = c.log.iter().find(|l| l.contains("pool:")).unwrap();
    for f in [
        data.join("aime.jsonl"),
        data.join("olympiad.jsonl"),
        d.path().join("math.jsonl"),
    ] {
        assert!(
            report.contains(&format!("{}: ", f.display())),
            "{f:?} not reported in:\n{report}"
        );
    }
    let err = c.error.clone().unwrap();
    assert_eq!(err, format!("not imported: {}: no such file", missing.display()));
    let said = h
        .query_all_by_label_contains(&format!("{}: no such file", missing.display()))
        .count();
    assert!(said >= 1, "the missing file is not named on screen");
}

/// The Train view's paths and Chat's model: a dialog that cannot open says so beside the
/// path's field (before, only the status bar did), and the field takes the focus; a path set
/// (typed or loaded) clears the message.
#[test]
fn train_and_chat_say_so_beside_their_path_fields() {
    no_dialogs();
    let mut h = harness(app(Settings {
        view: View::Train,
        ..Default::default()
    }));
    h.run();
    // Base model, Training data, Output folder: the second picker is the data's.
    h.query_all_by_label("Choose…").nth(1).unwrap().click();
    wait_for(&mut h, |a| a.train.dialog_error.is_some());
    h.get_by_label_contains("The file dialog (Training data (s1K schema)) could not open");
    assert!(focused(&h, "Training data"), "the data field takes the focus");
    assert!(!focused(&h, "Base model"));
    h.get_by_role_and_label(Role::TextInput, "Training data")
        .type_text("data.jsonl");
    h.run();
    h.run();
    assert_eq!(h.state().train.dialog_error, None);
    assert!(h.query_by_label_contains("could not open").is_none());

    h.state_mut().settings.view = View::Chat;
    h.run();
    h.get_by_label("Open GGUF file…").click();
    wait_for(&mut h, |a| a.chat.dialog_error.is_some());
    h.get_by_label_contains("The file dialog (Open a GGUF model) could not open");
    assert!(focused(&h, "Path"), "the model's Path field takes the focus");
}
