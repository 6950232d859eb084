//! The Curate view driven through egui_kittest on real pool files: import (a file typed into the
//! form, and the shipped sample pool), stand-in traces with the Qwen tokenizer, the rules, domains,
//! a seeded selection and the export; the table's search and the inspector's exclude by hand.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

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

fn idle(h: &mut Harness<'static, StudioApp>) {
    step_until(h, Duration::from_secs(120), |_| {}, |a| !a.curate.is_running());
    h.run();
}

fn click_and_wait(h: &mut Harness<'static, StudioApp>, label: &str) {
    idle(h);
    h.get_by_label(label).click();
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
    h.get_by_role_and_label(Role::TextInput, "File").focus();
    h.run();
    h.get_by_role_and_label(Role::TextInput, "File")
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
    let first =
        s1_studio::curate::selection::load(&s1_studio::workspace::Workspace::open_existing(&ws_dir).unwrap(), None)
            .unwrap()
            .1;
    click_and_wait(&mut h, "Select");
    let again =
        s1_studio::curate::selection::load(&s1_studio::workspace::Workspace::open_existing(&ws_dir).unwrap(), None)
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
    let row = h.state().curate.snapshot.as_ref().unwrap().rows[visible[0]].clone();
    let key = row.key.clone();
    let shown = if row.selected {
        format!("{key} (selected)")
    } else {
        key.clone()
    };
    h.get_by_label(&shown).click();
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
    h.step();
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
    s.curate.require = "solution".into();
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
    click_and_wait(&mut h, "Run rules");
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
