//! The grader on the real answers in ../shared/data: every MATH500 answer and every answer of
//! pool/math_test_minus_math500.jsonl is equivalent to itself rewritten in other forms (inside a
//! response, boxed), and not equivalent to the other answers of its set.

mod common;

use s1_studio::grade::equiv::math_equivalent;
use s1_studio::grade::normalize::normalize;
use s1_studio::grade::{grade, Kind, Verdict};

fn answers(rel: &str) -> Vec<String> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(rel);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("this test needs {}: {e}", p.display()));
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["answer"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Meaning-preserving rewrites of an answer, as a person or a model might write it.
fn rewrites(a: &str) -> Vec<String> {
    let mut out = vec![
        a.to_string(),
        format!("${a}$"),
        a.replace('+', " + "),
        a.replace("\\frac", "\\dfrac"),
        format!(" {a} ."),
    ];
    // spaces after item commas (not after thousands separators)
    if normalize(a).contains(',') {
        out.push(a.replace(',', ", "));
    }
    if a.contains('(') && !a.contains("\\left") {
        out.push(a.replace('(', "\\left(").replace(')', "\\right)"));
    }
    if let Ok(n) = a.trim().parse::<i64>() {
        out.push(format!("{n}.0"));
        if n.abs() >= 1000 {
            let s = n.abs().to_string();
            let mut grouped = String::new();
            for (i, c) in s.chars().enumerate() {
                if i > 0 && (s.len() - i) % 3 == 0 {
                    grouped.push(',');
                }
                grouped.push(c);
            }
            out.push(format!("{}{grouped}", if n < 0 { "-" } else { "" }));
        }
    }
    if !a.contains('=') && !a.contains(',') {
        out.push(format!("x = {a}"));
    }
    out
}

/// An exact rational value of a plain numeric answer, computed without the grader: an integer,
/// a decimal, `\frac{p}{q}`, or a mixed number, with sign, `\$`, `\%` and a `\text{}` unit
/// around it. None for anything else.
fn rational(s: &str) -> Option<(i128, i128)> {
    let mut t: String = s
        .replace("\\dfrac", "\\frac")
        .replace("\\$", "")
        .replace("\\%", "")
        .replace("\\,", "");
    if let Some(i) = t.find("\\text") {
        t.truncate(i);
    }
    t.retain(|c| !c.is_whitespace());
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r.to_string()),
        None => (false, t),
    };
    let gcd = |mut a: i128, mut b: i128| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a.abs().max(1)
    };
    let dec = |d: &str| -> Option<(i128, i128)> {
        let (i, f) = d.split_once('.').unwrap_or((d, ""));
        if i.is_empty() && f.is_empty() || !i.chars().chain(f.chars()).all(|c| c.is_ascii_digit()) || f.len() > 12 {
            return None;
        }
        let den = 10i128.pow(f.len() as u32);
        Some((format!("{i}{f}").parse::<i128>().ok()?, den))
    };
    let (mut n, mut d) = if let Some(k) = t.find("\\frac") {
        let whole = if k == 0 { (0, 1) } else { dec(&t[..k])? };
        let rest = t[k + 5..].replace(['{', '}'], " ");
        let parts: Vec<&str> = rest.split_whitespace().collect();
        let (p, q) = match parts.as_slice() {
            [p, q] => (p.parse::<i128>().ok()?, q.parse::<i128>().ok()?),
            [pq] if pq.len() == 2 => (pq[..1].parse().ok()?, pq[1..].parse().ok()?),
            _ => return None,
        };
        (whole.0 * q + p * whole.1, whole.1 * q)
    } else {
        dec(&t)?
    };
    if neg {
        n = -n;
    }
    let g = gcd(n, d);
    n /= g;
    d /= g;
    Some((n, d))
}

/// Pairs of different answers that are the same answer, reviewed by hand (the grader calls them
/// equivalent, rightly): MC letters with and without parentheses, and equal irrational forms.
const SAME_ANSWER: &[(&str, &str)] = &[
    ("C", "\\text{(C)}"),
    ("\\text{D}", "\\text{(D)}"),
    ("(\\text{E})", "\\text{E}"),
    ("\\text{A}", "\\text{(A)}"),
    ("\\text{B}", "\\text{(B)}"),
    ("\\frac{2}{3}\\pi", "\\frac{2 \\pi}{3}"),
    ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}"),
];

/// The same comma-separated items in another order (checked without the grader).
fn same_list(a: &str, b: &str) -> bool {
    let items = |s: &str| {
        let mut v: Vec<String> = normalize(s).split(',').map(String::from).collect();
        v.sort();
        v
    };
    !normalize(a).starts_with(['(', '[']) && a.contains(',') && items(a) == items(b)
}

fn check_set(rel: &str) {
    let all = answers(rel);
    let mut failures = Vec::new();
    for a in &all {
        for rw in rewrites(a) {
            let response = format!("<|im_start|>think\nsome work<|im_start|>answer\nThe answer is $\\boxed{{{rw}}}$.");
            let g = grade(&response, a, Kind::Math);
            if g.verdict != Verdict::Correct {
                failures.push(format!(
                    "{a:?} rewritten {rw:?}: {:?} (extracted {:?})",
                    g.verdict, g.extracted
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{rel}: {} rewrites not equivalent:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Distinct answers (by normalised form) against each other.
    let mut distinct: Vec<&String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for a in &all {
        if seen.insert(normalize(a)) {
            distinct.push(a);
        }
    }
    // The exact-rational check itself, on known values.
    assert_eq!(rational("1\\frac{1}{4}"), Some((5, 4)));
    assert_eq!(rational("-\\$0.50"), Some((-1, 2)));
    assert_eq!(rational("\\frac9{5}"), Some((9, 5)));
    assert_eq!(rational("x+1"), None);
    let mut equal = Vec::new();
    let mut same = 0usize;
    let mut undecided = 0usize;
    for i in 0..distinct.len() {
        for j in i + 1..distinct.len() {
            match math_equivalent(distinct[i], distinct[j]) {
                // Two problems with the same solutions listed in another order are the same answer.
                Verdict::Correct
                    if same_list(distinct[i], distinct[j])
                        || (rational(distinct[i]).is_some() && rational(distinct[i]) == rational(distinct[j]))
                        || SAME_ANSWER.iter().any(|&(x, y)| {
                            (x, y) == (distinct[i].as_str(), distinct[j].as_str())
                                || (y, x) == (distinct[i].as_str(), distinct[j].as_str())
                        }) =>
                {
                    same += 1
                }
                Verdict::Correct => equal.push(format!("{:?} == {:?}", distinct[i], distinct[j])),
                Verdict::Undecided => undecided += 1,
                Verdict::Incorrect => {}
            }
        }
    }
    let pairs = distinct.len() * (distinct.len() - 1) / 2;
    eprintln!(
        "{rel}: {} answers ({} distinct), {} rewrites equivalent; {pairs} pairs of distinct answers: {same} the same value written differently, {} wrongly equivalent, {undecided} undecided",
        all.len(),
        distinct.len(),
        all.iter().map(|a| rewrites(a).len()).sum::<usize>(),
        equal.len()
    );
    assert!(
        equal.is_empty(),
        "{rel}: distinct answers judged equivalent:\n{}",
        equal.join("\n")
    );
}

#[test]
fn math500_answers() {
    check_set("eval/math500.jsonl");
}

#[test]
fn math_test_pool_answers() {
    check_set("pool/math_test_minus_math500.jsonl");
}

fn rows(rel: &str) -> Vec<serde_json::Value> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(rel);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("this test needs {}: {e}", p.display()));
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The reference solutions, graded as responses, are correct: MATH500's (boxed) and GSM8K's
/// (`####`) all of them; AIME24's and AIME25's wherever the solution boxes an answer.
#[test]
fn reference_solutions_grade_correct() {
    for (rel, field, kind) in [
        ("eval/math500.jsonl", "solution", Kind::Math),
        ("eval/gsm8k_test.jsonl", "answer", Kind::Gsm8k),
        ("eval/aime24.jsonl", "solution", Kind::Aime),
    ] {
        let mut checked = 0;
        for r in rows(rel) {
            let (resp, reference) = (r[field].as_str().unwrap(), r["answer"].as_str().unwrap());
            let g = grade(resp, reference, kind);
            if kind == Kind::Aime && g.extracted.is_none() {
                continue; // a prose solution without a boxed answer
            }
            checked += 1;
            assert_eq!(g.verdict, Verdict::Correct, "{rel}: {:?} vs {reference:?}", g.extracted);
        }
        eprintln!("{rel}: {checked} reference solutions graded correct");
        assert!(checked >= 25, "{rel}: only {checked} checked");
    }
}
