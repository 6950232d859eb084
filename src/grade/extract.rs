//! The studio's lenient answer reading ([`super::Extraction::Lenient`]; s1's own is
//! [`super::s1`]): the text after the last answer delimiter; in it the last `\boxed{...}` or
//! `\fbox{...}` (nested braces), else the last `Answer:` line; GSM8K's `#### n`;
//! multiple-choice letters in their usual forms.

/// The s1 answer delimiter; the text after its last occurrence is the answer part.
pub const ANSWER_DELIMITER: &str = "<|im_start|>answer";

/// The part of `response` after the last answer delimiter (the whole response without one).
/// A forced "Final Answer:" stays in it: it is an `Answer:` line like any other.
pub fn answer_section(response: &str) -> &str {
    let s = match response.rfind(ANSWER_DELIMITER) {
        Some(i) => &response[i + ANSWER_DELIMITER.len()..],
        None => response,
    };
    s.trim_start()
}

/// The content of the last `\boxed{...}` / `\fbox{...}` (braces balanced), or of `\boxed x`
/// (one token after a space).
pub fn last_boxed(text: &str) -> Option<String> {
    let start = ["\\boxed", "\\fbox"]
        .iter()
        .filter_map(|m| text.rfind(m).map(|i| (i, m.len())))
        .max()?;
    let rest = &text[start.0 + start.1..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut depth = 1usize;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(inner[..i].trim().to_string());
                    }
                }
                _ => {}
            }
        }
        return None; // unbalanced: no answer
    }
    let rest = rest.strip_prefix(' ')?;
    let token: String = rest.chars().take_while(|c| !c.is_whitespace() && *c != '$').collect();
    (!token.is_empty()).then_some(token)
}

/// The rest of the line after the last `Answer:` (any case), without surrounding `$` and a
/// final period.
pub fn last_answer_line(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    let i = lower.rfind("answer:")?;
    let line = text[i + "answer:".len()..].lines().next().unwrap_or("").trim();
    let line = line.trim_end_matches('.').trim().trim_matches('$').trim();
    (!line.is_empty()).then(|| line.to_string())
}

/// The math answer of a response: the last boxed expression of its answer part, else its last
/// `Answer:` line. Falls back to the whole response when no delimiter is present.
pub fn math_answer(response: &str) -> Option<String> {
    let section = answer_section(response);
    last_boxed(section)
        .or_else(|| last_answer_line(section))
        .or_else(|| last_boxed(response))
}

/// GSM8K: the number after the last `####`, else the math answer, else the last number in the
/// answer part. Thousands separators are dropped.
pub fn gsm8k_answer(response: &str) -> Option<String> {
    let section = answer_section(response);
    if let Some(i) = section.rfind("####") {
        let n = last_number(&section[i + 4..]).or_else(|| first_number(&section[i + 4..]));
        if n.is_some() {
            return n;
        }
    }
    if let Some(a) = math_answer(response) {
        if let Some(n) = last_number(&a) {
            return Some(n);
        }
    }
    last_number(section)
}

fn numbers(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let neg = chars[i] == '-' && i + 1 < chars.len() && chars[i + 1].is_ascii_digit();
        if chars[i].is_ascii_digit() || neg {
            let mut s = String::new();
            if neg {
                s.push('-');
                i += 1;
            }
            while i < chars.len() {
                let c = chars[i];
                let sep_digit = |j: usize| j < chars.len() && chars[j].is_ascii_digit();
                if c.is_ascii_digit() {
                    s.push(c);
                } else if c == ',' && sep_digit(i + 1) && sep_digit(i + 2) && sep_digit(i + 3) {
                    // thousands separator
                } else if c == '.' && sep_digit(i + 1) {
                    s.push(c);
                } else {
                    break;
                }
                i += 1;
            }
            out.push(s);
        } else {
            i += 1;
        }
    }
    out
}

fn last_number(text: &str) -> Option<String> {
    numbers(text).pop()
}

fn first_number(text: &str) -> Option<String> {
    numbers(text).into_iter().next()
}

/// A multiple-choice letter (A-J): `\boxed{B}`, "(B)", "B)", "the answer is B", "Answer: B",
/// or a lone letter, in the answer part.
pub fn choice_letter(response: &str) -> Option<char> {
    let section = answer_section(response);
    let letter = |s: &str| -> Option<char> {
        let t = s.trim().trim_matches(|c: char| "$().:*[] ".contains(c));
        let t = t.strip_prefix("\\text{").and_then(|t| t.strip_suffix('}')).unwrap_or(t);
        let mut it = t.chars();
        match (it.next(), it.next()) {
            (Some(c), None) if ('A'..='J').contains(&c.to_ascii_uppercase()) => Some(c.to_ascii_uppercase()),
            _ => None,
        }
    };
    if let Some(b) = last_boxed(section) {
        if let Some(c) = letter(&b) {
            return Some(c);
        }
        if let Some(c) = b.split_whitespace().next().and_then(letter) {
            return Some(c);
        }
    }
    let lower = section.to_lowercase();
    for key in ["the answer is", "answer:", "answer is"] {
        if let Some(i) = lower.rfind(key) {
            let after = &section[i + key.len()..];
            if let Some(c) = after.split_whitespace().next().and_then(letter) {
                return Some(c);
            }
        }
    }
    // "(B)" or "B)" anywhere: the last one.
    let chars: Vec<char> = section.chars().collect();
    for i in (0..chars.len()).rev() {
        let c = chars[i].to_ascii_uppercase();
        if ('A'..='J').contains(&chars[i]) && i + 1 < chars.len() && chars[i + 1] == ')' {
            let before_ok = i == 0 || !chars[i - 1].is_alphanumeric();
            if before_ok {
                return Some(c);
            }
        }
    }
    letter(section)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxed_with_nested_braces_after_the_last_delimiter() {
        let r = "think \\boxed{1} <|im_start|>answer\nFinal Answer: so \\boxed{\\frac{1}{2}} then \\fbox{\\frac{\\sqrt{3}}{2}}.";
        assert_eq!(math_answer(r).as_deref(), Some("\\frac{\\sqrt{3}}{2}"));
        assert_eq!(last_boxed("\\boxed 5 apples").as_deref(), Some("5"));
        assert_eq!(last_boxed("\\boxed{unbalanced"), None);
    }

    #[test]
    fn answer_line_when_nothing_is_boxed() {
        assert_eq!(math_answer("work...\nAnswer: $x = 3$.\n").as_deref(), Some("x = 3"));
        assert_eq!(math_answer("no answer here"), None);
    }

    #[test]
    fn gsm8k_hashes_and_separators() {
        assert_eq!(gsm8k_answer("so 3 + 4\n#### 1,234").as_deref(), Some("1234"));
        assert_eq!(
            gsm8k_answer("The total is $\\boxed{72}$ dollars").as_deref(),
            Some("72")
        );
        assert_eq!(gsm8k_answer("she pays 5 then -3.5 back").as_deref(), Some("-3.5"));
    }

    #[test]
    fn choice_letters_in_their_usual_forms() {
        assert_eq!(choice_letter("The answer is (B)."), Some('B'));
        assert_eq!(choice_letter("I pick C) because"), Some('C'));
        assert_eq!(choice_letter("Answer: d"), Some('D'));
        assert_eq!(choice_letter("\\boxed{A}"), Some('A'));
        assert_eq!(choice_letter("\\boxed{\\text{(E)}}"), Some('E'));
        assert_eq!(choice_letter("no idea"), None);
    }
}
