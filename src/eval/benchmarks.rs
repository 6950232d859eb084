//! Benchmarks, in the evaluation sense: the question sets a model is graded on, either the named
//! sets that ship in assets/eval (compiled into the binary) or a user's JSONL file with a question
//! column and an answer column. (Timing benchmarks are `s1-studio bench`, in cli/bench/.)

use std::path::Path;

use crate::grade::Kind;

/// One question of a benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    pub id: String,
    pub question: String,
    pub reference: String,
}

/// A loaded benchmark.
#[derive(Debug, Clone)]
pub struct Benchmark {
    pub name: String,
    pub kind: Kind,
    pub questions: Vec<Question>,
}

/// The named benchmarks: name, contents, how answers are graded.
pub const NAMED: &[(&str, &str, Kind)] = &[
    ("math500", include_str!("../../assets/eval/math500.jsonl"), Kind::Math),
    ("aime24", include_str!("../../assets/eval/aime24.jsonl"), Kind::Aime),
    ("aime25", include_str!("../../assets/eval/aime25.jsonl"), Kind::Aime),
    ("amc23", include_str!("../../assets/eval/amc23.jsonl"), Kind::Math),
    ("gsm8k", include_str!("../../assets/eval/gsm8k_test.jsonl"), Kind::Gsm8k),
];

const QUESTION_COLUMNS: &[&str] = &["problem", "question", "Question", "prompt"];
const ANSWER_COLUMNS: &[&str] = &["answer", "final_answer", "Answer", "solution_answer"];
const ID_COLUMNS: &[&str] = &["unique_id", "id", "idx"];

fn text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Array(a) if a.len() == 1 => text(&a[0]),
        _ => None,
    }
}

/// A GPQA row (`Question`, `Correct Answer`, `Incorrect Answer 1..3`) as a multiple-choice
/// question in s1's words (gpqa/openai/utils.py `QUERY_TEMPLATE`: the question, a blank line,
/// `A) ...` to `D) ...`, nothing else): the four choices in an order fixed by the question's
/// text (s1 shuffles with Python's unseeded `random.shuffle`, so its order cannot be
/// reproduced; ours is the same on every run and machine), the reference the correct choice's
/// letter.
fn gpqa_question(row: &serde_json::Value) -> Result<Question, String> {
    let get = |k: &str| {
        row.get(k)
            .and_then(text)
            .map(|s| s.trim().to_string())
            .ok_or_else(|| format!("GPQA row without `{k}`"))
    };
    let question = get("Question")?;
    let mut choices = vec![(get("Correct Answer")?, true)];
    for k in 1..=3 {
        choices.push((get(&format!("Incorrect Answer {k}"))?, false));
    }
    // FNV-1a of the question seeds a Fisher-Yates shuffle.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in question.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    for i in (1..choices.len()).rev() {
        h = h.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        choices.swap(i, (h >> 33) as usize % (i + 1));
    }
    let letters = ['A', 'B', 'C', 'D'];
    let listed: Vec<String> = choices
        .iter()
        .zip(letters)
        .map(|((c, _), l)| format!("{l}) {c}"))
        .collect();
    let answer = choices
        .iter()
        .zip(letters)
        .find(|((_, ok), _)| *ok)
        .map(|(_, l)| l.to_string())
        .unwrap_or_default();
    let id = ["Record ID", "id"].iter().find_map(|k| row.get(*k).and_then(text));
    Ok(Question {
        id: id.unwrap_or_else(|| format!("{:016x}", h)),
        question: format!("{question}\n\n{}", listed.join("\n")),
        reference: answer,
    })
}

/// Parses JSONL rows; `origin` names the file in errors.
pub fn parse(origin: &str, contents: &str, kind: Option<Kind>) -> Result<(Vec<Question>, Kind), String> {
    let rows = contents
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str::<serde_json::Value>(line)
                .map(|v| (i + 1, v))
                .map_err(|e| format!("{origin}:{}: not a JSON object ({e})", i + 1))
        });
    parse_rows(origin, rows, kind)
}

/// Reads the questions of a JSONL, JSON or Parquet file (by its extension, through
/// [`crate::data::read`]); a row that cannot be read is an error naming the file and the row.
pub fn read_file(path: &Path, kind: Option<Kind>) -> Result<(Vec<Question>, Kind), String> {
    let origin = path.display().to_string();
    let mut rows = Vec::new();
    let mut bad = None;
    crate::data::read::for_each_row(path, |r| match r {
        Ok(row) => {
            rows.push((row.line, serde_json::Value::Object(row.columns)));
            true
        }
        Err(e) => {
            bad = Some(format!("{origin}:{}: {}", e.line, e.message));
            false
        }
    })
    .map_err(|e| e.to_string())?;
    if let Some(e) = bad {
        return Err(e);
    }
    parse_rows(&origin, rows.into_iter().map(Ok), kind)
}

/// Parses rows given as (line or row number, value); `origin` names the file in errors.
fn parse_rows(
    origin: &str,
    rows: impl IntoIterator<Item = Result<(usize, serde_json::Value), String>>,
    kind: Option<Kind>,
) -> Result<(Vec<Question>, Kind), String> {
    let mut out = Vec::new();
    let mut gsm8k_like = true;
    let mut mc = false;
    for r in rows {
        let (line, row) = r?;
        // Errors below name `i + 1`: the row's line (JSONL) or row number (JSON, Parquet).
        let i = line - 1;
        let pick = |cols: &[&str]| cols.iter().find_map(|c| row.get(*c).and_then(text));
        if row.get("Correct Answer").is_some() && row.get("Incorrect Answer 1").is_some() {
            out.push(gpqa_question(&row).map_err(|e| format!("{origin}:{}: {e}", i + 1))?);
            mc = true;
            continue;
        }
        let question = pick(QUESTION_COLUMNS).ok_or_else(|| {
            format!(
                "{origin}:{}: no question column (one of {})",
                i + 1,
                QUESTION_COLUMNS.join(", ")
            )
        })?;
        let reference = pick(ANSWER_COLUMNS).ok_or_else(|| {
            format!(
                "{origin}:{}: no answer column (one of {})",
                i + 1,
                ANSWER_COLUMNS.join(", ")
            )
        })?;
        gsm8k_like &= reference.contains("####");
        let id = pick(ID_COLUMNS).unwrap_or_else(|| (i + 1).to_string());
        out.push(Question {
            id,
            question,
            reference,
        });
    }
    if out.is_empty() {
        return Err(format!("{origin}: no questions"));
    }
    let kind = kind.unwrap_or(if mc {
        Kind::Mc
    } else if gsm8k_like {
        Kind::Gsm8k
    } else {
        Kind::Math
    });
    Ok((out, kind))
}

/// A named benchmark or a JSONL file; `kind` overrides the grading.
pub fn load(spec: &str, kind: Option<Kind>) -> Result<Benchmark, String> {
    if let Some((name, contents, k)) = NAMED.iter().find(|(n, _, _)| *n == spec) {
        let (questions, _) = parse(name, contents, Some(kind.unwrap_or(*k)))?;
        return Ok(Benchmark {
            name: name.to_string(),
            kind: kind.unwrap_or(*k),
            questions,
        });
    }
    let path = Path::new(spec);
    if !path.exists() {
        let names: Vec<&str> = NAMED.iter().map(|n| n.0).collect();
        return Err(format!(
            "{spec}: neither a named benchmark ({}) nor a file",
            names.join(", ")
        ));
    }
    let (questions, kind) = read_file(path, kind)?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Benchmark { name, kind, questions })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_sets_load_with_their_sizes() {
        for (name, n, kind) in [
            ("math500", 500, Kind::Math),
            ("aime24", 30, Kind::Aime),
            ("aime25", 30, Kind::Aime),
            ("amc23", 40, Kind::Math),
            ("gsm8k", 1319, Kind::Gsm8k),
        ] {
            let b = load(name, None).unwrap();
            assert_eq!((b.questions.len(), b.kind), (n, kind), "{name}");
        }
        assert!(load("math500", None).unwrap().questions[0]
            .question
            .starts_with("Convert the point"));
    }

    /// A GPQA file in its documented columns: four choices, the same order on every load, the
    /// reference the correct one's letter, graded as multiple choice.
    #[test]
    fn gpqa_columns_become_multiple_choice() {
        let row = serde_json::json!({
            "Question": "Which gas is most abundant in Earth's atmosphere?",
            "Correct Answer": "Nitrogen", "Incorrect Answer 1": "Oxygen",
            "Incorrect Answer 2": "Argon", "Incorrect Answer 3": "Carbon dioxide",
            "Record ID": "rec1"
        });
        let text = format!("{row}\n");
        let (qs, kind) = parse("gpqa.jsonl", &text, None).unwrap();
        assert_eq!(kind, Kind::Mc);
        let q = &qs[0];
        assert_eq!(q.id, "rec1");
        for c in ["Nitrogen", "Oxygen", "Argon", "Carbon dioxide"] {
            assert!(q.question.contains(c), "{}", q.question);
        }
        let letter = q.reference.chars().next().unwrap();
        assert!(q.question.contains(&format!("\n{letter}) Nitrogen")), "{}", q.question);
        // s1's template: the question, a blank line, the four lettered choices, nothing else.
        assert!(
            q.question
                .starts_with("Which gas is most abundant in Earth's atmosphere?\n\nA) "),
            "{}",
            q.question
        );
        assert_eq!(q.question.lines().count(), 6, "{}", q.question);
        assert_eq!(
            parse("gpqa.jsonl", &text, None).unwrap().0[0],
            *q,
            "the same order every time"
        );
        let answer = format!("The answer is \\boxed{{{letter}}}");
        assert_eq!(
            crate::grade::grade(&answer, &q.reference, Kind::Mc).verdict,
            crate::grade::Verdict::Correct
        );
    }

    #[test]
    fn bad_files_say_what_is_missing() {
        let e = parse("x.jsonl", "{\"problem\": \"1+1?\"}\n", None).unwrap_err();
        assert!(e.contains("x.jsonl:1: no answer column"), "{e}");
        let gpqa = "{\"Question\": \"q\", \"Correct Answer\": \"a\", \"Incorrect Answer 1\": \"b\"}";
        let e = parse("g.jsonl", gpqa, None).unwrap_err();
        assert!(e.contains("g.jsonl:1: GPQA row without `Incorrect Answer 2`"), "{e}");
        let (q, k) = parse("q.jsonl", "{\"question\": \"q\", \"answer\": \"so #### 4\"}", None).unwrap();
        assert_eq!((q[0].id.as_str(), k), ("1", Kind::Gsm8k));
        assert!(parse("e.jsonl", "\n", None).unwrap_err().contains("no questions"));
    }
}
