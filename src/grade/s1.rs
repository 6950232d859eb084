//! s1's answer extraction, re-implemented from its lm-evaluation-harness fork (the same code in
//! `tasks/aime/utils.py`, `tasks/openai_math/utils.py` and `tasks/gpqa/openai/utils.py`:
//! `process_results`, `last_boxed_only_string`, `remove_boxed`, `ANSWER_PATTERN`).
//!
//! s1 grades the whole continuation (thinking start, thinking, the answer delimiter, the answer)
//! and reads, in order:
//! 1. the answer part: the text after the last `<|im_start|>answer\n`; without one, the text
//!    after the last `<|im_start|>` minus its first line; without either, all of it;
//! 2. in it the last boxed answer: when `\boxed ` (with a space) occurs anywhere, the text after
//!    its last occurrence up to the next `$`; else the last `\boxed{...}` (or, with no `\boxed`
//!    at all, the last `\fbox{...}`), braces balanced from the `\boxed`;
//! 3. else the regex `(?i)Answer\s*:\s*(.*)` with `re.DOTALL`, taking `matches[-1]`. With DOTALL
//!    the greedy `.*` runs to the end of the text, so there is exactly one match and it starts at
//!    the FIRST `Answer:` (any case, spaces allowed before the colon): the answer is everything
//!    after that colon, leading whitespace dropped (a forced `Final Answer: 204` reads `204`);
//! 4. else the answer part itself (s1 then asks gpt-4o-mini to read it).
//!
//! Where s1's code fails with an `AssertionError` (it stops the whole evaluation), this module
//! picks the evident intent, and says so: `\fbox{x}` reads `x` (s1's `remove_boxed` only accepts
//! `\boxed{`), and a `\boxed` not followed by `{` or a space is no boxed answer (step 3 follows).

use crate::pytext::is_space as py_space; // Python's `\s` for `str` patterns

/// The answer delimiter s1 splits on (with its newline).
pub const ANSWER_SPLIT: &str = "<|im_start|>answer\n";
/// The turn start s1 splits on when the answer delimiter is absent.
pub const TURN_SPLIT: &str = "<|im_start|>";

/// Where s1's extraction found the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Found {
    /// The last boxed expression.
    Boxed,
    /// The text after the first `Answer:` of the answer part.
    AnswerPattern,
    /// Neither: the whole answer part (s1 hands it to its LLM judge).
    Whole,
}

/// What s1's extraction read from a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S1Answer {
    pub text: String,
    pub found: Found,
}

/// Whether `c` matches the lower-case ASCII letter `want` under Python's `re.IGNORECASE`
/// (Unicode): its upper case, and for `s` also the long s `ſ` (U+017F).
fn same_letter(c: char, want: char) -> bool {
    c == want || c == want.to_ascii_uppercase() || (want == 's' && c == '\u{17f}')
}

/// The answer part of `response` (step 1).
pub fn answer_part(response: &str) -> &str {
    if let Some(i) = response.rfind(ANSWER_SPLIT) {
        return &response[i + ANSWER_SPLIT.len()..];
    }
    if let Some(i) = response.rfind(TURN_SPLIT) {
        let rest = &response[i + TURN_SPLIT.len()..];
        return match rest.find('\n') {
            Some(j) => &rest[j + 1..],
            None => rest,
        };
    }
    response
}

/// The last boxed answer of `text` without its box (step 2), or None.
pub fn last_boxed(text: &str) -> Option<String> {
    const SPACED: &str = "\\boxed ";
    if let Some(i) = text.rfind(SPACED) {
        let rest = &text[i + SPACED.len()..];
        return Some(rest.split('$').next().unwrap_or_default().to_string());
    }
    let idx = text.rfind("\\boxed").or_else(|| text.rfind("\\fbox"))?;
    // Braces counted from the `\boxed` on; the first `}` that brings the count to 0 closes it.
    let mut open: i64 = 0;
    let mut close = None;
    for (k, b) in text.bytes().enumerate().skip(idx) {
        if b == b'{' {
            open += 1;
        } else if b == b'}' {
            open -= 1;
            if open == 0 {
                close = Some(k);
                break;
            }
        }
    }
    let boxed = &text[idx..=close?];
    boxed
        .strip_prefix("\\boxed{")
        .or_else(|| boxed.strip_prefix("\\fbox{"))
        .and_then(|s| s.strip_suffix('}'))
        .map(str::to_string)
}

/// `(?i)Answer\s*:\s*` matched at the start of `s`: the text after it.
fn answer_at(s: &str) -> Option<&str> {
    let mut rest = s;
    for want in "answer".chars() {
        let c = rest.chars().next()?;
        if !same_letter(c, want) {
            return None;
        }
        rest = &rest[c.len_utf8()..];
    }
    let rest = rest.trim_start_matches(py_space).strip_prefix(':')?;
    Some(rest.trim_start_matches(py_space))
}

/// s1's `re.findall(ANSWER_PATTERN, text, re.DOTALL)[-1]` (step 3): everything after the first
/// `Answer:` (any case), leading white space dropped; None without one.
pub fn answer_pattern(text: &str) -> Option<String> {
    text.char_indices()
        .find_map(|(i, _)| answer_at(&text[i..]))
        .map(str::to_string)
}

/// s1's extraction from a whole continuation (steps 1-4).
pub fn extract(response: &str) -> S1Answer {
    let part = answer_part(response);
    if let Some(text) = last_boxed(part) {
        return S1Answer {
            text,
            found: Found::Boxed,
        };
    }
    if let Some(text) = answer_pattern(part) {
        return S1Answer {
            text,
            found: Found::AnswerPattern,
        };
    }
    S1Answer {
        text: part.to_string(),
        found: Found::Whole,
    }
}

/// s1's `str(int(x))` for a string of ASCII digits (AIME's `023` -> `23`), without overflow;
/// None for anything else (Python's `isdigit` also takes other Unicode digits: not handled).
pub fn int_digits(s: &str) -> Option<String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = s.trim_start_matches('0');
    Some(if t.is_empty() { "0".into() } else { t.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(s: &str) -> (String, Found) {
        let a = extract(s);
        (a.text, a.found)
    }

    #[test]
    fn forced_final_answer_reads_what_follows() {
        let r = "<|im_start|>think\nLet me see\n<|im_start|>answer\nFinal Answer: 204";
        assert_eq!(x(r), ("204".into(), Found::AnswerPattern));
        // The regex's one match starts at the FIRST `Answer:` and runs to the end.
        let r = "<|im_start|>answer\nFinal Answer: 12\nso the Answer: 13";
        assert_eq!(x(r).0, "12\nso the Answer: 13");
        assert_eq!(x("<|im_start|>answer\nANSWER :\n\n 7\n").0, "7\n");
        assert_eq!(x("<|im_start|>answer\nAnſwer: 7").0, "7", "Python's IGNORECASE: ſ is s");
        assert_eq!(x("answered: 7").1, Found::Whole, "`answered:` is not `answer:`");
    }

    #[test]
    fn answer_part_rules() {
        // The last delimiter wins; thinking before it is not read.
        assert_eq!(
            answer_part("a \\boxed{1}<|im_start|>answer\nb<|im_start|>answer\nc"),
            "c"
        );
        // Without `answer\n`: after the last `<|im_start|>`, first line dropped.
        assert_eq!(answer_part("t<|im_start|>answer The end\nAnswer: 5"), "Answer: 5");
        assert_eq!(answer_part("t<|im_start|>answer"), "answer");
        assert_eq!(answer_part("no delimiter"), "no delimiter");
        // A boxed answer in the thinking is not the answer.
        let r = "<|im_start|>think\n\\boxed{1}<|im_start|>answer\nFinal Answer: 2";
        assert_eq!(x(r).0, "2");
    }

    #[test]
    fn boxed_rules() {
        assert_eq!(
            last_boxed("so \\boxed{\\frac{1}{2}} or \\boxed{3}").as_deref(),
            Some("3")
        );
        assert_eq!(last_boxed("\\boxed{\\frac{1}{2}}").as_deref(), Some("\\frac{1}{2}"));
        // `\boxed ` anywhere: the text after its last occurrence, up to a `$`, wins even over
        // a later `\boxed{}`.
        assert_eq!(last_boxed("$\\boxed 5$ apples").as_deref(), Some("5"));
        assert_eq!(last_boxed("\\boxed 5 apples\nmore").as_deref(), Some("5 apples\nmore"));
        assert_eq!(last_boxed("\\boxed 5$ then \\boxed{6}").as_deref(), Some("5"));
        // \fbox only when there is no \boxed at all.
        assert_eq!(last_boxed("\\fbox{4} and \\boxed{5}").as_deref(), Some("5"));
        assert_eq!(last_boxed("\\boxed{5} and \\fbox{4}").as_deref(), Some("5"));
        assert_eq!(last_boxed("\\fbox{4}").as_deref(), Some("4"));
        assert_eq!(last_boxed("\\boxed{unbalanced"), None);
        assert_eq!(last_boxed("\\boxed\\frac{1}{2}"), None, "s1 fails an assert here");
        assert_eq!(last_boxed("nothing"), None);
        assert_eq!(last_boxed("\\boxed{}").as_deref(), Some(""));
    }

    #[test]
    fn aime_integers() {
        assert_eq!(int_digits("023").as_deref(), Some("23"));
        assert_eq!(int_digits("000").as_deref(), Some("0"));
        assert_eq!(int_digits("204\n"), None, "isdigit fails on the newline");
        assert_eq!(int_digits(""), None);
        assert_eq!(
            int_digits("99999999999999999999999").as_deref(),
            Some("99999999999999999999999")
        );
    }
}
