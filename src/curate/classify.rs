//! Domains (S1_RECIPE.md §1 step 6): the 61 top-level Mathematics Subject Classification codes of
//! s1's `msc.json`, s1's classification prompt built from that file's per-domain blocks
//! (data/featurization.py, `do_domain_classification`), and the reading of a reply: s1's (its
//! last two characters are the code) or a lenient one (the last valid code anywhere).

use std::sync::OnceLock;

/// One MSC domain.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Domain {
    pub code: String,
    pub title: String,
    #[serde(default)]
    pub descriptions: Vec<String>,
    /// The domain's block of the classification prompt.
    pub prompt: String,
}

/// s1's list, shipped in assets/ (Apache-2.0, see assets/LICENSE-NOTE.md).
#[allow(clippy::expect_used, reason = "a compiled-in asset that a unit test parses")]
pub fn domains() -> &'static [Domain] {
    static D: OnceLock<Vec<Domain>> = OnceLock::new();
    D.get_or_init(|| {
        serde_json::from_str(include_str!("../../assets/curate/msc.json"))
            .expect("assets/curate/msc.json parses (unit test)")
    })
}

/// The title of a code, if it is one of the 61.
pub fn title(code: &str) -> Option<&'static str> {
    domains().iter().find(|d| d.code == code).map(|d| d.title.as_str())
}

/// s1's system message for domain classification (data/featurization.py).
pub const SYSTEM: &str = "You are a helpful assistant that classifies questions into different subjects based on \
the provided classification rubrics. You will be given a question and a list of subjects. You need to classify the \
question into one of the subjects. If the question has multiple subjects, you should classify the question into the \
most relevant subject. Explain your reasoning, and end your response on a new line with two-digit code of the \
subject that the question belongs to.";

/// s1's user message for a question: the question, then the 61 domains' blocks of msc.json
/// joined by blank lines (data/featurization.py, `_process_question`).
pub fn prompt(question: &str) -> String {
    let blocks: Vec<&str> = domains().iter().map(|d| d.prompt.as_str()).collect();
    format!(
        "## Question\n{question}\n\n## Classification rubrics\n{}",
        blocks.join("\n\n")
    )
}

/// A reply as s1 reads it (featurization.py: `completion[-2:].isdigit()`, then msc.json's code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S1Reply {
    /// Its last two characters are one of the 61 codes.
    Code(String),
    /// Its last two characters are digits but no MSC code: s1 keeps no domain (its lookup fails).
    Unknown(String),
    /// Its last two characters are not two digits: s1 asks again.
    AskAgain,
}

/// Reads a reply as s1 does: the code is its last two characters, nothing else (`Code: 05.` or
/// `05\n` are asked again). Non-ASCII digits, which Python's `isdigit` also takes, are asked
/// again here (no MSC code has them, so s1 would keep no domain).
pub fn read_s1(reply: &str) -> S1Reply {
    let mut last = reply.chars().rev();
    match (last.next(), last.next()) {
        (Some(b), Some(a)) if a.is_ascii_digit() && b.is_ascii_digit() => {
            let code: String = [a, b].iter().collect();
            if title(&code).is_some() {
                S1Reply::Code(code)
            } else {
                S1Reply::Unknown(code)
            }
        }
        _ => S1Reply::AskAgain,
    }
}

/// The domain code of a reply: its last two-digit number that is one of the 61 codes (a bare
/// code, `Code: 05`, `**05**`, `05 Combinatorics` all parse). None when it names no valid code.
pub fn parse_code(reply: &str) -> Option<String> {
    let bytes = reply.as_bytes();
    let mut end = bytes.len();
    while end >= 2 {
        let i = end - 2;
        let is_code = bytes[i].is_ascii_digit()
            && bytes[i + 1].is_ascii_digit()
            && (i == 0 || !bytes[i - 1].is_ascii_digit())
            && (i + 2 == bytes.len() || !bytes[i + 2].is_ascii_digit());
        if is_code {
            let code = &reply[i..i + 2];
            if title(code).is_some() {
                return Some(code.to_string());
            }
        }
        end -= 1;
    }
    None
}

/// A rough MSC code for a source's own subject label (MATH's `type`, OlympiadBench's
/// `subfield`), for curating without a classifier model. Not s1's method (s1 asked an LLM); the
/// origin of these labels says `subject`.
pub fn code_for_subject(subject: &str) -> Option<&'static str> {
    Some(match subject.trim().to_ascii_lowercase().as_str() {
        "algebra" => "08",
        "intermediate algebra" => "12",
        "prealgebra" => "97",
        "precalculus" => "26",
        "number theory" => "11",
        "geometry" => "51",
        "counting & probability" | "counting and probability" => "05",
        "combinatorics" => "05",
        "probability" => "60",
        "calculus" => "26",
        "linear algebra" => "15",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixty_one_domains_from_s1() {
        let d = domains();
        assert_eq!(d.len(), 61);
        assert_eq!(d[0].code, "03");
        assert_eq!(title("05"), Some("Combinatorics"));
        assert!(prompt("What is 1+1?").contains("* Code: 97"));
    }

    #[test]
    fn s1s_prompt_and_reading() {
        let p = prompt("What is 1+1?");
        assert!(p.starts_with("## Question\nWhat is 1+1?\n\n## Classification rubrics\n"));
        assert!(p.ends_with(&domains()[60].prompt));
        assert!(SYSTEM.ends_with("two-digit code of the subject that the question belongs to."));
        assert_eq!(read_s1("It is about counting.\n05"), S1Reply::Code("05".into()));
        assert_eq!(read_s1("05"), S1Reply::Code("05".into()));
        // s1 takes the last two characters and nothing else.
        assert_eq!(read_s1("Number theory, code **11**."), S1Reply::AskAgain);
        assert_eq!(read_s1("Combinatorics: 05\n"), S1Reply::AskAgain);
        assert_eq!(read_s1("5"), S1Reply::AskAgain);
        assert_eq!(read_s1(""), S1Reply::AskAgain);
        assert_eq!(read_s1("The year 2024"), S1Reply::Unknown("24".into()));
        assert_eq!(read_s1("code 99"), S1Reply::Unknown("99".into()));
    }

    #[test]
    fn codes_are_parsed_from_the_end() {
        assert_eq!(parse_code("It is about counting.\n05").as_deref(), Some("05"));
        assert_eq!(parse_code("Number theory, code **11**.").as_deref(), Some("11"));
        assert_eq!(parse_code("Not 05 but 60").as_deref(), Some("60"));
        // 99 and 2024 are not codes; the last valid one counts.
        assert_eq!(parse_code("Geometry 51, year 2024, 99").as_deref(), Some("51"));
        assert_eq!(parse_code("no code"), None);
        assert_eq!(parse_code("5"), None);
    }
}
