//! Curation (S1_RECIPE.md §1): from a question pool to an s1K-style selection. So far: the
//! quality rules, the seeded s1 sampler and the paper's ablation selections.

pub mod quality;
pub mod select;

/// A question's key: the first 16 hex digits of sha256 of its text (s1's).
pub fn question_key(question: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(question.as_bytes());
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_sha256_prefixes() {
        // sha256("abc") = ba7816bf8f01cfea414140de5dae2223...
        assert_eq!(super::question_key("abc"), "ba7816bf8f01cfea");
    }
}
