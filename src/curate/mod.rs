//! Curation (S1_RECIPE.md §1): from a question pool to an s1K-style selection, over a workspace
//! (src/workspace): import, the quality rules, decontamination, traces and their lengths,
//! difficulty attempts, domains, the seeded s1 sampler and its ablations, export and the funnel.

pub mod annotate;
pub mod backend;
pub mod classify;
pub mod decontam;
pub mod export;
pub mod funnel;
pub mod import;
pub mod judge;
pub mod pyrepr;
pub mod quality;
pub mod rules;
pub mod scan;
pub mod select;
pub mod selection;
pub mod snapshot;
pub mod sources;

/// A question's key: the first 16 hex digits of sha256 of its text (s1's).
pub fn question_key(question: &str) -> String {
    use sha2::{Digest, Sha256};
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let d = Sha256::digest(question.as_bytes());
    let mut key = String::with_capacity(16);
    for b in &d[..8] {
        key.push(HEX[(b >> 4) as usize] as char);
        key.push(HEX[(b & 15) as usize] as char);
    }
    key
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_sha256_prefixes() {
        // sha256("abc") = ba7816bf8f01cfea414140de5dae2223...
        assert_eq!(super::question_key("abc"), "ba7816bf8f01cfea");
        // sha256("") = e3b0c44298fc1c14...
        assert_eq!(super::question_key(""), "e3b0c44298fc1c14");
    }
}
