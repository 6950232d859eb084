//! Runs are never overwritten. In the Train view, Start on a folder that holds a finished run
//! asks first (changing nothing on disk until a choice; Esc cancels); "Start in run-2" trains in
//! the suffixed folder and leaves the old log byte-identical; Replace asks again and moves the old
//! run aside; the run history lists each run by its last step. `s1-studio train` refuses an
//! existing run without --resume / --overwrite, naming the folder and the flags.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::gui::{app, harness, step_until};
use egui_kittest::kittest::Queryable;
use s1_studio::jobs::CancelToken;
use s1_studio::train::{TrainOutcome, TrainSettings};
use s1_studio::ui::settings::View;
use s1_studio::ui::train_state::TrainStatus;
use s1_studio::ui::{Settings, StudioApp};

type H = egui_kittest::Harness<'static, StudioApp>;

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

/// 8 rows, global batch 4, one epoch: 2 steps.
fn train_settings(d: &Path, out: &str) -> TrainSettings {
    let mut s = TrainSettings::s1(d.join("model"), d.join("rows.jsonl"), d.join(out));
    s.epochs = 1;
    s.lr = 2e-3;
    s.batch = 2;
    s.grad_accum = 2;
    s.block_size = 96;
    s
}

/// A tiny model, its data, and a finished run in `d/run`.
fn finished_run(d: &Path) -> PathBuf {
    common::tiny_qwen(&d.join("model"), 256);
    rows(&d.join("rows.jsonl"), 8);
    let out = s1_studio::train::run(&train_settings(d, "run"), &CancelToken::new(), &mut |_| {});
    assert!(matches!(out, TrainOutcome::Done { steps: 2, .. }), "{out:?}");
    d.join("run")
}

/// Every file under `dir` with its bytes, sorted: "nothing changed on disk" compares these.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut all = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let e = e.unwrap().path();
            if e.is_dir() {
                todo.push(e);
            } else {
                all.push((e.clone(), std::fs::read(&e).unwrap()));
            }
        }
    }
    all.sort();
    all
}

fn view(d: &Path) -> H {
    let mut s = Settings {
        view: View::Train,
        ..Default::default()
    };
    s.train = train_settings(d, "run");
    s.train_runs = vec![d.join("run")];
    let mut h = harness(app(s));
    h.run();
    h
}

/// Clicks Start and waits for the prompt (the folder is checked on its own thread).
fn start_until_prompt(h: &mut H) {
    h.get_by_label("Start").click();
    step_until(h, Duration::from_secs(30), |_| {}, |a| a.train.prompt.is_some());
    h.run();
}

fn wait_done(h: &mut H) {
    step_until(
        h,
        Duration::from_secs(180),
        |_| {},
        |a| !a.train.is_running() && !a.train.checking && a.train.prompt.is_none(),
    );
    assert!(
        matches!(h.state().train.status, TrainStatus::Done { .. }),
        "{:?}",
        h.state().train.status
    );
}

fn wait_history(h: &mut H) {
    step_until(
        h,
        Duration::from_secs(30),
        |_| {},
        |a| !a.train.history_reading && !a.train.history_stale,
    );
    h.run();
}

#[test]
fn start_on_a_finished_run_asks_and_a_new_folder_keeps_the_old_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = finished_run(d);
    let before = tree(&run);
    let mut h = view(d);
    // The history reads the finished run by its last step, with its final checkpoint.
    wait_history(&mut h);
    let past = &h.state().train.history;
    assert_eq!(past.len(), 1);
    assert_eq!(
        (past[0].steps, past[0].total_steps, past[0].name.as_str()),
        (2, 2, "run")
    );
    assert_eq!(past[0].checkpoints.last().map(|c| c.0), Some(2));
    assert!(past[0].notes.is_empty(), "{:?}", past[0].notes);
    h.get_by_label("Run history (1)").click();
    h.run();
    assert!(
        h.query_all_by_label_contains("2 steps/2").next().is_some(),
        "the history row shows the run's step count"
    );

    // Start asks; nothing on disk changes; Esc closes the prompt without starting.
    start_until_prompt(&mut h);
    let p = h.state().train.prompt.clone().unwrap();
    assert_eq!(
        (p.out.clone(), p.next_free.clone(), p.existing.steps),
        (run.clone(), d.join("run-2"), 2)
    );
    assert!(h.query_by_label("This folder already holds a run").is_some());
    assert!(h.state().train.job.is_none());
    assert_eq!(tree(&run), before);
    h.key_press(egui::Key::Escape);
    h.run();
    h.run();
    assert!(h.state().train.prompt.is_none(), "Esc cancels");
    assert!(h.state().train.job.is_none() && !d.join("run-2").exists());

    // "Start in …/run-2", named before confirming, trains there.
    start_until_prompt(&mut h);
    let label = format!("Start in {}", d.join("run-2").display());
    h.get_by_label(&label).click();
    wait_done(&mut h);
    assert_eq!(h.state().settings.train.out, d.join("run-2"));
    assert_eq!(tree(&run), before, "the old run is byte-identical");
    assert!(d.join("run-2/checkpoint-2/model.safetensors").exists());
    wait_history(&mut h);
    let steps: Vec<(PathBuf, usize)> = h
        .state()
        .train
        .history
        .iter()
        .map(|r| (r.out.clone(), r.steps))
        .collect();
    assert_eq!(steps, vec![(run, 2), (d.join("run-2"), 2)]);
}

#[test]
fn replace_asks_twice_and_moves_the_old_run_aside() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = finished_run(d);
    let before = tree(&run);
    let mut h = view(d);
    start_until_prompt(&mut h);
    h.get_by_label("Replace…").click();
    h.run();
    h.run();
    // The second confirmation is showing; still nothing moved.
    assert!(h.state().train.prompt.as_ref().is_some_and(|p| p.confirm_replace));
    assert_eq!(tree(&run), before);
    h.get_by_label("Move it aside and start").click();
    wait_done(&mut h);
    let aside: Vec<PathBuf> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("run.replaced-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    // The old run, file for file, under its new folder.
    let moved: Vec<(PathBuf, Vec<u8>)> = tree(&aside[0])
        .into_iter()
        .map(|(p, b)| (run.join(p.strip_prefix(&aside[0]).unwrap()), b))
        .collect();
    assert_eq!(moved, before);
    assert!(
        run.join("checkpoint-2/model.safetensors").exists(),
        "the new run wrote its own"
    );
    // The history keeps the old run under its new folder.
    wait_history(&mut h);
    let outs: Vec<PathBuf> = h.state().train.history.iter().map(|r| r.out.clone()).collect();
    assert_eq!(outs, vec![aside[0].clone(), run]);
}

/// A run whose log was cut short or holds a malformed line is still listed, with a note.
#[test]
fn a_damaged_log_is_listed_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = finished_run(d);
    let log = std::fs::read_to_string(run.join("trainer_log.jsonl")).unwrap();
    let first = log.lines().next().unwrap();
    std::fs::write(
        run.join("trainer_log.jsonl"),
        format!("{first}\n{{oops\n{}", &first[..10]),
    )
    .unwrap();
    let mut h = view(d);
    wait_history(&mut h);
    let r = &h.state().train.history[0];
    // One step readable; checkpoint-2 says the run got to step 2.
    assert_eq!((r.losses.len(), r.steps), (1, 2));
    assert_eq!(r.notes.len(), 3, "{:?}", r.notes);
    h.get_by_label("Run history (1)").click();
    h.run();
    assert!(h.query_all_by_label_contains("malformed line").next().is_some());

    // The run's name is its folder's until edited; an edit is saved in run.json when the field
    // is left, and read back by the history.
    h.get_all_by_value("run").next().unwrap().focus();
    h.run();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.get_all_by_value("run").next().unwrap().type_text("first try");
    h.run();
    h.key_press(egui::Key::Tab);
    h.run();
    step_until(
        &mut h,
        Duration::from_secs(30),
        |_| {},
        |a| a.train.history.first().is_some_and(|r| r.name == "first try") && run.join("run.json").exists(),
    );
    wait_history(&mut h);
    assert_eq!(s1_studio::train::runs::run_name(&run), "first try");
}

/// `s1-studio train` on a folder with a run: an error naming the folder and the flags, the run
/// untouched; `--overwrite` moves it aside and trains.
#[test]
fn the_cli_refuses_to_overwrite_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = finished_run(d);
    let before = tree(&run);
    let args = [
        "train",
        "--model",
        "model",
        "--data",
        "rows.jsonl",
        "--out",
        "run",
        "--epochs",
        "1",
        "--batch",
        "2",
        "--grad-accum",
        "2",
        "--block-size",
        "96",
    ];
    let bin = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_s1-studio"));
        c.current_dir(d).args(args);
        c
    };
    let r = bin().output().unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("run already holds a run") && err.contains("--resume") && err.contains("--overwrite"),
        "{err}"
    );
    assert!(err.contains("run-2"), "the next free folder is suggested: {err}");
    assert_eq!(tree(&run), before);
    let r = bin().args(["--resume", "--overwrite"]).output().unwrap();
    assert_eq!(r.status.code(), Some(2), "the two flags exclude each other");
    let r = bin().arg("--overwrite").output().unwrap();
    let outp = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(outp.contains("is kept in") && outp.contains("run.replaced-"), "{outp}");
    let kept = std::fs::read_dir(d)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("run.replaced-")
        })
        .count();
    assert_eq!(kept, 1);
    assert!(run.join("trainer_log.jsonl").exists());
}

/// The data preview before Start: counts, the first example with the question outside the loss
/// and the answer inside it, and truncation once the block size is below the longest example.
#[test]
fn the_data_preview_marks_the_loss_and_counts_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::tiny_qwen(&d.join("model"), 256);
    rows(&d.join("rows.jsonl"), 8);
    let mut h = view(d);
    let preview = |h: &mut H| {
        h.get_by_label("Preview data").click();
        step_until(
            h,
            Duration::from_secs(60),
            |_| {},
            |a| a.train.previewing.is_none() && a.train.preview.is_some(),
        );
        h.run();
        h.state().train.preview.clone().unwrap().1.unwrap()
    };
    let p = preview(&mut h);
    assert_eq!((p.examples, p.truncated, p.tokens_cut, p.first_line), (8, 0, 0, 1));
    assert!(p.longest < 96 && p.loss_tokens > 0 && p.loss_tokens < p.tokens, "{p:?}");
    let outside: String = p.first.iter().filter(|s| !s.1).map(|s| s.0.as_str()).collect();
    let inside: String = p.first.iter().filter(|s| s.1).map(|s| s.0.as_str()).collect();
    assert!(
        outside.contains("What is 0 + 1?") && !inside.contains("What is"),
        "{p:?}"
    );
    assert!(inside.contains("\\boxed{1}") && !outside.contains("boxed"), "{p:?}");
    assert!(h.query_by_label("No example is truncated by the block size.").is_some());

    // One token below the longest example: it is truncated, by one token at least.
    h.state_mut().settings.train.block_size = p.longest - 1;
    h.run();
    assert!(
        h.query_all_by_label_contains("changed since").next().is_some(),
        "stale preview"
    );
    let q = preview(&mut h);
    assert!(q.truncated >= 1 && q.tokens_cut >= q.truncated, "{q:?}");
    assert_eq!(q.tokens + q.tokens_cut, p.tokens);
    assert!(h.query_all_by_label_contains("get truncated").next().is_some());
}
