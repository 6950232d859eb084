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
CREATE TABLE IF NOT EXISTS questions (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, question TEXT NOT NULL, solution TEXT, answer TEXT,
    source TEXT NOT NULL, cot_type TEXT NOT NULL, metadata TEXT NOT NULL,
    import_id INTEGER NOT NULL, line INTEGER NOT NULL, copies INTEGER NOT NULL DEFAULT 1,
    manual TEXT CHECK (manual IN ('include', 'exclude')));
-- A thinking trace and the generator's answer; `correct`: the answer graded against the reference
-- (1/0, NULL when it could not be graded).
CREATE TABLE IF NOT EXISTS traces (
    key TEXT PRIMARY KEY, trace TEXT NOT NULL, attempt TEXT, origin TEXT NOT NULL,
    tokens INTEGER, correct INTEGER, at INTEGER NOT NULL);
-- Quality and decontamination hits: rule names as in `curate::rules`.
CREATE TABLE IF NOT EXISTS flags (key TEXT NOT NULL, rule TEXT NOT NULL, detail TEXT, PRIMARY KEY (key, rule));
-- Difficulty: one attempt per question and model; verdict correct | incorrect | undecided.
CREATE TABLE IF NOT EXISTS attempts (
    key TEXT NOT NULL, model TEXT NOT NULL, response TEXT NOT NULL, verdict TEXT NOT NULL,
    grader TEXT NOT NULL, reason TEXT, at INTEGER NOT NULL, PRIMARY KEY (key, model));
CREATE TABLE IF NOT EXISTS domains (key TEXT PRIMARY KEY, code TEXT NOT NULL, origin TEXT NOT NULL, raw TEXT, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS selections (
    name TEXT PRIMARY KEY, method TEXT NOT NULL, seed INTEGER NOT NULL, target INTEGER NOT NULL,
    settings TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS selection_items (
    name TEXT NOT NULL REFERENCES selections(name) ON DELETE CASCADE, rank INTEGER NOT NULL, key TEXT NOT NULL,
    PRIMARY KEY (name, rank));
-- Failures of annotation calls (a model or endpoint error), so a report can show them.
CREATE TABLE IF NOT EXISTS failures (step TEXT NOT NULL, key TEXT NOT NULL, model TEXT NOT NULL, message TEXT NOT NULL, at INTEGER NOT NULL);
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
