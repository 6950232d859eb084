//! Advisory file locks between pulls: two pulls of one repo at once (two processes, or the app
//! and the CLI) would append to the same `.part` file, and two writers of `library.json` would
//! lose each other's entries. A pull holds its repo's lock (`.locks/<repo folder>.lock` in the
//! library, outside the repo's folder so `models rm` never deletes a held lock) from its listing
//! to its index entry; the second one waits, saying who holds it. The index's read-modify-write
//! holds `.locks/library.json.lock`. The locks are the OS's (`flock` on Unix, `LockFileEx` on
//! Windows) through std's `File::lock`: a process that dies releases them.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{HubError, PullEvent, Result};
use crate::cancel::CancelToken;

/// How often a waiting pull tries the lock again (and checks its cancel token).
const RETRY: Duration = Duration::from_millis(200);

/// A held lock; dropping it (closing the file) releases it.
#[derive(Debug)]
pub struct Held {
    _file: Option<File>,
}

/// The lock file for `name` in the library folder `lib_dir`.
pub fn lock_path(lib_dir: &Path, name: &str) -> PathBuf {
    lib_dir.join(".locks").join(format!("{name}.lock"))
}

fn open(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| HubError::io(dir, e))?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| HubError::io(path, e))
}

/// The pid the holder wrote into the lock file, when it did.
fn holder(file: &mut File) -> Option<u32> {
    let mut s = String::new();
    file.rewind().ok()?;
    file.take(32).read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

/// Writes this process's id into the held lock file, for a waiting pull to name.
fn sign(mut file: File, path: &Path) -> Result<Held> {
    file.set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| writeln!(file, "{}", std::process::id()))
        .map_err(|e| HubError::io(path, e))?;
    Ok(Held { _file: Some(file) })
}

/// Takes the lock at `path`, waiting while another pull of `what` holds it (reported once
/// through `on` as [`PullEvent::Waiting`]); a cancel while waiting ends the wait. On a
/// filesystem without locks the pull goes on unlocked.
pub fn hold(path: &Path, what: &str, cancel: &CancelToken, on: &mut dyn FnMut(PullEvent)) -> Result<Held> {
    let mut file = open(path)?;
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => return sign(file, path),
            Err(TryLockError::WouldBlock) => {
                if !told {
                    told = true;
                    let pid = holder(&mut file).map_or("pid unknown".to_string(), |p| format!("pid {p}"));
                    on(PullEvent::Waiting(format!(
                        "another pull of {what} is running ({pid}); waiting for it to finish"
                    )));
                }
                if cancel.is_cancelled() {
                    return Err(HubError::Cancelled);
                }
                std::thread::sleep(RETRY);
            }
            Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                return Ok(Held { _file: None })
            }
            Err(TryLockError::Error(e)) => return Err(HubError::io(path, format!("cannot lock: {e}"))),
        }
    }
}

/// Takes the lock at `path` if it is free; when a pull of `what` holds it, an error naming
/// its pid (`models rm` of a repo being pulled).
pub fn try_hold(path: &Path, what: &str) -> Result<Held> {
    let mut file = open(path)?;
    match file.try_lock() {
        Ok(()) => sign(file, path),
        Err(TryLockError::WouldBlock) => {
            let pid = holder(&mut file).map_or("pid unknown".to_string(), |p| format!("pid {p}"));
            Err(HubError::repo(
                what,
                format!("a pull of it is running ({pid}); stop it first"),
            ))
        }
        Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => Ok(Held { _file: None }),
        Err(TryLockError::Error(e)) => Err(HubError::io(path, format!("cannot lock: {e}"))),
    }
}

/// Takes the lock at `path`, waiting as long as it takes (short critical sections only: the
/// index's read-modify-write).
pub fn hold_briefly(path: &Path) -> Result<Held> {
    let file = open(path)?;
    match file.lock() {
        Ok(()) => Ok(Held { _file: Some(file) }),
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => Ok(Held { _file: None }),
        Err(e) => Err(HubError::io(path, format!("cannot lock: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A held lock makes the next taker wait (told who holds it) until it is dropped; a
    /// cancel ends the wait; `try_hold` refuses at once, naming the pid.
    #[test]
    fn a_held_lock_is_waited_for_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(dir.path(), "models--o--m");
        let held = hold(&path, "o/m", &CancelToken::new(), &mut |_| {}).unwrap();
        let err = try_hold(&path, "o/m").unwrap_err().to_string();
        assert!(
            err.contains(&format!("a pull of it is running (pid {})", std::process::id())),
            "{err}"
        );
        let cancel = CancelToken::new();
        cancel.cancel();
        let mut events = Vec::new();
        let err = hold(&path, "o/m", &cancel, &mut |e| events.push(e)).unwrap_err();
        assert!(matches!(err, HubError::Cancelled), "{err}");
        assert_eq!(events.len(), 1);
        let PullEvent::Waiting(msg) = &events[0] else {
            panic!("{events:?}")
        };
        assert!(msg.starts_with("another pull of o/m is running (pid "), "{msg}");
        let waiter = std::thread::Builder::new()
            .name("lock-waiter".into())
            .spawn(move || {
                let mut waited = false;
                let h = hold(&path, "o/m", &CancelToken::new(), &mut |_| waited = true).unwrap();
                (h, waited)
            })
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        drop(held);
        let (_h, waited) = waiter.join().unwrap();
        assert!(waited, "the second taker waited for the first");
    }
}
