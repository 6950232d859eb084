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

/// What a pull of a repo can take: its safetensors folder (with the folder's bytes) and each
/// GGUF file with its size, for the user to pick from.
#[derive(Debug, Clone, PartialEq)]
pub struct PullOptions {
    pub repo: String,
    /// The whole-repo pull's bytes, when the repo has a safetensors folder.
    pub folder_bytes: Option<u64>,
    /// Each GGUF file and its size (0 when the listing does not say).
    pub ggufs: Vec<(String, u64)>,
}

impl PullOptions {
    pub fn of(repo: &str, info: &RepoInfo) -> Self {
        let folder_bytes = info.has_folder().then(|| {
            let names: Vec<&str> = info.siblings.iter().map(|s| s.rfilename.as_str()).collect();
            let wanted = super::pull::folder_files(&names);
            info.siblings
                .iter()
                .filter(|s| wanted.contains(&s.rfilename))
                .filter_map(Sibling::bytes)
                .sum()
        });
        Self {
            repo: repo.to_string(),
            folder_bytes,
            ggufs: info
                .ggufs()
                .into_iter()
                .map(|s| (s.rfilename.clone(), s.bytes().unwrap_or(0)))
                .collect(),
        }
    }

    /// The one thing there is to pull (`Some(None)`: the folder; `Some(Some(f))`: the only
    /// GGUF), or None when the user must pick (or there is nothing).
    pub fn only_choice(&self) -> Option<Option<String>> {
        match (self.folder_bytes, self.ggufs.as_slice()) {
            (Some(_), []) => Some(None),
            (None, [(f, _)]) => Some(Some(f.clone())),
            _ => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.folder_bytes.is_none() && self.ggufs.is_empty()
    }
}

/// Reads `repo`'s listing at `revision` and says what a pull can take from it.
pub fn pull_options(hub: &HubSettings, repo: &str, revision: &str) -> Result<PullOptions> {
    let info = list_repo(&Http::new(hub.token.clone()), hub, repo, revision)?;
    Ok(PullOptions::of(repo, &info))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(files: &[(&str, u64)]) -> RepoInfo {
        RepoInfo {
            sha: "c".into(),
            siblings: files
                .iter()
                .map(|(n, b)| Sibling {
                    rfilename: n.to_string(),
                    size: Some(*b),
                    lfs: None,
                })
                .collect(),
        }
    }

    #[test]
    fn options_name_the_folder_and_each_gguf_with_sizes() {
        let o = PullOptions::of(
            "o/m",
            &info(&[("config.json", 10), ("model.safetensors", 90), ("README.md", 5)]),
        );
        assert_eq!((o.folder_bytes, o.only_choice()), (Some(100), Some(None)));
        let o = PullOptions::of("o/m", &info(&[("a-Q4_0.gguf", 7), ("README.md", 5)]));
        assert_eq!(o.only_choice(), Some(Some("a-Q4_0.gguf".to_string())));
        let o = PullOptions::of("o/m", &info(&[("a-Q4_0.gguf", 7), ("b-Q8_0.GGUF", 9)]));
        assert_eq!(
            o.ggufs,
            [("a-Q4_0.gguf".to_string(), 7), ("b-Q8_0.GGUF".to_string(), 9)]
        );
        assert_eq!((o.folder_bytes, o.only_choice()), (None, None));
        assert!(PullOptions::of("o/m", &info(&[("README.md", 5)])).is_empty());
    }
}
