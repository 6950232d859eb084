//! A repo's listing at one revision (`GET /api/models/{repo}/revision/{rev}?blobs=true`): the
//! commit it resolves to and each file with its size and LFS sha256. A pull plans from it; the
//! library panel shows a repo's GGUF files from it so the user can pick one.

use super::transfer::Http;
use super::{HubError, HubSettings, Result};

/// What the hub says about a repo at a revision.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct RepoInfo {
    /// The commit the revision resolved to.
    pub sha: String,
    pub siblings: Vec<Sibling>,
}

/// One file of the repo.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Sibling {
    pub rfilename: String,
    /// Bytes (sent with `blobs=true`).
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub lfs: Option<Lfs>,
}

/// An LFS file's checksum and size.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Lfs {
    pub sha256: String,
    #[serde(default)]
    pub size: Option<u64>,
}

impl Sibling {
    /// The file's size as the listing gives it (the LFS object's size first).
    pub fn bytes(&self) -> Option<u64> {
        self.lfs.as_ref().and_then(|l| l.size).or(self.size)
    }
}

impl RepoInfo {
    /// The GGUF files, in the listing's order.
    pub fn ggufs(&self) -> Vec<&Sibling> {
        self.siblings
            .iter()
            .filter(|s| s.rfilename.to_ascii_lowercase().ends_with(".gguf"))
            .collect()
    }

    /// Whether the top level holds a safetensors folder a whole-repo pull can take.
    pub fn has_folder(&self) -> bool {
        let top = |f: &dyn Fn(&str) -> bool| {
            self.siblings
                .iter()
                .any(|s| !s.rfilename.contains('/') && f(&s.rfilename))
        };
        top(&|n| n == "config.json") && top(&|n| n.ends_with(".safetensors"))
    }
}

/// The listing's URL: a revision with `/` in it (a branch `refs/pr/1`) is encoded as one part,
/// as the hub expects.
pub fn listing_url(hub: &HubSettings, repo: &str, revision: &str) -> String {
    format!(
        "{}/api/models/{repo}/revision/{}",
        hub.endpoint,
        revision.replace('/', "%2F")
    )
}

/// Reads `repo`'s listing at `revision` (at most 64 MiB of JSON: the largest repos list
/// thousands of files).
pub fn list_repo(http: &Http, hub: &HubSettings, repo: &str, revision: &str) -> Result<RepoInfo> {
    let url = listing_url(hub, repo, revision);
    http.get_json_query(&url, &[("blobs", "true")], 64 << 20)
        .map_err(|e| match e {
            HubError::Http { url, message } if message.starts_with("not the JSON") => {
                HubError::repo(repo, format!("{url}: not the listing expected ({message})"))
            }
            other => other,
        })
}
