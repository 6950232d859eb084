//! Reading rows of a dataset file, one JSON object per row, whatever the format: JSON Lines, a JSON
//! document (an array of objects, or an object holding one such array, e.g. `{"data": [...]}`) or
//! Parquet (Hugging Face `datasets` files, list and struct columns included). Rows stream through a
//! callback so a million-row file is never held whole; a row that is not an object is reported with
//! its line (or row number) and the rest are still read.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::{Map, Value};

/// A dataset file's format, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Json,
    Parquet,
}

impl Format {
    pub fn of(path: &Path) -> Result<Format, ReadError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        match ext.as_str() {
            "jsonl" | "ndjson" => Ok(Format::Jsonl),
            "json" => Ok(Format::Json),
            "parquet" | "pq" => Ok(Format::Parquet),
            _ => Err(ReadError::File {
                path: path.display().to_string(),
                message: format!("unknown format `.{ext}`: expected .jsonl, .json or .parquet"),
            }),
        }
    }
}

/// One row: its 1-based line (JSONL), element (JSON) or row number (Parquet), and its columns.
#[derive(Debug, Clone)]
pub struct RawRow {
    pub line: usize,
    pub columns: Map<String, Value>,
}

/// A row that could not be read; the others still are.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    pub line: usize,
    pub message: String,
}

/// A whole file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

fn file_error(path: &Path, message: impl std::fmt::Display) -> ReadError {
    ReadError::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// A row as read: a JSONL line still to be parsed (so that callers can parse many in
/// parallel), or a row of the other formats, parsed.
pub enum RowSource {
    Line { line: usize, text: String },
    Parsed(Result<RawRow, RowError>),
}

impl RowSource {
    /// The row's columns, or why it is not a row.
    pub fn parse(self) -> Result<RawRow, RowError> {
        let (line, text) = match self {
            RowSource::Parsed(row) => return row,
            RowSource::Line { line, text } => (line, text),
        };
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(columns)) => Ok(RawRow { line, columns }),
            Ok(other) => Err(RowError {
                line,
                message: format!("not a JSON object but {}", kind_of(&other)),
            }),
            Err(e) => Err(RowError {
                line,
                message: format!("not valid JSON ({e})"),
            }),
        }
    }
}

/// Calls `each` for every row of `path` in order. `each` returns false to stop early.
pub fn for_each_row(path: &Path, mut each: impl FnMut(Result<RawRow, RowError>) -> bool) -> Result<(), ReadError> {
    for_each_row_source(path, |src| each(src.parse()))
}

/// As [`for_each_row`], but JSONL lines come unparsed (see [`RowSource`]).
pub fn for_each_row_source(path: &Path, mut each_source: impl FnMut(RowSource) -> bool) -> Result<(), ReadError> {
    let mut each = |row: Result<RawRow, RowError>| each_source(RowSource::Parsed(row));
    match Format::of(path)? {
        Format::Jsonl => {
            let f = File::open(path).map_err(|e| file_error(path, e))?;
            let mut reader = BufReader::with_capacity(1 << 20, f);
            // Lines are read into one buffer and copied out at their exact size (growing a fresh
            // string per line reallocated it several times).
            let mut buf: Vec<u8> = Vec::new();
            let mut line = 0usize;
            loop {
                buf.clear();
                let n = reader
                    .read_until(b'\n', &mut buf)
                    .map_err(|e| file_error(path, format!("line {}: {e}", line + 1)))?;
                if n == 0 {
                    break;
                }
                line += 1;
                let bytes = buf.strip_suffix(b"\n").unwrap_or(&buf);
                let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
                let source = match std::str::from_utf8(bytes) {
                    Ok(text) if text.trim().is_empty() => continue,
                    Ok(text) => RowSource::Line {
                        line,
                        text: text.to_owned(),
                    },
                    Err(e) => RowSource::Parsed(Err(RowError {
                        line,
                        message: format!("not UTF-8 text ({e})"),
                    })),
                };
                if !each_source(source) {
                    break;
                }
            }
            Ok(())
        }
        Format::Json => {
            let f = File::open(path).map_err(|e| file_error(path, e))?;
            let doc: Value = serde_json::from_reader(BufReader::with_capacity(1 << 20, f))
                .map_err(|e| file_error(path, format!("not valid JSON ({e})")))?;
            let items = match doc {
                Value::Array(items) => items,
                Value::Object(mut obj) => {
                    let arrays: Vec<String> = obj
                        .iter()
                        .filter(|(_, v)| v.as_array().is_some_and(|a| a.iter().all(Value::is_object)))
                        .map(|(k, _)| k.clone())
                        .collect();
                    match arrays.as_slice() {
                        [one] => match obj.remove(one) {
                            Some(Value::Array(items)) => items,
                            _ => unreachable!("checked above"),
                        },
                        _ => columnar(path, obj)?,
                    }
                }
                other => {
                    return Err(file_error(
                        path,
                        format!("expected an array of rows, found {}", kind_of(&other)),
                    ))
                }
            };
            for (i, item) in items.into_iter().enumerate() {
                let row = match item {
                    Value::Object(columns) => Ok(RawRow { line: i + 1, columns }),
                    other => Err(RowError {
                        line: i + 1,
                        message: format!("element {} is not an object but {}", i + 1, kind_of(&other)),
                    }),
                };
                if !each(row) {
                    break;
                }
            }
            Ok(())
        }
        Format::Parquet => crate::data::parquet_io::for_each_row(path, each),
    }
}

/// A column-oriented JSON document (`{"question": [...], "solution": [...]}`, pandas' `to_json(orient
/// = "list")`) as rows; the columns must have one length.
fn columnar(path: &Path, obj: Map<String, Value>) -> Result<Vec<Value>, ReadError> {
    let mut n = None;
    for (k, v) in &obj {
        let len = v.as_array().map(|a| a.len()).ok_or_else(|| {
            file_error(
                path,
                format!("expected an array of rows or of column values; `{k}` is neither"),
            )
        })?;
        if *n.get_or_insert(len) != len {
            return Err(file_error(
                path,
                format!("columns have different lengths (`{k}` has {len})"),
            ));
        }
    }
    let n = n.unwrap_or(0);
    let mut rows: Vec<Map<String, Value>> = (0..n).map(|_| Map::new()).collect();
    for (k, v) in obj {
        if let Value::Array(vals) = v {
            for (row, val) in rows.iter_mut().zip(vals) {
                row.insert(k.clone(), val);
            }
        }
    }
    Ok(rows.into_iter().map(Value::Object).collect())
}

pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(name: &str, text: &str) -> (Vec<RawRow>, Vec<RowError>) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        let (mut ok, mut bad) = (vec![], vec![]);
        for_each_row(&p, |r| {
            match r {
                Ok(r) => ok.push(r),
                Err(e) => bad.push(e),
            }
            true
        })
        .unwrap();
        (ok, bad)
    }

    #[test]
    fn jsonl_reports_bad_lines_and_reads_the_rest() {
        let (ok, bad) = rows_of("a.jsonl", "{\"q\": 1}\n\n[1]\n{oops\n{\"q\": 2}\n");
        assert_eq!(ok.iter().map(|r| r.line).collect::<Vec<_>>(), vec![1, 5]);
        assert_eq!(bad.iter().map(|e| e.line).collect::<Vec<_>>(), vec![3, 4]);
        assert!(bad[0].message.contains("not a JSON object"), "{:?}", bad[0]);
    }

    #[test]
    fn jsonl_line_endings_and_a_last_line_without_one() {
        let (ok, bad) = rows_of("a.jsonl", "{\"q\": \"a\\r\"}\r\n \r\n{\"q\": 2}");
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(ok.iter().map(|r| r.line).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(ok[0].columns["q"], "a\r");
        assert_eq!(ok[1].columns["q"], 2);
    }

    #[test]
    fn jsonl_line_that_is_not_utf8_is_a_bad_row() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.jsonl");
        std::fs::write(&p, b"{\"q\": 1}\n{\"q\": \"\xff\"}\n{\"q\": 3}\n").unwrap();
        let (mut ok, mut bad) = (vec![], vec![]);
        for_each_row(&p, |r| {
            match r {
                Ok(r) => ok.push(r.line),
                Err(e) => bad.push(e),
            }
            true
        })
        .unwrap();
        assert_eq!(ok, vec![1, 3]);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 2);
        assert!(bad[0].message.contains("UTF-8"), "{:?}", bad[0]);
    }

    #[test]
    fn json_documents_of_each_shape() {
        assert_eq!(rows_of("a.json", "[{\"q\": 1}, {\"q\": 2}]").0.len(), 2);
        assert_eq!(rows_of("a.json", "{\"data\": [{\"q\": 1}], \"version\": 3}").0.len(), 1);
        let (ok, _) = rows_of("a.json", "{\"q\": [\"a\", \"b\"], \"s\": [\"x\", \"y\"]}");
        assert_eq!(ok[1].columns["s"], "y");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.json");
        std::fs::write(&p, "{\"q\": [1, 2], \"s\": [1]}").unwrap();
        let e = for_each_row(&p, |_| true).unwrap_err().to_string();
        assert!(e.contains("b.json") && e.contains("different lengths"), "{e}");
    }

    #[test]
    fn unknown_extension_is_named() {
        let e = Format::of(Path::new("x/pool.csv")).unwrap_err().to_string();
        assert!(e.contains("pool.csv") && e.contains(".parquet"), "{e}");
    }
}
