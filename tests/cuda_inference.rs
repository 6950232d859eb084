//! Inference on CUDA, as `generate`, `eval` and the Chat and Evaluate views run it when a GPU is
//! chosen: a quantized GGUF through candle's CUDA quantized products, a safetensors model in f32
//! and bf16, budget forcing and batched generation. Compiled only with `--features cuda` (a CPU
//! build has nothing to run here); scripts/gpu-check.sh runs it on a GPU machine.
#![cfg(feature = "cuda")]

mod common;

use candle_core::{DType, Device, Tensor};
use s1_studio::generate::{chat, chat_batch, BudgetConfig, GenerateParams, MaxThinking};
use s1_studio::jobs::CancelToken;
use s1_studio::model::{load_model, ChatMessage, LoadOptions, Logits};

fn gpu() -> Device {
    Device::new_cuda(0).expect("the cuda feature is on but no CUDA device is usable")
}

fn on(device: Device, dtype: Option<DType>) -> LoadOptions {
    LoadOptions {
        device,
        dtype,
        dequantize: false,
    }
}

fn last_logits(model: &s1_studio::model::LoadedModel, ids: &[u32]) -> Vec<f32> {
    let dev = model.decoder.device();
    let t = Tensor::new(ids, dev).unwrap().unsqueeze(0).unwrap();
    let mut cache = model.decoder.new_cache();
    model
        .decoder
        .forward(&t, Some(&mut cache), Logits::Last)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

fn rel(a: &[f32], b: &[f32]) -> f32 {
    let num: f32 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    let den: f32 = b.iter().map(|y| y * y).sum();
    (num / den.max(1e-30)).sqrt()
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap_or(0)
}

#[test]
fn quantized_gguf_decodes_on_cuda_like_on_the_cpu() {
    let path = common::smollm2_gguf();
    let cpu = load_model(&path, &LoadOptions::default()).unwrap();
    let msgs = [ChatMessage::new("user", "What is the capital of France?")];
    let prompt = s1_studio::generate::build_prompt(&cpu, &msgs, &BudgetConfig::default()).unwrap();
    let want = last_logits(&cpu, &prompt.ids);
    for dtype in [DType::F32, DType::BF16] {
        let g = load_model(&path, &on(gpu(), Some(dtype))).unwrap();
        let got = last_logits(&g, &prompt.ids);
        let r = rel(&got, &want);
        eprintln!("SmolLM2 Q4_1 on CUDA {dtype:?}: relative error vs CPU {r:.2e}");
        // Both quantize activations to 8 bits, in different blocks; bf16 adds its rounding.
        assert!(r < if dtype == DType::F32 { 3e-2 } else { 6e-2 }, "{dtype:?}: {r}");
        assert_eq!(argmax(&got), argmax(&want), "{dtype:?}");
    }
}

#[test]
fn budget_forcing_and_batches_run_on_cuda_as_on_the_cpu() {
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 512);
    let cpu = load_model(d.path(), &LoadOptions::default()).unwrap();
    let gpu_f32 = load_model(d.path(), &on(gpu(), Some(DType::F32))).unwrap();
    let convs: Vec<Vec<ChatMessage>> = ["What is 2+3?", "Name a prime.", "Say hi."]
        .iter()
        .map(|q| vec![ChatMessage::new("user", *q)])
        .collect();
    let params: Vec<GenerateParams> = (0..convs.len())
        .map(|i| GenerateParams {
            budget: BudgetConfig {
                max_thinking: MaxThinking::Tokens(8 + 4 * i),
                min_thinking: 4,
                num_ignore: i % 2,
                ..BudgetConfig::default()
            },
            max_new_tokens: Some(40),
            ..GenerateParams::default()
        })
        .collect();
    let cancel = CancelToken::new();
    for (c, p) in convs.iter().zip(&params) {
        let a = chat(&cpu, c, p, &cancel, &mut |_| {}).unwrap();
        let b = chat(&gpu_f32, c, p, &cancel, &mut |_| {}).unwrap();
        assert_eq!(a.output_ids, b.output_ids, "greedy f32 on CUDA differs from the CPU");
        assert_eq!((a.thinking_tokens, a.forced_end), (b.thinking_tokens, b.forced_end));
    }
    let batched = chat_batch(&gpu_f32, &convs, &params, &cancel).unwrap();
    for (i, (c, p)) in convs.iter().zip(&params).enumerate() {
        let alone = chat(&gpu_f32, c, p, &cancel, &mut |_| {}).unwrap();
        assert_eq!(batched[i].output_ids, alone.output_ids, "sequence {i}");
    }
    // bf16, the default on a GPU: budget forcing holds its limits.
    let gpu_bf16 = load_model(d.path(), &on(gpu(), None)).unwrap();
    for (c, p) in convs.iter().zip(&params) {
        let g = chat(&gpu_bf16, c, p, &cancel, &mut |_| {}).unwrap();
        let MaxThinking::Tokens(max) = p.budget.max_thinking else {
            unreachable!()
        };
        assert!(g.thinking_tokens <= max, "{} > {max}", g.thinking_tokens);
        assert!(g.thinking_tokens >= 4 || g.output_ids.len() >= 40, "{g:?}");
    }
}

#[test]
fn the_batched_step_on_cuda_equals_one_sequence_at_a_time() {
    // 16 sequences of different lengths through Decoder::step_batch (what the scheduler runs on
    // CUDA) against each alone through Decoder::forward.
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 512);
    for (dtype, tol) in [(DType::F32, 1e-4), (DType::BF16, 3e-2)] {
        let g = load_model(d.path(), &on(gpu(), Some(dtype))).unwrap();
        let worst = common::step_batch_error(&g.decoder, 16, 8);
        eprintln!("step_batch on CUDA {dtype:?}, 16 sequences: worst relative error {worst:.2e}");
        assert!(worst < tol, "{dtype:?}: {worst}");
    }
    // K-quant weights through CUDA's quantized products, and Qwen3's q/k norms.
    let path = common::fixture("gguf").join("qwen3-Q4_K_M.gguf");
    let q = load_model(&path, &on(gpu(), Some(DType::F32))).unwrap();
    let worst = common::step_batch_error(&q.decoder, 6, 4);
    eprintln!("step_batch on CUDA, Qwen3 Q4_K_M: worst relative error {worst:.2e}");
    assert!(worst < 3e-2, "{worst}");
}
