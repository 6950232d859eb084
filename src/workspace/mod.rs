//! The on-disk curation project: one SQLite database (`workspace.sqlite`, WAL mode) in a folder the
//! user picks. Every annotation (a trace, an attempt and its grade, a domain) is its own committed
//! row as soon as it arrives, so a killed step loses nothing it finished and a rerun does only what
//! is missing. Bulk steps (import, rules, decontamination) commit in one transaction each: they are
//! quick, and a half-done one is simply rerun.

mod schema;

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

pub use schema::SCHEMA_VERSION;

/// The database file inside a workspace folder.
pub const DB_FILE: &str = "workspace.sqlite";

pub struct Workspace {
    pub conn: Connection,
    pub dir: PathBuf,
}

/// An error that names the workspace.
fn ctx(dir: &Path, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("workspace {}: {e}", dir.display())
}

impl Workspace {
    /// Opens the workspace in `dir`, creating the folder and the database when absent.
    pub fn open(dir: &Path) -> anyhow::Result<Workspace> {
        std::fs::create_dir_all(dir).map_err(|e| ctx(dir, format!("cannot create the folder ({e})")))?;
        let path = dir.join(DB_FILE);
        let conn = Connection::open(&path).map_err(|e| ctx(dir, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| ctx(dir, e))?;
        // 16 KiB pages (set before the first table; ignored on an existing database): fewer,
        // shallower B-tree levels for a large pool.
        conn.execute_batch("PRAGMA page_size=16384").map_err(|e| ctx(dir, e))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(|e| ctx(dir, format!("{} is not a usable SQLite database ({e})", path.display())))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(ctx(
                dir,
                format!("cannot switch {} to WAL mode (got {mode})", path.display()),
            ));
        }
        // WAL + NORMAL: a committed transaction survives the process being killed (only a power
        // loss can lose the last commits), at a fraction of FULL's fsyncs.
        // A page cache of up to 256 MiB (used only as pages are touched): a million-question
        // import inserts random sha256 keys into the key indexes, and with SQLite's default 2 MiB
        // cache every insert re-reads pages through the OS.
        conn.execute_batch(
            "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-262144; PRAGMA temp_store=MEMORY;",
        )
        .map_err(|e| ctx(dir, e))?;
        schema::migrate(&conn).map_err(|e| ctx(dir, e))?;
        Ok(Workspace {
            conn,
            dir: dir.to_path_buf(),
        })
    }

    /// Opens an existing workspace; a folder without one is an error (for read-only commands).
    pub fn open_existing(dir: &Path) -> anyhow::Result<Workspace> {
        if !dir.join(DB_FILE).is_file() {
            return Err(ctx(
                dir,
                format!(
                    "no {DB_FILE} here; run `s1-studio curate import --workspace {}` first",
                    dir.display()
                ),
            ));
        }
        Self::open(dir)
    }

    pub fn setting(&self, k: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT v FROM settings WHERE k = ?1", [k], |r| r.get(0))
            .optional()?)
    }

    pub fn set_setting(&self, k: &str, v: &str) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO settings (k, v) VALUES (?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
            params![k, v],
        )?;
        Ok(())
    }

    /// Questions in the pool.
    pub fn question_count(&self) -> anyhow::Result<usize> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM questions", [], |r| r.get::<_, i64>(0))? as usize)
    }

    /// Marks a question included or excluded by hand (None: back to the rules' verdict).
    pub fn set_manual(&self, key: &str, manual: Option<Manual>) -> anyhow::Result<()> {
        let n = self.conn.execute(
            "UPDATE questions SET manual = ?2 WHERE key = ?1",
            params![key, manual.map(Manual::name)],
        )?;
        if n == 0 {
            anyhow::bail!("no question with key {key} in this workspace");
        }
        Ok(())
    }
}

/// A hand decision on a question, which overrides the funnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manual {
    Include,
    Exclude,
}

impl Manual {
    pub fn name(self) -> &'static str {
        match self {
            Manual::Include => "include",
            Manual::Exclude => "exclude",
        }
    }
    pub fn parse(s: &str) -> Option<Manual> {
        match s {
            "include" => Some(Manual::Include),
            "exclude" => Some(Manual::Exclude),
            _ => None,
        }
    }
}

/// Seconds since the epoch, for the `at` columns.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_in_wal_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        ws.set_setting("a", "1").unwrap();
        drop(ws);
        let ws = Workspace::open_existing(dir.path()).unwrap();
        assert_eq!(ws.setting("a").unwrap().as_deref(), Some("1"));
        let mode: String = ws.conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DB_FILE), "this is not sqlite, not even close, no......").unwrap();
        let e = Workspace::open(dir.path()).err().unwrap().to_string();
        assert!(e.contains("workspace.sqlite"), "{e}");
        let e = Workspace::open_existing(&dir.path().join("nope"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("curate import"), "{e}");
    }
}
