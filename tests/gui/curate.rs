//! The Curate view driven through egui_kittest on real pool files: import (a file typed into the
//! form, and the shipped sample pool), stand-in traces with the Qwen tokenizer, the rules, domains,
//! a seeded selection and the export; the table's search and the inspector's exclude by hand;
//! the rule configuration shared with the command line; Include while another connection holds
//! the workspace's write lock and while a long step runs, with frames coming all along.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::gui::{app, harness, step_until};
use common::mock_endpoint::MockEndpoint;
use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use s1_studio::ui::settings::View;
use s1_studio::ui::{Settings, StudioApp};

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(rel)
}

/// Runs `s1-studio curate --workspace WS ARGS...` and returns its output.
fn cli(ws: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_s1-studio"))
        .arg("curate")
        .arg("--workspace")
        .arg(ws)
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "curate {args:?} failed:\n{text}");
    text
}

/// Replaces the text of the input labelled `label`.
fn retype(h: &mut Harness<'static, StudioApp>, label: &str, text: &str) {
    h.get_by_role_and_label(Role::TextInput, label).focus();
    h.run();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.run();
    h.get_by_role_and_label(Role::TextInput, label).type_text(text);
    h.run();
}

fn idle(h: &mut Harness<'static, StudioApp>) {
    step_until(h, Duration::from_secs(120), |_| {}, |a| !a.curate.is_running());
    h.run();
}

fn click_and_wait(h: &mut Harness<'static, StudioApp>, label: &str) {
    idle(h);
    // As a screen reader would: the lower steps (with each step's result beside its button)
    // may sit below the fold of the steps' scroll area.
    h.get_by_label(label).click_accesskit();
    h.step();
    idle(h);
    assert!(
        h.state().curate.error.is_none(),
        "{label}: {:?}",
        h.state().curate.error
    );
}

#[test]
fn import_rules_select_export_from_the_view() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Settings {
        view: View::Curate,
        workspace: Some(dir.path().join("ws")),
        ..Default::default()
    };
    s.curate.tokenizer = common::qwen_tokenizer().display().to_string();
    s.curate.export_path = dir.path().join("out/s1k").display().to_string();
    s.curate.target = 1000;
    s.curate.seed = 11;
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    let mut h = harness(app(s));
    idle(&mut h);
    assert_eq!(h.state().curate.snapshot.as_ref().unwrap().rows.len(), 0);

    // A real pool file typed into the form.
    let file = shared("pool/olympiadbench_en_comp_675.jsonl");
    h.get_by_role_and_label(Role::TextInput, "Files").focus();
    h.run();
    h.get_by_role_and_label(Role::TextInput, "Files")
        .type_text(&file.display().to_string());
    h.run();
    click_and_wait(&mut h, "Import");
    assert_eq!(h.state().curate.snapshot.as_ref().unwrap().rows.len(), 675);
    // The sample pool adds AIME and the MATH test problems (duplicates merged).
    click_and_wait(&mut h, "Use the sample pool");
    let n = h.state().curate.snapshot.as_ref().unwrap().rows.len();
    assert!(n > 6000 && n < 6150, "{n}");

    click_and_wait(&mut h, "Solutions as traces");
    click_and_wait(&mut h, "Run rules");
    click_and_wait(&mut h, "Domains from subjects");
    let snap = h.state().curate.snapshot.clone().unwrap();
    let asy = snap.rules.iter().find(|r| r.rule.name() == "asy").unwrap();
    assert!(asy.hits > 100, "{asy:?}");
    assert!(snap.rows.iter().all(|r| r.tokens.is_some() || r.dropped_at.is_some()));
    assert!(!snap.lengths.is_empty() && !snap.domains.is_empty());

    click_and_wait(&mut h, "Select");
    let snap = h.state().curate.snapshot.clone().unwrap();
    assert_eq!(snap.selection, Some(("s1-seed11".to_string(), 1000)));
    assert_eq!(snap.rows.iter().filter(|r| r.selected).count(), 1000);
    assert_eq!(snap.stages.last().unwrap().name, "selected");
    // The same seed again draws the same 1,000, in the same order.
    let ws_dir = dir.path().join("ws");
    let first = s1_studio::curate::steps::selection::load(
        &s1_studio::workspace::Workspace::open_existing(&ws_dir).unwrap(),
        None,
    )
    .unwrap()
    .1;
    click_and_wait(&mut h, "Select");
    let again = s1_studio::curate::steps::selection::load(
        &s1_studio::workspace::Workspace::open_existing(&ws_dir).unwrap(),
        None,
    )
    .unwrap()
    .1;
    assert_eq!(first, again);

    click_and_wait(&mut h, "Export");
    let rows = s1_studio::train::data::read_rows(
        &dir.path().join("out/s1k.parquet"),
        &s1_studio::train::data::TraceColumns::Auto,
    )
    .unwrap();
    assert_eq!(rows.len(), 1000);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out/s1k.jsonl"))
            .unwrap()
            .lines()
            .count(),
        1000
    );

    // The table: search narrows it; a click opens the inspector; Exclude is persisted.
    h.get_by_role_and_label(Role::TextInput, "Search").focus();
    h.run();
    h.get_by_role_and_label(Role::TextInput, "Search").type_text("xenia");
    h.run();
    let visible = h.state().curate.visible.clone();
    assert!(!visible.is_empty() && visible.len() < 5, "{}", visible.len());
    let key = h.state().curate.snapshot.as_ref().unwrap().rows[visible[0]].key.clone();
    // The key cell says the key alone, selected by the sampler or not.
    h.get_by_label(&key).click();
    // The inspector reads the question off the UI thread.
    step_until(
        &mut h,
        Duration::from_secs(30),
        |_| {},
        |a| a.curate.detail.as_ref().is_some_and(|d| d.key == key),
    );
    h.run();
    assert_eq!(
        h.state().curate.detail.as_ref().map(|d| d.key.clone()),
        Some(key.clone())
    );
    assert!(h
        .state()
        .curate
        .detail
        .as_ref()
        .unwrap()
        .question
        .to_lowercase()
        .contains("xenia"));
    h.get_by_label("Exclude").click();
    // Marked off the UI thread too; the pool is read again after.
    step_until(
        &mut h,
        Duration::from_secs(30),
        |_| {},
        |a| {
            a.curate
                .snapshot
                .as_ref()
                .is_some_and(|s| s.rows.iter().any(|r| r.key == key && r.manual.is_some()))
        },
    );
    idle(&mut h);
    let snap = h.state().curate.snapshot.clone().unwrap();
    let hand = snap.stages.iter().find(|s| s.name == "not excluded by hand").unwrap();
    assert_eq!(hand.dropped, 1);
    let ws = s1_studio::workspace::Workspace::open_existing(&dir.path().join("ws")).unwrap();
    let manual: Option<String> = ws
        .conn
        .query_row("SELECT manual FROM questions WHERE key = ?1", [&key], |r| r.get(0))
        .unwrap();
    assert_eq!(manual.as_deref(), Some("exclude"));
}

/// Difficulty attempts by a local model from the view (a tiny random Qwen2 through the engine:
/// every answer is nonsense, so nothing is dropped), with progress while it runs.
#[test]
fn attempts_by_a_local_model_from_the_view() {
    let dir = tempfile::tempdir().unwrap();
    common::tiny_qwen(&dir.path().join("model"), 512);
    let mut s = Settings {
        view: View::Curate,
        workspace: Some(dir.path().join("ws")),
        ..Default::default()
    };
    s.curate.import_path = shared("pool/olympiadbench_en_comp_675.jsonl").display().to_string();
    s.curate.use_local = true;
    s.curate.local_model = dir.path().join("model").display().to_string();
    s.curate.batch = 8;
    s.curate.max_tokens = 4;
    // A judge that says No to everything (s1's protocol), and an extra eval file holding one of
    // the pool's questions.
    let judge = MockEndpoint::start(
        Duration::ZERO,
        std::sync::Arc::new(|_p: &str| Ok("Not the same.\nNo".into())),
    );
    s.curate.judge_endpoint = judge.url.clone();
    s.curate.judge_model = "mock-judge".into();
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(shared("pool/olympiadbench_en_comp_675.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let eval = dir.path().join("my_eval.jsonl");
    std::fs::write(
        &eval,
        serde_json::json!({"question": first["question"], "answer": "2"}).to_string() + "\n",
    )
    .unwrap();
    s.curate.eval_files = eval.display().to_string();
    let mut h = harness(app(s));
    idle(&mut h);
    click_and_wait(&mut h, "Import");
    // The required fields are the workspace's; typed here, they go with Run rules.
    retype(&mut h, "Required", "solution");
    click_and_wait(&mut h, "Run rules");
    assert_eq!(
        h.state().curate.snapshot.as_ref().unwrap().rules_config.required,
        ["solution"]
    );
    click_and_wait(&mut h, "Decontaminate");
    {
        let ws = s1_studio::workspace::Workspace::open_existing(&dir.path().join("ws")).unwrap();
        let n: i64 = ws
            .conn
            .query_row("SELECT count(*) FROM flags WHERE rule = 'decontam:my_eval'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 1);
    }
    let snap = h.state().curate.snapshot.clone().unwrap();
    let eligible = snap.stages.iter().find(|s| s.name == "decontaminated").unwrap().kept;
    assert!(eligible > 500, "{eligible} {:?}", snap.stages);
    idle(&mut h);
    h.get_by_label("Attempts").click();
    h.step();
    let mut saw_progress = false;
    step_until(
        &mut h,
        Duration::from_secs(300),
        |h| saw_progress |= h.state().curate.progress.0 > 0,
        |a| !a.curate.is_running(),
    );
    h.run();
    assert!(h.state().curate.error.is_none(), "{:?}", h.state().curate.error);
    assert!(saw_progress);
    let ws = s1_studio::workspace::Workspace::open_existing(&dir.path().join("ws")).unwrap();
    let n: i64 = ws
        .conn
        .query_row(
            "SELECT count(*) FROM attempts WHERE model = 'model' AND grader = 'judge:mock-judge' AND verdict = 'incorrect'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(judge.prompts().len(), n as usize);
    // Questions longer than the tiny model's 512-token context fail alone (recorded), not their batch.
    let failed: i64 = ws
        .conn
        .query_row("SELECT count(*) FROM failures WHERE step = 'attempt'", [], |r| r.get(0))
        .unwrap();
    assert!(failed < 30, "{failed}");
    assert_eq!(n as usize + failed as usize, eligible, "{:?}", snap.stages);
    let snap = h.state().curate.snapshot.as_ref().unwrap();
    let difficulty = snap.stages.iter().find(|s| s.name.starts_with("difficulty")).unwrap();
    assert!(difficulty.note.contains("models: model"), "{}", difficulty.note);
    assert_eq!(
        difficulty.kept, n as usize,
        "unattempted questions wait for their attempt"
    );
}

fn rules_on(ws: &Path) -> String {
    let ws = s1_studio::workspace::Workspace::open_existing(ws).unwrap();
    ws.setting("rules.enabled").unwrap().unwrap_or_default()
}

/// The rule configuration lives in the workspace: a rule the command line switched off stays off
/// when the view runs the rules (the view used to send its own list), and a rule the view
/// switches on stays on for the command line.
#[test]
fn rules_switched_on_the_command_line_stay_so_in_the_view_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    cli(
        &ws,
        &[
            "import",
            shared("pool/olympiadbench_en_comp_675.jsonl").to_str().unwrap(),
        ],
    );
    let out = cli(&ws, &["rules", "--disable", "asy", "--require", "solution"]);
    assert!(out.lines().any(|l| l.starts_with("asy") && l.contains(" no ")), "{out}");
    let s = Settings {
        view: View::Curate,
        workspace: Some(ws.clone()),
        ..Default::default()
    };
    let mut h = harness(app(s));
    idle(&mut h);
    click_and_wait(&mut h, "Run rules");
    assert!(!rules_on(&ws).split(',').any(|r| r == "asy"), "{}", rules_on(&ws));
    let snap = h.state().curate.snapshot.clone().unwrap();
    assert!(!snap.rules.iter().find(|c| c.rule.name() == "asy").unwrap().enabled);
    assert_eq!(snap.rules_config.required, ["solution"]);

    // Switched on in the view: stored at once, and the command line's next run keeps it on
    // (and keeps the required fields).
    let asy = snap.rules.iter().find(|c| c.rule.name() == "asy").unwrap();
    let label = format!("{} ({})", asy.rule.describe(), asy.hits);
    h.get_by_role_and_label(Role::CheckBox, &label).click();
    h.step();
    idle(&mut h);
    assert!(rules_on(&ws).split(',').any(|r| r == "asy"), "{}", rules_on(&ws));
    let out = cli(&ws, &["rules"]);
    assert!(
        out.lines().any(|l| l.starts_with("asy") && l.contains(" yes ")),
        "{out}"
    );
    let required = s1_studio::workspace::Workspace::open_existing(&ws)
        .unwrap()
        .setting("rules.required")
        .unwrap();
    assert_eq!(required.as_deref(), Some("solution"));
}

/// Opens the view on a workspace holding the 675 OlympiadBench questions and inspects the first.
fn inspecting_the_first_question(dir: &Path, s: impl FnOnce(&mut Settings)) -> (Harness<'static, StudioApp>, String) {
    let ws = dir.join("ws");
    cli(
        &ws,
        &[
            "import",
            shared("pool/olympiadbench_en_comp_675.jsonl").to_str().unwrap(),
        ],
    );
    let mut settings = Settings {
        view: View::Curate,
        workspace: Some(ws),
        ..Default::default()
    };
    s(&mut settings);
    let mut h = harness(app(settings));
    idle(&mut h);
    let key = h.state().curate.snapshot.as_ref().unwrap().rows[0].key.clone();
    h.get_by_label(&key).click();
    step_until(
        &mut h,
        Duration::from_secs(30),
        |_| {},
        |a| a.curate.detail.as_ref().is_some_and(|d| d.key == key),
    );
    h.run();
    (h, key)
}

/// Frames for `how_long`, each under a second (the workspace's busy timeout is ten: a frame that
/// waited on SQLite would take that long). A freeze check, not a benchmark.
fn frames_keep_coming(h: &mut Harness<'static, StudioApp>, how_long: Duration) {
    let start = Instant::now();
    let mut frames = 0;
    while start.elapsed() < how_long {
        let t = Instant::now();
        h.step();
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "frame {frames} took {:?}: the UI thread waited",
            t.elapsed()
        );
        frames += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn manual_in(ws: &Path, key: &str) -> Option<String> {
    let c = rusqlite::Connection::open(ws.join("workspace.sqlite")).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c.query_row("SELECT manual FROM questions WHERE key = ?1", [key], |r| r.get(0))
        .unwrap()
}

/// Include while another connection holds the workspace's write lock (as a step's transaction
/// does): the window keeps drawing, and the mark lands once the lock is released.
#[test]
fn include_while_the_workspace_is_locked_keeps_frames_coming() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, key) = inspecting_the_first_question(dir.path(), |_| {});
    let ws = dir.path().join("ws");
    let lock = rusqlite::Connection::open(ws.join("workspace.sqlite")).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    h.get_by_label("Include").click();
    frames_keep_coming(&mut h, Duration::from_secs(2));
    assert_eq!(h.state().curate.detail.as_ref().unwrap().manual, None);
    lock.execute_batch("ROLLBACK").unwrap();
    step_until(
        &mut h,
        Duration::from_secs(30),
        |_| {},
        |a| {
            a.curate.detail.as_ref().and_then(|d| d.manual) == Some(s1_studio::workspace::Manual::Include)
                && a.curate
                    .snapshot
                    .as_ref()
                    .is_some_and(|s| s.rows.iter().any(|r| r.key == key && r.manual.is_some()))
        },
    );
    assert!(h.state().curate.error.is_none(), "{:?}", h.state().curate.error);
    assert_eq!(manual_in(&ws, &key).as_deref(), Some("include"));
}

/// Include while a long step runs (difficulty attempts against a slow endpoint): the mark is
/// stored and shown before the step ends, then Stop ends it.
#[test]
fn include_while_attempts_run() {
    let dir = tempfile::tempdir().unwrap();
    let slow = MockEndpoint::start(
        Duration::from_millis(100),
        std::sync::Arc::new(|_p: &str| Ok("\\boxed{7}".into())),
    );
    let url = slow.url.clone();
    let (mut h, key) = inspecting_the_first_question(dir.path(), |s| {
        s.curate.endpoint = url;
        s.curate.endpoint_model = "slow".into();
        s.curate.concurrency = 1;
    });
    h.get_by_label("Attempts").click();
    step_until(&mut h, Duration::from_secs(60), |_| {}, |a| a.curate.progress.0 > 0);
    h.get_by_label("Include").click();
    let start = Instant::now();
    while h.state().curate.detail.as_ref().and_then(|d| d.manual).is_none() {
        let t = Instant::now();
        h.step();
        assert!(t.elapsed() < Duration::from_secs(1), "a frame took {:?}", t.elapsed());
        assert!(start.elapsed() < Duration::from_secs(30), "the mark never landed");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        h.state().curate.is_running(),
        "the step ended first; make the endpoint slower"
    );
    assert_eq!(manual_in(&dir.path().join("ws"), &key).as_deref(), Some("include"));
    // Stop sits below the steps (out of view): pressed as a screen reader would.
    let stop = Instant::now();
    h.get_by_label("Stop").click_accesskit();
    h.step();
    idle(&mut h);
    assert!(
        stop.elapsed() < Duration::from_secs(30),
        "Stop took {:?}",
        stop.elapsed()
    );
    let snap = h.state().curate.snapshot.as_ref().unwrap();
    assert!(snap.rows.iter().any(|r| r.key == key && r.manual.is_some()));
}

/// Settings saved before the rule configuration moved into the workspace still load (their
/// `rules_off` and `require` are ignored).
#[test]
fn old_settings_with_the_rule_choice_still_load() {
    let old = r#"{"view":"Curate","curate":{"rules_off":["asy"],"require":"solution","seed":7,"target":500}}"#;
    let s: Settings = serde_json::from_str(old).unwrap();
    assert_eq!((s.curate.seed, s.curate.target), (7, 500));
}
