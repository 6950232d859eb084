//! The trainer's gradients against PyTorch: for the small Qwen2 (biases, GQA, untied head),
//! Llama (MQA, tied head, llama3 rope) and Qwen3 (per-head q/k RMSNorm, head_dim apart) fixtures, the loss and the gradient of every parameter
//! from transformers (tests/fixtures/parity/*/grads.safetensors, written by
//! scripts/make_parity_fixtures.py), through the fused CPU path, the composed-ops path and with
//! gradient checkpointing, each as one micro-batch and as two accumulated ones. And both loss
//! weightings (s1's per-example means, and the mean over all tokens) on rows of three lengths
//! (tests/fixtures/parity/qwen2/weighting.safetensors, scripts/make_loss_weighting_fixture.py).

mod common;

use candle_core::{DType, Device};
use s1_studio::train::config::LossWeighting;
use s1_studio::train::parity::{gradient_parity, weighting_parity, ParityRun};

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

/// Qwen3: the gradients reach q_norm and k_norm (the whole-block op declines it; the fused and
/// composed per-op paths run).
#[test]
fn qwen3_gradients_match_pytorch() {
    check("qwen3", false, true);
    check("qwen3", true, true);
    check("qwen3", false, false);
}

/// Each weighting against PyTorch: s1's (every row alone through transformers, the row means
/// averaged) and the token mean of the padded batch, as one micro-batch and as one micro-batch
/// per row accumulated, fused and composed, with and without checkpointing.
#[test]
fn loss_weightings_match_pytorch() {
    let dir = common::fixture("parity/qwen2");
    for weighting in [LossWeighting::Example, LossWeighting::Token] {
        for (fused, checkpoint, split) in [
            (true, false, false),
            (true, false, true),
            (true, true, true),
            (false, false, false),
            (false, false, true),
        ] {
            let run = ParityRun {
                fused,
                checkpoint,
                split,
            };
            let r = weighting_parity(&dir, &Device::Cpu, DType::F32, run, weighting).unwrap();
            let what = format!("{weighting:?} (fused {fused}, checkpoint {checkpoint}, split {split})");
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
            eprintln!("{what}: loss {:.6}, worst relative error {:.2e}", r.loss, r.worst().0);
        }
        // The other weighting's reference is far off: the two are told apart.
        let other = match weighting {
            LossWeighting::Example => LossWeighting::Token,
            LossWeighting::Token => LossWeighting::Example,
        };
        let exp = candle_core::safetensors::load(dir.join("weighting.safetensors"), &Device::Cpu).unwrap();
        let key = |w: LossWeighting| format!("grad.{}.model.layers.0.mlp.down_proj.weight", w.name());
        let d = common::rel(&exp[&key(weighting)], &exp[&key(other)]);
        eprintln!("{weighting:?} vs {other:?} reference: relative difference {d:.3}");
        assert!(d > 0.05, "the two weightings' gradients differ by only {d}");
    }
}
