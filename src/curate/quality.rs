//! The quality rules of S1_RECIPE.md §1 steps 2-3, each on its own so a user can switch them and
//! see what each drops: missing fields, and the "weird strings" in a question: `[asy]` figures
//! (kept when the source is AIME), `![Image]` references, enumerations `p{i}.` (i in 1..999, a
//! plain substring test, as s1 did), and bold numbers matching s1's regex
//! `\*\*(?=.*\d)[^\s\]]*\*\*`.

/// One quality rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A required field is missing or empty.
    MissingField,
    /// `[asy]` in the question, unless the source is AIME.
    Asy,
    /// `![Image]` in the question.
    Image,
    /// `p1.` ... `p999.` anywhere in the question.
    Enumeration,
    /// `**...**` with a digit later on the line (s1's regex).
    BoldNumber,
}

impl Rule {
    pub const ALL: [Rule; 5] = [
        Rule::MissingField,
        Rule::Asy,
        Rule::Image,
        Rule::Enumeration,
        Rule::BoldNumber,
    ];

    /// The rule's name, as flags, settings and the command line spell it.
    pub fn name(self) -> &'static str {
        match self {
            Rule::MissingField => "missing_field",
            Rule::Asy => "asy",
            Rule::Image => "image",
            Rule::Enumeration => "enumeration",
            Rule::BoldNumber => "bold_number",
        }
    }

    pub fn parse(s: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == s)
    }

    /// What the rule flags, for a report or a checkbox.
    pub fn describe(self) -> &'static str {
        match self {
            Rule::MissingField => "a required field is missing",
            Rule::Asy => "[asy] figure (kept for AIME)",
            Rule::Image => "![Image] reference",
            Rule::Enumeration => "p{i}. enumeration",
            Rule::BoldNumber => "**bold** with a digit",
        }
    }
}

/// Parses a comma-separated rule list.
pub fn parse_rules(s: &str) -> Result<Vec<Rule>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| {
            Rule::parse(x).ok_or_else(|| format!("unknown rule `{x}`; rules: {}", Rule::ALL.map(Rule::name).join(", ")))
        })
        .collect()
}

/// `[asy]` unless the source is AIME.
pub fn asy(question: &str, source_is_aime: bool) -> bool {
    !source_is_aime && question.contains("[asy]")
}

pub fn image(question: &str) -> bool {
    question.contains("![Image]")
}

/// Whether `p{i}.` occurs for some i in 1..999 (a substring test: "step1." contains "p1.").
pub fn enumeration(question: &str) -> bool {
    let b = question.as_bytes();
    (0..b.len()).any(|i| {
        if b[i] != b'p' {
            return false;
        }
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        // Some prefix p{i}. with 1 <= i <= 999: the digits right after 'p' (without a leading
        // zero) followed by '.'. Shorter prefixes of the digits cannot be followed by '.'.
        (1..=3).contains(&digits) && b[i + 1] != b'0' && b.get(i + 1 + digits) == Some(&b'.')
    })
}

/// s1's `\*\*(?=.*\d)[^\s\]]*\*\*` (Python `re.search` semantics: `.` stops at a newline, `\s`
/// is Python's whitespace). One difference is left: Python's `\d` also matches non-ASCII decimal
/// digits (e.g. full-width `１`), which this reads as ASCII digits only.
pub fn bold_number(question: &str) -> bool {
    let b = question.as_bytes();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'*' && b[i + 1] == b'*' {
            let after = i + 2;
            // the lookahead: a digit before the end of the line
            let line_end = b[after..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |p| after + p);
            let digit_ahead = b[after..line_end].iter().any(u8::is_ascii_digit);
            if digit_ahead {
                // [^\s\]]* then "**": the run of such characters must contain "**". Python's `\s`
                // is `str.isspace()`: Unicode whitespace and U+001C..U+001F.
                let run_end = question[after..]
                    .char_indices()
                    .find(|&(_, c)| c == ']' || crate::pytext::is_space(c))
                    .map_or(b.len(), |(p, _)| after + p);
                if b[after..run_end].windows(2).any(|w| w == b"**") {
                    return true;
                }
            }
        }
        i += 1;
    }
    false
}

/// The rules a question breaks (missing fields are checked by the caller, who knows the schema).
/// As s1's notebook (filter.ipynb cell 7, `elif "[asy]" in question: if 'AIME' in source_type`),
/// an AIME question with an `[asy]` figure is kept whatever else it contains: it breaks no rule.
pub fn weird_strings(question: &str, source_is_aime: bool) -> Vec<Rule> {
    let mut out = Vec::new();
    if source_is_aime && question.contains("[asy]") {
        return out;
    }
    if asy(question, source_is_aime) {
        out.push(Rule::Asy);
    }
    if image(question) {
        out.push(Rule::Image);
    }
    if enumeration(question) {
        out.push(Rule::Enumeration);
    }
    if bold_number(question) {
        out.push(Rule::BoldNumber);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aime_figure_exempts_the_question_from_every_rule() {
        let q = "[asy]draw((0,0));[/asy] Find **x1** if p1. holds, ![Image](a.png)";
        assert!(weird_strings(q, true).is_empty(), "s1 keeps it");
        assert_eq!(weird_strings(q, false).len(), 4);
        // Without a figure an AIME question meets the other rules as any other.
        assert_eq!(weird_strings("Find **x1**.", true), vec![Rule::BoldNumber]);
    }

    #[test]
    fn asy_is_kept_for_aime() {
        assert!(asy("Draw [asy]draw((0,0));[/asy]", false));
        assert!(!asy("Draw [asy]draw((0,0));[/asy]", true));
        assert!(!asy("no figure", false));
    }

    #[test]
    fn image_references() {
        assert!(image("See ![Image](x.png)"));
        assert!(!image("See the image"));
    }

    #[test]
    fn enumerations_as_substrings() {
        assert!(enumeration("p1. Find x. p2. Find y."));
        assert!(enumeration("In step1. we"), "a substring test, as s1's");
        assert!(enumeration("p999. last"));
        assert!(
            !enumeration("p1000. too many digits"),
            "p1000. contains no p{{i}}. with i < 1000"
        );
        assert!(!enumeration("p0. zero"));
        assert!(!enumeration("p. and p1 without a dot"));
    }

    #[test]
    fn bold_numbers_as_s1s_regex() {
        assert!(bold_number("**12**"));
        assert!(bold_number("**Answer:**5"), "the digit may come after the closing **");
        assert!(bold_number("x **a** y 7"));
        assert!(!bold_number("**bold** text"), "no digit on the line");
        assert!(!bold_number("**bold** text\n7"), "the digit must be on the same line");
        assert!(!bold_number("**two words** 3"), "a space inside ends the run");
        assert!(!bold_number("**a]b** 3"), "] inside ends the run");
        assert!(bold_number("****3"), "empty bold, a digit ahead");
        // Python's \s also matches U+001F and U+00A0, which end the run.
        assert!(!bold_number("**a\u{1f}b** 3"));
        assert!(!bold_number("**a\u{a0}b** 3"));
        assert!(bold_number("**aéb** 3"), "other characters belong to the run");
    }
}
