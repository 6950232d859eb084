//! Pictures of the first run for README.md's "First five minutes", rendered by wgpu on a
//! software adapter as tests/gui/snapshot.rs does: the Chat view's empty state offering the demo
//! model, and the model library panel after a pull (against the mock hub). Temporary paths are
//! shown as the default library folder. `UPDATE_SNAPSHOTS=1 cargo test --profile ci --test
//! gui first_run_snapshot::` rewrites tests/snapshots/first_run_*.png.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::gui::{app, harness_with, step_until};
use common::mock_hub::{HubFiles, MockHub};
use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use egui_kittest::{Harness, SnapshotOptions};
use s1_studio::hub::{HubSettings, Library};
use s1_studio::ui::system_monitor::SystemSample;
use s1_studio::ui::{Settings, StudioApp};

const SHOWN_LIBRARY: &str = "~/.local/share/s1-studio/models";

fn pinned(h: &mut Harness<'static, StudioApp>) {
    h.state_mut().system.pin(SystemSample {
        process_rss: Some(3 << 29),
        system_used: 12 << 30,
        system_total: 24 << 30,
        gpus: Err("no GPU in the pictures".into()),
    });
}

#[test]
fn first_run_pictures() {
    let d = tempfile::tempdir().unwrap();
    let mut repo = BTreeMap::new();
    repo.insert(
        "r1-qwen-Q4_0.gguf".to_string(),
        std::fs::read(common::fixture("gguf").join("r1-qwen-Q4_0.gguf")).unwrap(),
    );
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
    let mut h = harness_with(Harness::<StudioApp>::builder().wgpu(), a);
    pinned(&mut h);
    h.run();
    let options = SnapshotOptions::new().threshold(1.0).max_failed_pixels(500);
    h.get_by_label("Get the demo model (98 MB)");
    h.snapshot_options("first_run_chat", &options);

    h.get_by_label("Model library…").click();
    h.run();
    for (label, text) in [("Repo id", "org/tiny-GGUF"), ("GGUF file", "r1-qwen-Q4_0.gguf")] {
        h.get_by_role_and_label(Role::TextInput, label).focus();
        h.run();
        h.get_by_role_and_label(Role::TextInput, label).type_text(text);
        h.run();
    }
    h.get_by_label("Pull").click();
    step_until(
        &mut h,
        Duration::from_secs(120),
        |_| {},
        |a| !a.library.is_downloading() && a.library.entries.as_ref().is_some_and(|e| !e.is_empty()),
    );
    h.state_mut().library.library = Library::new(SHOWN_LIBRARY);
    h.hover_at(egui::pos2(1200.0, 780.0));
    h.run();
    h.snapshot_options("first_run_library", &options);
}
