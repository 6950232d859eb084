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
/// `FileStarted`, `Progress`…, `Verifying`; `Stage` between steps; `Waiting` first when another
/// pull of the repo is running. The pull's result (the library
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
    /// Another pull of the same repo holds its lock: this one waits (the message names it).
    Waiting(String),
}

/// Chunk read from the network between cancel checks.
const CHUNK: usize = 256 * 1024;

/// An HTTP client for the hub and PyPI: redirects followed (the token only sent to the same
/// host), no compression (byte ranges must mean file offsets), a stalled read given up after a
/// minute, TLS checked against the platform's roots ([`tls_config`]). Proxies come from
/// `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` and `NO_PROXY`, as ureq reads them.
pub struct Http {
    agent: ureq::Agent,
    /// The same, following no redirect: a file's metadata is in the hub's own answer, which
    /// points large files at a CDN.
    no_redirect: ureq::Agent,
    token: Option<String>,
}

/// A file's identity and size as the hub's `resolve` answer gives them.
#[derive(Debug, Clone, PartialEq)]
pub struct FileMeta {
    /// `x-linked-etag` (an LFS file's sha256) or `etag` (a git blob id), without quotes.
    pub etag: String,
    pub size: u64,
}

/// Which roots TLS trusts. The platform verifier (rustls-platform-verifier) uses the OS's
/// store, so a company's intercepting proxy whose CA is installed there is trusted: the
/// keychain on macOS, the certificate store on Windows, and on Linux the system bundle, or
/// the PEM file `SSL_CERT_FILE` / the folders `SSL_CERT_DIR` name instead. Where a Linux
/// system has no bundle at all (a bare container), Mozilla's roots compiled into the binary
/// (webpki-roots) are used, as before.
pub fn tls_config() -> ureq::tls::TlsConfig {
    use ureq::tls::{RootCerts, TlsConfig};
    static PLATFORM: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let platform = *PLATFORM.get_or_init(|| {
        #[cfg(all(unix, not(target_vendor = "apple"), not(target_os = "android")))]
        {
            !rustls_native_certs::load_native_certs().certs.is_empty()
        }
        #[cfg(not(all(unix, not(target_vendor = "apple"), not(target_os = "android"))))]
        {
            true
        }
    });
    let roots = if platform {
        RootCerts::PlatformVerifier
    } else {
        RootCerts::WebPki
    };
    TlsConfig::builder().root_certs(roots).build()
}

impl Http {
    pub fn new(token: Option<String>) -> Self {
        let config = |redirects: u32| -> ureq::Agent {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(redirects)
                .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
                .timeout_connect(Some(Duration::from_secs(30)))
                .timeout_recv_response(Some(Duration::from_secs(60)))
                .timeout_per_read(Some(Duration::from_secs(60)))
                .user_agent(concat!("s1-studio/", env!("CARGO_PKG_VERSION")))
                .tls_config(tls_config())
                .build()
                .into()
        };
        Self {
            agent: config(10),
            no_redirect: config(0),
            token,
        }
    }

    fn get(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        self.get_with(&self.agent, url, true)
    }

    fn get_with(
        &self,
        agent: &ureq::Agent,
        url: &str,
        auth: bool,
    ) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        let mut req = agent.get(url).header("Accept-Encoding", "identity");
        if let Some(t) = self.token.as_ref().filter(|_| auth) {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        req
    }

    /// A file's etag and size from its `resolve` URL (a one-byte range request): the hub's
    /// own answer carries them (`x-linked-etag`/`x-linked-size` when it sends a large file to
    /// its CDN); a relative redirect (a renamed repo) is followed, and the CDN is asked for the
    /// size only when the hub did not say it.
    pub fn file_meta(&self, url: &str) -> Result<FileMeta> {
        let mut at = url.to_string();
        for _ in 0..5 {
            let resp = self
                .get_with(&self.no_redirect, &at, true)
                .header("Range", "bytes=0-0")
                .call()
                .map_err(|e| http(&at, e))?;
            let status = resp.status().as_u16();
            let header = |k: &str| {
                resp.headers()
                    .get(k)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.trim().to_string())
            };
            let location = header("location").filter(|_| (300..400).contains(&status));
            if let Some(loc) = location.as_deref().filter(|l| l.starts_with('/')) {
                at = format!("{}{loc}", origin(&at));
                continue;
            }
            if location.is_none() {
                check_status(&at, status)?;
            }
            let etag = header("x-linked-etag")
                .or_else(|| header("etag"))
                .map(|e| e.trim_start_matches("W/").replace('"', ""))
                .filter(|e| !e.is_empty())
                .ok_or_else(|| http(&at, "the answer has no etag: is this a Hugging Face hub?"))?;
            let size = header("x-linked-size")
                .and_then(|s| s.parse().ok())
                .or_else(|| header("content-range").and_then(|r| range_total(&r)));
            let size = match (size, location) {
                (Some(s), _) => s,
                (None, Some(cdn)) => {
                    let resp = self
                        .get_with(&self.agent, &cdn, false)
                        .header("Range", "bytes=0-0")
                        .call()
                        .map_err(|e| http(&cdn, e))?;
                    check_status(&cdn, resp.status().as_u16())?;
                    resp.headers()
                        .get("content-range")
                        .and_then(|v| v.to_str().ok())
                        .and_then(range_total)
                        .ok_or_else(|| http(&cdn, "the answer does not say the file's size"))?
                }
                (None, None) => return Err(http(&at, "the answer does not say the file's size")),
            };
            return Ok(FileMeta { etag, size });
        }
        Err(http(url, "redirected too many times"))
    }

    /// A small JSON document (an index page), at most 16 MiB.
    pub fn get_json(&self, url: &str) -> Result<serde_json::Value> {
        self.get_json_query(url, &[], 16 << 20)
    }

    /// A JSON document of at most `limit` bytes from `url` with `query` appended (each key and
    /// value percent-encoded; a key may repeat), read into `T`.
    pub fn get_json_query<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        query: &[(&str, &str)],
        limit: u64,
    ) -> Result<T> {
        let mut resp = self
            .get(url)
            .query_pairs(query.iter().copied())
            .call()
            .map_err(|e| http(url, e))?;
        check_status(url, resp.status().as_u16())?;
        resp.body_mut()
            .with_config()
            .limit(limit)
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

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    url[after..].find('/').map_or(url, |i| &url[..after + i])
}

/// The total of a `Content-Range: bytes 0-0/12345`.
fn range_total(r: &str) -> Option<u64> {
    r.rsplit_once('/').and_then(|(_, t)| t.trim().parse().ok())
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
    let mut message = e.to_string();
    if message.contains("certificate") {
        message.push_str(TLS_HINT);
    }
    HubError::Http {
        url: url.to_string(),
        message,
    }
}

/// Said after a certificate the client does not trust: the usual cause is a proxy that
/// inspects TLS with its own CA.
const TLS_HINT: &str = " (behind a company proxy that inspects TLS? install its CA certificate in the system's \
                        store, or on Linux point SSL_CERT_FILE at a PEM file holding it)";

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
    fn urls_and_ranges_read() {
        assert_eq!(origin("https://hf.co:8080/a/b?c"), "https://hf.co:8080");
        assert_eq!(origin("http://127.0.0.1"), "http://127.0.0.1");
        assert_eq!(range_total("bytes 0-0/684412"), Some(684412));
        assert_eq!(range_total("bytes */12"), Some(12));
        assert_eq!(range_total("bytes 0-0/*"), None);
    }

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
