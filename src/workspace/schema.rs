//! The workspace's tables. Keys are s1's `sha256(question)[:16]`; every annotation table is keyed by
//! it (and by the model where there can be several), so a rerun's `INSERT OR IGNORE`/upsert is
//! idempotent.

use rusqlite::Connection;

pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS settings (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS imports (
    id INTEGER PRIMARY KEY, file TEXT NOT NULL, shape TEXT NOT NULL, mapping TEXT NOT NULL,
    rows INTEGER NOT NULL, added INTEGER NOT NULL, duplicates INTEGER NOT NULL,
    malformed INTEGER NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS import_errors (import_id INTEGER NOT NULL, line INTEGER NOT NULL, message TEXT NOT NULL);
-- One row per question; the 1:1 annotations live in it (one insert per question on import, one
-- update per annotation): the thinking trace and the generator's answer (`trace_attempt`), its
-- length in tokens and the attempt's grade against the reference (`trace_correct`: 1/0, NULL
-- when it could not be graded), and the MSC domain. Small columns come first so scans that need
-- only them never read the long texts.
CREATE TABLE IF NOT EXISTS questions (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,
    manual TEXT CHECK (manual IN ('include', 'exclude')), copies INTEGER NOT NULL DEFAULT 1,
    import_id INTEGER NOT NULL, line INTEGER NOT NULL, source TEXT NOT NULL, cot_type TEXT NOT NULL,
    trace_tokens INTEGER, trace_correct INTEGER, trace_origin TEXT, trace_at INTEGER,
    domain TEXT, domain_origin TEXT, domain_at INTEGER,
    answer TEXT, question TEXT NOT NULL, solution TEXT, metadata TEXT NOT NULL,
    trace_attempt TEXT, domain_raw TEXT, trace TEXT);
-- What the funnel reads of every question, in pool order: scanning this index reads a tenth of
-- the pages the table takes (its rows hold the long texts).
CREATE INDEX IF NOT EXISTS questions_funnel ON questions (id, key, manual, source, trace_tokens, trace_correct, domain);
-- Quality and decontamination hits: rule names as in `curate::rules`.
CREATE TABLE IF NOT EXISTS flags (key TEXT NOT NULL, rule TEXT NOT NULL, detail TEXT, PRIMARY KEY (key, rule)) WITHOUT ROWID;
-- Difficulty: one attempt per question and model; verdict correct | incorrect | undecided.
CREATE TABLE IF NOT EXISTS attempts (
    key TEXT NOT NULL, model TEXT NOT NULL, response TEXT NOT NULL, verdict TEXT NOT NULL,
    grader TEXT NOT NULL, reason TEXT, at INTEGER NOT NULL, PRIMARY KEY (key, model));
CREATE TABLE IF NOT EXISTS selections (
    name TEXT PRIMARY KEY, method TEXT NOT NULL, seed INTEGER NOT NULL, target INTEGER NOT NULL,
    settings TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS selection_items (
    name TEXT NOT NULL REFERENCES selections(name) ON DELETE CASCADE, rank INTEGER NOT NULL, key TEXT NOT NULL,
    PRIMARY KEY (name, rank));
-- Failures of annotation calls (a model or endpoint error), so a report can show them.
CREATE TABLE IF NOT EXISTS failures (step TEXT NOT NULL, key TEXT NOT NULL, model TEXT NOT NULL, message TEXT NOT NULL, at INTEGER NOT NULL);
-- The pool's map: a vector per question and embedder (f32 little-endian), and each embedder's
-- seeded 2D layout (curate::steps::map).
CREATE TABLE IF NOT EXISTS embeddings (key TEXT NOT NULL, embedder TEXT NOT NULL, dim INTEGER NOT NULL, vec BLOB NOT NULL, PRIMARY KEY (key, embedder)) WITHOUT ROWID;
-- The map's switch counts each embedder's vectors from this index, not from the vectors.
CREATE INDEX IF NOT EXISTS embeddings_by_embedder ON embeddings (embedder);
CREATE TABLE IF NOT EXISTS map_layouts (embedder TEXT PRIMARY KEY, seed INTEGER NOT NULL, points INTEGER NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS map_points (embedder TEXT NOT NULL, key TEXT NOT NULL, x REAL NOT NULL, y REAL NOT NULL, PRIMARY KEY (embedder, key)) WITHOUT ROWID;
"#;

pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "this workspace was written by a newer s1-studio (schema {version}, this one knows {SCHEMA_VERSION})"
        )));
    }
    conn.execute_batch(SCHEMA)?;
    conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
    Ok(())
}
