//! Offline answer grading (S1_RECIPE.md §5): the final answer extracted from a response, and a
//! verdict against the reference: correct, incorrect, or undecided where the rules cannot tell
//! (never a guess). Used by evaluation and by curation's difficulty filter.

pub mod equiv;
pub mod expr;
pub mod extract;
pub mod normalize;

use serde::{Deserialize, Serialize};

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

/// Grades `response` against `reference`.
pub fn grade(response: &str, reference: &str, kind: Kind) -> Graded {
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
            let verdict = match (extracted.as_deref().map(integer), integer(reference)) {
                (Some(Some(a)), Some(r)) => {
                    if a == r {
                        Verdict::Correct
                    } else {
                        Verdict::Incorrect
                    }
                }
                (Some(None), Some(_)) | (None, _) => Verdict::Incorrect,
                (_, None) => Verdict::Undecided,
            };
            Graded {
                extracted,
                reference: reference.to_string(),
                verdict,
            }
        }
        Kind::Gsm8k => {
            let reference = match reference.rfind("####") {
                Some(i) => reference[i + 4..].trim().replace(',', ""),
                None => reference.trim().replace(',', ""),
            };
            let extracted = extract::gsm8k_answer(response);
            let verdict = match (&extracted, reference.parse::<f64>()) {
                (None, _) => Verdict::Incorrect,
                (Some(a), Ok(r)) => match a.parse::<f64>() {
                    Ok(v) if (v - r).abs() <= 1e-6 * r.abs().max(1.0) => Verdict::Correct,
                    Ok(_) => Verdict::Incorrect,
                    Err(_) => Verdict::Undecided,
                },
                (Some(a), Err(_)) => equiv::math_equivalent(a, &reference),
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
