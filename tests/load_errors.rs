//! Bad input gives a clear error naming the file and the problem, never a panic.

mod common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use s1_studio::generate::{chat, GenerateParams};
use s1_studio::jobs::CancelToken;
use s1_studio::model::{load_model, ChatMessage, LoadOptions, ModelError};

fn load_err(path: &Path) -> (ModelError, String) {
    let err = match load_model(path, &LoadOptions::default()) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e,
    };
    let msg = err.to_string();
    (err, msg)
}

fn rewrite_weights(dir: &Path, edit: impl FnOnce(&mut HashMap<String, Tensor>)) {
    let file = dir.join("model.safetensors");
    let mut w = candle_core::safetensors::load(&file, &Device::Cpu).unwrap();
    edit(&mut w);
    candle_core::safetensors::save(&w, &file).unwrap();
}

#[test]
fn missing_config_json() {
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 512);
    std::fs::remove_file(d.path().join("config.json")).unwrap();
    let (err, msg) = load_err(d.path());
    assert!(matches!(err, ModelError::MissingFile { .. }));
    assert!(msg.contains("config.json") && msg.contains("not found"), "{msg}");
}

#[test]
fn unsupported_architecture() {
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 512);
    let p = d.path().join("config.json");
    let text = std::fs::read_to_string(&p).unwrap().replace("\"qwen2\"", "\"mamba\"");
    std::fs::write(&p, text).unwrap();
    let (err, msg) = load_err(d.path());
    assert!(matches!(err, ModelError::Unsupported { .. }));
    assert!(
        msg.contains("config.json") && msg.contains("mamba") && msg.contains("supported: qwen2"),
        "{msg}"
    );
}

#[test]
fn missing_tensor() {
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 512);
    rewrite_weights(d.path(), |w| {
        w.remove("model.layers.1.mlp.up_proj.weight");
    });
    let (err, msg) = load_err(d.path());
    assert!(matches!(err, ModelError::MissingTensor { .. }));
    assert!(
        msg.contains("model.layers.1.mlp.up_proj.weight") && msg.contains("missing"),
        "{msg}"
    );
}

#[test]
fn mis_shaped_tensor() {
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 512);
    rewrite_weights(d.path(), |w| {
        w.insert(
            "model.layers.0.self_attn.k_proj.weight".into(),
            Tensor::zeros((8, 32), DType::F32, &Device::Cpu).unwrap(),
        );
    });
    let (err, msg) = load_err(d.path());
    assert!(matches!(err, ModelError::TensorShape { .. }));
    assert!(
        msg.contains("model.safetensors")
            && msg.contains("k_proj")
            && msg.contains("[8, 32]")
            && msg.contains("[16, 32]"),
        "{msg}"
    );
}

#[test]
fn truncated_safetensors() {
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 512);
    let file = d.path().join("model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let (err, msg) = load_err(d.path());
    assert!(matches!(err, ModelError::BadFile { .. }));
    assert!(
        msg.contains("model.safetensors") && msg.contains("truncated or corrupt"),
        "{msg}"
    );
}

#[test]
fn garbage_and_truncated_gguf() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("model.gguf");
    let garbage: Vec<u8> = (0..10_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&p, &garbage).unwrap();
    let (_, msg) = load_err(&p);
    assert!(msg.contains("model.gguf") && msg.contains("not a GGUF file"), "{msg}");
    // The right magic with absurd counts.
    let mut bad = b"GGUF".to_vec();
    bad.extend(3u32.to_le_bytes());
    bad.extend(u64::MAX.to_le_bytes());
    bad.extend(5u64.to_le_bytes());
    std::fs::write(&p, &bad).unwrap();
    let (_, msg) = load_err(&p);
    assert!(msg.contains("corrupt GGUF header"), "{msg}");
    // A real GGUF cut short: its tensor data ends past the end of the file.
    let real = std::fs::read(common::smollm2_gguf()).unwrap();
    std::fs::write(&p, &real[..real.len() / 3]).unwrap();
    let (_, msg) = load_err(&p);
    assert!(msg.contains("model.gguf") && msg.contains("truncated"), "{msg}");
}

#[test]
fn tokenizer_larger_than_embedding() {
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 512);
    let p = d.path().join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    cfg["vocab_size"] = 1000.into();
    std::fs::write(&p, cfg.to_string()).unwrap();
    let (err, msg) = load_err(d.path());
    assert!(matches!(err, ModelError::VocabMismatch { .. }));
    assert!(
        msg.contains("tokenizer.json") && msg.contains("151669") && msg.contains("1000"),
        "{msg}"
    );
}

#[test]
fn prompt_longer_than_context() {
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 64);
    let m = load_model(d.path(), &LoadOptions::default()).unwrap();
    let long = "word ".repeat(200);
    let err = chat(
        &m,
        &[ChatMessage::new("user", long)],
        &GenerateParams::default(),
        &CancelToken::new(),
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("exceeds the model's context of 64 tokens"), "{err}");
}

#[test]
fn missing_model_path() {
    let (err, msg) = load_err(Path::new("/nonexistent/model-dir"));
    assert!(matches!(err, ModelError::MissingFile { .. }));
    assert!(msg.contains("/nonexistent/model-dir"), "{msg}");
}
