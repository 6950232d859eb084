//! Answer equivalence without an LLM. After normalisation: equal strings are equivalent; tuples,
//! intervals, sets and lists are compared element by element; expressions are compared by
//! value, with each single-letter variable bound to the same random values on both sides
//! (polynomial identity testing: `x^2+1` equals `1+x^2`, `p-q` differs from `q-p`); words are
//! compared as words. What none of these decides is [`Verdict::Undecided`].

use std::collections::BTreeMap;

use super::expr::{eval, variables};
use super::normalize::normalize;
use super::Verdict;

/// The top-level parts of a tuple/interval/set/list and its brackets, if it is one.
fn split_top(s: &str) -> Option<(char, Vec<String>, char)> {
    let (open, inner, close) = if let Some(inner) = s.strip_prefix("\\{").and_then(|t| t.strip_suffix("\\}")) {
        ('{', inner, '}')
    } else {
        let first = s.chars().next()?;
        let last = s.chars().last()?;
        if "([".contains(first) && ")]".contains(last) && s.len() >= 2 {
            (first, &s[1..s.len() - 1], last)
        } else {
            (' ', s, ' ')
        }
    };
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in inner.chars() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return None; // "(a)(b)": not one bracketed group
        }
        if c == ',' && depth == 0 {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    if parts.len() < 2 {
        return None;
    }
    Some((open, parts, close))
}

/// Fixed pseudo-random values for variables, one set per probe.
fn bindings(vars: &[char], probe: usize) -> BTreeMap<char, f64> {
    vars.iter()
        .map(|&v| {
            let h =
                (v as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (probe as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            let u = ((h >> 11) as f64) / ((1u64 << 53) as f64);
            (v, 0.5 + 1.5 * u) // in [0.5, 2): away from 0 and poles at small integers
        })
        .collect()
}

/// Equal up to f64 rounding of the evaluation (exact answers: 2010012/2010013 is not 1), relative
/// to the larger value. Against an exact 0, only the rounding noise of evaluating O(1) terms
/// (about 1e-16, e.g. sin(pi)) counts as 0: a value far below it is a genuinely small answer
/// (1/2^98 is not 0), and one above it is not 0 either.
fn close(a: f64, b: f64) -> bool {
    if a == b {
        return true;
    }
    if a == 0.0 || b == 0.0 {
        let x = (a + b).abs();
        return x < 1e-13 && x > 1e-22;
    }
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Compares two numeric expressions by value at three probes. None: not both evaluable.
fn by_value(a: &str, b: &str) -> Option<bool> {
    let mut vars = variables(a);
    vars.extend(variables(b));
    vars.sort_unstable();
    vars.dedup();
    let mut all = true;
    for probe in 0..3 {
        let env = bindings(&vars, probe);
        let (x, y) = (eval(a, &env)?, eval(b, &env)?);
        all &= close(x, y);
    }
    Some(all)
}

fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphabetic() || c == ' ' || c == '-' || c == '\'')
}

/// Equivalence of two normalised answers.
fn equivalent_normalized(a: &str, b: &str) -> Verdict {
    if a == b {
        return Verdict::Correct;
    }
    match (split_top(a), split_top(b)) {
        (Some((ao, ap, ac)), Some((bo, bp, bc))) => {
            if ap.len() != bp.len() {
                return Verdict::Incorrect;
            }
            if (ao == ' ') != (bo == ' ') {
                // a bracketed tuple or interval against a bare list: a point "(-2,1)" written
                // as "-2, 1", or solutions "-2, 1" against an interval? Not decidable here.
                let inner = if ao == ' ' {
                    unordered(&ap, &bp)
                } else {
                    unordered(&bp, &ap)
                };
                return if inner == Verdict::Incorrect {
                    Verdict::Incorrect
                } else {
                    Verdict::Undecided
                };
            }
            let ordered = ao != '{' && bo != '{' && ao != ' ';
            if ordered && (ao != bo || ac != bc) {
                return Verdict::Incorrect; // (a,b) vs [a,b): different intervals
            }
            return if ordered {
                combine(ap.iter().zip(&bp).map(|(x, y)| equivalent_normalized(x, y)))
            } else {
                unordered(&ap, &bp)
            };
        }
        (Some(_), None) | (None, Some(_)) => {
            // a tuple against a single value
            return if by_value(a, b).is_some() || is_word(a) || is_word(b) {
                Verdict::Incorrect
            } else {
                Verdict::Undecided
            };
        }
        (None, None) => {}
    }
    if let Some(same) = by_value(a, b) {
        return if same { Verdict::Correct } else { Verdict::Incorrect };
    }
    let word = |s: &str| is_word(s) || (eval(s, &BTreeMap::new()).is_some());
    if word(a) && word(b) {
        return if a.eq_ignore_ascii_case(b) {
            Verdict::Correct
        } else {
            Verdict::Incorrect
        };
    }
    Verdict::Undecided
}

/// All parts correct: correct; any incorrect: incorrect; else undecided.
fn combine(vs: impl Iterator<Item = Verdict>) -> Verdict {
    let mut out = Verdict::Correct;
    for v in vs {
        match v {
            Verdict::Incorrect => return Verdict::Incorrect,
            Verdict::Undecided => out = Verdict::Undecided,
            Verdict::Correct => {}
        }
    }
    out
}

/// Multisets: each element of `a` matched to a distinct element of `b` (greedy on correct).
fn unordered(a: &[String], b: &[String]) -> Verdict {
    let mut used = vec![false; b.len()];
    let mut undecided = false;
    for x in a {
        let found = (0..b.len()).find(|&j| !used[j] && equivalent_normalized(x, &b[j]) == Verdict::Correct);
        match found {
            Some(j) => used[j] = true,
            None => {
                let any_undecided =
                    (0..b.len()).any(|j| !used[j] && equivalent_normalized(x, &b[j]) == Verdict::Undecided);
                if !any_undecided {
                    return Verdict::Incorrect;
                }
                undecided = true;
            }
        }
    }
    if undecided {
        Verdict::Undecided
    } else {
        Verdict::Correct
    }
}

/// Whether `answer` is equivalent to `reference` as math answers.
pub fn math_equivalent(answer: &str, reference: &str) -> Verdict {
    if super::too_complex(answer) || super::too_complex(reference) {
        // Past the stated length or depth: not decided (and not a quadratic or deep walk).
        return if answer.trim() == reference.trim() {
            Verdict::Correct
        } else {
            Verdict::Undecided
        };
    }
    equivalent_normalized(&normalize(answer), &normalize(reference))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tiny_answers_are_not_zero_but_rounding_noise_is() {
        assert!(!super::close(0.0, 2f64.powi(-98)));
        assert!(super::close(0.0, std::f64::consts::PI.sin()));
        assert!(!super::close(0.0, 1e-9));
        assert!(!super::close(1e-10, 2e-10));
        assert!(super::close(1.0 / 3.0, 0.333_333_333_333_333_3));
    }

    use super::*;

    #[test]
    fn forms_of_the_same_answer() {
        for (a, b) in [
            ("\\frac{1}{2}", "0.5"),
            ("\\dfrac12", "1/2"),
            ("2\\sqrt{3}", "\\sqrt{12}"),
            ("\\frac{\\pi}{2}", "1.5707963267948966"),
            ("x^2+1", "1+x^2"),
            ("(3, \\frac{\\pi}{2})", "\\left( 3, \\tfrac{\\pi}{2} \\right)"),
            ("\\{1,2\\}", "\\{2,1\\}"),
            ("1, -2", "-2,1"),
            ("[2, 5)", "[2,5)"),
            ("\\text{Evelyn}", "Evelyn"),
            ("10\\%", "10"),
            ("1,000", "1000"),
            ("x = 5", "5"),
            ("6 - 5i", "6-5i"),
        ] {
            assert_eq!(math_equivalent(a, b), Verdict::Correct, "{a} vs {b}");
        }
    }

    #[test]
    fn different_answers_and_undecidable_ones() {
        for (a, b) in [
            ("\\frac{1}{2}", "\\frac{1}{3}"),
            ("p-q", "q-p"),
            ("(2,5)", "[2,5)"),
            ("1,2", "1,2,3"),
            ("Evelyn", "Bob"),
            ("6+5i", "6-5i"),
            ("42", "\\text{Evelyn}"),
        ] {
            assert_eq!(math_equivalent(a, b), Verdict::Incorrect, "{a} vs {b}");
        }
        assert_eq!(math_equivalent("52_8", "42_8"), Verdict::Undecided);
        assert_eq!(math_equivalent("\\infty", "\\text{none}"), Verdict::Undecided);
    }
}
