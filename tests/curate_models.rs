//! The model-driven curation steps with the other back-ends: difficulty attempts by a local model
//! through the engine (a tiny random Qwen2: its answers are nonsense, so every one grades
//! incorrect), and attempts graded by an LLM judge through an endpoint with s1's Yes/No protocol.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::mock_endpoint::MockEndpoint;
use s1_studio::curate::backend::{Endpoint, Local};
use s1_studio::curate::funnel;
use s1_studio::curate::rule_config::RulesConfig;
use s1_studio::curate::steps::annotate::GenOptions;
use s1_studio::curate::steps::attempts::{self, Grader};
use s1_studio::curate::steps::{import, rules};
use s1_studio::jobs::CancelToken;
use s1_studio::workspace::Workspace;

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(rel)
}

fn aime_workspace(dir: &Path) -> Workspace {
    let mut ws = Workspace::open(dir).unwrap();
    import::import(
        &mut ws,
        &shared("pool/aime_1983_2023.jsonl"),
        &Default::default(),
        |_| {},
    )
    .unwrap();
    let cfg = RulesConfig {
        required: vec!["solution".into()],
        ..Default::default()
    };
    rules::run(&mut ws, &cfg).unwrap();
    ws
}

#[test]
fn attempts_by_a_local_model_through_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    common::tiny_qwen(&dir.path().join("model"), 512);
    let ws = aime_workspace(&dir.path().join("ws"));
    let model = s1_studio::model::load_model(&dir.path().join("model"), &Default::default()).unwrap();
    let local = Local {
        model,
        name: "tiny".into(),
        batch: 3,
    };
    let opts = GenOptions {
        max_tokens: 8,
        temperature: 0.0,
        limit: Some(7),
    };
    let r = attempts::run(
        &ws,
        &local,
        &Grader::Offline,
        &opts,
        &CancelToken::new(),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!((r.done, r.failed), (7, 0));
    let n: i64 = ws
        .conn
        .query_row(
            "SELECT count(*) FROM attempts WHERE model = 'tiny' AND grader = 'offline'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 7);
    // A rerun skips what is done.
    let again = attempts::run(
        &ws,
        &local,
        &Grader::Offline,
        &opts,
        &CancelToken::new(),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(again.skipped, 7);
}

#[test]
fn attempts_graded_by_an_llm_judge() {
    let dir = tempfile::tempdir().unwrap();
    let ws = aime_workspace(dir.path());
    // The attempter answers "right" to questions of even length, "wrong" to the others; the judge
    // says Yes exactly to "right".
    let attempter = MockEndpoint::start(
        Duration::ZERO,
        Arc::new(|q: &str| Ok(if q.len().is_multiple_of(2) { "right" } else { "wrong" }.to_string())),
    );
    let judge = MockEndpoint::start(
        Duration::ZERO,
        Arc::new(|p: &str| {
            // s1's protocol: grading.txt as the system message, then "## Problem", "## Attempt",
            // "## Correct answer".
            assert!(p.starts_with("You are an AI assistant for grading"), "{p}");
            assert!(
                p.contains("\n\n## Problem\n") && p.contains("\n\n## Correct answer\n"),
                "{p}"
            );
            Ok(if p.contains("## Attempt\nright\n") {
                "The attempt reaches the same value.\n\nYes"
            } else {
                "It does not.\nNo"
            }
            .to_string())
        }),
    );
    let opts = GenOptions {
        max_tokens: 64,
        temperature: 0.05,
        limit: Some(40),
    };
    let grader = Grader::Judge(Endpoint::new(&judge.url, "judge"));
    let r = attempts::run(
        &ws,
        &Endpoint::new(&attempter.url, "attempter"),
        &grader,
        &opts,
        &CancelToken::new(),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!((r.done, r.failed), (40, 0));
    let mut st = ws
        .conn
        .prepare("SELECT q.question, a.verdict, a.grader FROM attempts a JOIN questions q ON q.key = a.key")
        .unwrap();
    let rows: Vec<(String, String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 40);
    for (q, verdict, grader) in &rows {
        assert_eq!(grader, "judge:judge");
        let expect = if q.len().is_multiple_of(2) {
            "correct"
        } else {
            "incorrect"
        };
        assert_eq!(verdict, expect);
    }
    assert_eq!(judge.prompts().len(), 40);
    // The funnel drops the judged-correct ones among those attempted (one model: all 40 counted).
    let f = funnel::compute(&ws).unwrap();
    let correct = rows.iter().filter(|r| r.1 == "correct").count();
    let difficulty = f.stages.iter().find(|s| s.name.starts_with("difficulty")).unwrap();
    assert!(difficulty.note.contains("not yet attempted"), "{}", difficulty.note);
    assert_eq!(f.survivors.len(), 40 - correct);
}
