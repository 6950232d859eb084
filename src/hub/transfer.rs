//! The bytes of one file: an HTTP GET that resumes from what a `.part` file already holds (a
//! `Range` request), can be stopped between chunks, and is renamed into place only after its
//! sha256 matched what the server announced. Also the progress protocol of a pull.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{HubError, Result};
use crate::cancel::CancelToken;

/// What a pull reports while it runs, in this order: `Planned` once, then for each file
/// `FileStarted`, `Progress`…, `Verifying`; `Stage` between steps. The pull's result (the library
/// entry, or the error) ends it.
#[derive(Debug, Clone, PartialEq)]
pub enum PullEvent {
    /// What will be fetched: how many files, their bytes, and the bytes already here (resumed
    /// parts and files fetched before).
    Planned { files: usize, total: u64, present: u64 },
    /// A file's transfer starts, `done` of its `size` bytes already present.
    FileStarted { name: String, size: u64, done: u64 },
    /// Bytes present of the whole pull.
    Progress { done: u64, total: u64 },
    /// The file is complete; its checksum is being checked.
    Verifying { name: String },
    /// Another step (reading metadata, extracting a wheel).
    Stage(String),
}

/// Chunk read from the network between cancel checks.
const CHUNK: usize = 256 * 1024;

/// An HTTP client for file transfers: redirects followed (the token only sent to the same host),
/// no compression (byte ranges must mean file offsets), a stalled read given up after a minute.
pub struct Http {
    agent: ureq::Agent,
    token: Option<String>,
}

impl Http {
    pub fn new(token: Option<String>) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .user_agent(concat!("s1-studio/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self { agent, token }
    }

    fn get(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        let mut req = self.agent.get(url).header("Accept-Encoding", "identity");
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        req
    }

    /// A small JSON document (an index page), at most 16 MiB.
    pub fn get_json(&self, url: &str) -> Result<serde_json::Value> {
        let mut resp = self.get(url).call().map_err(|e| http(url, e))?;
        check_status(url, resp.status().as_u16())?;
        resp.body_mut()
            .with_config()
            .limit(16 << 20)
            .read_json()
            .map_err(|e| http(url, format!("not the JSON expected: {e}")))
    }

    /// Appends the rest of `url` to `part` (starting over when the server ignores the range or
    /// the part is longer than `size`), reporting the part's length after each chunk. Returns
    /// the part's final length; a transfer cut short is an error that keeps the part to resume.
    pub fn fetch_resumable(
        &self,
        url: &str,
        part: &Path,
        size: Option<u64>,
        cancel: &CancelToken,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64> {
        let mut have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        if size.is_some_and(|s| have > s) {
            have = 0;
        }
        if size == Some(have) && have > 0 {
            return Ok(have);
        }
        let mut req = self.get(url);
        if have > 0 {
            req = req.header("Range", format!("bytes={have}-"));
        }
        let mut resp = req.call().map_err(|e| http(url, e))?;
        let status = resp.status().as_u16();
        if status == 416 && size.is_some_and(|s| s == have) {
            return Ok(have);
        }
        check_status(url, status)?;
        // 206: the rest from `have`; 200: the whole file (the server ignored the range).
        let start = if status == 206 { have } else { 0 };
        if status == 206 {
            let range = resp
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !range.starts_with(&format!("bytes {have}-")) {
                return Err(http(
                    url,
                    format!("asked for bytes from {have}, got the range `{range}`"),
                ));
            }
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(start > 0)
            .write(true)
            .truncate(start == 0)
            .open(part)
            .map_err(|e| HubError::io(part, e))?;
        let mut done = start;
        progress(done);
        let mut reader = resp.body_mut().with_config().reader();
        let mut buf = vec![0u8; CHUNK];
        loop {
            if cancel.is_cancelled() {
                file.flush().map_err(|e| HubError::io(part, e))?;
                return Err(HubError::Cancelled);
            }
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    file.flush().map_err(|e| HubError::io(part, e))?;
                    return Err(http(
                        url,
                        format!("the transfer stopped at byte {done} ({e}); pull again to resume"),
                    ));
                }
            };
            file.write_all(&buf[..n]).map_err(|e| HubError::io(part, e))?;
            done += n as u64;
            if size.is_some_and(|s| done > s) {
                drop(file);
                let _ = std::fs::remove_file(part);
                return Err(http(
                    url,
                    format!("sent more than the {} bytes announced", size.unwrap_or(0)),
                ));
            }
            progress(done);
        }
        file.sync_all().map_err(|e| HubError::io(part, e))?;
        if let Some(s) = size {
            if done != s {
                return Err(http(
                    url,
                    format!("the transfer stopped at byte {done} of {s}; pull again to resume"),
                ));
            }
        }
        Ok(done)
    }
}

/// An HTTP status the transfer cannot use, said plainly (a gated or private repo needs a token).
fn check_status(url: &str, status: u16) -> Result<()> {
    let message = match status {
        200..=299 => return Ok(()),
        401 | 403 => "access refused: the repo is gated or private; accept its terms on the hub and set HF_TOKEN",
        404 => "not found (check the repo id, the file name and the revision)",
        429 => "too many requests: the server asks to wait; try again later",
        500..=599 => "the server failed; try again later",
        _ => "unexpected answer",
    };
    Err(http(url, format!("HTTP {status}: {message}")))
}

pub(crate) fn http(url: &str, e: impl std::fmt::Display) -> HubError {
    HubError::Http {
        url: url.to_string(),
        message: e.to_string(),
    }
}

/// The sha256 of a file, lowercase hex; stops when cancelled.
pub fn sha256_file(path: &Path, cancel: &CancelToken) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| HubError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if cancel.is_cancelled() {
            return Err(HubError::Cancelled);
        }
        let n = f.read(&mut buf).map_err(|e| HubError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Checks a complete part against `expected` (a sha256, when known) and renames it to `dest`;
/// a part that does not match is deleted, so the next pull starts it over.
pub fn verify_and_place(
    part: &Path,
    dest: &Path,
    name: &str,
    expected: Option<&str>,
    cancel: &CancelToken,
) -> Result<()> {
    if let Some(expected) = expected {
        let actual = sha256_file(part, cancel)?;
        if !actual.eq_ignore_ascii_case(expected) {
            let _ = std::fs::remove_file(part);
            return Err(HubError::Checksum {
                file: name.to_string(),
                expected: expected.to_string(),
                actual,
            });
        }
    }
    std::fs::rename(part, dest).map_err(|e| HubError::io(dest, e))
}

/// Whether `s` is a sha256 in hex (the hub's LFS etags are; a git blob id is 40 digits).
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_and_its_shape() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        let h = sha256_file(&p, &CancelToken::new()).unwrap();
        assert_eq!(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(is_sha256(&h));
        assert!(!is_sha256("a9993e364706816aba3e25717850c26c9cd0d89d"));
        // A mismatch deletes the part and names both sums.
        let err = verify_and_place(
            &p,
            &dir.path().join("g"),
            "f",
            Some(&"0".repeat(64)),
            &CancelToken::new(),
        )
        .unwrap_err();
        assert!(matches!(err, HubError::Checksum { .. }), "{err}");
        assert!(!p.exists());
    }
}
