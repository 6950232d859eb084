//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub mod server;

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

/// A real chat template by llama.cpp's file name: the think-tag ones ship in assets/chat_templates,
/// the others are test fixtures (tests/fixtures/templates).
pub fn real_template(name: &str) -> PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/chat_templates")
        .join(format!("{name}.jinja"));
    if shipped.exists() {
        shipped
    } else {
        fixture("templates").join(format!("{name}.jinja"))
    }
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
        head_dim: None,
    };
    init_model(&spec, &qwen_tokenizer(), &TemplateChoice::Qwen25, dir).unwrap()
}

/// A decoder (f32, CPU) from a parity fixture folder under tests/fixtures/parity.
pub fn fixture_decoder(name: &str) -> s1_studio::model::Decoder {
    use candle_core::{DType, Device};
    let dir = fixture("parity").join(name);
    let cfg = s1_studio::model::ModelConfig::from_hf_file(&dir.join("config.json")).unwrap();
    let mut w = s1_studio::model::weights::SafetensorsWeights::open(&dir, DType::F32, &Device::Cpu).unwrap();
    s1_studio::model::Decoder::load(&cfg, &mut w, DType::F32, &Device::Cpu).unwrap()
}

/// A fixture's `input_ids` and `labels` as a micro-batch (see `train::parity::labelled_batch`).
pub fn labelled_batch(
    exp: &std::collections::HashMap<String, candle_core::Tensor>,
) -> s1_studio::train::data::MicroBatch {
    s1_studio::train::parity::labelled_batch(exp).unwrap()
}

/// ||a - b|| / ||b||.
pub fn rel(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
    let n = |t: &candle_core::Tensor| {
        t.sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .sqrt()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    n(&(a - b).unwrap()) / n(b).max(1e-12)
}

/// The studio in a headless egui_kittest harness (no display, no GPU).
pub mod gui {
    use std::time::{Duration, Instant};

    use egui_kittest::{Harness, HarnessBuilder};
    use s1_studio::ui::{Settings, StudioApp};

    pub fn app(settings: Settings) -> StudioApp {
        StudioApp::new(settings, std::sync::Arc::new(|| {})).unwrap()
    }

    pub fn harness_with(builder: HarnessBuilder<StudioApp>, app: StudioApp) -> Harness<'static, StudioApp> {
        builder
            .with_size(egui::vec2(1280.0, 820.0))
            .build_ui_state(|ui, app: &mut StudioApp| app.show(ui), app)
    }

    pub fn harness(app: StudioApp) -> Harness<'static, StudioApp> {
        harness_with(Harness::<StudioApp>::builder(), app)
    }

    /// Steps frames until `done` holds (the worker runs on its own thread), calling `each` on
    /// every frame; panics after `timeout`.
    pub fn step_until(
        h: &mut Harness<'static, StudioApp>,
        timeout: Duration,
        mut each: impl FnMut(&mut Harness<'static, StudioApp>),
        done: impl Fn(&StudioApp) -> bool,
    ) {
        let start = Instant::now();
        loop {
            h.step();
            each(h);
            if done(h.state()) {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out waiting; model: {:?}",
                h.state().model
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
pub mod mock_endpoint;
pub mod mock_hub;

/// The worst relative error (L2) between the logits `Decoder::step_batch` gives `n` sequences of
/// different lengths (prompts of 3, 7, 11, ... tokens) over `steps` steps and those of feeding
/// each sequence alone through `Decoder::forward` with its own cache.
#[allow(dead_code)]
pub fn step_batch_error(dec: &s1_studio::model::Decoder, n: usize, steps: u32) -> f32 {
    use candle_core::Tensor;
    use s1_studio::model::{KvCache, Logits};
    let vocab = dec.config().vocab_size.min(400) as u32;
    let feed = |cache: &mut KvCache, ids: &[u32]| -> Vec<f32> {
        let t = Tensor::new(ids, dec.device()).unwrap().unsqueeze(0).unwrap();
        dec.forward(&t, Some(cache), Logits::Last)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    let prompts: Vec<Vec<u32>> = (0..n as u32)
        .map(|s| (0..3 + 4 * s).map(|i| (i * 31 + s * 7 + 5) % vocab).collect())
        .collect();
    let mut alone: Vec<KvCache> = prompts.iter().map(|_| dec.new_cache()).collect();
    let mut together: Vec<KvCache> = prompts.iter().map(|_| dec.new_cache()).collect();
    for (s, p) in prompts.iter().enumerate() {
        feed(&mut alone[s], p);
        feed(&mut together[s], p);
    }
    let mut worst = 0f32;
    for step in 0..steps {
        let tokens: Vec<u32> = (0..n as u32).map(|s| (s * 13 + step * 29 + 1) % vocab).collect();
        let mut refs: Vec<&mut KvCache> = together.iter_mut().collect();
        let rows = dec.step_batch(&tokens, &mut refs).unwrap();
        assert_eq!(rows.len(), n);
        for s in 0..n {
            let want = feed(&mut alone[s], &tokens[s..s + 1]);
            assert_eq!(rows[s].len(), want.len());
            assert_eq!(together[s].len(), alone[s].len());
            let num: f32 = rows[s].iter().zip(&want).map(|(a, b)| (a - b) * (a - b)).sum();
            let den: f32 = want.iter().map(|b| b * b).sum();
            worst = worst.max((num / den.max(1e-30)).sqrt());
        }
    }
    worst
}
