//! `models pull`: a Hugging Face repo (its safetensors, config and tokenizer files) or one GGUF
//! file of it into the library. hf-hub lists the repo at one commit and gives each file's etag
//! and size; the bytes come through [`super::transfer`] into `blobs/<etag>.part` (resumed on the
//! next pull), are checked against the LFS sha256, then linked from `snapshots/<commit>/` as in
//! the Hugging Face cache.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};

use super::transfer::{is_sha256, verify_and_place, Http, PullEvent};
use super::{describe, disk, HubError, Library, LibraryEntry, ModelFacts, Result};
use crate::cancel::CancelToken;

/// Where the hub is and who asks: `HF_ENDPOINT` (a mirror, or a test's mock) and `HF_TOKEN`
/// (else the token `huggingface-cli login` saved), as the Python client reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct HubSettings {
    pub endpoint: String,
    pub token: Option<String>,
}

impl HubSettings {
    pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

    pub fn from_env() -> Self {
        let var = |k: &str| {
            std::env::var(k)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        Self {
            endpoint: var("HF_ENDPOINT")
                .map(|e| e.trim_end_matches('/').to_string())
                .unwrap_or_else(|| Self::DEFAULT_ENDPOINT.into()),
            token: var("HF_TOKEN")
                .or_else(|| var("HUGGING_FACE_HUB_TOKEN"))
                .or_else(|| Cache::from_env().token()),
        }
    }
}

/// What to pull.
#[derive(Debug, Clone, PartialEq)]
pub struct PullRequest {
    /// `org/name` on the hub.
    pub repo: String,
    /// One file of the repo (a `.gguf`); none: the repo's safetensors folder.
    pub file: Option<String>,
    /// A branch, tag or commit.
    pub revision: String,
}

impl PullRequest {
    pub fn new(repo: &str) -> Self {
        Self {
            repo: repo.trim().to_string(),
            file: None,
            revision: "main".into(),
        }
    }

    /// The library id of what this pulls.
    pub fn id(&self) -> String {
        match &self.file {
            Some(f) => format!("{}/{f}", self.repo),
            None => self.repo.clone(),
        }
    }

    fn check(&self) -> Result<()> {
        let ok_part = |p: &str| {
            !p.is_empty() && p != "." && p != ".." && p.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        };
        let parts: Vec<&str> = self.repo.split('/').collect();
        if parts.len() > 2 || !parts.iter().all(|p| ok_part(p)) {
            return Err(HubError::repo(
                &self.repo,
                "not a repo id: expected `org/name` (letters, digits, `.`, `_`, `-`)",
            ));
        }
        if let Some(f) = &self.file {
            check_file_name(&self.repo, f)?;
        }
        if self.revision.is_empty() || self.revision.chars().any(|c| c.is_whitespace() || c == '\\') {
            return Err(HubError::repo(
                &self.repo,
                format!("not a revision: `{}`", self.revision),
            ));
        }
        Ok(())
    }
}

/// A file name from the user or the hub: a relative path inside the repo, never leaving it.
fn check_file_name(repo: &str, f: &str) -> Result<()> {
    let bad = f.is_empty()
        || f.starts_with('/')
        || f.contains('\\')
        || f.split('/').any(|p| p.is_empty() || p == "." || p == "..");
    if bad {
        return Err(HubError::repo(repo, format!("not a file name inside the repo: `{f}`")));
    }
    Ok(())
}

/// A name the hub gives (a commit or an etag) that becomes a path part: hex and dashes only.
fn check_id(repo: &str, what: &str, v: &str) -> Result<()> {
    if v.is_empty() || v.len() > 128 || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(HubError::repo(repo, format!("the hub sent an unusable {what}: `{v}`")));
    }
    Ok(())
}

#[derive(Debug, serde::Deserialize)]
struct RepoInfo {
    sha: String,
    siblings: Vec<Sibling>,
}

#[derive(Debug, serde::Deserialize)]
struct Sibling {
    rfilename: String,
    #[serde(default)]
    lfs: Option<Lfs>,
}

#[derive(Debug, serde::Deserialize)]
struct Lfs {
    sha256: String,
}

/// The files of a whole-repo pull: the top-level weights, configs and tokenizer files.
fn folder_files(names: &[&str]) -> Vec<String> {
    names
        .iter()
        .filter(|n| !n.contains('/'))
        .filter(|n| {
            n.ends_with(".safetensors")
                || n.ends_with(".json")
                || n.ends_with(".jinja")
                || matches!(**n, "tokenizer.model" | "merges.txt" | "vocab.txt")
        })
        .map(|n| n.to_string())
        .collect()
}

/// One file to fetch.
struct Plan {
    name: String,
    url: String,
    size: u64,
    blob: PathBuf,
    sha256: Option<String>,
}

fn api_error(repo: &str, what: &str, e: ApiError) -> HubError {
    let message = match &e {
        ApiError::RequestError(r) => match r.as_ref() {
            ureq::Error::StatusCode(401 | 403) => {
                format!(
                    "{what}: access refused (a gated or private repo: accept its terms on the hub and set HF_TOKEN)"
                )
            }
            ureq::Error::StatusCode(404) => format!("{what}: not found (check the repo id, file name and revision)"),
            other => format!("{what}: {other}"),
        },
        other => format!("{what}: {other}"),
    };
    HubError::repo(repo, message)
}

/// Pulls `req` into `lib` and adds it to the index; what was already fetched is kept, a part
/// file is resumed. Reports progress through `on` (see [`PullEvent`]).
pub fn pull(
    lib: &Library,
    hub: &HubSettings,
    req: &PullRequest,
    cancel: &CancelToken,
    on: &mut dyn FnMut(PullEvent),
) -> Result<LibraryEntry> {
    req.check()?;
    let repo_id = req.repo.as_str();
    on(PullEvent::Stage(format!("asking {} about {repo_id}", hub.endpoint)));
    let api = ApiBuilder::from_cache(Cache::new(lib.dir.clone()))
        .with_endpoint(hub.endpoint.clone())
        .with_token(hub.token.clone())
        .with_progress(false)
        .build()
        .map_err(|e| api_error(repo_id, "could not start the hub client", e))?;
    let at_rev = api.repo(Repo::with_revision(
        repo_id.into(),
        RepoType::Model,
        req.revision.clone(),
    ));
    let info_url = format!("{}/api/models/{repo_id}/revision/{}", hub.endpoint, req.revision);
    let mut resp = at_rev
        .info_request()
        .query("blobs", "true")
        .call()
        .map_err(|e| api_error(repo_id, &info_url, ApiError::RequestError(Box::new(e))))?;
    let info: RepoInfo = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_json()
        .map_err(|e| HubError::repo(repo_id, format!("{info_url}: not the listing expected: {e}")))?;
    check_id(repo_id, "commit", &info.sha)?;
    let names: Vec<&str> = info.siblings.iter().map(|s| s.rfilename.as_str()).collect();
    let ggufs: Vec<&str> = names.iter().copied().filter(|n| n.ends_with(".gguf")).collect();
    let files = match &req.file {
        Some(f) if names.contains(&f.as_str()) => vec![f.clone()],
        Some(f) => {
            let hint = if ggufs.is_empty() {
                String::new()
            } else {
                format!("; its GGUF files: {}", ggufs.join(", "))
            };
            return Err(HubError::repo(repo_id, format!("has no file `{f}`{hint}")));
        }
        None => {
            let files = folder_files(&names);
            if !files.iter().any(|f| f.ends_with(".safetensors")) || !files.iter().any(|f| f == "config.json") {
                let message = if ggufs.is_empty() {
                    "has no safetensors weights with a config.json, nor GGUF files".to_string()
                } else {
                    format!(
                        "holds GGUF files, not a safetensors folder: pick one with --file ({})",
                        ggufs.join(", ")
                    )
                };
                return Err(HubError::repo(repo_id, message));
            }
            files
        }
    };
    // Every file from the one commit the listing named.
    let at_commit = api.repo(Repo::with_revision(repo_id.into(), RepoType::Model, info.sha.clone()));
    let repo_dir = lib.repo_dir(repo_id);
    let mut plans = Vec::new();
    for name in &files {
        check_file_name(repo_id, name)?;
        if cancel.is_cancelled() {
            return Err(HubError::Cancelled);
        }
        let url = at_commit.url(name);
        let meta = api.metadata(&url).map_err(|e| api_error(repo_id, &url, e))?;
        check_id(repo_id, "etag", meta.etag())?;
        let lfs = info
            .siblings
            .iter()
            .find(|s| &s.rfilename == name)
            .and_then(|s| s.lfs.as_ref())
            .map(|l| l.sha256.to_lowercase());
        let sha256 = lfs.or_else(|| is_sha256(meta.etag()).then(|| meta.etag().to_lowercase()));
        plans.push(Plan {
            name: name.clone(),
            url,
            size: meta.size() as u64,
            blob: repo_dir.join("blobs").join(meta.etag()),
            sha256,
        });
    }
    let total: u64 = plans.iter().map(|p| p.size).sum();
    let present_of = |p: &Plan| -> u64 {
        if p.blob.exists() {
            p.size
        } else {
            std::fs::metadata(part_of(&p.blob)).map_or(0, |m| m.len().min(p.size))
        }
    };
    let present: u64 = plans.iter().map(present_of).sum();
    on(PullEvent::Planned {
        files: plans.len(),
        total,
        present,
    });
    disk::check_space(&lib.dir, total - present)?;
    let snapshot = repo_dir.join("snapshots").join(&info.sha);
    let http = Http::new(hub.token.clone());
    let mut before = 0u64;
    for p in &plans {
        if !p.blob.exists() {
            let dir = p.blob.parent().unwrap_or(&repo_dir);
            std::fs::create_dir_all(dir).map_err(|e| HubError::io(dir, e))?;
            let part = part_of(&p.blob);
            on(PullEvent::FileStarted {
                name: p.name.clone(),
                size: p.size,
                done: present_of(p),
            });
            let mut last = Instant::now();
            http.fetch_resumable(&p.url, &part, Some(p.size), cancel, &mut |done| {
                if last.elapsed() >= Duration::from_millis(100) || done == p.size {
                    last = Instant::now();
                    on(PullEvent::Progress {
                        done: before + done,
                        total,
                    });
                }
            })?;
            on(PullEvent::Verifying { name: p.name.clone() });
            verify_and_place(&part, &p.blob, &p.name, p.sha256.as_deref(), cancel)?;
        }
        before += p.size;
        on(PullEvent::Progress { done: before, total });
        link(&p.blob, &snapshot.join(&p.name))?;
    }
    Cache::new(lib.dir.clone())
        .repo(Repo::with_revision(
            repo_id.into(),
            RepoType::Model,
            req.revision.clone(),
        ))
        .create_ref(&info.sha)
        .map_err(|e| HubError::io(repo_dir.join("refs"), e))?;
    let path = match &req.file {
        Some(f) => snapshot.join(f),
        None => snapshot.clone(),
    };
    on(PullEvent::Stage("reading the model's metadata".into()));
    let facts = describe(&path).unwrap_or_else(|e| ModelFacts {
        unsupported: Some(e.to_string()),
        ..Default::default()
    });
    let entry = LibraryEntry {
        id: req.id(),
        repo: repo_id.to_string(),
        revision: req.revision.clone(),
        commit: Some(info.sha.clone()),
        file: req.file.clone(),
        path,
        bytes: total,
        fetched_at: super::library::now_s(),
        facts,
    };
    lib.upsert(entry.clone())?;
    Ok(entry)
}

/// The file a blob is downloaded into before its checksum is checked (hf-hub's name for it).
fn part_of(blob: &Path) -> PathBuf {
    let mut s = blob.as_os_str().to_os_string();
    s.push(".part");
    PathBuf::from(s)
}

/// `snapshots/<commit>/<name>` pointing at its blob: a relative symlink as in the Hugging Face
/// cache, or a hard link (else a copy) where symlinks are not available.
fn link(blob: &Path, pointer: &Path) -> Result<()> {
    let dir = pointer
        .parent()
        .ok_or_else(|| HubError::io(pointer, "no parent folder"))?;
    std::fs::create_dir_all(dir).map_err(|e| HubError::io(dir, e))?;
    if std::fs::symlink_metadata(pointer).is_ok() {
        std::fs::remove_file(pointer).map_err(|e| HubError::io(pointer, e))?;
    }
    #[cfg(unix)]
    {
        // snapshots/<commit>/<a/b/name> -> ../../(../..)blobs/<etag>
        let depth = pointer
            .strip_prefix(dir.ancestors().find(|a| a.ends_with("snapshots")).unwrap_or(dir))
            .map_or(1, |r| r.components().count());
        let mut rel = PathBuf::new();
        for _ in 0..depth {
            rel.push("..");
        }
        rel.push("blobs");
        rel.push(blob.file_name().unwrap_or_default());
        std::os::unix::fs::symlink(&rel, pointer).map_err(|e| HubError::io(pointer, e))
    }
    #[cfg(not(unix))]
    {
        std::fs::hard_link(blob, pointer)
            .or_else(|_| std::fs::copy(blob, pointer).map(|_| ()))
            .map_err(|e| HubError::io(pointer, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_names_are_checked() {
        assert!(PullRequest::new("HuggingFaceTB/SmolLM2-135M-Instruct").check().is_ok());
        for bad in ["a/b/c", "../x", "a b/c", "", "org/"] {
            assert!(PullRequest::new(bad).check().is_err(), "{bad}");
        }
        let mut r = PullRequest::new("org/m");
        r.file = Some("../../etc/passwd".into());
        assert!(r.check().unwrap_err().to_string().contains("not a file name"));
        r.file = Some("q/model-Q4_K_M.gguf".into());
        assert_eq!(r.id(), "org/m/q/model-Q4_K_M.gguf");
        assert!(check_id("r", "etag", "abc/def").is_err());
        assert_eq!(
            folder_files(&[
                "config.json",
                "model.safetensors",
                "onnx/model.onnx",
                "README.md",
                "tokenizer.model",
                "a.gguf"
            ]),
            ["config.json", "model.safetensors", "tokenizer.model"]
        );
    }

    #[cfg(unix)]
    #[test]
    fn pointers_link_to_their_blob() {
        let dir = tempfile::tempdir().unwrap();
        let blob = dir.path().join("blobs/e1");
        std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
        std::fs::write(&blob, b"x").unwrap();
        let p = dir.path().join("snapshots/c1/sub/f.gguf");
        link(&blob, &p).unwrap();
        link(&blob, &p).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"x");
        assert_eq!(std::fs::read_link(&p).unwrap(), Path::new("../../../blobs/e1"));
    }
}
