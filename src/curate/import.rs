//! Importing a dataset file into the workspace: rows are read in chunks, turned into records in
//! parallel, and inserted in one transaction (a killed import leaves nothing half-done; rerun it).
//! Exact duplicate questions (same key) are merged: the first row is kept and `copies` counts the
//! rest. A malformed row is recorded with its line and the others are imported. The same file
//! (same path, size and modification time) is not imported twice.

use std::path::Path;

use rayon::prelude::*;
use rusqlite::params;

use crate::data::read::{for_each_row, RawRow, RowError};
use crate::data::record::{apply_overrides, detect, to_record, ColumnMap, Record, Shape};
use crate::workspace::{now, Workspace};

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `field=column` overrides of the detected mapping.
    pub mapping: Option<String>,
    /// The source name when the file has no source column (default: the file's stem).
    pub source: Option<String>,
    /// Import even if this file was imported before.
    pub again: bool,
}

#[derive(Debug, Clone)]
pub struct ImportReport {
    pub file: String,
    pub shape: Shape,
    pub mapping: ColumnMap,
    /// Rows read (malformed included).
    pub rows: usize,
    /// New questions.
    pub added: usize,
    /// Rows whose question was already in the pool (this file or an earlier one).
    pub duplicates: usize,
    pub malformed: usize,
    /// The first malformed rows (line, problem).
    pub errors: Vec<RowError>,
    /// Traces and domains that came with the rows.
    pub traces: usize,
    pub domains: usize,
}

const CHUNK: usize = 8192;
const KEEP_ERRORS: usize = 50;

fn fingerprint(path: &Path) -> String {
    let meta = std::fs::metadata(path).ok();
    let size = meta.as_ref().map(|m| m.len()).unwrap_or(0);
    let mtime = meta
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    format!("{}|{size}|{mtime}", abs.display())
}

/// Imports `path` into the workspace. `progress` gets the rows read so far.
pub fn import(
    ws: &mut Workspace,
    path: &Path,
    opts: &ImportOptions,
    mut progress: impl FnMut(usize),
) -> anyhow::Result<ImportReport> {
    let name = path.display().to_string();
    if !path.is_file() {
        anyhow::bail!("{name}: no such file");
    }
    let fp = fingerprint(path);
    if !opts.again {
        let seen: Option<i64> = ws
            .conn
            .query_row("SELECT id FROM imports WHERE file = ?1", [&fp], |r| r.get(0))
            .ok();
        if let Some(id) = seen {
            anyhow::bail!(
                "{name}: already imported into this workspace (import #{id}); pass --again to import it anyway"
            );
        }
    }
    let default_source = opts
        .source
        .clone()
        .unwrap_or_else(|| path.file_stem().and_then(|s| s.to_str()).unwrap_or("pool").to_string());

    let tx = ws.conn.transaction()?;
    tx.execute(
        "INSERT INTO imports (file, shape, mapping, rows, added, duplicates, malformed, at) VALUES (?1, '', '', 0, 0, 0, 0, ?2)",
        params![fp, now()],
    )?;
    let import_id = tx.last_insert_rowid();
    let mut report = ImportReport {
        file: name.clone(),
        shape: Shape::Generic,
        mapping: ColumnMap::default(),
        rows: 0,
        added: 0,
        duplicates: 0,
        malformed: 0,
        errors: Vec::new(),
        traces: 0,
        domains: 0,
    };
    let mut mapping: Option<(Shape, ColumnMap)> = None;
    let mut chunk: Vec<RawRow> = Vec::with_capacity(CHUNK);
    let mut failure: Option<anyhow::Error> = None;
    {
        let mut ins_q = tx.prepare(
            "INSERT OR IGNORE INTO questions (key, question, solution, answer, source, cot_type, metadata, import_id, line)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        let mut dup_q = tx.prepare("UPDATE questions SET copies = copies + 1 WHERE key = ?1")?;
        let mut ins_t =
            tx.prepare("INSERT OR IGNORE INTO traces (key, trace, attempt, origin, at) VALUES (?1, ?2, ?3, ?4, ?5)")?;
        let mut ins_d = tx.prepare("INSERT OR IGNORE INTO domains (key, code, origin, at) VALUES (?1, ?2, ?3, ?4)")?;
        let mut ins_e = tx.prepare("INSERT INTO import_errors (import_id, line, message) VALUES (?1, ?2, ?3)")?;

        let mut record_error = |report: &mut ImportReport, e: RowError| -> rusqlite::Result<()> {
            report.malformed += 1;
            ins_e.execute(params![import_id, e.line as i64, e.message])?;
            if report.errors.len() < KEEP_ERRORS {
                report.errors.push(e);
            }
            Ok(())
        };

        let mut flush = |chunk: &mut Vec<RawRow>,
                         map: &(Shape, ColumnMap),
                         report: &mut ImportReport,
                         record_error: &mut dyn FnMut(&mut ImportReport, RowError) -> rusqlite::Result<()>|
         -> anyhow::Result<()> {
            let (shape, cols) = map;
            let built: Vec<(usize, Result<Record, String>)> = chunk
                .par_iter()
                .map(|r| (r.line, to_record(&r.columns, cols, *shape, &default_source)))
                .collect();
            chunk.clear();
            let now = now();
            for (line, rec) in built {
                match rec {
                    Err(message) => record_error(report, RowError { line, message })?,
                    Ok(r) => {
                        let added = ins_q.execute(params![
                            r.key,
                            r.question,
                            r.solution,
                            r.answer,
                            r.source,
                            r.cot_type,
                            r.metadata,
                            import_id,
                            line as i64
                        ])?;
                        if added == 0 {
                            report.duplicates += 1;
                            dup_q.execute([&r.key])?;
                            continue;
                        }
                        report.added += 1;
                        if let Some(t) = &r.trace {
                            let col = cols.trace.as_deref().unwrap_or("");
                            report.traces +=
                                ins_t.execute(params![r.key, t, r.attempt, format!("column:{col}"), now])?;
                        }
                        if let Some(d) = r.domain.as_deref().and_then(crate::curate::classify::parse_code) {
                            report.domains += ins_d.execute(params![r.key, d, "column", now])?;
                        }
                    }
                }
            }
            Ok(())
        };

        let res = for_each_row(path, |row| {
            report.rows += 1;
            let step = || -> anyhow::Result<()> {
                match row {
                    Err(e) => record_error(&mut report, e)?,
                    Ok(row) => {
                        if mapping.is_none() {
                            let (shape, detected) = detect(&row.columns);
                            let mut cols = detected.unwrap_or_default();
                            if let Some(o) = &opts.mapping {
                                apply_overrides(&mut cols, o).map_err(|e| anyhow::anyhow!("{name}: mapping: {e}"))?;
                            }
                            if cols.question.is_empty() {
                                let mut seen: Vec<&String> = row.columns.keys().collect();
                                seen.sort();
                                anyhow::bail!(
                                    "{name}: no question column found among {:?}; name it with --map question=COLUMN",
                                    seen
                                );
                            }
                            mapping = Some((shape, cols));
                        }
                        chunk.push(row);
                        if chunk.len() >= CHUNK {
                            flush(
                                &mut chunk,
                                mapping.as_ref().expect("set above"),
                                &mut report,
                                &mut record_error,
                            )?;
                        }
                    }
                }
                Ok(())
            };
            match step() {
                Ok(()) => {
                    if report.rows % CHUNK == 0 {
                        progress(report.rows);
                    }
                    true
                }
                Err(e) => {
                    failure = Some(e);
                    false
                }
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        res?;
        if let Some(map) = &mapping {
            flush(&mut chunk, map, &mut report, &mut record_error)?;
        }
    }
    progress(report.rows);
    let (shape, cols) = mapping.unwrap_or((Shape::Generic, ColumnMap::default()));
    report.shape = shape;
    report.mapping = cols;
    tx.execute(
        "UPDATE imports SET shape = ?2, mapping = ?3, rows = ?4, added = ?5, duplicates = ?6, malformed = ?7 WHERE id = ?1",
        params![
            import_id,
            shape.name(),
            serde_json::to_string(&report.mapping)?,
            report.rows as i64,
            report.added as i64,
            report.duplicates as i64,
            report.malformed as i64
        ],
    )?;
    tx.commit()?;
    Ok(report)
}
