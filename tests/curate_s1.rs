//! Curation as s1's own code does it (issue 14, point 6), on the real pool files of
//! ../shared/data: the seed set and the benchmark weights of data/filter.ipynb, the difficulty
//! judge of featurization.py (its prompt, its reading of the reply, its retries; an undecided
//! question is reported and dropped), the AIME year read from the `ID` in s1's Python-repr
//! metadata (add_aime.py), and collect_data.py's cross-source decontamination. Each expectation is
//! computed here from the rows themselves, the way s1's Python does, not through the studio's
//! code.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::mock_endpoint::MockEndpoint;
use s1_studio::curate::backend::Endpoint;
use s1_studio::curate::funnel;
use s1_studio::curate::rule_config::RulesConfig;
use s1_studio::curate::steps::annotate::GenOptions;
use s1_studio::curate::steps::attempts::{self, Grader};
use s1_studio::curate::steps::domains;
use s1_studio::curate::steps::traces;
use s1_studio::curate::steps::{decontam, import, rules, selection};
use s1_studio::jobs::CancelToken;
use s1_studio::workspace::Workspace;

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(rel)
}

fn rows_of(rel: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(shared(rel))
        .unwrap_or_else(|e| panic!("this test needs {rel}: {e}"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn import_as(ws: &mut Workspace, path: &Path, source: &str) {
    let opts = import::ImportOptions {
        source: Some(source.to_string()),
        ..Default::default()
    };
    import::import(ws, path, &opts, |_| {}).unwrap();
}

/// The s1 sources these tests name the pool files after.
const AIME: &str = "qq8933/AIME_1983_2024";
const GPQA: &str = "Idavidrein/gpqa";
const MATH: &str = "qfq/openaimath";
/// OlympiadBench as s1's collect_data.py names it: a "math" in the name, but not a seed source.
const OLYMPIAD: &str = "Hothan/OlympiadBench/OE_TO/maths";

/// (key, source, trace tokens, trace correct, domain) of every question.
type Row = (String, String, Option<i64>, Option<i64>, Option<String>);

fn questions(ws: &Workspace) -> Vec<Row> {
    let mut st = ws
        .conn
        .prepare("SELECT key, source, trace_tokens, trace_correct, domain FROM questions ORDER BY id")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn seed_set_and_benchmark_weights_are_s1s() {
    let dir = tempfile::tempdir().unwrap();
    let mut ws = Workspace::open(dir.path()).unwrap();
    import_as(&mut ws, &shared("pool/aime_1983_2023.jsonl"), AIME);
    import_as(&mut ws, &shared("pool/math_test_minus_math500.jsonl"), MATH);
    import_as(&mut ws, &shared("pool/olympiadbench_en_comp_675.jsonl"), OLYMPIAD);
    // No GPQA here (not redistributable): the s1K questions stand in under GPQA's name.
    import_as(&mut ws, &shared("s1k/s1K_questions_solutions.jsonl"), GPQA);

    // Stand-in traces (the reference solutions); half of them get a wrong answer, so that the
    // "trace correct" part of the rule matters.
    traces::from_column(&mut ws, "solution").unwrap();
    ws.conn
        .execute(
            "UPDATE questions SET trace_attempt = 'The final answer is $\\boxed{NOPE}$.' WHERE substr(key, 1, 1) < '8'",
            [],
        )
        .unwrap();
    traces::measure(&mut ws, &common::qwen_tokenizer(), false).unwrap();
    // s1's gemini traces run to thousands of tokens; the solutions do not. Lengths at and above
    // the threshold for some MATH and OlympiadBench questions (by key, so right and wrong traces
    // get both).
    ws.conn
        .execute(
            "UPDATE questions SET trace_tokens = CASE substr(key, 2, 1) WHEN 'a' THEN 5600 WHEN 'b' THEN 5601 ELSE 9000 END
             WHERE source IN (?1, ?2) AND substr(key, 2, 1) IN ('a', 'b', 'c')",
            [MATH, OLYMPIAD],
        )
        .unwrap();
    // Domains: a code from the key (the rule reads only the label).
    let codes = ["05", "11", "12", "26", "51", "60", "81"];
    let pairs: Vec<(String, String)> = questions(&ws)
        .into_iter()
        .map(|(k, ..)| {
            let c = codes[usize::from_str_radix(&k[2..4], 16).unwrap() % codes.len()];
            (k, c.to_string())
        })
        .collect();
    domains::from_map(&mut ws, &pairs).unwrap();
    rules::run(&mut ws, &RulesConfig::default()).unwrap();

    let r = selection::run(
        &mut ws,
        &selection::SelectOptions {
            seed: 3,
            name: Some("s1".into()),
            ..Default::default()
        },
    )
    .unwrap();

    // The candidates, as s1's hard-filtered set: a trace length and a domain, no rule hit (no
    // difficulty attempts were made, so none is dropped for them).
    let flagged: HashSet<String> = ws
        .conn
        .prepare("SELECT key FROM flags")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let candidates: Vec<Row> = questions(&ws)
        .into_iter()
        .filter(|q| q.2.is_some() && q.4.is_some() && !flagged.contains(&q.0))
        .collect();
    assert_eq!(r.candidates, candidates.len());

    // filter.ipynb cell 14: isgeminicorrect and (source_type in [gpqa, aime] or
    // ('qfq/openaimath' in source_type and gemini_length > 5600)).
    let seeds: HashSet<&str> = candidates
        .iter()
        .filter(|(_, source, tokens, correct, _)| {
            *correct == Some(1)
                && (source == GPQA || source == AIME || (source.contains(MATH) && tokens.unwrap() > 5600))
        })
        .map(|q| q.0.as_str())
        .collect();
    let by_key: HashMap<&str, &Row> = candidates.iter().map(|q| (q.0.as_str(), q)).collect();
    let math_long_wrong = candidates
        .iter()
        .filter(|q| q.1 == MATH && q.2 > Some(5600) && q.3 == Some(0))
        .count();
    let olympiad_long_right = candidates
        .iter()
        .filter(|q| q.1 == OLYMPIAD && q.2 > Some(5600) && q.3 == Some(1))
        .count();
    let math_at_threshold = candidates.iter().filter(|q| q.1 == MATH && q.2 == Some(5600)).count();
    assert!(
        math_long_wrong > 20 && olympiad_long_right > 3 && math_at_threshold > 20,
        "{math_long_wrong} {olympiad_long_right} {math_at_threshold}"
    );
    assert_eq!(r.seed_set, seeds.len(), "the seed set is s1's rule");
    let drawn_seeds: HashSet<&str> = r.selected[..r.seed_set].iter().map(String::as_str).collect();
    assert_eq!(drawn_seeds, seeds);
    assert!(r.selected[..r.seed_set].iter().all(|k| by_key[k.as_str()].3 == Some(1)));
    assert_eq!(r.selected.len(), 1000);

    // filter.ipynb cell 17: GPQA and AIME domain counts among the survivors; each GPQA count
    // becomes int(count * 0.5 * |AIME| / |GPQA|), AIME's are added, zero sums are left out.
    let mut aime: HashMap<&str, i64> = HashMap::new();
    let mut gpqa: HashMap<&str, i64> = HashMap::new();
    for (_, source, _, _, domain) in &candidates {
        let d = domain.as_deref().unwrap();
        if source == AIME {
            *aime.entry(d).or_default() += 1;
        } else if source == GPQA {
            *gpqa.entry(d).or_default() += 1;
        }
    }
    let ratio = 0.5 * aime.values().sum::<i64>() as f64 / gpqa.values().sum::<i64>() as f64;
    let mut want: HashMap<String, f64> = HashMap::new();
    for (d, n) in &gpqa {
        *want.entry(d.to_string()).or_default() += (*n as f64 * ratio) as i64 as f64;
    }
    for (d, n) in &aime {
        *want.entry(d.to_string()).or_default() += *n as f64;
    }
    want.retain(|_, w| *w > 0.0);
    let settings: String = ws
        .conn
        .query_row("SELECT settings FROM selections WHERE name = 's1'", [], |r| r.get(0))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&settings).unwrap();
    let got: HashMap<String, f64> = v["benchmark_weights"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(d, w)| (d.clone(), w.as_f64().unwrap()))
        .collect();
    assert_eq!(got, want, "s1's integer benchmark weights from the survivors");
    assert!(got.values().all(|w| w.fract() == 0.0));
}

#[test]
fn the_difficulty_judge_is_asked_and_read_as_s1() {
    let dir = tempfile::tempdir().unwrap();
    let mut ws = Workspace::open(dir.path()).unwrap();
    import_as(&mut ws, &shared("pool/aime_1983_2023.jsonl"), AIME);
    let attempter = MockEndpoint::start(
        Duration::ZERO,
        Arc::new(|_q: &str| Ok("So the answer is \\boxed{1}.".to_string())),
    );
    // The judge: by the question's problem number mod 3, (0) a proper "No" at once, (1) two
    // replies s1 would not accept ("**No**", "Yes\n") and then "Yes", (2) never a proper reply.
    let asked: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let seen = asked.clone();
    let judge = MockEndpoint::start(
        Duration::ZERO,
        Arc::new(move |p: &str| {
            let user = p.rsplit("## Problem\n").next().unwrap().to_string();
            let mut m = seen.lock().unwrap();
            let n = m.entry(user.clone()).or_default();
            *n += 1;
            let group = user.len() % 3;
            Ok(match (group, *n) {
                (0, _) => "The attempt gives 1, the answer differs.\nNo".into(),
                (1, 1) => "Reasoning.\n**No**".into(),
                (1, 2) => "Reasoning.\nYes\n".into(),
                (1, _) => "It matches.\nYes".into(),
                _ => "I cannot tell.".into(),
            })
        }),
    );
    let opts = GenOptions {
        max_tokens: 64,
        temperature: 0.05,
        limit: Some(60),
    };
    let r = attempts::run(
        &ws,
        &Endpoint::new(&attempter.url, "attempter"),
        &Grader::Judge(Endpoint::new(&judge.url, "judge")),
        &opts,
        &CancelToken::new(),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!((r.done, r.failed), (60, 0));

    // s1's prompt: grading.txt as the system message, then its user message.
    let grading =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/curate/grading.txt")).unwrap();
    let prompts = judge.prompts();
    for p in &prompts {
        assert!(p.starts_with(&format!("{grading}\n\n## Problem\n")), "{p}");
        assert!(
            p.contains("\n\n## Attempt\nSo the answer is \\boxed{1}.\n\n## Correct answer\n"),
            "{p}"
        );
    }
    let verdicts: Vec<(String, String)> = ws
        .conn
        .prepare("SELECT q.question, a.verdict FROM attempts a JOIN questions q ON q.key = a.key")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(verdicts.len(), 60);
    let asked = asked.lock().unwrap();
    let mut undecided = 0;
    for (q, verdict) in &verdicts {
        let (user, n) = asked
            .iter()
            .find(|(u, _)| u.starts_with(&format!("{q}\n\n## Attempt")))
            .unwrap();
        let (want, times) = match user.len() % 3 {
            0 => ("incorrect", 1),
            1 => ("correct", 3),
            _ => ("undecided", 1 + s1_studio::curate::judge::JUDGE_RETRIES),
        };
        assert_eq!((verdict.as_str(), *n), (want, times), "{q}");
        undecided += (want == "undecided") as usize;
    }
    assert!(undecided > 5, "{undecided}");
    assert_eq!(r.undecided, undecided);

    // The funnel reports them and drops them (s1); `keep` is the option.
    let f = funnel::compute(&ws).unwrap();
    let stage = f.stages.iter().find(|s| s.name.starts_with("difficulty")).unwrap();
    assert!(
        stage.note.contains(&format!("{undecided} with an undecided verdict")),
        "{}",
        stage.note
    );
    assert_eq!(f.undecided, undecided);
    let correct = verdicts.iter().filter(|v| v.1 == "correct").count();
    assert_eq!(f.survivors.len(), 60 - correct - undecided);
    funnel::Undecided::Keep.store(&ws).unwrap();
    let f = funnel::compute(&ws).unwrap();
    assert_eq!(f.survivors.len(), 60 - correct);
    drop(ws);
}

/// A Python literal as s1's `str(dict)` writes it, for one AIME row of the pool in the shape of
/// qq8933/AIME_1983_2024 (`ID` is `1983-1` before 2000, `2000-I-1` after).
fn s1_aime_row(v: &serde_json::Value) -> serde_json::Value {
    let year = v["year"].as_i64().unwrap();
    let number = v["problem_number"].as_i64().unwrap();
    let part = if year >= 2000 {
        Some(["I", "II"][(v["aime_number"].as_i64().unwrap() - 1) as usize])
    } else {
        None
    };
    let id = match part {
        Some(p) => format!("{year}-{p}-{number}"),
        None => format!("{year}-{number}"),
    };
    let part = part.map_or("None".to_string(), |p| format!("'{p}'"));
    serde_json::json!({
        "question": v["problem"],
        "solution": v["answer"],
        "cot_type": "math",
        "source_type": AIME,
        "metadata": format!("{{'ID': '{id}', 'Year': {year}, 'Problem Number': {number}, 'Part': {part}}}"),
    })
}

#[test]
fn the_aime_year_rule_reads_s1s_id() {
    let rows = rows_of("pool/aime_1983_2023.jsonl");
    let s1_rows: Vec<serde_json::Value> = rows.iter().map(s1_aime_row).collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("aime_s1.jsonl");
    std::fs::write(&file, s1_rows.iter().map(|r| r.to_string() + "\n").collect::<String>()).unwrap();
    let mut ws = Workspace::open(&dir.path().join("ws")).unwrap();
    import::import(&mut ws, &file, &Default::default(), |_| {}).unwrap();
    // The metadata is stored as s1 wrote it.
    let first = s1_studio::data::question_key(s1_rows[0]["question"].as_str().unwrap());
    let stored: String = ws
        .conn
        .query_row("SELECT metadata FROM questions WHERE key = ?1", [&first], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, s1_rows[0]["metadata"].as_str().unwrap());
    assert!(stored.starts_with("{'ID': '"), "{stored}");

    // add_aime.py keeps int(ID.split('-')[0]) <= 2022.
    let after: HashSet<String> = s1_rows
        .iter()
        .filter(|r| {
            let m = r["metadata"].as_str().unwrap();
            let id = m.split("'ID': '").nth(1).unwrap();
            id.split('-').next().unwrap().parse::<i64>().unwrap() > 2022
        })
        .map(|r| s1_studio::data::question_key(r["question"].as_str().unwrap()))
        .collect();
    assert_eq!(after.len(), 30);
    let d = decontam::run(&mut ws, &[]).unwrap();
    assert_eq!(d.aime_after_2022, after.len());
    let flagged: HashSet<String> = ws
        .conn
        .prepare("SELECT key FROM flags WHERE rule = ?1")
        .unwrap()
        .query_map([decontam::AIME_YEAR_RULE], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(flagged, after);
    let f = funnel::compute(&ws).unwrap();
    assert!(after.iter().all(|k| f.state(k).unwrap().contaminated));
}

/// Python's `text.lower().split()` word 8-grams (decontaminate_util.py), for ASCII-lowercase
/// texts as these.
fn grams(text: &str) -> Vec<String> {
    let words: Vec<String> = text.to_lowercase().split_whitespace().map(str::to_string).collect();
    words.windows(8).map(|w| w.join(" ")).collect()
}

#[test]
fn cross_source_decontamination_as_collect_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut ws = Workspace::open(dir.path()).unwrap();
    // Imported in this order: MATH train first, then the MATH test problems.
    import_as(&mut ws, &shared("pool/math_train.jsonl"), "math_train");
    import_as(&mut ws, &shared("pool/math_test_minus_math500.jsonl"), "math_test");
    let sets = decontam::bundled_sets().unwrap();

    // s1: each source is decontaminated against the test sets plus the earlier sources'
    // surviving questions, then joins them.
    let eval: HashSet<String> = sets
        .iter()
        .flat_map(|s| s.questions.iter().flat_map(|q| grams(q)))
        .collect();
    let train: Vec<String> = rows_of("pool/math_train.jsonl")
        .iter()
        .map(|v| v["problem"].as_str().unwrap().to_string())
        .collect();
    let train_seen: HashSet<&str> = train.iter().map(String::as_str).collect();
    let mut test_set = eval.clone();
    for q in &train {
        if !grams(q).iter().any(|g| eval.contains(g)) {
            test_set.extend(grams(q));
        }
    }
    let mut want: HashSet<String> = HashSet::new();
    let mut seen = HashSet::new();
    for v in rows_of("pool/math_test_minus_math500.jsonl") {
        let q = v["problem"].as_str().unwrap();
        // The studio merged exact duplicates at import (the first copy is kept).
        if train_seen.contains(q) || !seen.insert(q.to_string()) {
            continue;
        }
        let g = grams(q);
        if !g.iter().any(|g| eval.contains(g)) && g.iter().any(|g| test_set.contains(g)) {
            want.insert(s1_studio::data::question_key(q));
        }
    }
    assert!(want.len() > 100, "{}", want.len());

    let r = decontam::run_with(&mut ws, &sets, &decontam::DecontamOptions { cross_source: true }).unwrap();
    let got: HashSet<String> = ws
        .conn
        .prepare("SELECT key FROM flags WHERE rule LIKE 'decontam:source:%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, want);
    assert_eq!(r.cross_source[0].0, "math_train");
    assert_eq!(r.cross_source[0].2, 0, "the first source has nothing before it");
    assert_eq!(
        r.cross_source[1],
        ("math_test".to_string(), r.cross_source[1].1, want.len())
    );
    let f = funnel::compute(&ws).unwrap();
    assert!(want.iter().all(|k| f.state(k).unwrap().contaminated));
    let stage = f.stages.iter().find(|s| s.name == "decontaminated").unwrap();
    assert!(stage.note.contains("earlier sources"), "{}", stage.note);

    // Without the option (the default) no question is flagged for an earlier source.
    decontam::run(&mut ws, &sets).unwrap();
    let n: i64 = ws
        .conn
        .query_row(
            "SELECT count(*) FROM flags WHERE rule LIKE 'decontam:source:%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn domains_are_asked_and_read_as_s1() {
    // featurization.py: s1's system message, "## Question\n{q}\n\n## Classification rubrics\n"
    // + msc.json's blocks; the code is the reply's last two characters, asked again otherwise;
    // two digits that are no MSC code leave the question without a domain.
    let dir = tempfile::tempdir().unwrap();
    let mut ws = Workspace::open(dir.path()).unwrap();
    import_as(&mut ws, &shared("pool/aime_1983_2023.jsonl"), AIME);
    let asked: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let seen = asked.clone();
    // By the question's length mod 3: (0) "...\n05" at once; (1) "Code: **11**." and "51\n"
    // (s1 would not accept them), then "...\n51"; (2) "...\n99" (no such code).
    let classifier = MockEndpoint::start(
        Duration::ZERO,
        Arc::new(move |p: &str| {
            let q = p.split("## Question\n").nth(1).unwrap();
            let q = q.split("\n\n## Classification rubrics\n").next().unwrap().to_string();
            let mut m = seen.lock().unwrap();
            let n = m.entry(q.clone()).or_default();
            *n += 1;
            Ok(match (q.len() % 3, *n) {
                (0, _) => "Counting.\n05".into(),
                (1, 1) => "Code: **11**.".into(),
                (1, 2) => "Geometry.\n51\n".into(),
                (1, _) => "Geometry.\n51".into(),
                _ => "Unclear.\n99".into(),
            })
        }),
    );
    let opts = GenOptions {
        max_tokens: 64,
        temperature: 0.0,
        limit: Some(30),
    };
    let r = domains::classify(
        &ws,
        &Endpoint::new(&classifier.url, "classifier"),
        &opts,
        &domains::ClassifyOptions::default(),
        true,
        &CancelToken::new(),
        &mut |_, _| {},
    )
    .unwrap();
    let msc = s1_studio::curate::classify::SYSTEM;
    for p in classifier.prompts() {
        assert!(p.starts_with(&format!("{msc}\n\n## Question\n")), "{p}");
        assert!(
            p.contains("\n\n## Classification rubrics\n### Mathematical logic and foundations\n* Code: 03"),
            "{p}"
        );
    }
    let asked = asked.lock().unwrap();
    assert_eq!(asked.len(), 30);
    let mut unknown = 0;
    for (key, question, domain) in ws
        .conn
        .prepare("SELECT key, question, domain FROM questions")
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
    {
        let Some(n) = asked.get(&question) else { continue };
        let (want, times) = match question.len() % 3 {
            0 => (Some("05"), 1),
            1 => (Some("51"), 3),
            _ => (None, 1),
        };
        assert_eq!((domain.as_deref(), *n), (want, times), "{key}");
        unknown += want.is_none() as usize;
    }
    assert_eq!((r.done, r.failed), (30 - unknown, unknown));
    assert!(unknown > 3, "{unknown}");
}
