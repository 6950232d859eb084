//! Reading s1's stored metadata: a Python literal, `str(dict)` of the source row (collect_data.py
//! and add_aime.py write `metadata = str(example)`), e.g.
//! `{'ID': '1983-1', 'Year': 1983, 'Problem Number': 1, 'Part': None}`. This parses such a
//! literal (dicts, lists, tuples, quoted strings with their escapes, numbers, None/True/False)
//! into JSON values; anything else is an error naming the offset.

use serde_json::{Map, Number, Value};

/// Parses a Python literal as printed by `str()`/`repr()`.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
        depth: 0,
    };
    let v = p.value()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("unexpected text at offset {}", p.i));
    }
    Ok(v)
}

/// Metadata as JSON (the studio's own imports) or as a Python literal (s1's).
pub fn metadata(text: &str) -> Option<Value> {
    serde_json::from_str(text).ok().or_else(|| parse(text).ok())
}

/// Dicts and lists nested deeper than this are refused (the parser recurses per level).
pub const MAX_DEPTH: usize = 128;

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at offset {}", self.i))
    }

    fn value(&mut self) -> Result<Value, String> {
        self.ws();
        if matches!(self.peek(), Some(b'{' | b'[' | b'(')) {
            if self.depth >= MAX_DEPTH {
                return self.err(&format!("nesting deeper than {MAX_DEPTH}"));
            }
            self.depth += 1;
            let v = match self.peek() {
                Some(b'{') => self.dict(),
                Some(b'[') => self.seq(b']'),
                _ => self.seq(b')'),
            };
            self.depth -= 1;
            return v;
        }
        match self.peek() {
            Some(b'{') => self.dict(),
            Some(b'[') => self.seq(b']'),
            Some(b'(') => self.seq(b')'),
            Some(b'\'') | Some(b'"') => self.string().map(Value::String),
            Some(c) if c == b'-' || c == b'+' || c == b'.' || c.is_ascii_digit() => self.number(),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.i;
                while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
                    self.i += 1;
                }
                match &self.text[start..self.i] {
                    "None" => Ok(Value::Null),
                    "True" => Ok(Value::Bool(true)),
                    "False" => Ok(Value::Bool(false)),
                    "nan" | "inf" => Ok(Value::Null),
                    w => Err(format!("unknown name `{w}` at offset {start}")),
                }
            }
            _ => self.err("expected a value"),
        }
    }

    fn dict(&mut self) -> Result<Value, String> {
        self.i += 1;
        let mut m = Map::new();
        loop {
            self.ws();
            if self.peek() == Some(b'}') {
                self.i += 1;
                return Ok(Value::Object(m));
            }
            let key = match self.value()? {
                Value::String(s) => s,
                other => other.to_string(),
            };
            self.ws();
            if self.peek() != Some(b':') {
                return self.err("expected `:`");
            }
            self.i += 1;
            let v = self.value()?;
            m.insert(key, v);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {}
                _ => return self.err("expected `,` or `}`"),
            }
        }
    }

    fn seq(&mut self, close: u8) -> Result<Value, String> {
        self.i += 1;
        let mut v = Vec::new();
        loop {
            self.ws();
            if self.peek() == Some(close) {
                self.i += 1;
                return Ok(Value::Array(v));
            }
            v.push(self.value()?);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(c) if c == close => {}
                _ => return self.err("expected `,` or the closing bracket"),
            }
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E' | b'_'))
        {
            self.i += 1;
        }
        let t: String = self.text[start..self.i].chars().filter(|c| *c != '_').collect();
        if let Ok(n) = t.parse::<i64>() {
            return Ok(Value::Number(n.into()));
        }
        match t.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Ok(Value::Number(n)),
            None => Err(format!("bad number `{t}` at offset {start}")),
        }
    }

    /// A quoted string with Python's escapes (`\n`, `\t`, `\\`, `\'`, `\xNN`, `\uNNNN`,
    /// `\UNNNNNNNN`, ...).
    fn string(&mut self) -> Result<String, String> {
        let quote = self.s[self.i];
        self.i += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.i..];
            let Some(c) = rest.chars().next() else {
                return self.err("unterminated string");
            };
            self.i += c.len_utf8();
            if c as u32 == quote as u32 {
                return Ok(out);
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some(e) = self.text[self.i..].chars().next() else {
                return self.err("unterminated escape");
            };
            self.i += e.len_utf8();
            let hex = |p: &mut Self, n: usize| -> Result<char, String> {
                let h = p
                    .text
                    .get(p.i..p.i + n)
                    .ok_or_else(|| format!("short escape at offset {}", p.i))?;
                p.i += n;
                u32::from_str_radix(h, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| format!("bad escape `{h}` at offset {}", p.i - n))
            };
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0' => out.push('\0'),
                'a' => out.push('\u{7}'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'v' => out.push('\u{b}'),
                'x' => out.push(hex(self, 2)?),
                'u' => out.push(hex(self, 4)?),
                'U' => out.push(hex(self, 8)?),
                '\n' => {}
                '\\' | '\'' | '"' => out.push(e),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = parse(&deep).unwrap_err();
        assert!(e.contains("nesting deeper than 128"), "{e}");
        let ok = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn s1_metadata_strings() {
        let v = parse("{'ID': '2023-II-15', 'Year': 2023, 'Problem Number': 15, 'Part': 'II'}").unwrap();
        assert_eq!(
            v,
            json!({"ID": "2023-II-15", "Year": 2023, "Problem Number": 15, "Part": "II"})
        );
        let v = parse(r#"{'a': "it's", 'b': 'x\'y\n\\', 'c': [1, 2.5, None, True], 'd': (1,), 'e': {}}"#).unwrap();
        assert_eq!(
            v,
            json!({"a": "it's", "b": "x'y\n\\", "c": [1, 2.5, null, true], "d": [1], "e": {}})
        );
        assert_eq!(parse("{'u': '\\u00e9\\x41'}").unwrap(), json!({"u": "éA"}));
        assert!(parse("{'a': 1").unwrap_err().contains("offset"));
        assert!(parse("{'a': foo}").unwrap_err().contains("foo"));
        assert_eq!(metadata(r#"{"year": 2023}"#), Some(json!({"year": 2023})));
        assert_eq!(metadata("not a literal"), None);
    }
}
