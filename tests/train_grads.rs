//! The trainer's gradients against PyTorch: for the small Qwen2 (biases, GQA, untied head) and
//! Llama (MQA, tied head, llama3 rope) fixtures, the loss and the gradient of every parameter
//! from transformers (tests/fixtures/parity/*/grads.safetensors, written by
//! scripts/make_parity_fixtures.py), through the fused CPU path, the composed-ops path and with
//! gradient checkpointing.

mod common;

use std::path::PathBuf;

use candle_core::{DType, Device};
use s1_studio::model::decoder::Decoder;
use s1_studio::model::weights::SafetensorsWeights;
use s1_studio::model::ModelConfig;
use s1_studio::train::data::{MicroBatch, IGNORE};
use s1_studio::train::step::accumulate_micro_batch;

fn fixture(name: &str) -> PathBuf {
    common::fixture("parity").join(name)
}

/// Row `r` of a micro-batch alone.
fn row(b: &MicroBatch, r: usize) -> MicroBatch {
    let s = b.seq;
    let targets = b.targets[r * s..(r + 1) * s].to_vec();
    MicroBatch {
        rows: 1,
        seq: s,
        ids: b.ids[r * s..(r + 1) * s].to_vec(),
        loss_tokens: targets.iter().filter(|&&t| t != IGNORE).count(),
        targets,
    }
}

fn check(name: &str, checkpoint: bool, fused: bool) {
    check_accumulated(name, checkpoint, fused, false);
    check_accumulated(name, checkpoint, fused, true);
}

/// With `split`, the two rows go through as two micro-batches whose gradients accumulate (the
/// loss normalised by the tokens of both, as one optimizer step sees them).
fn check_accumulated(name: &str, checkpoint: bool, fused: bool, split: bool) {
    let dir = fixture(name);
    let cfg = ModelConfig::from_hf_file(&dir.join("config.json")).unwrap();
    let mut w = SafetensorsWeights::open(&dir, DType::F32, &Device::Cpu).unwrap();
    let mut dec = Decoder::load(&cfg, &mut w, DType::F32, &Device::Cpu).unwrap();
    let exp = candle_core::safetensors::load(dir.join("grads.safetensors"), &Device::Cpu).unwrap();
    let named = dec.make_trainable().unwrap();
    if !fused {
        dec.set_fused_training_ops(false);
    }
    let vars: Vec<_> = named.iter().map(|(_, v)| v.clone()).collect();
    let b = common::labelled_batch(&exp);
    let mut acc = vec![None; vars.len()];
    let scale = 1.0 / b.loss_tokens as f64;
    let sum = if split {
        let mut s = 0.0;
        for r in 0..b.rows {
            s += accumulate_micro_batch(&dec, &vars, &row(&b, r), scale, checkpoint, &mut acc).unwrap();
        }
        s
    } else {
        accumulate_micro_batch(&dec, &vars, &b, scale, checkpoint, &mut acc).unwrap()
    };
    let loss = sum / b.loss_tokens as f64;
    let expected_loss = exp["loss"].to_vec1::<f32>().unwrap()[0] as f64;
    assert!(
        (loss - expected_loss).abs() < 1e-5 * expected_loss,
        "{name}: loss {loss} vs {expected_loss}"
    );
    let mut worst = (0f32, String::new());
    for ((pname, _), g) in named.iter().zip(&acc) {
        let g = g
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: {pname} received no gradient"));
        let e = &exp[&format!("grad.{pname}")];
        assert_eq!(g.dims(), e.dims(), "{pname}");
        let d = (g - e)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .sqrt()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let n = e
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .sqrt()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let rel = d / n.max(1e-12);
        if rel > worst.0 {
            worst = (rel, pname.clone());
        }
        assert!(
            rel < 1e-4,
            "{name} (checkpoint {checkpoint}, fused {fused}, split {split}): {pname} relative error {rel}"
        );
    }
    let expected_params = exp.keys().filter(|k| k.starts_with("grad.")).count();
    assert_eq!(named.len(), expected_params, "{name}: every parameter is trained");
    eprintln!(
        "{name} (checkpoint {checkpoint}, fused {fused}, split {split}): loss {loss:.6} vs {expected_loss:.6}; {} gradients, worst relative error {:.2e} ({})",
        named.len(),
        worst.0,
        worst.1
    );
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
