//! A real screenshot of the chat panel: SmolLM2-135M-Instruct (GGUF) answering under a thinking
//! budget with two "Wait"s, rendered by wgpu on a software adapter (Mesa lavapipe; CI installs
//! mesa-vulkan-drivers). The image is tests/snapshots/chat_panel.png, shown in README.md;
//! `UPDATE_SNAPSHOTS=1 cargo test --release --test gui_snapshot` rewrites it.

mod common;

use std::time::Duration;

use common::gui::{app, harness_with, step_until};
use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use egui_kittest::{Harness, SnapshotOptions};
use s1_studio::ui::{ModelStatus, Settings, StudioApp};

#[test]
fn chat_panel_with_smollm2_under_a_budget() {
    let gguf = common::smollm2_gguf();
    let mut s = Settings::default();
    s.chat.max_thinking = 160;
    s.chat.waits = 2;
    s.chat.max_new_tokens = 260;
    s.chat.system_prompt = "You are a helpful AI assistant.".into();
    let mut h = harness_with(Harness::<StudioApp>::builder().wgpu(), app(s));
    h.run();
    for (role, label, text) in [
        (Role::TextInput, "Path", gguf.display().to_string()),
        (Role::MultilineTextInput, "Message", "Is 91 a prime number?".to_string()),
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
