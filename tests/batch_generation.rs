//! Batched generation: several conversations at once, each with its own budget (maximum, waits)
//! and sampling, give exactly what generating each alone gives (greedy), on a tiny model (f32,
//! the dense CPU path) and on the SmolLM2 GGUF (quantized weights).

mod common;

use s1_studio::generate::{chat, chat_batch, BudgetConfig, GenerateParams, MaxThinking};
use s1_studio::jobs::CancelToken;
use s1_studio::model::{load_model, ChatMessage, LoadOptions};

fn check(model_path: &std::path::Path, n: usize, max_tokens: usize) {
    let model = load_model(model_path, &LoadOptions::default()).unwrap();
    let questions = [
        "What is 2+3?",
        "Name a prime.",
        "Is 91 prime?",
        "Count to five.",
        "Say hi.",
    ];
    let convs: Vec<Vec<ChatMessage>> = (0..n)
        .map(|i| vec![ChatMessage::new("user", questions[i % questions.len()])])
        .collect();
    let params: Vec<GenerateParams> = (0..n)
        .map(|i| GenerateParams {
            budget: BudgetConfig {
                max_thinking: MaxThinking::Tokens(6 + 5 * i),
                min_thinking: if i % 2 == 1 { 4 } else { 0 },
                num_ignore: i % 3,
                ..BudgetConfig::default()
            },
            max_new_tokens: Some(max_tokens),
            ..GenerateParams::default()
        })
        .collect();
    let cancel = CancelToken::new();
    let batched = chat_batch(&model, &convs, &params, &cancel).unwrap();
    assert_eq!(batched.len(), n);
    for i in 0..n {
        let alone = chat(&model, &convs[i], &params[i], &cancel, &mut |_| {}).unwrap();
        assert_eq!(batched[i].output_ids, alone.output_ids, "sequence {i}");
        assert_eq!(
            (
                batched[i].thinking_tokens,
                batched[i].waits_injected,
                batched[i].forced_end
            ),
            (alone.thinking_tokens, alone.waits_injected, alone.forced_end),
            "sequence {i}"
        );
    }
}

#[test]
fn batched_equals_alone_on_a_tiny_model() {
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 512);
    // 11 sequences: more than the dense kernels' 8 rows at once.
    check(d.path(), 11, 40);
}

#[test]
fn batched_equals_alone_on_the_smollm2_gguf() {
    check(&common::smollm2_gguf(), 4, 48);
}

/// `Decoder::step_batch` (the batched step of CUDA and of bf16/f16 models) against feeding each
/// sequence alone through `Decoder::forward`, on the CPU in f32 and bf16 (common::step_batch_error
/// says how). tests/cuda_inference.rs runs the same comparison on a GPU.
fn step_batch_matches_forward(dtype: candle_core::DType, tol: f32) {
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 512);
    let opts = LoadOptions {
        device: candle_core::Device::Cpu,
        dtype: Some(dtype),
        dequantize: false,
    };
    let model = load_model(d.path(), &opts).unwrap();
    let worst = common::step_batch_error(&model.decoder, 5, 6);
    eprintln!("step_batch vs forward, {dtype:?}: worst relative error {worst:.2e}");
    assert!(worst < tol, "{dtype:?}: relative error {worst}");
}

#[test]
fn step_batch_equals_forward_in_f32() {
    step_batch_matches_forward(candle_core::DType::F32, 1e-5);
}

#[test]
fn step_batch_equals_forward_in_bf16() {
    // bf16 rounds each product (2.5e-5 seen here: the CPU matmul sums in f32 either way).
    step_batch_matches_forward(candle_core::DType::BF16, 1e-3);
}
