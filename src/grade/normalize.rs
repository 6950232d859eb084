//! The normalisations the MATH and lm-eval graders apply to an answer string before comparing:
//! line breaks, `\!`, `\left`/`\right`, `\dfrac`/`\tfrac`, degrees, percent, dollars, trailing
//! `\text{}` units, a leading `x =`, thousands separators, trailing zeros, `\frac12` and
//! `\sqrt2` shorthands, `a/b` for integers, then all spaces.

/// Removes a trailing `\text{...}` / `\mbox{...}` that names a unit (text after a value).
fn remove_units(s: &str) -> String {
    for cmd in ["\\text{", "\\mbox{", "\\textrm{", "\\mathrm{"] {
        if let Some(i) = s.rfind(cmd) {
            let before = s[..i].trim_end();
            let after = &s[i + cmd.len()..];
            let content = after.find('}').map(|j| &after[..j]);
            // nothing after the unit but a power (`\text{ cm}^2`)
            let tail_empty = after.find('}').is_some_and(|j| {
                let t = after[j + 1..].trim();
                t.is_empty() || ["^2", "^3", "^{2}", "^{3}"].contains(&t)
            });
            // A unit follows a value; a lone \text{Evelyn} is the answer itself.
            let value_before = before
                .chars()
                .last()
                .is_some_and(|c| c.is_ascii_digit() || c == '}' || c == ')' || c == '.');
            if tail_empty && value_before && content.is_some_and(|c| c.chars().any(|c| c.is_alphabetic())) {
                return remove_units(before);
            }
        }
    }
    s.to_string()
}

/// `\text{abc}` -> `abc` (after units are gone).
fn unwrap_text(s: &str) -> String {
    let mut out = s.to_string();
    for cmd in ["\\text{", "\\textbf{", "\\mbox{", "\\textrm{", "\\mathrm{", "\\mathbf{"] {
        while let Some(i) = out.find(cmd) {
            let after = &out[i + cmd.len()..];
            let Some(j) = matching_brace(after) else { break };
            out = format!("{}{}{}", &out[..i], &after[..j], &after[j + 1..]);
        }
    }
    out
}

/// Index of the `}` closing an already opened brace in `s`.
pub fn matching_brace(s: &str) -> Option<usize> {
    let mut depth = 1usize;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// `\frac12` -> `\frac{1}{2}`, `\frac1{x}` -> `\frac{1}{x}`, `\sqrt2` -> `\sqrt{2}`.
fn fix_shorthands(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let rest: String = chars[i..].iter().take(5).collect();
        if rest.starts_with("\\frac") || rest.starts_with("\\sqrt") {
            let is_frac = rest.starts_with("\\frac");
            out.push_str(&rest);
            i += 5;
            let args = if is_frac { 2 } else { 1 };
            for _ in 0..args {
                if i < chars.len()
                    && chars[i] != '{'
                    && chars[i] != '['
                    && !chars[i].is_whitespace()
                    && chars[i] != '\\'
                {
                    out.push('{');
                    out.push(chars[i]);
                    out.push('}');
                    i += 1;
                } else if i < chars.len() && chars[i] == '{' {
                    // copy a braced argument verbatim
                    let rest: String = chars[i + 1..].iter().collect();
                    match matching_brace(&rest) {
                        Some(j) => {
                            let n = rest[..j].chars().count();
                            out.push('{');
                            out.push_str(&fix_shorthands(&rest[..j]));
                            out.push('}');
                            i += n + 2;
                        }
                        None => break,
                    }
                } else {
                    break;
                }
            }
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Mixed numbers: an integer directly followed by `\frac{p}{q}` of integers means their sum
/// (`1\frac{1}{4}` = 5/4): `(1+\frac{1}{4})`.
fn mixed_numbers(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let mut rest = s;
    while let Some(i) = rest.find("\\frac{") {
        let before = &rest[..i];
        let digits = before.len() - before.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let after = &rest[i + 6..];
        let args = after.find('}').and_then(|j| {
            let p = &after[..j];
            let tail = after[j + 1..].strip_prefix('{')?;
            let k = tail.find('}')?;
            let q = &tail[..k];
            let int = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit());
            (int(p) && int(q)).then(|| (p.len() + 2 + k + 1, format!("\\frac{{{p}}}{{{q}}}")))
        });
        let whole_number_before = digits > 0 && {
            let head = &before[..before.len() - digits];
            !head.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '.' || c == '}' || c == '^' || c == '_')
        };
        match args {
            Some((len, frac)) if whole_number_before => {
                let head = &before[..before.len() - digits];
                out.push_str(head);
                out.push_str(&format!("({}+{frac})", &before[before.len() - digits..]));
                rest = &after[len..];
            }
            _ => {
                out.push_str(&rest[..i + 6]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `a/b` with integers a, b (the whole string) -> `\frac{a}{b}`.
fn slash_fraction(s: &str) -> String {
    if let Some((a, b)) = s.split_once('/') {
        let int = |t: &str| {
            let t = t.strip_prefix('-').unwrap_or(t);
            !t.is_empty() && t.chars().all(|c| c.is_ascii_digit())
        };
        if int(a) && int(b) {
            return format!("\\frac{{{a}}}{{{b}}}");
        }
    }
    s.to_string()
}

/// Drops thousands separators when the whole answer is one number written with them
/// (`1,000` / `1{,}000` / `-32,348.5`); elsewhere a comma separates items (`(12,102)`).
fn drop_thousands(s: &str) -> String {
    let t = s.replace("{,}", ",");
    let body = t.strip_prefix('-').unwrap_or(&t);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let groups: Vec<&str> = int.split(',').collect();
    let grouped = groups.len() > 1
        && (1..=3).contains(&groups[0].len())
        && groups[1..].iter().all(|g| g.len() == 3)
        && groups.iter().all(|g| g.chars().all(|c| c.is_ascii_digit()))
        && frac.chars().all(|c| c.is_ascii_digit());
    if grouped {
        t.replace(',', "")
    } else {
        s.to_string()
    }
}

/// Trailing zeros of decimals: `2.50` -> `2.5`, `3.0` -> `3`.
fn trim_decimal_zeros(out: &str) -> String {
    let mut res = String::with_capacity(out.len());
    let chars: Vec<char> = out.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '.'
            && i > 0
            && chars[i - 1].is_ascii_digit()
            && i + 1 < chars.len()
            && chars[i + 1].is_ascii_digit()
        {
            let mut j = i + 1;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            let frac: String = chars[i + 1..j].iter().collect();
            let trimmed = frac.trim_end_matches('0');
            if !trimmed.is_empty() {
                res.push('.');
                res.push_str(trimmed);
            }
            i = j;
            continue;
        }
        res.push(chars[i]);
        i += 1;
    }
    res
}

/// The normalised form of an answer string.
pub fn normalize(answer: &str) -> String {
    if super::too_complex(answer) {
        // Past the stated bounds the answer is compared as it is (linear), never rewritten.
        return answer.trim().to_string();
    }
    let mut s = answer.trim().trim_end_matches('.').trim().to_string();
    s = s.replace(['\n', '\r'], " ").replace("\\!", "").replace("\\\\", "\\");
    for (from, to) in [
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("\\left", ""),
        ("\\right", ""),
        ("\\displaystyle", ""),
        ("\\,", ""),
        ("\\;", ""),
        ("\\:", ""),
        ("\\ ", ""),
        ("~", ""),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("\\circ", ""),
        ("°", ""),
        ("\\degree", ""),
        ("\\$", ""),
        ("$", ""),
        ("\\%", ""),
        ("%", ""),
        ("\\cdot", "*"),
        ("\\times", "*"),
    ] {
        s = s.replace(from, to);
    }
    s = remove_units(&s);
    s = unwrap_text(&s);
    s = s.trim().trim_end_matches('.').trim().to_string();
    // a leading "x =" / "k=" naming one variable
    if let Some((lhs, rhs)) = s.split_once('=') {
        let l = lhs.trim();
        if l.chars().count() <= 2 && l.chars().all(|c| c.is_alphabetic()) && !rhs.contains('=') {
            s = rhs.trim().to_string();
        }
    }
    // ".5" -> "0.5"
    s = s.replace(" .", " 0.").replace("{.", "{0.");
    if s.starts_with('.') {
        s.insert(0, '0');
    }
    s.retain(|c| !c.is_whitespace());
    s = trim_decimal_zeros(&drop_thousands(&s));
    s = fix_shorthands(&s);
    s = mixed_numbers(&s);
    s = slash_fraction(&s);
    if s == "0.5" {
        s = "\\frac{1}{2}".into();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn one_rule_at_a_time() {
        let cases = [
            ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"),
            ("\\dfrac{1}{2}", "\\frac{1}{2}"),
            ("\\tfrac{3}{4}", "\\frac{3}{4}"),
            ("5\\!000", "5000"),
            ("90^\\circ", "90"),
            ("90^{\\circ}", "90"),
            ("50\\%", "50"),
            ("\\$18.90", "18.9"),
            ("10\\text{ cm}", "10"),
            ("4 \\mbox{ inches}^2", "4"),
            ("\\text{Evelyn}", "Evelyn"),
            ("x = 5", "5"),
            ("1,000,000", "1000000"),
            ("2.50", "2.5"),
            ("3.0", "3"),
            ("\\frac12", "\\frac{1}{2}"),
            ("\\sqrt2", "\\sqrt{2}"),
            ("11\\sqrt2", "11\\sqrt{2}"),
            ("3/4", "\\frac{3}{4}"),
            (".5", "\\frac{1}{2}"),
            ("1, -2", "1,-2"),
            ("3 \\cdot 4", "3*4"),
            ("1\\frac{1}{4}", "(1+\\frac{1}{4})"),
            ("33 \\frac{1}{3}", "(33+\\frac{1}{3})"),
            ("2\\frac{\\pi}{3}", "2\\frac{\\pi}{3}"),
            ("x^2\\frac{1}{2}", "x^2\\frac{1}{2}"),
        ];
        for (a, want) in cases {
            assert_eq!(normalize(a), want, "normalize({a:?})");
        }
    }
}
