//! Parquet in and out. Reading goes through parquet's row API, which turns any column (strings,
//! numbers, lists, structs, maps) into JSON, so a Hugging Face `datasets` file of any schema reads
//! like a JSONL file. Writing produces the s1K schema with Arrow (string columns and the
//! `thinking_trajectories` list column), Snappy-compressed as `datasets` writes it.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::Value;

use super::read::{kind_of, RawRow, ReadError, RowError};

fn file_error(path: &Path, message: impl std::fmt::Display) -> ReadError {
    ReadError::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Calls `each` for every row of a Parquet file (row numbers from 1).
pub fn for_each_row(path: &Path, mut each: impl FnMut(Result<RawRow, RowError>) -> bool) -> Result<(), ReadError> {
    let f = File::open(path).map_err(|e| file_error(path, e))?;
    let reader = SerializedFileReader::new(f).map_err(|e| file_error(path, format!("not a Parquet file ({e})")))?;
    let rows = reader.get_row_iter(None).map_err(|e| file_error(path, e))?;
    for (i, row) in rows.enumerate() {
        let item = match row {
            Ok(row) => match row.to_json_value() {
                Value::Object(columns) => Ok(RawRow { line: i + 1, columns }),
                other => Err(RowError {
                    line: i + 1,
                    message: format!("row is {} instead of a record", kind_of(&other)),
                }),
            },
            Err(e) => Err(RowError {
                line: i + 1,
                message: format!("unreadable row ({e})"),
            }),
        };
        if !each(item) {
            break;
        }
    }
    Ok(())
}

/// A column of an output file: text, or a list of texts.
pub enum Column {
    Text(Vec<Option<String>>),
    TextList(Vec<Vec<String>>),
}

/// Writes a table of named columns (all the same length) to a Parquet file, in row groups of
/// `group` rows. Used by the curation export (s1K schema).
pub struct TableWriter {
    writer: ArrowWriter<File>,
    schema: Arc<Schema>,
    path: String,
}

impl TableWriter {
    /// `columns`: names, and whether each is a list of texts.
    pub fn create(path: &Path, columns: &[(&str, bool)]) -> anyhow::Result<Self> {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(name, list)| {
                if *list {
                    Field::new(
                        *name,
                        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                        true,
                    )
                } else {
                    Field::new(*name, DataType::Utf8, true)
                }
            })
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let file = File::create(path).map_err(|e| anyhow::anyhow!("{}: cannot create ({e})", path.display()))?;
        let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(Self {
            writer,
            schema,
            path: path.display().to_string(),
        })
    }

    /// Appends rows given column by column, in the order of `create`.
    pub fn write(&mut self, columns: Vec<Column>) -> anyhow::Result<()> {
        let arrays: Vec<ArrayRef> = columns
            .into_iter()
            .map(|c| -> ArrayRef {
                match c {
                    Column::Text(v) => Arc::new(arrow_array::StringArray::from(v)),
                    Column::TextList(v) => {
                        let mut b = ListBuilder::new(StringBuilder::new());
                        for items in v {
                            for s in items {
                                b.values().append_value(s);
                            }
                            b.append(true);
                        }
                        Arc::new(b.finish())
                    }
                }
            })
            .collect();
        let batch =
            RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| anyhow::anyhow!("{}: {e}", self.path))?;
        self.writer
            .write(&batch)
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.path))?;
        Ok(())
    }

    pub fn finish(self) -> anyhow::Result<()> {
        let path = self.path;
        self.writer.close().map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What we write, we read back: strings, nulls and list columns.
    #[test]
    fn round_trip_with_a_list_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.parquet");
        let mut w = TableWriter::create(&p, &[("question", false), ("thinking_trajectories", true)]).unwrap();
        w.write(vec![
            Column::Text(vec![Some("q1".into()), None]),
            Column::TextList(vec![vec!["t1".into()], vec![]]),
        ])
        .unwrap();
        w.write(vec![
            Column::Text(vec![Some("q3".into())]),
            Column::TextList(vec![vec!["a".into(), "b".into()]]),
        ])
        .unwrap();
        w.finish().unwrap();
        let mut rows = vec![];
        for_each_row(&p, |r| {
            rows.push(r.unwrap());
            true
        })
        .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].columns["question"], "q1");
        assert_eq!(rows[0].columns["thinking_trajectories"], serde_json::json!(["t1"]));
        assert!(rows[1].columns["question"].is_null());
        assert_eq!(rows[2].columns["thinking_trajectories"], serde_json::json!(["a", "b"]));
        assert_eq!(rows[2].line, 3);
    }

    #[test]
    fn a_file_that_is_not_parquet_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.parquet");
        std::fs::write(&p, "hello").unwrap();
        let e = for_each_row(&p, |_| true).unwrap_err().to_string();
        assert!(e.contains("bad.parquet") && e.contains("not a Parquet file"), "{e}");
    }
}
