//! Offline answer grading (S1_RECIPE.md §5): the final answer extracted from a response, and a
//! verdict against the reference: correct, incorrect, or undecided where the rules cannot tell
//! (never a guess). Used by evaluation and by curation's difficulty filter.

pub mod equiv;
pub mod expr;
pub mod extract;
pub mod normalize;
pub mod s1;

use serde::{Deserialize, Serialize};

/// Answers longer than this (in bytes) are not normalised or compared: no real answer is, and
/// a model's runaway output must not cost quadratic time. They grade `undecided`.
pub const MAX_ANSWER_BYTES: usize = 4096;
/// Brackets nested deeper than this are not parsed (the parsers recurse): `undecided`.
pub const MAX_NESTING: usize = 64;

/// Whether `s` is past what the normaliser and the expression parser take on
/// ([`MAX_ANSWER_BYTES`], [`MAX_NESTING`]); one linear pass.
pub fn too_complex(s: &str) -> bool {
    if s.len() > MAX_ANSWER_BYTES {
        return true;
    }
    let mut depth = 0usize;
    for b in s.bytes() {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return true;
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    // `\frac{1}{` chains nest without closing braces in the count above when unbalanced;
    // the command count bounds the rewriting passes too.
    s.matches('\\').count() > MAX_NESTING * 4
}

/// What a grader concluded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Correct,
    /// Also what a response without an answer gets.
    #[default]
    Incorrect,
    /// The answer was found but the rules cannot decide (e.g. symbolic forms they do not know).
    Undecided,
}

/// How answers are found and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// MATH-style: boxed or `Answer:`, expression equivalence.
    Math,
    /// AIME: an integer.
    Aime,
    /// GSM8K: `#### n` (references too), numbers.
    Gsm8k,
    /// Multiple choice: a letter.
    Mc,
}

/// One graded response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Graded {
    /// The answer found in the response (None: no answer given, which is incorrect).
    pub extracted: Option<String>,
    /// The reference as compared (GSM8K: the number after `####`).
    pub reference: String,
    pub verdict: Verdict,
}

/// The integer of an AIME-style answer (`033`, `33.0`, `\boxed{33}` contents), if it is one.
fn integer(s: &str) -> Option<i64> {
    let n = normalize::normalize(s);
    let n = n.trim_start_matches('(').trim_end_matches(')');
    if let Ok(v) = n.parse::<i64>() {
        return Some(v);
    }
    let v: f64 = n.parse().ok()?;
    (v.fract() == 0.0 && v.abs() < 1e15).then_some(v as i64)
}

/// How the answer is read from a response before it is compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Extraction {
    /// s1's own reading ([`s1`]): the answer part after the last `<|im_start|>answer\n`, its last
    /// boxed answer, else everything after its first `Answer:`. AIME-style integers compare as
    /// integers (`023` = `23`); a multiple-choice answer that names no letter counts as `A`,
    /// as s1's GPQA task does. Where s1 asks gpt-4o-mini to compare, the offline equivalence
    /// rules stand in (this studio grades offline).
    #[default]
    S1,
    /// The studio's own reading ([`extract`]): the last boxed answer, else the last `Answer:`
    /// line, GSM8K's `#### n`, letters in their usual forms ("the answer is (B)"); an answer
    /// that cannot be found is incorrect (no default letter).
    Lenient,
}

/// Grades `response` against `reference` with the studio's lenient extraction (curation's
/// offline stand-in for a judge); evaluation uses [`grade_with`] and s1's extraction.
pub fn grade(response: &str, reference: &str, kind: Kind) -> Graded {
    grade_with(response, reference, kind, Extraction::Lenient)
}

/// Grades `response` (s1: the whole continuation, thinking included) against `reference`.
pub fn grade_with(response: &str, reference: &str, kind: Kind, extraction: Extraction) -> Graded {
    match extraction {
        Extraction::S1 => grade_s1(response, reference, kind),
        Extraction::Lenient => grade_lenient(response, reference, kind),
    }
}

/// The verdict of comparing integers `a` and `r` (None: not integers).
fn integer_verdict(a: &str, reference: &str) -> Verdict {
    match (integer(a), integer(reference)) {
        (Some(a), Some(r)) => {
            if a == r {
                Verdict::Correct
            } else {
                Verdict::Incorrect
            }
        }
        (None, Some(_)) => Verdict::Incorrect,
        (_, None) => Verdict::Undecided,
    }
}

/// GSM8K's reference: the number after `####`, separators dropped.
fn gsm8k_reference(reference: &str) -> String {
    match reference.rfind("####") {
        Some(i) => reference[i + 4..].trim().replace(',', ""),
        None => reference.trim().replace(',', ""),
    }
}

/// GSM8K's numeric comparison of an extracted number with the reference.
fn gsm8k_verdict(a: &str, reference: &str) -> Verdict {
    match (a.parse::<f64>(), reference.parse::<f64>()) {
        (Ok(v), Ok(r)) if (v - r).abs() <= 1e-6 * r.abs().max(1.0) => Verdict::Correct,
        (Ok(_), Ok(_)) => Verdict::Incorrect,
        (Err(_), Ok(_)) => Verdict::Undecided,
        (_, Err(_)) => equiv::math_equivalent(a, reference),
    }
}

/// s1's grading (aime/utils.py and openai_math/utils.py `process_results`, gpqa/openai/utils.py
/// `process_results`), offline.
fn grade_s1(response: &str, reference: &str, kind: Kind) -> Graded {
    let s1::S1Answer { text: a, found } = s1::extract(response);
    if a.trim().is_empty() && kind != Kind::Mc {
        // Nothing to read (s1's judge answers -1 and the comparison fails).
        return Graded {
            extracted: None,
            reference: match kind {
                Kind::Gsm8k => gsm8k_reference(reference),
                _ => reference.to_string(),
            },
            verdict: Verdict::Incorrect,
        };
    }
    match kind {
        Kind::Math | Kind::Aime => {
            // s1: both digit strings -> compared as integers ("023" = "23"), else its judge.
            let verdict = match (s1::int_digits(&a), s1::int_digits(reference.trim())) {
                (Some(x), Some(r)) => {
                    if x == r {
                        Verdict::Correct
                    } else {
                        Verdict::Incorrect
                    }
                }
                _ if kind == Kind::Aime && integer(&a).is_some() => integer_verdict(&a, reference),
                // A whole answer part (nothing boxed, no `Answer:`) that the rules cannot read
                // is prose s1's judge would mostly answer -1 to: incorrect, not undecided.
                _ => match equiv::math_equivalent(&a, reference) {
                    Verdict::Undecided if found == s1::Found::Whole => Verdict::Incorrect,
                    v => v,
                },
            };
            Graded {
                extracted: Some(a),
                reference: reference.to_string(),
                verdict,
            }
        }
        Kind::Gsm8k => {
            // Not one of s1's tasks: s1's reading, then the number in what it read.
            let reference = gsm8k_reference(reference);
            let number = s1::int_digits(&a).or_else(|| extract::gsm8k_answer(&a));
            let verdict = match &number {
                None => Verdict::Incorrect,
                Some(n) => gsm8k_verdict(n, &reference),
            };
            Graded {
                extracted: number,
                reference,
                verdict,
            }
        }
        Kind::Mc => {
            // s1: a lone a-d/A-D is the letter; otherwise its judge reads one (offline: the
            // lenient letter rules on what was read); none at all counts as "A".
            let t = a.as_str();
            let letter = if t.len() == 1 && "ABCDabcd".contains(t) {
                t.chars().next().map(|c| c.to_ascii_uppercase())
            } else {
                extract::choice_letter(&a)
            }
            .unwrap_or('A');
            let verdict = match extract::choice_letter(reference) {
                None => Verdict::Undecided,
                Some(w) if w == letter => Verdict::Correct,
                Some(_) => Verdict::Incorrect,
            };
            Graded {
                extracted: Some(letter.to_string()),
                reference: reference.to_string(),
                verdict,
            }
        }
    }
}

/// The studio's lenient grading.
fn grade_lenient(response: &str, reference: &str, kind: Kind) -> Graded {
    match kind {
        Kind::Math => {
            let extracted = extract::math_answer(response);
            let verdict = match &extracted {
                None => Verdict::Incorrect,
                Some(a) => equiv::math_equivalent(a, reference),
            };
            Graded {
                extracted,
                reference: reference.to_string(),
                verdict,
            }
        }
        Kind::Aime => {
            let extracted = extract::math_answer(response);
            let verdict = match &extracted {
                None => Verdict::Incorrect,
                Some(a) => integer_verdict(a, reference),
            };
            Graded {
                extracted,
                reference: reference.to_string(),
                verdict,
            }
        }
        Kind::Gsm8k => {
            let reference = gsm8k_reference(reference);
            let extracted = extract::gsm8k_answer(response);
            let verdict = match &extracted {
                None => Verdict::Incorrect,
                Some(a) => gsm8k_verdict(a, &reference),
            };
            Graded {
                extracted,
                reference,
                verdict,
            }
        }
        Kind::Mc => {
            let extracted = extract::choice_letter(response).map(String::from);
            let want = extract::choice_letter(reference);
            let verdict = match (&extracted, want) {
                (None, _) => Verdict::Incorrect,
                (Some(_), None) => Verdict::Undecided,
                (Some(a), Some(w)) => {
                    if a.starts_with(w) {
                        Verdict::Correct
                    } else {
                        Verdict::Incorrect
                    }
                }
            };
            Graded {
                extracted,
                reference: reference.to_string(),
                verdict,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s1(response: &str, reference: &str, kind: Kind) -> (Option<String>, Verdict) {
        let g = grade_with(response, reference, kind, Extraction::S1);
        (g.extracted, g.verdict)
    }

    /// A forced end reads what follows `Final Answer:` for every task kind (main read nothing).
    #[test]
    fn s1_forced_answers_each_kind() {
        let forced = |a: &str| format!("<|im_start|>think\nHmm \\boxed{{9}}\n<|im_start|>answer\nFinal Answer: {a}");
        // AIME: integers, "023" = 23.
        assert_eq!(
            s1(&forced("204"), "204", Kind::Aime),
            (Some("204".into()), Verdict::Correct)
        );
        assert_eq!(s1(&forced("023"), "23", Kind::Aime).1, Verdict::Correct);
        assert_eq!(s1(&forced("23"), "023", Kind::Aime).1, Verdict::Correct);
        assert_eq!(s1(&forced("205"), "204", Kind::Aime).1, Verdict::Incorrect);
        assert_eq!(s1(&forced("$204$."), "204", Kind::Aime).1, Verdict::Correct);
        // MATH500: the offline equivalence stands in for s1's gpt-4o-mini judge.
        assert_eq!(
            s1(&forced("$\\frac{1}{2}$"), "\\dfrac12", Kind::Math),
            (Some("$\\frac{1}{2}$".into()), Verdict::Correct)
        );
        assert_eq!(
            s1(
                &forced("\\boxed{(3, \\frac{\\pi}{2})}"),
                "\\left( 3, \\frac{\\pi}{2} \\right)",
                Kind::Math
            )
            .1,
            Verdict::Correct
        );
        // GSM8K: the number in what s1 reads.
        assert_eq!(
            s1(&forced("18 dollars"), "Janet ...\n#### 18", Kind::Gsm8k),
            (Some("18".into()), Verdict::Correct)
        );
        // Multiple choice: a letter; lower case counts.
        assert_eq!(s1(&forced("c"), "C", Kind::Mc), (Some("C".into()), Verdict::Correct));
        assert_eq!(
            s1(&forced("(B) 7"), "B", Kind::Mc),
            (Some("B".into()), Verdict::Correct)
        );
        // The lenient reading also reads a forced answer now.
        assert_eq!(grade(&forced("204"), "204", Kind::Aime).verdict, Verdict::Correct);
        assert_eq!(grade(&forced("18"), "#### 18", Kind::Gsm8k).verdict, Verdict::Correct);
    }

    #[test]
    fn s1_rules_that_differ_from_lenient() {
        // The thinking's boxed answer is not read: only the answer part counts.
        let r = "<|im_start|>think\n\\boxed{5}<|im_start|>answer\nThe answer is 6.";
        assert_ne!(s1(r, "5", Kind::Math).1, Verdict::Correct);
        assert_eq!(
            grade(r, "5", Kind::Math).verdict,
            Verdict::Correct,
            "lenient falls back to it"
        );
        // Nothing readable in a multiple-choice answer counts as "A" (gpqa/openai/utils.py).
        assert_eq!(
            s1("<|im_start|>answer\nI do not know", "A", Kind::Mc),
            (Some("A".into()), Verdict::Correct)
        );
        assert_eq!(
            grade("<|im_start|>answer\nI do not know", "A", Kind::Mc).verdict,
            Verdict::Incorrect
        );
        // The first `Answer:` and everything after it: not an integer, so s1 would ask its judge;
        // offline it is undecided, never correct.
        let r = "<|im_start|>answer\nAnswer: 12\nWait, Answer: 13";
        assert_eq!(
            s1(r, "12", Kind::Aime),
            (Some("12\nWait, Answer: 13".into()), Verdict::Undecided)
        );
        assert_eq!(grade(r, "13", Kind::Aime).verdict, Verdict::Correct);
        // A whole answer part of prose: incorrect (s1's judge), not undecided.
        let r = "<|im_start|>answer\nI think it is about twelve or so";
        assert_eq!(s1(r, "12", Kind::Aime).1, Verdict::Incorrect);
        assert_eq!(s1("<|im_start|>answer\n12", "12", Kind::Aime).1, Verdict::Correct);
        // An empty answer part is no answer.
        assert_eq!(s1("<|im_start|>answer\n", "1", Kind::Math), (None, Verdict::Incorrect));
    }

    #[test]
    fn each_kind() {
        let r = "<|im_start|>think\n...<|im_start|>answer\nFinal Answer: $\\boxed{033}$";
        assert_eq!(grade(r, "33", Kind::Aime).verdict, Verdict::Correct);
        assert_eq!(grade(r, "34", Kind::Aime).verdict, Verdict::Incorrect);
        assert_eq!(grade("no answer", "34", Kind::Aime).verdict, Verdict::Incorrect);
        assert_eq!(
            grade("\\boxed{\\dfrac{1}{2}}", "0.5", Kind::Math).verdict,
            Verdict::Correct
        );
        let g = grade("So she has 18 dollars.\n#### 18", "Janet ... \n#### 18", Kind::Gsm8k);
        assert_eq!((g.extracted.as_deref(), g.verdict), (Some("18"), Verdict::Correct));
        assert_eq!(grade("The answer is (C)", "C", Kind::Mc).verdict, Verdict::Correct);
        assert_eq!(grade("The answer is (C)", "(A)", Kind::Mc).verdict, Verdict::Incorrect);
    }
}
