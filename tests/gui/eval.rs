//! The Evaluate view driven through egui_kittest, finding widgets by label: a tiny sweep over a
//! MATH500 slice typed into the form, Run, samples and the metrics arriving live, the verdict
//! filter of the sample browser, a sample's details; a bad budget list says what is wrong.

use crate::common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::gui::{app, harness, step_until};
use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use s1_studio::grade::Verdict;
use s1_studio::jobs::job::Job;
use s1_studio::jobs::{EvalEvent, EvalJob};
use s1_studio::ui::eval_state::EvalStatus;
use s1_studio::ui::settings::View;
use s1_studio::ui::Settings;

fn form(model: &Path, out: &Path, budgets: &str) -> Settings {
    let mut s = Settings {
        view: View::Evaluate,
        ..Default::default()
    };
    s.eval.model = model.display().to_string();
    s.eval.out = out.display().to_string();
    s.eval.budgets = budgets.into();
    s.eval.waits = "0,1".into();
    s.eval.limit = "2".into();
    s.eval.max_tokens = "40".into();
    s
}

#[test]
fn a_tiny_sweep_from_the_view() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::tiny_qwen(&d.join("model"), 256);
    let mut h = harness(app(form(&d.join("model"), &d.join("out"), "8")));
    h.run();
    // The budgets are typed into the form.
    h.get_by_role_and_label(Role::TextInput, "Budgets").focus();
    h.run();
    h.get_by_role_and_label(Role::TextInput, "Budgets").type_text(",16");
    h.run();
    assert_eq!(h.state().settings.eval.budgets, "8,16");
    h.get_by_label("Run").click();
    let mut saw_live = false;
    let mut saw_eta = false;
    step_until(
        &mut h,
        Duration::from_secs(120),
        |h| {
            let e = &h.state().eval;
            if e.is_running() && e.metrics.is_some() {
                saw_live = true;
            }
            if e.is_running() && e.eta().is_some() && h.query_by_label_contains(" s left").is_some() {
                saw_eta = true;
            }
        },
        |a| !a.eval.is_running(),
    );
    let e = &h.state().eval;
    assert_eq!(e.status, EvalStatus::Done, "{:?}", e.status);
    assert!(saw_live, "no sample arrived while the sweep ran");
    assert!(saw_eta, "no ETA was shown while the sweep ran");
    assert_eq!(e.samples.len(), 8, "2 questions x (2 budgets x 2 waits)");
    let m = e.metrics.clone().unwrap();
    assert_eq!(m.settings.len(), 4);
    assert_eq!(m.control, 100.0);
    assert!(d.join("out/samples.jsonl").exists());
    // The view takes the CLI's path (eval::run), so it writes the same files.
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("out/metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["control"], 100.0);
    assert_eq!(metrics["benchmark"], "math500");
    assert!(std::fs::read_to_string(d.join("out/scaling.svg"))
        .unwrap()
        .contains("<svg"));
    same_files_as_the_cli(&d.join("model"), &d.join("out"), &d.join("out-cli"));
    h.run();
    h.get_by_label_contains("Control 100%");
    // Filter to undecided answers and open one: a random tiny model never ends its thinking, so
    // every answer is forced, and s1's extraction reads the noise after `Final Answer:`, which
    // the offline rules cannot compare.
    h.state_mut().eval.filter = Some(Verdict::Undecided);
    h.run();
    h.get_by_label_contains("8 of 8 samples");
    h.get_by_label_contains("max=16 waits=1 · question test/precalculus/807.json")
        .click();
    h.run();
    assert!(h.state().eval.selected.is_some());
    h.get_by_label_contains("reference: \\left( 3, \\frac{\\pi}{2} \\right)");
    h.state_mut().eval.filter = Some(Verdict::Correct);
    h.run();
    h.get_by_label_contains("0 of 8 samples");
}

/// `s1-studio eval` with the settings the view ran (the form above: budgets 8,16, waits 0,1,
/// 2 questions, 40 tokens, greedy, batch 8) writes the same files, with the same metrics keys
/// and, greedy on the same model, the same numbers.
fn same_files_as_the_cli(model: &Path, view_out: &Path, cli_out: &Path) {
    let r = std::process::Command::new(env!("CARGO_BIN_EXE_s1-studio"))
        .args(["eval", "--model"])
        .arg(model)
        .args([
            "--bench",
            "math500",
            "--limit",
            "2",
            "--max-thinking",
            "8,16",
            "--waits",
            "0,1",
        ])
        .args(["--max-tokens", "40", "--batch", "8", "--out"])
        .arg(cli_out)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let names = |d: &Path| {
        let mut n: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(view_out), names(cli_out));
    assert_eq!(names(cli_out), ["metrics.json", "samples.jsonl", "scaling.svg"]);
    let metrics = |d: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("metrics.json")).unwrap()).unwrap()
    };
    let (view, cli) = (metrics(view_out), metrics(cli_out));
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&view), keys(&cli));
    for k in ["control", "performance", "settings", "benchmark", "model"] {
        assert_eq!(view[k], cli[k], "{k}");
    }
}

/// "choose a model first" goes as soon as a model is chosen, here the one loaded in Chat, which
/// the view offers as the model to evaluate.
#[test]
fn the_loaded_model_is_offered_and_the_stale_error_clears() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = d.join("model");
    common::tiny_qwen(&model, 256);
    let mut h = harness(app(form(Path::new(""), &d.join("out"), "8")));
    h.run();
    h.get_by_label("Run").click();
    h.run();
    h.get_by_label("choose a model first");
    assert!(h.query_by_label_contains("Use the model loaded in Chat").is_none());
    h.state().command(s1_studio::ui::ChatCommand::OpenModel(model.clone()));
    step_until(
        &mut h,
        Duration::from_secs(60),
        |_| {},
        |a| matches!(a.model, s1_studio::ui::ModelStatus::Loaded(_)),
    );
    h.run();
    h.get_by_label("Use the model loaded in Chat (model)").click();
    h.run();
    h.run();
    assert_eq!(h.state().settings.eval.model, model.display().to_string());
    assert_eq!(h.state().eval.status, EvalStatus::Idle);
    assert!(
        h.query_by_label("choose a model first").is_none(),
        "the stale error stayed"
    );
    assert!(
        h.query_by_label_contains("Use the model loaded in Chat").is_none(),
        "offered while already chosen"
    );
    // A model typed by hand clears it too.
    h.state_mut().settings.eval.model.clear();
    h.run();
    h.get_by_label("Run").click();
    h.run();
    h.get_by_label("choose a model first");
    h.get_by_role_and_label(Role::TextInput, "Model").focus();
    h.run();
    h.get_by_role_and_label(Role::TextInput, "Model").type_text("m.gguf");
    h.run();
    h.run();
    assert!(h.query_by_label("choose a model first").is_none());
}

#[test]
fn a_bad_budget_list_says_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut h = harness(app(form(&d.join("model"), &d.join("out"), "8,many")));
    h.run();
    h.get_by_label("Run").click();
    h.run();
    assert_eq!(
        h.state().eval.status,
        EvalStatus::Failed("budgets: `many`: expected a number of tokens, `auto` or `unlimited`".into())
    );
    h.get_by_label_contains("expected a number of tokens");
}

/// A sweep whose work panics ends as Failed, with the panic's message on screen, instead of
/// showing Running forever. The job is made from a panicking closure through the same public
/// runner (`Job::run`) that `EvalJob::spawn` uses and handed to the view as a started job, so the
/// view's own event handling and drawing are what is tested, with no test hook in the app.
#[test]
fn a_crashed_sweep_shows_failed() {
    let mut h = harness(app(Settings {
        view: View::Evaluate,
        ..Default::default()
    }));
    h.run();
    let job: EvalJob = Job::run("s1-eval", Arc::new(|| {}), |_, _: &mut dyn FnMut(EvalEvent)| {
        panic!("injected into the sweep")
    })
    .unwrap();
    h.state_mut().eval.job = Some(job);
    h.state_mut().eval.status = EvalStatus::Running;
    step_until(&mut h, Duration::from_secs(20), |_| {}, |a| !a.eval.is_running());
    match &h.state().eval.status {
        EvalStatus::Failed(e) => assert!(e.contains("s1-eval crashed: injected into the sweep"), "{e}"),
        other => panic!("{other:?}"),
    }
    h.run();
    h.get_by_label_contains("injected into the sweep");
}

/// A typed output folder that cannot be made is named, before the model is loaded (the check
/// runs on the sweep's thread, in the path the CLI takes too).
#[test]
fn an_output_folder_that_cannot_be_made_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = file.join("out");
    let mut h = harness(app(form(&dir.path().join("no-model"), &out, "8")));
    h.run();
    h.get_by_label("Run").click();
    step_until(&mut h, Duration::from_secs(30), |_| {}, |a| !a.eval.is_running());
    match &h.state().eval.status {
        EvalStatus::Failed(e) => assert!(
            e.starts_with(&format!("output folder {}: cannot create it", out.display())),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
    h.run();
    h.get_by_label_contains(&format!("output folder {}", out.display()));
}
