//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The SmolLM2-135M-Instruct Q4_1 GGUF. Tests that need it fail loudly when it is absent:
/// `bash scripts/fetch-test-models.sh` fetches it (CI does).
pub fn smollm2_gguf() -> PathBuf {
    let p = std::env::var_os("S1_SMOLLM2_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("models/SmolLM2-135M-Instruct.Q4_1.gguf"));
    assert!(
        p.exists(),
        "this test needs {} (SmolLM2-135M-Instruct Q4_1): run `bash scripts/fetch-test-models.sh`",
        p.display()
    );
    p
}

/// The real Qwen3 tokenizer in ../shared/data.
pub fn qwen_tokenizer() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/tokenizer/qwen3/tokenizer.json");
    assert!(p.exists(), "this test needs the Qwen tokenizer at {}", p.display());
    p
}

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel)
}

/// A tiny random Qwen2 with the real Qwen tokenizer and Qwen2.5's template, written to `dir`.
pub fn tiny_qwen(dir: &Path, max_pos: usize) -> s1_studio::model::ModelConfig {
    use s1_studio::model::init::{init_model, InitSpec, TemplateChoice};
    let spec = InitSpec {
        arch: s1_studio::model::Arch::Qwen2,
        hidden: 32,
        layers: 2,
        heads: 4,
        kv_heads: 2,
        intermediate: 64,
        vocab: None,
        tie_embeddings: true,
        max_position_embeddings: max_pos,
        rope_theta: 1e6,
        seed: 7,
    };
    init_model(&spec, &qwen_tokenizer(), &TemplateChoice::Qwen25, dir).unwrap()
}
