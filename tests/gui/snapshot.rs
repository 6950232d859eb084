//! Real screenshots of the four views, rendered by wgpu on a software adapter (Mesa lavapipe; CI
//! installs mesa-vulkan-drivers), shown in README.md: the chat panel (SmolLM2-135M-Instruct GGUF
//! answering under a thinking budget with two "Wait"s), the Curate view on the sample pool, the
//! Train view after a short run and the Evaluate view after a small sweep; tests/snapshots/*.png.
//! `UPDATE_SNAPSHOTS=1 cargo test --profile ci --test gui snapshot::` rewrites them. The footer's
//! machine readings, timings and temporary paths are pinned (they change from run to run).

use crate::common;

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

/// Training rows for the Train view's picture: sums, with a short worked trace each.
fn train_rows(path: &std::path::Path, n: usize) {
    let text: String = (0..n)
        .map(|i| {
            let row = serde_json::json!({
                "question": format!("What is {i} + {}?", i % 7),
                "thinking_trajectories": [format!("{i} + {} = {}.", i % 7, i + i % 7)],
                "attempt": format!("\\boxed{{{}}}", i + i % 7),
            });
            format!("{row}\n")
        })
        .collect();
    std::fs::write(path, text).unwrap();
}

/// A real screenshot of the Train view after a short run of a tiny random Qwen2 (the real Qwen
/// tokenizer): the loss, learning-rate and gradient-norm charts, the run history and its
/// checkpoints. The image is tests/snapshots/train_view.png, shown in README.md.
#[test]
fn train_view_after_a_short_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::tiny_qwen(&d.join("model"), 256);
    train_rows(&d.join("rows.jsonl"), 24);
    let mut s = Settings {
        view: s1_studio::ui::settings::View::Train,
        ..Default::default()
    };
    s.train.model = d.join("model");
    s.train.data = d.join("rows.jsonl");
    s.train.out = d.join("runs/sums");
    s.train.epochs = 6;
    s.train.lr = 4e-3;
    s.train.batch = 2;
    s.train.grad_accum = 2;
    s.train.block_size = 96;
    let mut h = harness_with(Harness::<StudioApp>::builder().wgpu(), app(s));
    pin_machine(&mut h);
    h.run();
    h.get_by_label("Start").click();
    step_until(
        &mut h,
        Duration::from_secs(300),
        |_| {},
        |a| !a.train.is_running() && !a.train.checking,
    );
    assert!(
        matches!(
            h.state().train.status,
            s1_studio::ui::train_state::TrainStatus::Done { .. }
        ),
        "{:?}",
        h.state().train.status
    );
    // 24 rows, global batch 4, 6 epochs.
    assert_eq!(h.state().train.records.len(), 36);
    step_until(
        &mut h,
        Duration::from_secs(30),
        |_| {},
        |a| !a.train.history_reading && !a.train.history_stale,
    );
    // The read's answer can land after that frame was drawn: one more frame shows it.
    h.run();
    h.get_by_label("Run history (1)").click();
    h.run();
    // Timings and paths differ from run to run and checkout to checkout: show fixed ones.
    let shown = std::path::Path::new("runs/sums");
    let t = &mut h.state_mut().train;
    let n = t.records.len();
    for (i, r) in t.records.iter_mut().enumerate() {
        r.tokens_per_s = 2400.0 + 60.0 * (0.9 * i as f64).sin();
        r.elapsed = 0.5 * (i + 1) as f64;
        r.remaining = 0.5 * (n - i - 1) as f64;
    }
    let real = d.join("runs/sums");
    let relative = |p: &std::path::Path| shown.join(p.strip_prefix(&real).unwrap());
    if let s1_studio::ui::train_state::TrainStatus::Done { checkpoint } = &mut t.status {
        *checkpoint = relative(checkpoint);
    }
    for run in &mut t.history {
        run.out = relative(&run.out);
        run.checkpoint = run.checkpoint.as_deref().map(relative);
        for (_, c) in &mut run.checkpoints {
            *c = relative(c);
        }
    }
    // The shown model path is relative; its config (for the memory line) is the one read.
    let read = h.state().train.model_config.clone().map(|(_, c)| c);
    h.state_mut().train.model_config = read.map(|c| ("models/tiny".into(), c));
    let st = &mut h.state_mut().settings.train;
    st.model = "models/tiny".into();
    st.data = "data/sums.jsonl".into();
    st.out = "runs/sums".into();
    // The pointer off the buttons (the last click left it over one).
    h.hover_at(egui::pos2(900.0, 700.0));
    h.run();
    let options = SnapshotOptions::new().threshold(1.0).max_failed_pixels(2500);
    h.snapshot_options("train_view", &options);
}

/// A real screenshot of the Curate view on the sample pool (AIME, OlympiadBench, MATH's test
/// problems): solutions as stand-in traces measured with the Qwen tokenizer, s1's rules, domains
/// from subjects and a seeded selection of 1,000, the table at the whole width. The image
/// is tests/snapshots/curate_view.png, shown in README.md.
#[test]
fn curate_view_after_a_selection() {
    // The top bar shows the workspace's path: the same one on every machine.
    let ws = std::path::Path::new("/tmp/s1-studio-snapshot/workspace");
    let _ = std::fs::remove_dir_all(ws);
    let mut s = Settings {
        view: s1_studio::ui::settings::View::Curate,
        workspace: Some(ws.to_path_buf()),
        ..Default::default()
    };
    s.curate.tokenizer = common::qwen_tokenizer().display().to_string();
    s.curate.target = 1000;
    s.curate.seed = 11;
    let mut h = harness_with(Harness::<StudioApp>::builder().wgpu(), app(s));
    pin_machine(&mut h);
    let idle = |h: &mut Harness<'static, StudioApp>| {
        step_until(h, Duration::from_secs(300), |_| {}, |a| !a.curate.is_running());
        h.run();
    };
    idle(&mut h);
    for step in [
        "Use the sample pool",
        "Solutions as traces",
        "Run rules",
        "Domains from subjects",
        "Select",
    ] {
        // As a screen reader would: the lower steps may sit below the fold of their scroll area.
        h.get_by_label(step).click_accesskit();
        h.step();
        idle(&mut h);
        assert!(h.state().curate.error.is_none(), "{step}: {:?}", h.state().curate.error);
    }
    let snap = h.state().curate.snapshot.clone().unwrap();
    assert_eq!(snap.rows.iter().filter(|r| r.selected).count(), 1000);
    // The table at the whole width (the inspector's width would depend on how soon its
    // question is read).
    if h.state().curate.inspector_open {
        h.get_by_label("Close inspector").click();
        h.run();
    }
    // The tokenizer's path differs from checkout to checkout: show the same one.
    h.state_mut().settings.curate.tokenizer = "../shared/data/tokenizer/qwen3/tokenizer.json".into();
    h.hover_at(egui::pos2(1200.0, 760.0));
    h.run();
    let options = SnapshotOptions::new().threshold(1.0).max_failed_pixels(2500);
    h.snapshot_options("curate_view", &options);
}

/// The shared pool (AIME 1983-2023, OlympiadBench, MATH train and test: 13.6K questions) made
/// into a workspace the way the Curate view's buttons do it, then its map: the
/// decontamination against the bundled sets, solutions as traces measured with the Qwen
/// tokenizer, s1's rules, domains from subjects, a seeded s1 selection of 1,000 and the hashed TF-IDF
/// layout (seed 0). The picture is tests/snapshots/pool_map.png: coloured by funnel stage, the
/// selected questions drawn over the pool, the contaminated ones ringed in red, the coverage
/// figure beside it.
#[test]
fn pool_map_of_the_shared_pool() {
    use s1_studio::curate::rule_config::RulesChange;
    use s1_studio::curate::steps::{self, map::MapOptions, selection, DomainSource, Step, TraceSource};
    use s1_studio::jobs::CancelToken;
    let pool = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/pool");
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(&pool)
        .unwrap_or_else(|e| panic!("this test needs the shared pool at {} ({e})", pool.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    let ws_dir = std::path::Path::new("/tmp/s1-studio-snapshot/map-workspace");
    let _ = std::fs::remove_dir_all(ws_dir);
    let mut ws = s1_studio::workspace::Workspace::open(ws_dir).unwrap();
    let mut files = files;
    files.sort();
    for step in [
        Step::Import {
            files,
            options: Default::default(),
        },
        Step::Decontam {
            eval: Vec::new(),
            with_bundled: true,
            cross_source: false,
        },
        Step::Traces {
            from: TraceSource::Column("solution".into()),
            tokenizer: Some(common::qwen_tokenizer()),
            remeasure: false,
        },
        // After the traces: the rules require one.
        Step::Rules(RulesChange::default()),
        Step::Domains(DomainSource::Subjects),
        Step::Select(selection::SelectOptions {
            seed: 11,
            ..Default::default()
        }),
        Step::Map(MapOptions::default()),
    ] {
        steps::run(&mut ws, &step, &CancelToken::new(), &mut |_| {})
            .unwrap_or_else(|e| panic!("{}: {e:#}", step.label()));
    }
    drop(ws);
    let s = Settings {
        view: s1_studio::ui::settings::View::Curate,
        workspace: Some(ws_dir.to_path_buf()),
        ..Default::default()
    };
    let mut h = harness_with(Harness::<StudioApp>::builder().wgpu(), app(s));
    pin_machine(&mut h);
    step_until(
        &mut h,
        Duration::from_secs(120),
        |_| {},
        |a| a.curate.snapshot.is_some() && !a.curate.is_running(),
    );
    // As a screen reader would: step 6 may sit below the fold of the steps' scroll area.
    h.get_by_label("Show the map").click_accesskit();
    h.run();
    let st = &h.state().curate;
    let snap = st.snapshot.as_ref().unwrap();
    let map = snap.map.as_ref().expect("the map is in the snapshot");
    assert_eq!(map.points.len(), snap.rows.len());
    assert!(snap.rows.len() > 13_000, "{}", snap.rows.len());
    assert!(map.points.iter().all(|p| p[0].is_finite()));
    assert!(!map.touches.is_empty(), "some questions of the pool are contaminated");
    let d = st.map.derived.as_ref().expect("the map is drawn");
    assert_eq!(d.placed, snap.rows.len());
    let (sel, random) = d.coverage.expect("a selection is stored");
    assert_eq!(sel.selected, 1000);
    assert!(sel.cell_share() > 0.0 && random.cell_share() > 0.0);
    h.hover_at(egui::pos2(1270.0, 810.0));
    h.run();
    let options = SnapshotOptions::new().threshold(1.0).max_failed_pixels(2500);
    h.snapshot_options("pool_map", &options);
}
