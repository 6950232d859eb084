//! Python's string rules that s1's code relies on, where Rust's differ: `str.isspace()` (also
//! regex `\s`, `str.split()` and `str.strip()`) counts the information separators U+001C..U+001F
//! as whitespace besides Unicode White_Space. At the bottom of the layers: data, grade, curate
//! and train all read text the way s1's Python did.

/// Whether Python's `str.isspace()` accepts `c`.
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()` with no argument.
pub fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

#[cfg(test)]
mod tests {
    #[test]
    fn separators_are_python_whitespace() {
        assert!(super::is_space('\u{1f}') && super::is_space('\u{a0}') && !super::is_space('x'));
        assert_eq!(super::strip("\u{1c} a b\n\u{1f}"), "a b");
    }
}
