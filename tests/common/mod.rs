//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub mod server;
pub mod slurm;
pub mod sshd;

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

    use egui_kittest::kittest::Queryable;
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

    /// Steps until the run Start began has ended (Start checks the output folder on its own
    /// thread first); returns its checkpoint, having checked that steps reached the chart while
    /// it ran and that they came in order from 1. Panics with the status and `context()`
    /// otherwise.
    pub fn train_to_the_end(
        h: &mut Harness<'static, StudioApp>,
        timeout: Duration,
        context: impl Fn() -> String,
    ) -> std::path::PathBuf {
        let mut saw_running_chart = false;
        step_until(
            h,
            timeout,
            |h| {
                if h.state().train.is_running() && !h.state().train.records.is_empty() {
                    saw_running_chart = true;
                }
            },
            |a| !a.train.is_running() && !a.train.checking,
        );
        let t = &h.state().train;
        let s1_studio::ui::train_state::TrainStatus::Done { checkpoint } = t.status.clone() else {
            panic!("{:?}\n{}", t.status, context())
        };
        assert!(saw_running_chart, "no step arrived while the run was going");
        let n = t.records.len();
        assert_eq!(
            t.records.iter().map(|r| r.step).collect::<Vec<_>>(),
            (1..=n).collect::<Vec<_>>()
        );
        checkpoint
    }

    /// Waits for the run history to list `checkpoint` first, opens it with "Chat with this
    /// checkpoint" and checks that the Chat view loaded it.
    pub fn chat_with_checkpoint(h: &mut Harness<'static, StudioApp>, checkpoint: &std::path::Path) {
        step_until(
            h,
            Duration::from_secs(30),
            |_| {},
            |a| !a.train.history_reading && !a.train.history_stale,
        );
        assert_eq!(h.state().train.history[0].checkpoint.as_deref(), Some(checkpoint));
        // The read's answer can land after that frame was drawn: one more frame shows it.
        h.run();
        h.get_by_label("Chat with this checkpoint").click();
        step_until(
            h,
            Duration::from_secs(60),
            |_| {},
            |a| {
                matches!(
                    a.model,
                    s1_studio::ui::ModelStatus::Loaded(_) | s1_studio::ui::ModelStatus::Failed { .. }
                )
            },
        );
        assert_eq!(h.state().settings.view, s1_studio::ui::settings::View::Chat);
        match &h.state().model {
            s1_studio::ui::ModelStatus::Loaded(info) => assert_eq!(info.path, checkpoint),
            other => panic!("{other:?}"),
        }
    }
}
pub mod mock_endpoint;
pub mod mock_hub;
pub mod scripted;

/// `Decoder::step_batch_error` for `n` sequences of different lengths (prompts of 3, 7, 11, ...
/// tokens) over `steps` steps.
#[allow(dead_code)]
pub fn step_batch_error(dec: &s1_studio::model::Decoder, n: usize, steps: u32) -> f32 {
    let vocab = dec.config().vocab_size.min(400) as u32;
    let prompts: Vec<Vec<u32>> = (0..n as u32)
        .map(|s| (0..3 + 4 * s).map(|i| (i * 31 + s * 7 + 5) % vocab).collect())
        .collect();
    dec.step_batch_error(&prompts, steps as usize).unwrap()
}

/// `n` training rows in s1K's layout about sums: row i asks for (3 + i) + (7 + 2i), with two
/// thinking steps and a boxed attempt.
#[allow(dead_code)]
pub fn sum_rows(path: &Path, n: usize) {
    let mut text = String::new();
    for i in 0..n {
        let (a, b) = (3 + i, 7 + 2 * i);
        let row = serde_json::json!({
            "question": format!("What is {a} + {b}?"),
            "solution": format!("{}", a + b),
            "thinking_trajectories": [format!("We add {a} and {b}."), format!("{a} + {b} = {}.", a + b)],
            "attempt": format!("The sum is \\boxed{{{}}}.", a + b),
        });
        text.push_str(&format!("{row}\n"));
    }
    std::fs::write(path, text).unwrap();
}

/// A run's inputs in `d` (a tiny Qwen2 in `model/`, `rows` sum rows in `rows.jsonl`) and the
/// export options of a one-node CPU job for `target`: what the Slurm, SSH and SkyPilot tests train.
pub fn cpu_job_inputs(
    d: &Path,
    rows: usize,
    target: s1_studio::train::launch::Target,
) -> s1_studio::train::launch::ExportOptions {
    tiny_qwen(&d.join("model"), 256);
    sum_rows(&d.join("rows.jsonl"), rows);
    s1_studio::train::launch::ExportOptions {
        target,
        nodes: 1,
        gpus_per_node: 0,
        ..s1_studio::train::launch::ExportOptions::default()
    }
}

/// A TCP port free on loopback now.
#[allow(dead_code)]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The environment an exported run folder's launch.sh reads to train on this CPU with torchrun:
/// 2 gloo processes, one thread each, a free rendezvous port.
#[allow(dead_code)]
pub fn torchrun_cpu_env(py: &str) -> Vec<(String, String)> {
    [
        ("NPROC", "2".to_string()),
        ("DEVICE", "cpu".to_string()),
        ("TORCHRUN", format!("{py} -m torch.distributed.run")),
        ("MASTER_PORT", free_port().to_string()),
        ("OMP_NUM_THREADS", "1".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
