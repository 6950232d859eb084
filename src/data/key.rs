//! Question keys: the first 16 hex digits of sha256 of a question's text, as s1 keys its rows.
//! Every workspace table, decontamination hit and selection names a question by this key.

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
