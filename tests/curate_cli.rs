//! `s1-studio curate ...` as a user runs it: a model step killed with SIGKILL mid-way keeps every
//! attempt it committed, and the rerun asks only for the rest; the report and the export.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::mock_endpoint::MockEndpoint;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_s1-studio"))
}

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(rel)
}

fn curate(ws: &Path, args: &[&str]) -> String {
    let out = bin()
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

fn attempts_in(ws: &Path) -> Vec<String> {
    let c =
        rusqlite::Connection::open_with_flags(ws.join("workspace.sqlite"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut st = c
        .prepare("SELECT q.question FROM attempts a JOIN questions q ON q.key = a.key")
        .unwrap();
    st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

#[test]
fn a_killed_attempt_step_resumes_without_losing_or_repeating_work() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let ws = ws.as_path();
    let out = curate(ws, &["import", shared("pool/aime_1983_2023.jsonl").to_str().unwrap()]);
    assert!(out.contains("975 new questions"), "{out}");
    curate(ws, &["rules", "--require", "solution"]);
    curate(ws, &["decontam"]);
    let report = curate(ws, &["report"]);
    let eligible: usize = report
        .lines()
        .find(|l| l.starts_with("decontaminated"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no decontaminated stage in:\n{report}"));
    assert!(eligible > 500, "{report}");

    let mock = MockEndpoint::start(
        Duration::from_millis(15),
        Arc::new(|_p: &str| Ok("\\boxed{7}".to_string())),
    );
    let run = |ws: &Path| {
        let mut c = bin();
        c.args(["curate", "--workspace"]).arg(ws).args([
            "attempt",
            "--endpoint",
            &mock.url,
            "--endpoint-model",
            "mock",
            "--concurrency",
            "2",
        ]);
        c
    };
    let mut child = run(ws).stdout(std::process::Stdio::null()).spawn().unwrap();
    let t0 = Instant::now();
    while attempts_in(ws).len() < 40 {
        assert!(t0.elapsed() < Duration::from_secs(60), "no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = attempts_in(ws);
    assert!(before.len() >= 40 && before.len() < eligible, "{}", before.len());
    // Requests the killed process had in flight still reach the mock; let them land.
    std::thread::sleep(Duration::from_millis(200));
    let asked_before = mock.prompts().len();

    let out = run(ws).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "{} done, 0 failed, {} already done",
            eligible - before.len(),
            before.len()
        )),
        "{text}"
    );
    let after = attempts_in(ws);
    assert_eq!(after.len(), eligible);
    // Nothing committed before the kill was asked again; only the requests in flight were.
    let log = mock.prompts();
    for q in &before {
        assert_eq!(log.iter().filter(|p| *p == q).count(), 1, "asked twice: {q}");
    }
    let lost_in_flight = asked_before - before.len();
    assert_eq!(log.len() - eligible, lost_in_flight);
    assert!(
        lost_in_flight <= 2 * 2,
        "at most the requests in flight and their queued replies: {lost_in_flight}"
    );

    // The funnel: every AIME answer is an integer, none of them 7 in a way that... the mock's 7 is
    // correct exactly where the reference is 7.
    let report = curate(ws, &["report"]);
    let hard: usize = report
        .lines()
        .find(|l| l.starts_with("difficulty"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no difficulty stage in:\n{report}"));
    let sevens = std::fs::read_to_string(shared("pool/aime_1983_2023.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["answer"] == "7")
        .count();
    assert!(hard + sevens >= eligible && hard < eligible, "{report}");
}

#[test]
fn errors_name_the_workspace_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["curate", "--workspace"])
        .arg(dir.path().join("none"))
        .arg("report")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("none") && err.contains("curate import"), "{err}");

    let bad = dir.path().join("pool.jsonl");
    std::fs::write(
        &bad,
        "{\"problem\": \"What is 1+1?\", \"answer\": \"2\"}\nnot json\n{\"problem\": \"\"}\n",
    )
    .unwrap();
    let ws = dir.path().join("ws");
    let out = curate(&ws, &["import", bad.to_str().unwrap()]);
    assert!(out.contains("1 new questions") && out.contains("2 malformed"), "{out}");
    assert!(
        out.contains("pool.jsonl:2: not valid JSON") && out.contains("pool.jsonl:3: empty `problem`"),
        "{out}"
    );

    let other = dir.path().join("other.jsonl");
    std::fs::write(&other, "{\"prompt_text\": \"Q\"}\n").unwrap();
    let out = bin()
        .args(["curate", "--workspace"])
        .arg(&ws)
        .arg("import")
        .arg(&other)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--map question=COLUMN") && err.contains("prompt_text"),
        "{err}"
    );
    let out = curate(
        &ws,
        &["import", other.to_str().unwrap(), "--map", "question=prompt_text"],
    );
    assert!(out.contains("1 new questions"), "{out}");
}

/// The export loads in Hugging Face `datasets` (scripts/check_export_datasets.py). Needs a
/// Python with `datasets`: S1_PYTHON, or `python3`; scripts/test.sh provides one.
#[test]
fn export_loads_in_hf_datasets() {
    let py = std::env::var("S1_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&py).args(["-c", "import datasets"]).output();
    assert!(
        probe.map(|o| o.status.success()).unwrap_or(false),
        "this test needs a Python with `datasets` (S1_PYTHON={py}): `pip install datasets`, or run scripts/test.sh"
    );
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let ws = ws.as_path();
    curate(
        ws,
        &[
            "import",
            shared("pool/olympiadbench_en_comp_675.jsonl").to_str().unwrap(),
        ],
    );
    curate(
        ws,
        &[
            "traces",
            "--from-column",
            "solution",
            "--tokenizer",
            common::qwen_tokenizer().to_str().unwrap(),
        ],
    );
    curate(ws, &["rules"]);
    curate(ws, &["classify", "--from-subject"]);
    let out = curate(ws, &["select", "--target", "200", "--seed", "5"]);
    assert!(out.contains("200 of"), "{out}");
    let (jl, pq) = (dir.path().join("s.jsonl"), dir.path().join("s.parquet"));
    curate(ws, &["export", "--out", jl.to_str().unwrap(), pq.to_str().unwrap()]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check_export_datasets.py");
    let out = Command::new(&py).arg(script).arg(&pq).arg(&jl).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("ok: ") && text.contains("200 rows"),
        "{text}"
    );
}

/// An import killed mid-way leaves nothing half-done (one transaction): the rerun imports the whole
/// file, once.
#[test]
fn a_killed_import_is_simply_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let pool = dir.path().join("big.jsonl");
    {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&pool).unwrap());
        for i in 0..300_000 {
            writeln!(
                w,
                "{}",
                serde_json::json!({"problem": format!("What is {i} plus {i} times the number of sides of a hexagon?"),
                                   "solution": format!("It is {}.", i * 7), "answer": (i * 7).to_string()})
            )
            .unwrap();
        }
    }
    let ws = dir.path().join("ws");
    let mut child = bin()
        .args(["curate", "--workspace"])
        .arg(&ws)
        .arg("import")
        .arg(&pool)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill while the import writes its transaction, before the commit completes: alone on the
    // workspace it journals in rollback mode (the journal exists from its first write to the end
    // of the commit); otherwise the WAL grows.
    let wal = ws.join("workspace.sqlite-wal");
    let journal = ws.join("workspace.sqlite-journal");
    let t0 = Instant::now();
    let mut journal_since: Option<Instant> = None;
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import finished before it could be killed"
        );
        if journal.exists() {
            let since = *journal_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_millis(200) {
                break;
            }
        } else {
            journal_since = None;
        }
        if std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) >= 1 << 20 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let out = curate(&ws, &["import", pool.to_str().unwrap()]);
    assert!(out.contains("300000 rows, 300000 new questions, 0 duplicates"), "{out}");
    let c = rusqlite::Connection::open(ws.join("workspace.sqlite")).unwrap();
    let (n, imports): (i64, i64) = c
        .query_row(
            "SELECT (SELECT count(*) FROM questions), (SELECT count(*) FROM imports)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((n, imports), (300_000, 1));
}

/// `bench curate` on a small synthetic pool: every step runs and the figures are written.
#[test]
fn the_curation_bench_runs_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out = bin()
        .args(["bench", "curate", "--rows", "5000", "--dir"])
        .arg(dir.path().join("bench"))
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench curate failed:\n{text}");
    assert!(text.contains("select: 1000 of "), "{text}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let steps: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps.len(), 5, "{steps:?}");
    let sum: f64 = v["steps"].as_array().unwrap()[..4]
        .iter()
        .map(|s| s["s"].as_f64().unwrap())
        .sum();
    assert!((v["import_to_selection_s"].as_f64().unwrap() - sum).abs() < 1e-9);
    assert_eq!(v["rows"], 5000);
}

/// s1's options from the command line: the cross-source decontamination and the settings of the
/// funnel (source names, undecided verdicts), s1's by default.
#[test]
fn s1_options_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let ws = ws.as_path();
    for (file, source) in [
        ("pool/math_train.jsonl", "train"),
        ("pool/math_test_minus_math500.jsonl", "test"),
    ] {
        curate(ws, &["import", "--source", source, shared(file).to_str().unwrap()]);
    }
    let out = curate(ws, &["decontam", "--cross-source"]);
    assert!(out.contains("against earlier sources (in import order):"), "{out}");
    // The first source has nothing before it (its questions that overlap an evaluation set are
    // not checked, nor do they join the earlier sources).
    assert!(
        out.lines()
            .any(|l| l.starts_with("    train: ") && l.contains(" questions checked, 0 share")),
        "{out}"
    );
    let n: usize = out
        .lines()
        .find(|l| l.starts_with("    test: "))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(n > 100, "{out}");
    let report = curate(ws, &["report"]);
    assert!(report.contains("and with earlier sources"), "{report}");
    let out = curate(ws, &["settings"]);
    assert!(out.contains("source names: s1\nundecided verdicts: exclude"), "{out}");
    let out = curate(ws, &["settings", "--source-names", "loose", "--undecided", "keep"]);
    assert!(out.contains("source names: loose\nundecided verdicts: keep"), "{out}");
}
