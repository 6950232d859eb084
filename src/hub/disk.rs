//! Free disk space, checked before a download starts: a pull that would fill the disk is refused
//! with what it needs and what is free, instead of failing hours in.

use std::path::{Path, PathBuf};

use super::{HubError, Result};

/// Room kept free beyond the download itself (the index, the filesystem's own needs).
pub const MARGIN: u64 = 64 << 20;

/// Bytes free for the user on the filesystem holding `dir` (or its nearest existing parent);
/// `None` when no mounted disk is found for it (the check is then skipped).
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let mut probe: PathBuf = dir.to_path_buf();
    while !probe.exists() {
        probe = probe.parent()?.to_path_buf();
    }
    let probe = probe.canonicalize().ok()?;
    let disks = sysinfo::Disks::new_with_refreshed_list();
    disks
        .list()
        .iter()
        .filter(|d| probe.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .map(|d| d.available_space())
}

/// Refuses a download of `need` more bytes into `dir` when the disk cannot hold it with
/// [`MARGIN`] to spare. `S1_FREE_BYTES` stands in for the disk's answer (tests of the refusal).
pub fn check_space(dir: &Path, need: u64) -> Result<()> {
    let free = std::env::var("S1_FREE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .or_else(|| free_bytes(dir));
    match free {
        Some(free) if need.saturating_add(MARGIN) > free => Err(HubError::NoSpace {
            dir: dir.to_path_buf(),
            need,
            free,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The disk holding a temporary folder is found and has some room; asking for more than
    /// it has is refused, naming both numbers.
    #[test]
    fn the_temp_disk_is_found_and_an_impossible_need_refused() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(&dir.path().join("not/yet/made")).expect("a mounted disk holds the temp dir");
        assert!(free > 0);
        let err = check_space(dir.path(), free + MARGIN + 1).unwrap_err();
        assert!(err.to_string().contains("not enough disk space"), "{err}");
        check_space(dir.path(), 0).unwrap();
    }
}
