//! A real screenshot of the chat panel: SmolLM2-135M-Instruct (GGUF) answering under a thinking
//! budget with two "Wait"s, rendered by wgpu on a software adapter (Mesa lavapipe; CI installs
//! mesa-vulkan-drivers). The image is tests/snapshots/chat_panel.png, shown in README.md;
//! `UPDATE_SNAPSHOTS=1 cargo test --profile ci --test gui_snapshot` rewrites it. The footer's
//! machine readings are pinned (they change from run to run).

mod common;

use std::time::Duration;

use common::gui::{app, harness_with, step_until};
use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use egui_kittest::{Harness, SnapshotOptions};
use s1_studio::ui::system_monitor::SystemSample;
use s1_studio::ui::{ModelStatus, Settings, StudioApp};

/// The footer's machine readings change from run to run and machine to machine: the pictures
/// show these (12 GiB of 24 in use, the app at 1.5 GiB, no GPU).
fn pin_machine(h: &mut Harness<'static, StudioApp>) {
    h.state_mut().system.pin(SystemSample {
        process_rss: Some(3 << 29),
        system_used: 12 << 30,
        system_total: 24 << 30,
        gpus: Err("no GPU in the pictures".into()),
    });
}

#[test]
fn chat_panel_with_smollm2_under_a_budget() {
    let gguf = common::smollm2_gguf();
    let mut s = Settings::default();
    s.chat.max_thinking = 160;
    s.chat.waits = 2;
    s.chat.max_new_tokens = 260;
    s.chat.system_prompt = "You are a helpful AI assistant.".into();
    let mut h = harness_with(Harness::<StudioApp>::builder().wgpu(), app(s));
    pin_machine(&mut h);
    h.run();
    for (role, label, text) in [
        (Role::TextInput, "Path", gguf.display().to_string()),
        (Role::MultilineTextInput, "Message", "Is 87 a prime number?".to_string()),
    ] {
        h.get_by_role_and_label(role, label).focus();
        h.run();
        h.get_by_role_and_label(role, label).type_text(&text);
        h.run();
        if label == "Path" {
            h.get_by_label("Load").click();
            step_until(
                &mut h,
                Duration::from_secs(120),
                |_| {},
                |a| !matches!(a.model, ModelStatus::Loading { .. }),
            );
            assert!(
                matches!(h.state().model, ModelStatus::Loaded(_)),
                "{:?}",
                h.state().model
            );
        }
    }
    h.get_by_label("Send").click();
    step_until(&mut h, Duration::from_secs(120), |_| {}, |a| !a.is_generating());
    // The path field shows where the checkout is: show the same path wherever that is.
    h.state_mut().chat.path_input = "models/SmolLM2-135M-Instruct.Q4_1.gguf".into();
    h.run();
    // tokens/s differs from run to run: allow that line (and little else) to change.
    let options = SnapshotOptions::new().threshold(1.0).max_failed_pixels(2500);
    let a = match h.state().chat.conversation.turns.last() {
        Some(s1_studio::generate::conversation::Turn::Assistant(a)) => a.clone(),
        other => panic!("no answer: {other:?}"),
    };
    assert_eq!(a.waits, 2);
    assert!(a.forced_end_at.is_some());
    h.snapshot_options("chat_panel", &options);
}

/// A real screenshot of the Evaluate view after a small sweep: SmolLM2-135M-Instruct (GGUF) on
/// the first 6 GSM8K questions at three thinking budgets, 2 samples each (so majority vote shows),
/// batch 6. The image is tests/snapshots/evaluate_view.png, shown in README.md.
#[test]
fn evaluate_view_after_a_small_sweep() {
    let gguf = common::smollm2_gguf();
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("evaluate-snapshot");
    let _ = std::fs::remove_dir_all(&out);
    let mut s = Settings {
        view: s1_studio::ui::settings::View::Evaluate,
        ..Default::default()
    };
    s.eval.model = gguf.display().to_string();
    s.eval.bench = "gsm8k".into();
    s.eval.budgets = "16,48,96".into();
    s.eval.limit = "6".into();
    s.eval.samples = 2;
    s.eval.max_tokens = "160".into();
    s.eval.batch = 6;
    s.eval.out = out.display().to_string();
    let mut h = harness_with(Harness::<StudioApp>::builder().wgpu(), app(s));
    pin_machine(&mut h);
    h.run();
    h.get_by_label("Run").click();
    step_until(&mut h, Duration::from_secs(300), |_| {}, |a| !a.eval.is_running());
    assert_eq!(h.state().eval.samples.len(), 36);
    // Paths differ between checkouts: show the same ones wherever the repository is.
    h.state_mut().eval.selected = Some(0);
    h.state_mut().settings.eval.model = "models/SmolLM2-135M-Instruct.Q4_1.gguf".into();
    h.state_mut().settings.eval.out = "runs/eval-gsm8k".into();
    h.run();
    let options = SnapshotOptions::new().threshold(1.0).max_failed_pixels(2500);
    h.snapshot_options("evaluate_view", &options);
}
