//! Export of a selection in the s1K schema (`solution, question, cot_type, source_type, metadata,
//! cot, thinking_trajectories, attempt`), as JSONL and/or Parquet; the trainer reads either
//! directly, and `datasets` loads the Parquet (scripts/check_export_datasets.py).

use std::io::Write;
use std::path::Path;

use crate::data::parquet_io::{Column, TableWriter};
use crate::workspace::Workspace;

/// One exported row.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct S1kRow {
    pub solution: Option<String>,
    pub question: String,
    pub cot_type: String,
    pub source_type: String,
    pub metadata: String,
    pub cot: Option<String>,
    pub thinking_trajectories: Vec<String>,
    pub attempt: Option<String>,
}

pub const COLUMNS: [(&str, bool); 8] = [
    ("solution", false),
    ("question", false),
    ("cot_type", false),
    ("source_type", false),
    ("metadata", false),
    ("cot", false),
    ("thinking_trajectories", true),
    ("attempt", false),
];

/// The rows of a list of keys, in that order. A key without a trace is an error (a selection only
/// holds questions with traces; a hand-edited database might not).
pub fn rows(ws: &Workspace, keys: &[String]) -> anyhow::Result<Vec<S1kRow>> {
    let mut st = ws.conn.prepare(
        "SELECT solution, question, cot_type, source, metadata, trace, trace_attempt FROM questions WHERE key = ?1",
    )?;
    keys.iter()
        .map(|k| {
            let row = st
                .query_row([k], |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, Option<String>>(6)?,
                    ))
                })
                .map_err(|_| anyhow::anyhow!("question {k} is not in the workspace"))?;
            let trace = row.5.ok_or_else(|| anyhow::anyhow!("question {k} has no trace"))?;
            Ok(S1kRow {
                solution: row.0,
                question: row.1,
                cot_type: row.2,
                source_type: row.3,
                metadata: row.4,
                cot: None,
                thinking_trajectories: vec![trace],
                attempt: row.6,
            })
        })
        .collect()
}

pub fn write_jsonl(path: &Path, rows: &[S1kRow]) -> anyhow::Result<()> {
    let tmp = path.with_extension("jsonl.partial");
    {
        let f = std::fs::File::create(&tmp).map_err(|e| anyhow::anyhow!("{}: {e}", tmp.display()))?;
        let mut w = std::io::BufWriter::new(f);
        for r in rows {
            serde_json::to_writer(&mut w, r)?;
            w.write_all(b"\n")?;
        }
        w.flush()?;
    }
    std::fs::rename(&tmp, path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(())
}

pub fn write_parquet(path: &Path, rows: &[S1kRow]) -> anyhow::Result<()> {
    let tmp = path.with_extension("parquet.partial");
    let mut w = TableWriter::create(&tmp, &COLUMNS)?;
    for chunk in rows.chunks(1024) {
        let text = |f: &dyn Fn(&S1kRow) -> Option<String>| Column::Text(chunk.iter().map(f).collect());
        w.write(vec![
            text(&|r| r.solution.clone()),
            text(&|r| Some(r.question.clone())),
            text(&|r| Some(r.cot_type.clone())),
            text(&|r| Some(r.source_type.clone())),
            text(&|r| Some(r.metadata.clone())),
            text(&|r| r.cot.clone()),
            Column::TextList(chunk.iter().map(|r| r.thinking_trajectories.clone()).collect()),
            text(&|r| r.attempt.clone()),
        ])?;
    }
    w.finish()?;
    std::fs::rename(&tmp, path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(())
}
