//! The trainer's gradients against PyTorch: for the small Qwen2 (biases, GQA, untied head) and
//! Llama (MQA, tied head, llama3 rope) fixtures, the loss and the gradient of every parameter
//! from transformers (tests/fixtures/parity/*/grads.safetensors, written by
//! scripts/make_parity_fixtures.py), through the fused CPU path, the composed-ops path and with
//! gradient checkpointing, each as one micro-batch and as two accumulated ones.

mod common;

use candle_core::{DType, Device};
use s1_studio::train::parity::{gradient_parity, ParityRun};

fn check(name: &str, checkpoint: bool, fused: bool) {
    for split in [false, true] {
        let dir = common::fixture("parity").join(name);
        let run = ParityRun {
            fused,
            checkpoint,
            split,
        };
        let r = gradient_parity(&dir, &Device::Cpu, DType::F32, run).unwrap();
        let what = format!("{name} (checkpoint {checkpoint}, fused {fused}, split {split})");
        assert!(
            (r.loss - r.expected_loss).abs() < 1e-5 * r.expected_loss,
            "{what}: loss {} vs {}",
            r.loss,
            r.expected_loss
        );
        assert!(r.missing.is_empty(), "{what}: without a gradient: {:?}", r.missing);
        for (p, rel) in &r.relative {
            assert!(*rel < 1e-4, "{what}: {p} relative error {rel}");
        }
        let (worst, at) = r.worst();
        eprintln!(
            "{what}: loss {:.6} vs {:.6}; {} gradients, worst relative error {worst:.2e} ({at})",
            r.loss,
            r.expected_loss,
            r.relative.len()
        );
    }
}

#[test]
fn qwen2_gradients_match_pytorch() {
    check("qwen2", false, true);
    check("qwen2", true, true);
    check("qwen2", false, false);
}

#[test]
fn llama_gradients_match_pytorch() {
    check("llama", false, true);
    check("llama", true, true);
    check("llama", false, false);
}
