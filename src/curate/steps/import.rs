//! Importing a dataset file into the workspace: rows are read in chunks, turned into records in
//! parallel, and inserted in one transaction (a killed import leaves nothing half-done; rerun it).
//! Exact duplicate questions (same key) are merged: the first row is kept and `copies` counts the
//! rest. A malformed row is recorded with its line and the others are imported. The same file
//! (same path, size and modification time) is not imported twice.

use std::path::Path;

use rayon::prelude::*;
use rusqlite::params;

use crate::data::read::{for_each_row_source, RowError, RowSource};
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
    /// Journal the import in rollback mode rather than WAL when no other connection has the
    /// workspace open (see [`RollbackJournal`]): faster, but other connections wait for the
    /// import to finish instead of reading alongside it. For the command line; the GUI keeps WAL
    /// so that the view can read the pool during an import.
    pub rollback_journal: bool,
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

/// While alive, the workspace journals in rollback mode instead of WAL, when this connection is
/// the only one open (else SQLite keeps WAL and nothing changes). An import appends most of its
/// pages, which a rollback journal need not copy, while WAL writes every page twice (to the log,
/// then to the database at the checkpoint): a 1M-row import 7.35 s -> 6.56 s. The transaction
/// stays atomic either way (a killed import is rolled back from the journal on the next open).
struct RollbackJournal<'a> {
    conn: Option<&'a rusqlite::Connection>,
}

impl<'a> RollbackJournal<'a> {
    fn enter(conn: &'a rusqlite::Connection) -> Self {
        let mode: Option<String> = conn.query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0)).ok();
        let switched = mode.is_some_and(|m| m.eq_ignore_ascii_case("delete"));
        Self {
            conn: switched.then_some(conn),
        }
    }
}

impl Drop for RollbackJournal<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn {
            // Back to WAL (Workspace::open also sets it, should this fail).
            let _ = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0));
        }
    }
}

/// The import that took in this very file (same path, size and modification time), if one did.
pub fn imported_before(ws: &Workspace, path: &Path) -> Option<i64> {
    ws.conn
        .query_row("SELECT id FROM imports WHERE file = ?1", [&fingerprint(path)], |r| {
            r.get(0)
        })
        .ok()
}

/// The sample pool compiled in: (file name, contents).
pub const SAMPLE_POOL: [(&str, &str); 3] = [
    (
        "aime_1983_2023.jsonl",
        include_str!("../../../assets/curate/pool/aime_1983_2023.jsonl"),
    ),
    (
        "olympiadbench_en_comp_675.jsonl",
        include_str!("../../../assets/curate/pool/olympiadbench_en_comp_675.jsonl"),
    ),
    (
        "math_test_minus_math500.jsonl",
        include_str!("../../../assets/curate/pool/math_test_minus_math500.jsonl"),
    ),
];

/// What became of one file of an import step.
#[derive(Debug, Clone)]
pub enum Imported {
    /// Imported: the report, its column mapping as JSON, and the seconds it took.
    File {
        report: Box<ImportReport>,
        mapping: String,
        seconds: f64,
    },
    /// Skipped: this file was imported before (the sample pool, or one of several files; a
    /// single file imported before is an error).
    Before(String),
    /// Not imported (nothing of it is in the pool): the file and what is wrong with it.
    Failed { file: String, problem: String },
}

impl Imported {
    /// "FILE: PROBLEM" for a file that was not imported.
    pub fn failure(&self) -> Option<String> {
        match self {
            Imported::Failed { file, problem } => Some(format!("{file}: {problem}")),
            _ => None,
        }
    }
}

/// Imports `files` one after the other, timing each. A file that cannot be imported (malformed,
/// missing, no question column, a single file imported before) is rolled back alone and listed
/// as [`Imported::Failed`]; the files after it are still imported. Of several files, those
/// imported before are skipped with a note (without `--again`), so rerunning an import that was
/// stopped during a later file imports the rest and copies nothing twice. Rows read so far (over
/// all the files) go to `progress`.
pub fn import_files(
    ws: &mut Workspace,
    files: &[std::path::PathBuf],
    opts: &ImportOptions,
    progress: &mut dyn FnMut(usize),
) -> anyhow::Result<Vec<Imported>> {
    let mut out = Vec::new();
    let mut before = 0;
    for f in files {
        if files.len() > 1 && !opts.again && imported_before(ws, f).is_some() {
            out.push(Imported::Before(f.display().to_string()));
            continue;
        }
        let started = std::time::Instant::now();
        let mut rows = 0;
        let result = import(ws, f, opts, |n| {
            rows = n;
            progress(before + n)
        });
        before += rows;
        match result {
            Ok(report) => out.push(Imported::File {
                mapping: serde_json::to_string(&report.mapping)?,
                report: Box::new(report),
                seconds: started.elapsed().as_secs_f64(),
            }),
            Err(e) => {
                let file = f.display().to_string();
                // Most problems already start with the file's name.
                let problem = format!("{e:#}");
                let problem = problem
                    .strip_prefix(&format!("{file}: "))
                    .unwrap_or(&problem)
                    .to_string();
                out.push(Imported::Failed { file, problem });
            }
        }
    }
    Ok(out)
}

/// An error listing every file when none of `files` was imported (one bad file among good ones
/// is only listed in the report).
pub fn none_imported(files: &[Imported]) -> anyhow::Result<()> {
    let failed: Vec<String> = files.iter().filter_map(Imported::failure).collect();
    if !failed.is_empty() && failed.len() == files.len() {
        anyhow::bail!("{}", failed.join("; "));
    }
    Ok(())
}

/// The sample pool: written into the workspace's `sample-pool/` folder (once) and imported; a
/// file imported before is skipped, so the button can be pressed again.
pub fn import_sample(ws: &mut Workspace, progress: &mut dyn FnMut(usize)) -> anyhow::Result<Vec<Imported>> {
    let dir = ws.dir.join("sample-pool");
    std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("{}: cannot create the folder ({e})", dir.display()))?;
    let mut out = Vec::new();
    for (name, text) in SAMPLE_POOL {
        let p = dir.join(name);
        if !p.exists() {
            std::fs::write(&p, text).map_err(|e| anyhow::anyhow!("{}: cannot write ({e})", p.display()))?;
        }
        if imported_before(ws, &p).is_some() {
            out.push(Imported::Before(p.display().to_string()));
        } else {
            out.extend(import_files(ws, &[p], &ImportOptions::default(), progress)?);
        }
    }
    Ok(out)
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
        if let Some(id) = imported_before(ws, path) {
            anyhow::bail!(
                "{name}: already imported into this workspace (import #{id}); pass --again to import it anyway"
            );
        }
    }
    let default_source = opts
        .source
        .clone()
        .unwrap_or_else(|| path.file_stem().and_then(|s| s.to_str()).unwrap_or("pool").to_string());

    // A reader thread parses rows and builds records (in parallel, a chunk at a time) while this
    // thread inserts the previous chunk: parsing and SQLite overlap.
    enum Msg {
        Chunk(Vec<(usize, Result<Record, String>)>, usize),
        Mapping(Shape, Box<ColumnMap>),
        Failed(anyhow::Error),
    }
    let (tx_chunks, rx_chunks) = crossbeam_channel::bounded::<Msg>(2);
    let _bulk = opts.rollback_journal.then(|| RollbackJournal::enter(&ws.conn));
    let tx = ws.conn.unchecked_transaction()?;
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
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let reader = {
            let name = name.clone();
            let default_source = default_source.clone();
            let overrides = opts.mapping.clone();
            std::thread::Builder::new()
                .name("import-read".into())
                .spawn_scoped(scope, move || {
                    let mut map: Option<(Shape, ColumnMap)> = None;
                    let mut chunk: Vec<RowSource> = Vec::with_capacity(CHUNK);
                    let mut rows = 0usize;
                    // Rows are parsed here, in parallel (JSONL lines arrive as text): parsing on one
                    // thread, with its allocations freed on others, was the import's bottleneck.
                    let send = |chunk: &mut Vec<RowSource>, map: &Option<(Shape, ColumnMap)>, rows: usize| {
                        let mut built: Vec<(usize, Result<Record, String>)> = chunk
                            .par_drain(..)
                            .map(|src| match (src.parse(), map) {
                                (Err(e), _) => (e.line, Err(e.message)),
                                (Ok(r), Some((shape, cols))) => {
                                    (
                                        r.line,
                                        to_record(r.columns, cols, *shape, &default_source).map(|mut rec| {
                                            // The domain column holds an MSC code (parsed here, off the
                                            // inserting thread).
                                            rec.domain =
                                                rec.domain.as_deref().and_then(crate::curate::classify::parse_code);
                                            rec
                                        }),
                                    )
                                }
                                (Ok(r), None) => (r.line, Err("no mapping".into())),
                            })
                            .collect();
                        // Inserting in key order walks the key indexes in order (far fewer page visits
                        // than random sha256 keys); the stable sort keeps the first of equal keys first.
                        built.sort_by(|a, b| match (&a.1, &b.1) {
                            (Ok(x), Ok(y)) => x.key.cmp(&y.key),
                            (Err(_), Ok(_)) => std::cmp::Ordering::Less,
                            (Ok(_), Err(_)) => std::cmp::Ordering::Greater,
                            (Err(_), Err(_)) => a.0.cmp(&b.0),
                        });
                        tx_chunks.send(Msg::Chunk(built, rows)).is_ok()
                    };
                    let mut stop = false;
                    let res = for_each_row_source(path, |src| {
                        rows += 1;
                        if map.is_some() {
                            chunk.push(src);
                            if chunk.len() >= CHUNK && !send(&mut chunk, &map, rows) {
                                stop = true;
                                return false;
                            }
                            return true;
                        }
                        // Until the mapping is known, rows are parsed here: the first one decides it.
                        let row = src.parse();
                        if let Ok(r) = &row {
                            let (shape, detected) = detect(&r.columns);
                            let mut cols = detected.unwrap_or_default();
                            if let Some(o) = &overrides {
                                if let Err(e) = apply_overrides(&mut cols, o) {
                                    let _ = tx_chunks.send(Msg::Failed(anyhow::anyhow!("{name}: mapping: {e}")));
                                    stop = true;
                                    return false;
                                }
                            }
                            if cols.question.is_empty() {
                                let mut seen: Vec<&String> = r.columns.keys().collect();
                                seen.sort();
                                let _ = tx_chunks.send(Msg::Failed(anyhow::anyhow!(
                                "{name}: no question column found among {seen:?}; name it with --map question=COLUMN"
                            )));
                                stop = true;
                                return false;
                            }
                            let _ = tx_chunks.send(Msg::Mapping(shape, Box::new(cols.clone())));
                            map = Some((shape, cols));
                        }
                        chunk.push(RowSource::Parsed(row));
                        if chunk.len() >= CHUNK && !send(&mut chunk, &map, rows) {
                            stop = true;
                            return false;
                        }
                        true
                    });
                    if stop {
                        return;
                    }
                    match res {
                        Err(e) => {
                            let _ = tx_chunks.send(Msg::Failed(e.into()));
                        }
                        Ok(()) => {
                            send(&mut chunk, &map, rows);
                        }
                    }
                })?
        };
        let mut ins_q = tx.prepare(
            "INSERT OR IGNORE INTO questions (key, question, solution, answer, source, cot_type, metadata, import_id, line,
                 trace, trace_attempt, trace_origin, trace_tokens, trace_at, domain, domain_origin, domain_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        )?;
        let mut dup_q = tx.prepare("UPDATE questions SET copies = copies + 1 WHERE key = ?1")?;
        let mut ins_e = tx.prepare("INSERT INTO import_errors (import_id, line, message) VALUES (?1, ?2, ?3)")?;
        let mut outcome = Ok(());
        for msg in rx_chunks.iter() {
            match msg {
                Msg::Failed(e) => {
                    outcome = Err(e);
                    break;
                }
                Msg::Mapping(shape, cols) => mapping = Some((shape, *cols)),
                Msg::Chunk(built, rows) => {
                    let mut step = || -> anyhow::Result<()> {
                        let now = now();
                        let trace_origin = format!(
                            "column:{}",
                            mapping.as_ref().and_then(|m| m.1.trace.as_deref()).unwrap_or("")
                        );
                        let mut rows = built.iter().peekable();
                        while let Some((line, rec)) = rows.next() {
                            let line = *line;
                            if let Some((_, Ok(next))) = rows.peek() {
                                next.prefetch();
                            }
                            match rec {
                                Err(message) => {
                                    report.malformed += 1;
                                    ins_e.execute(params![import_id, line as i64, message])?;
                                    if report.errors.len() < KEEP_ERRORS {
                                        report.errors.push(RowError {
                                            line,
                                            message: message.clone(),
                                        });
                                    }
                                }
                                Ok(r) => {
                                    let domain = &r.domain;
                                    let has_trace = r.trace.is_some();
                                    let added = ins_q.execute(params![
                                        r.key,
                                        r.question,
                                        r.solution,
                                        r.answer,
                                        r.source,
                                        r.cot_type,
                                        r.metadata,
                                        import_id,
                                        line as i64,
                                        r.trace,
                                        r.attempt,
                                        has_trace.then_some(trace_origin.as_str()),
                                        r.trace_tokens.map(|n| n as i64),
                                        has_trace.then_some(now),
                                        domain,
                                        domain.as_ref().map(|_| "column"),
                                        domain.as_ref().map(|_| now),
                                    ])?;
                                    if added == 0 {
                                        report.duplicates += 1;
                                        dup_q.execute([&r.key])?;
                                        continue;
                                    }
                                    report.added += 1;
                                    report.traces += has_trace as usize;
                                    report.domains += domain.is_some() as usize;
                                }
                            }
                        }
                        Ok(())
                    };
                    report.rows = rows;
                    let res = step();
                    // The records were allocated on the workers: they are freed there too, off
                    // this thread (frees into another thread's heap took its lock).
                    rayon::spawn(move || drop(built));
                    if let Err(e) = res {
                        outcome = Err(e);
                        break;
                    }
                    progress(rows);
                }
            }
        }
        drop(rx_chunks);
        let _ = reader.join();
        outcome
    })?;
    // Errors are listed in file order.
    report.errors.sort_by_key(|e| e.line);
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
