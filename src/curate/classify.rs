//! Domains (S1_RECIPE.md §1 step 6): the 61 top-level Mathematics Subject Classification codes of
//! s1's `msc.json`, a classification prompt built from that file's per-domain blocks, and the
//! parse of a reply, which must end in a two-digit code.

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

/// The classification prompt for a question.
pub fn prompt(question: &str) -> String {
    let blocks: Vec<&str> = domains().iter().map(|d| d.prompt.as_str()).collect();
    format!(
        "Classify the following problem into one of the domains of the Mathematics Subject \
         Classification (MSC) listed below.\n\n{}\n\n# Problem\n{question}\n\nExplain your choice \
         briefly, then end your answer with the two-digit code of the domain, alone on the last line.",
        blocks.join("\n\n")
    )
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
