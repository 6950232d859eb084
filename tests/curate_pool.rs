//! The whole funnel on the real pool files of ../shared/data, through the library as the CLI and
//! the Curate view use it. Offline there is no reasoning model to write traces, so the pool's
//! reference solutions stand in for traces (their lengths from the real Qwen tokenizer); the
//! difficulty attempts and the domain labels come from a local OpenAI-compatible mock endpoint, so
//! the endpoint client (concurrency, retries, parsing) runs for real.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::mock_endpoint::MockEndpoint;
use s1_studio::curate::backend::Endpoint;
use s1_studio::curate::funnel;
use s1_studio::curate::quality::Rule;
use s1_studio::curate::rule_config::RulesConfig;
use s1_studio::curate::steps::annotate::{self, GenOptions};
use s1_studio::curate::steps::attempts::{self, Grader};
use s1_studio::curate::steps::domains;
use s1_studio::curate::steps::traces;
use s1_studio::curate::steps::{decontam, export, import, rules, selection};
use s1_studio::jobs::CancelToken;
use s1_studio::workspace::Workspace;

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(rel)
}

const POOL: [&str; 4] = [
    "pool/aime_1983_2023.jsonl",
    "pool/math_test_minus_math500.jsonl",
    "pool/math_train.jsonl",
    "pool/olympiadbench_en_comp_675.jsonl",
];

/// Question texts of a pool file, read independently of the importer.
fn questions_of(rel: &str) -> Vec<(String, serde_json::Value)> {
    std::fs::read_to_string(shared(rel))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let q = v
                .get("problem")
                .or(v.get("question"))
                .unwrap()
                .as_str()
                .unwrap()
                .to_string();
            (q, v)
        })
        .collect()
}

/// A stand-in classifier: a domain code from words of the question (never code 99, which is not
/// an MSC code, so a reply "99" is a failure the step must record).
fn classify_reply(prompt: &str) -> Result<String, u16> {
    // s1's user message: "## Question\n{question}\n\n## Classification rubrics\n...".
    let q = prompt
        .split("## Question\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n## Classification rubrics\n").next())
        .unwrap_or("")
        .to_lowercase();
    let code = if q.contains("zzzz") {
        "99"
    } else if q.contains("prime") || q.contains("divisible") || q.contains("remainder") {
        "11"
    } else if q.contains("triangle") || q.contains("circle") {
        "51"
    } else if q.contains("ways") || q.contains("probability") {
        "05"
    } else if q.contains("polynomial") {
        "12"
    } else {
        "26"
    };
    Ok(format!("The problem is about this area.\n\n{code}"))
}

#[test]
fn the_shared_pool_through_the_whole_funnel() {
    let dir = tempfile::tempdir().unwrap();
    let mut ws = Workspace::open(dir.path()).unwrap();
    // The pool's sources are named after their files (aime_1983_2023, math_train, ...), not as s1
    // named its sources: the `loose` option recognises AIME and MATH in them.
    s1_studio::curate::sources::SourceNames::Loose.store(&ws).unwrap();

    // Import: every pool file and the s1K questions; duplicates merged and counted.
    let mut all: Vec<String> = Vec::new();
    let mut reports = Vec::new();
    for rel in POOL.iter().chain(["s1k/s1K_questions_solutions.jsonl"].iter()) {
        let r = import::import(&mut ws, &shared(rel), &Default::default(), |_| {}).unwrap();
        let qs = questions_of(rel);
        assert_eq!(r.rows, qs.len(), "{rel}");
        assert_eq!(r.malformed, 0, "{rel}");
        all.extend(qs.into_iter().map(|(q, _)| q));
        reports.push(r);
    }
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(ws.question_count().unwrap(), unique.len());
    let dups: usize = reports.iter().map(|r| r.duplicates).sum();
    assert_eq!(dups, all.len() - unique.len());
    assert!(dups > 100, "s1K shares questions with MATH and AIME: {dups}");
    // The same file twice is refused, with the reason.
    let e = import::import(&mut ws, &shared(POOL[0]), &Default::default(), |_| {}).unwrap_err();
    assert!(e.to_string().contains("already imported"), "{e}");

    // Stand-in traces (the reference solutions) and their Qwen token counts.
    let r = traces::from_column(&mut ws, "solution").unwrap();
    assert_eq!(r.done + r.skipped, unique.len());
    traces::measure(&mut ws, &common::qwen_tokenizer(), false).unwrap();
    let tok = tokenizers::Tokenizer::from_file(common::qwen_tokenizer()).unwrap();
    let (trace, tokens): (String, i64) = ws
        .conn
        .query_row(
            "SELECT trace, trace_tokens FROM questions ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(tokens as usize, tok.encode(trace.as_str(), false).unwrap().len());

    // Quality rules: `[asy]` counted independently (AIME kept).
    let counts = rules::run(&mut ws, &RulesConfig::default()).unwrap();
    let asy_expected = {
        let mut seen = HashSet::new();
        let mut n = 0;
        for rel in POOL.iter().chain(["s1k/s1K_questions_solutions.jsonl"].iter()) {
            for (q, _) in questions_of(rel) {
                if seen.insert(q.clone()) && !rel.contains("aime") && q.contains("[asy]") {
                    n += 1;
                }
            }
        }
        n
    };
    let asy = counts.iter().find(|c| c.rule == Rule::Asy).unwrap();
    assert_eq!(asy.hits, asy_expected);
    assert!(asy.hits > 500 && asy.examples.len() == 3);
    // math_train has 4 rows without an answer: nothing to stand in for a trace.
    assert_eq!(
        counts.iter().find(|c| c.rule == Rule::MissingField).unwrap().hits,
        r.skipped
    );

    // Decontamination against the bundled sets: the one AIME problem MATH500 reuses is caught.
    let d = decontam::run(&mut ws, &decontam::bundled_sets().unwrap()).unwrap();
    let math500: HashSet<String> = questions_of("eval/math500.jsonl").into_iter().map(|(q, _)| q).collect();
    let reused: Vec<String> = questions_of(POOL[0])
        .into_iter()
        .map(|(q, _)| q)
        .filter(|q| math500.contains(q))
        .collect();
    assert_eq!(reused.len(), 1);
    let key = s1_studio::data::question_key(&reused[0]);
    let flagged: i64 = ws
        .conn
        .query_row(
            "SELECT count(*) FROM flags WHERE key = ?1 AND rule = 'decontam:math500'",
            [&key],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(flagged, 1);
    let aime_2023 = questions_of(POOL[0])
        .iter()
        .filter(|(_, v)| v["year"].as_i64() == Some(2023))
        .count();
    assert_eq!(d.aime_after_2022, aime_2023);

    // Difficulty: two mock models; one answers 0 to everything, one 1 (some answers are).
    let f = funnel::compute(&ws).unwrap();
    let eligible = f.after_decontam.len();
    let cancel = CancelToken::new();
    let opts = GenOptions {
        max_tokens: 64,
        temperature: 0.05,
        limit: None,
    };
    for (name, answer) in [("mock-zero", "0"), ("mock-one", "1")] {
        let fails = Arc::new(AtomicUsize::new(0));
        let f2 = fails.clone();
        // Every 50th request fails once with 503: the client retries.
        let mock = MockEndpoint::start(
            Duration::ZERO,
            Arc::new(move |_p: &str| {
                if f2.fetch_add(1, Ordering::SeqCst) % 50 == 7 {
                    Err(503)
                } else {
                    Ok(format!("So the answer is \\boxed{{{answer}}}."))
                }
            }),
        );
        let mut e = Endpoint::new(&mock.url, name);
        e.backoff = Duration::from_millis(1);
        let r = attempts::run(&ws, &e, &Grader::Offline, &opts, &cancel, &mut |_, _| {}).unwrap();
        assert_eq!((r.done, r.failed), (eligible, 0), "{name}");
        assert_eq!(mock.prompts().len(), eligible);
    }
    let correct_zero: i64 = ws
        .conn
        .query_row(
            "SELECT count(*) FROM attempts WHERE model = 'mock-zero' AND verdict = 'correct'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(correct_zero > 5, "some pool answers are 0: {correct_zero}");
    let answer_is = |k: &str| -> Option<String> {
        let (a, s): (Option<String>, Option<String>) = ws
            .conn
            .query_row("SELECT answer, solution FROM questions WHERE key = ?1", [k], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        annotate::reference(a.as_deref(), s.as_deref())
    };
    let mut st = ws
        .conn
        .prepare("SELECT key FROM attempts WHERE model = 'mock-zero' AND verdict = 'correct'")
        .unwrap();
    for k in st.query_map([], |r| r.get::<_, String>(0)).unwrap() {
        let a = answer_is(&k.unwrap()).unwrap_or_default();
        assert!(
            a.contains('0') && a.chars().filter(char::is_ascii_digit).all(|c| c == '0'),
            "{a}"
        );
    }
    drop(st);
    let f = funnel::compute(&ws).unwrap();
    let hard = f.survivors.len();
    // Dropped: a correct attempt, or (s1) an undecided one.
    let any_correct: i64 = ws
        .conn
        .query_row(
            "SELECT count(DISTINCT key) FROM attempts WHERE verdict IN ('correct', 'undecided')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(hard, eligible - any_correct as usize);

    // Domains through the mock classifier; a reply without a valid code is a recorded failure.
    let mock = MockEndpoint::start(Duration::ZERO, Arc::new(classify_reply));
    let e = Endpoint::new(&mock.url, "mock-classifier");
    let classify_opts = domains::ClassifyOptions::default();
    let r = domains::classify(&ws, &e, &opts, &classify_opts, false, &cancel, &mut |_, _| {}).unwrap();
    assert_eq!(r.done + r.failed, hard);
    let failures: i64 = ws
        .conn
        .query_row("SELECT count(*) FROM failures WHERE step = 'classify'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(failures as usize, r.failed);
    // A rerun has nothing left to label but the failures.
    let again = domains::classify(&ws, &e, &opts, &classify_opts, false, &cancel, &mut |_, _| {}).unwrap();
    assert_eq!(again.pending, r.failed);

    // Selection: seeded and reproducible; another seed differs; the ablations.
    let sel = |ws: &mut Workspace, method, seed, name: &str| {
        selection::run(
            ws,
            &selection::SelectOptions {
                method,
                seed,
                name: Some(name.into()),
                ..Default::default()
            },
        )
        .unwrap()
    };
    let a = sel(&mut ws, selection::Method::S1, 7, "a");
    let b = sel(&mut ws, selection::Method::S1, 7, "b");
    let c = sel(&mut ws, selection::Method::S1, 8, "c");
    assert_eq!(a.selected.len(), 1000);
    assert_eq!(a.selected, b.selected);
    assert_ne!(a.selected, c.selected);
    assert!(
        a.seed_set > 0,
        "the AIME stand-in traces grade correct, so AIME survivors are seeds"
    );
    let f = funnel::compute(&ws).unwrap();
    let seeds: Vec<&String> = a.selected.iter().take(a.seed_set).collect();
    for k in &seeds {
        assert!(selection::is_seed(f.state(k).unwrap()));
    }
    let survivors = f.survivor_keys();
    for k in &a.selected {
        assert!(survivors.contains(k.as_str()));
    }
    let uniq: HashSet<&String> = a.selected.iter().collect();
    assert_eq!(uniq.len(), 1000);
    let longest = sel(&mut ws, selection::Method::Longest, 0, "longest");
    let lens: Vec<usize> = longest
        .selected
        .iter()
        .map(|k| f.state(k).unwrap().trace_tokens.unwrap())
        .collect();
    assert!(lens.windows(2).all(|w| w[0] >= w[1]));
    let random = sel(&mut ws, selection::Method::Random, 3, "random");
    let diverse = sel(&mut ws, selection::Method::Diverse, 3, "diverse");
    assert_eq!((random.selected.len(), diverse.selected.len()), (1000, 1000));
    let domains_of = |keys: &[String]| -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for k in keys {
            *m.entry(f.state(k).unwrap().domain.as_deref().unwrap().to_string())
                .or_insert(0) += 1;
        }
        m
    };
    // Uniform domains spread the draw more evenly than a uniform sample of questions.
    let spread = |m: &HashMap<String, usize>| m.values().max().unwrap() - m.values().min().unwrap();
    assert!(spread(&domains_of(&diverse.selected)) < spread(&domains_of(&random.selected)));

    // Export in the s1K schema; the Parquet reads back as the JSONL, and the trainer reads both.
    let (name, keys) = selection::load(&ws, Some("a")).unwrap();
    assert_eq!((name.as_str(), keys), ("a", a.selected.clone()));
    let rows = export::rows(&ws, &a.selected).unwrap();
    let jl = dir.path().join("s1k.jsonl");
    let pq = dir.path().join("s1k.parquet");
    export::write_jsonl(&jl, &rows).unwrap();
    export::write_parquet(&pq, &rows).unwrap();
    let mut back = Vec::new();
    s1_studio::data::read::for_each_row(&pq, |r| {
        back.push(serde_json::Value::Object(r.unwrap().columns));
        true
    })
    .unwrap();
    let expect: Vec<serde_json::Value> = std::fs::read_to_string(&jl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(back, expect);
    let cols = s1_studio::train::data::TraceColumns::Auto;
    for p in [&jl, &pq] {
        let rows = s1_studio::train::data::read_rows(p, &cols).unwrap();
        assert_eq!(rows.len(), 1000);
        assert_eq!(rows[0].question, expect[0]["question"].as_str().unwrap());
    }

    // The funnel report: every stage in order, counts consistent.
    let f = funnel::compute(&ws).unwrap();
    let names: Vec<&str> = f.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "rows imported",
            "unique questions",
            "not excluded by hand",
            "quality 1: complete",
            "quality 2: no weird strings",
            "decontaminated",
            "difficulty: no model correct",
            "ready to select",
            "selected"
        ]
    );
    for w in f.stages.windows(2).take(7) {
        assert_eq!(w[1].kept + w[1].dropped, w[0].kept, "{} -> {}", w[0].name, w[1].name);
    }
    assert_eq!(f.stages[1].kept, unique.len());
    eprintln!("{}", funnel::render(&f.stages));
}
