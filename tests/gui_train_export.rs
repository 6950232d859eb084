//! The Train view's "Where" choice: the same form turned into a torchrun job (2 gloo processes
//! on this CPU, TRL) with one choice; Start writes the run folder and launches it, the steps
//! arrive in the same live charts, the run lands in the history, and its checkpoint opens in
//! the Chat view. Needs a Python with torch, transformers 4.46.1 and trl 0.12.0 (S1_PYTHON),
//! whose bin folder holds `torchrun`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::gui::{app, chat_with_checkpoint, harness, train_to_the_end};
use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use s1_studio::train::launch::Target;
use s1_studio::ui::settings::View;
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

fn type_path(h: &mut egui_kittest::Harness<'static, s1_studio::ui::StudioApp>, label: &str, p: &Path) {
    h.get_by_role_and_label(Role::TextInput, label).focus();
    h.run();
    h.get_by_role_and_label(Role::TextInput, label)
        .type_text(&p.display().to_string());
    h.run();
}

#[test]
fn where_torchrun_runs_the_form_on_the_standard_engines() {
    let py = std::env::var("S1_PYTHON").unwrap_or_else(|_| "python3".into());
    let bin = Path::new(&py).parent().map(Path::to_path_buf).unwrap_or_default();
    assert!(
        bin.join("torchrun").exists(),
        "this test needs S1_PYTHON to name a Python whose folder holds torchrun, with transformers==4.46.1 and \
         trl==0.12.0 (S1_PYTHON={py}): `pip install torch transformers==4.46.1 trl==0.12.0 accelerate datasets`"
    );
    // launch.sh finds torchrun on PATH; the rendezvous port is a free one.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::env::set_var(
        "PATH",
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()),
    );
    std::env::set_var("MASTER_PORT", port.to_string());
    std::env::set_var("OMP_NUM_THREADS", "1");

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::tiny_qwen(&d.join("model"), 256);
    rows(&d.join("rows.jsonl"), 8);
    let mut s = Settings {
        view: View::Train,
        ..Default::default()
    };
    (
        s.train.epochs,
        s.train.lr,
        s.train.batch,
        s.train.grad_accum,
        s.train.block_size,
    ) = (2, 2e-3, 2, 2, 96);
    let mut h = harness(app(s));
    h.run();
    type_path(&mut h, "Base model", &d.join("model"));
    type_path(&mut h, "Training data", &d.join("rows.jsonl"));
    type_path(&mut h, "Output folder", &d.join("out"));
    h.get_by_label("Where").click();
    h.run();
    h.get_by_label("torchrun (here)").click();
    h.run();
    assert_eq!(h.state().train.remote.target, Some(Target::Torchrun));
    h.get_by_role_and_label(Role::SpinButton, "Processes").focus();
    h.run();
    h.get_by_role_and_label(Role::SpinButton, "Processes").type_text("2");
    h.run();
    h.get_by_label("Start").click();
    assert_eq!(h.state().train.remote.nproc, 2);
    let checkpoint = train_to_the_end(&mut h, Duration::from_secs(300), String::new);
    let t = &h.state().train;
    assert_eq!(t.records.iter().map(|r| r.step).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert_eq!(checkpoint, d.join("out/checkpoint-4"));
    let launch_log = std::fs::read_to_string(d.join("out/launch.log")).unwrap();
    assert!(launch_log.contains("2 process(es) on cpu"), "{launch_log}");
    chat_with_checkpoint(&mut h, &checkpoint);
}
