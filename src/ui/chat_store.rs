//! Saved conversations: one JSON file per conversation (`<id>.json`) in one folder, the app's
//! data dir (`~/.local/share/s1-studio/conversations` on Linux). One named thread reads them all
//! first, then writes and deletes in the order asked, so the UI thread never touches the disk
//! and a later save never lands before an earlier one. A file that cannot be read is reported
//! and skipped (never rewritten), and the others load; a write goes to a temporary file renamed
//! over the old one, so a crash mid-write leaves the previous version.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{bounded, Sender};

use super::command::{ChatCommand, CommandSender};
use crate::generate::conversation::SavedConversation;

/// The largest conversation file read (a long thinking trace is a few MB).
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// Writes queued at most before the store reports itself busy.
const QUEUE: usize = 64;

enum StoreJob {
    Save(Box<SavedConversation>),
    Delete(String),
}

/// The UI's end of the store thread.
pub struct ConversationStore {
    dir: PathBuf,
    jobs: Sender<StoreJob>,
}

impl ConversationStore {
    /// Starts the store thread on `dir` (made if missing). It first reads every conversation
    /// there and answers with [`ChatCommand::ConversationsRead`]; a failed write or delete
    /// answers with [`ChatCommand::StoreFailed`]. The thread ends when the store is dropped.
    pub fn open(dir: PathBuf, tx: &CommandSender) -> Result<Self, String> {
        let (jobs, rx) = bounded::<StoreJob>(QUEUE);
        let tx = tx.clone();
        let d = dir.clone();
        std::thread::Builder::new()
            .name("s1-conversations".into())
            .spawn(move || {
                let (conversations, errors) = read_all(&d);
                tx.send_blocking(ChatCommand::ConversationsRead { conversations, errors });
                for job in rx {
                    let r = match job {
                        StoreJob::Save(c) => write_one(&d, &c),
                        StoreJob::Delete(id) => delete_one(&d, &id),
                    };
                    if let Err(e) = r {
                        tx.send_blocking(ChatCommand::StoreFailed(e));
                    }
                }
            })
            .map_err(|e| format!("could not start the conversation store: {e}"))?;
        Ok(Self { dir, jobs })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues a save of `c` (its file is `<dir>/<c.id>.json`).
    pub fn save(&self, c: SavedConversation) -> Result<(), String> {
        self.jobs
            .try_send(StoreJob::Save(Box::new(c)))
            .map_err(|_| "the conversation store is stopped or busy: not saved".to_string())
    }

    /// Queues the deletion of the conversation `id`.
    pub fn delete(&self, id: &str) -> Result<(), String> {
        self.jobs
            .try_send(StoreJob::Delete(id.to_string()))
            .map_err(|_| "the conversation store is stopped or busy: not deleted".to_string())
    }
}

/// The file of the conversation `id` in `dir`.
pub fn path_of(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.json"))
}

/// Every conversation in `dir`, most recently updated first, and a message for each file that
/// could not be read (skipped).
pub fn read_all(dir: &Path) -> (Vec<SavedConversation>, Vec<String>) {
    let mut errors = Vec::new();
    if let Err(e) = std::fs::create_dir_all(dir) {
        errors.push(format!("{}: {e}", dir.display()));
        return (Vec::new(), errors);
    }
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
            .collect(),
        Err(e) => {
            errors.push(format!("{}: {e}", dir.display()));
            return (Vec::new(), errors);
        }
    };
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        match read_one(&p) {
            Ok(c) => out.push(c),
            Err(e) => errors.push(e),
        }
    }
    out.sort_by(|a, b| b.updated.cmp(&a.updated).then_with(|| b.id.cmp(&a.id)));
    (out, errors)
}

/// One conversation file; its id is the file's name.
pub fn read_one(path: &Path) -> Result<SavedConversation, String> {
    let shown = path.display();
    let len = std::fs::metadata(path)
        .map_err(|e| format!("{shown}: {e} (skipped)"))?
        .len();
    if len > MAX_FILE_BYTES {
        return Err(format!(
            "{shown}: {len} bytes, more than a conversation file may hold ({MAX_FILE_BYTES}) (skipped)"
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e} (skipped)"))?;
    let mut c: SavedConversation =
        serde_json::from_str(&text).map_err(|e| format!("{shown}: not a saved conversation: {e} (skipped)"))?;
    c.id = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .ok_or_else(|| format!("{shown}: no file name (skipped)"))?;
    Ok(c)
}

/// Writes `c` to `<dir>/<id>.json` through a temporary file renamed over the old one.
pub fn write_one(dir: &Path, c: &SavedConversation) -> Result<(), String> {
    let path = path_of(dir, &c.id);
    let json = serde_json::to_string_pretty(c).map_err(|e| format!("{}: {e}", path.display()))?;
    let tmp = dir.join(format!("{}.json.tmp", c.id));
    std::fs::write(&tmp, json).map_err(|e| format!("could not save {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("could not save {}: {e}", path.display()))
}

fn delete_one(dir: &Path, id: &str) -> Result<(), String> {
    let path = path_of(dir, id);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("could not delete {}: {e}", path.display())),
        _ => Ok(()),
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fresh conversation id: the time in milliseconds and a counter, in hex (file-name safe).
pub fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{ms:012x}-{:04x}", COUNTER.fetch_add(1, Ordering::Relaxed) & 0xffff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::conversation::{Conversation, Turn};

    fn saved(id: &str, updated: u64, text: &str) -> SavedConversation {
        SavedConversation {
            id: id.into(),
            title: text.into(),
            created: updated,
            updated,
            conversation: Conversation {
                turns: vec![Turn::User(text.into())],
            },
        }
    }

    #[test]
    fn a_corrupt_file_is_reported_and_skipped_and_the_others_load() {
        let d = tempfile::tempdir().unwrap();
        write_one(d.path(), &saved("a", 1, "first")).unwrap();
        write_one(d.path(), &saved("b", 2, "second")).unwrap();
        std::fs::write(d.path().join("broken.json"), "{\"title\": \"half").unwrap();
        std::fs::write(d.path().join("notes.txt"), "not a conversation").unwrap();
        let (read, errors) = read_all(d.path());
        let ids: Vec<&str> = read.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["b", "a"], "newest first");
        assert_eq!(read[1], saved("a", 1, "first"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("broken.json") && errors[0].contains("skipped"),
            "{}",
            errors[0]
        );
        // The corrupt file is left as it was.
        assert_eq!(
            std::fs::read_to_string(d.path().join("broken.json")).unwrap(),
            "{\"title\": \"half"
        );
        delete_one(d.path(), "a").unwrap();
        delete_one(d.path(), "a").unwrap();
        assert_eq!(read_all(d.path()).0.len(), 1);
        assert!(!d.path().join("a.json.tmp").exists());
    }

    #[test]
    fn ids_are_unique_and_file_name_safe() {
        let ids: std::collections::HashSet<String> = (0..100).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 100);
        assert!(ids.iter().all(|i| i.chars().all(|c| c.is_ascii_hexdigit() || c == '-')));
    }
}
