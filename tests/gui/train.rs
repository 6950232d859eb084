//! The Train view driven through egui_kittest, finding widgets by label: paths typed into the
//! form, Start, live step records and charts, the run finishing with a checkpoint, "Chat with
//! this checkpoint" loading it in the Chat view; Stop ending a run early; settings persisting.

use crate::common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::gui::{app, chat_with_checkpoint, harness, step_until, train_to_the_end};
use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use s1_studio::jobs::job::Job;
use s1_studio::jobs::TrainingJob;
use s1_studio::train::TrainEvent;
use s1_studio::ui::settings::View;
use s1_studio::ui::train_state::TrainStatus;
use s1_studio::ui::Settings;

fn rows(path: &Path, n: usize) {
    let text: String = (0..n)
        .map(|i| {
            let row = serde_json::json!({
                "question": format!("What is {i} + 1?"),
                "thinking_trajectories": [format!("{i} + 1 = {}.", i + 1)],
                "attempt": format!("\\boxed{{{}}}", i + 1),
            });
            format!("{row}\n")
        })
        .collect();
    std::fs::write(path, text).unwrap();
}

fn settings(epochs: usize) -> Settings {
    let mut s = Settings {
        view: View::Train,
        ..Default::default()
    };
    s.train.epochs = epochs;
    s.train.lr = 2e-3;
    s.train.batch = 2;
    s.train.grad_accum = 2;
    s.train.block_size = 96;
    s
}

fn type_path(h: &mut egui_kittest::Harness<'static, s1_studio::ui::StudioApp>, label: &str, p: &Path) {
    h.get_by_role_and_label(Role::TextInput, label).focus();
    h.run();
    h.get_by_role_and_label(Role::TextInput, label)
        .type_text(&p.display().to_string());
    h.run();
}

#[test]
fn a_short_run_from_the_view_then_chat_with_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::tiny_qwen(&d.join("model"), 256);
    rows(&d.join("rows.jsonl"), 8);
    let mut h = harness(app(settings(2)));
    h.run();
    type_path(&mut h, "Base model", &d.join("model"));
    type_path(&mut h, "Training data", &d.join("rows.jsonl"));
    type_path(&mut h, "Output folder", &d.join("out"));
    assert_eq!(h.state().settings.train.out, d.join("out"));
    h.get_by_label("Start").click();
    let checkpoint = train_to_the_end(&mut h, Duration::from_secs(180), String::new);
    let t = &h.state().train;
    // 8 rows, global batch 4, 2 epochs.
    assert_eq!(t.records.iter().map(|r| r.step).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert!(checkpoint.join("model.safetensors").exists());
    h.run();
    // The history lists the run (read on its own thread once the run ended); the checkpoint
    // opens in the Chat view.
    chat_with_checkpoint(&mut h, &checkpoint);
    assert_eq!(h.state().train.history.len(), 1);
}

#[test]
fn stop_ends_a_run_and_a_bad_form_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::tiny_qwen(&d.join("model"), 256);
    rows(&d.join("rows.jsonl"), 8);
    let mut s = settings(50);
    let mut h = harness(app(s.clone()));
    h.run();
    // Nothing chosen yet: a clear message, no run.
    h.get_by_label("Start").click();
    h.run();
    assert_eq!(
        h.state().train.status,
        TrainStatus::Failed("choose the base model first".into())
    );
    s.train.model = d.join("model");
    s.train.data = d.join("rows.jsonl");
    s.train.out = d.join("out");
    h.state_mut().settings = s;
    h.run();
    h.get_by_label("Start").click();
    step_until(
        &mut h,
        Duration::from_secs(120),
        |_| {},
        |a| !a.train.records.is_empty(),
    );
    h.get_by_label("Stop").click();
    step_until(&mut h, Duration::from_secs(120), |_| {}, |a| !a.train.is_running());
    match &h.state().train.status {
        TrainStatus::Stopped { step, .. } => assert!(*step < 100, "stopped at {step}"),
        other => panic!("{other:?}"),
    }
    // Resume is offered again, and the form persists with the settings.
    assert!(h.query_by_label("Resume").is_some());
    let saved = serde_json::to_string(&h.state().settings).unwrap();
    let back: Settings = serde_json::from_str(&saved).unwrap();
    assert_eq!(back.train, h.state().settings.train);
    assert_eq!(back.train_runs, vec![d.join("out")]);
}

/// A training run whose work panics ends as Failed with the panic's message (shown in the view),
/// not Running forever; the job is made from a panicking closure through the runner that
/// `TrainingJob::spawn` uses and handed to the view as a started run.
#[test]
fn a_crashed_run_shows_failed() {
    let mut h = harness(app(Settings {
        view: View::Train,
        ..Default::default()
    }));
    h.run();
    let job: TrainingJob = Job::run("s1-train", Arc::new(|| {}), |_, _: &mut dyn FnMut(TrainEvent)| {
        panic!("injected into the trainer")
    })
    .unwrap();
    h.state_mut().train.job = Some(job);
    h.state_mut().train.status = TrainStatus::Running;
    step_until(&mut h, Duration::from_secs(20), |_| {}, |a| !a.train.is_running());
    match &h.state().train.status {
        TrainStatus::Failed(e) => assert!(e.contains("s1-train crashed: injected into the trainer"), "{e}"),
        other => panic!("{other:?}"),
    }
    h.run();
    h.get_by_label_contains("injected into the trainer");
}
