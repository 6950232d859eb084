//! The decoder against transformers: logits at every position for small random Qwen2, Llama and
//! Qwen3 configs (fixtures from scripts/make_parity_fixtures.py), the KV-cache path against the
//! full forward, gradients reaching every weight in differentiable mode, and a mixture-of-experts
//! Qwen3 refused at load.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, IndexOp, Tensor, Var};
use s1_studio::model::decoder::{Decoder, Logits};
use s1_studio::model::weights::{SafetensorsWeights, Weight, WeightLoader};
use s1_studio::model::ModelConfig;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/parity")
        .join(name)
}

fn load(name: &str) -> (Decoder, Tensor, Tensor) {
    let dir = fixture(name);
    let cfg = ModelConfig::from_hf_file(&dir.join("config.json")).unwrap();
    let mut w = SafetensorsWeights::open(&dir, DType::F32, &Device::Cpu).unwrap();
    let dec = Decoder::load(&cfg, &mut w, DType::F32, &Device::Cpu).unwrap();
    let exp = candle_core::safetensors::load(dir.join("expected.safetensors"), &Device::Cpu).unwrap();
    let ids = exp["input_ids"].to_dtype(DType::U32).unwrap();
    (dec, ids, exp["logits"].clone())
}

/// ||a - b|| / ||b|| and max |a - b| / max |b|.
fn rel_err(a: &Tensor, b: &Tensor) -> (f32, f32) {
    let d = (a - b).unwrap();
    let norm = |t: &Tensor| {
        t.sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .sqrt()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    let amax = |t: &Tensor| {
        t.abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    (norm(&d) / norm(b), amax(&d) / amax(b))
}

fn check_full_forward(name: &str) {
    let (mut dec, ids, expected) = load(name);
    for differentiable in [false, true] {
        dec.set_differentiable(differentiable);
        let logits = dec.forward(&ids, None, Logits::All).unwrap();
        assert_eq!(logits.dims(), expected.dims());
        let (rel, max_rel) = rel_err(&logits, &expected);
        eprintln!("{name} (differentiable: {differentiable}): relative error {rel:.2e}, max {max_rel:.2e}");
        assert!(
            rel < 1e-4 && max_rel < 1e-4,
            "{name}: relative error {rel} (max {max_rel})"
        );
    }
}

#[test]
fn qwen2_logits_match_transformers() {
    check_full_forward("qwen2");
}

#[test]
fn llama_logits_match_transformers() {
    check_full_forward("llama");
}

/// Qwen3: per-head q/k RMSNorm, no attention bias, head_dim 32 where hidden / heads is 16.
#[test]
fn qwen3_logits_match_transformers() {
    let cfg = ModelConfig::from_hf_file(&fixture("qwen3").join("config.json")).unwrap();
    assert_eq!((cfg.head_dim, cfg.hidden_size / cfg.num_heads), (32, 16));
    check_full_forward("qwen3");
}

/// A Qwen3 MoE folder fails at its config.json, naming the file and the field.
#[test]
fn qwen3_moe_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("qwen3").join("config.json")).unwrap()).unwrap();
    v["model_type"] = "qwen3_moe".into();
    v["architectures"] = serde_json::json!(["Qwen3MoeForCausalLM"]);
    v["num_experts"] = 4.into();
    let path = dir.path().join("config.json");
    std::fs::write(&path, v.to_string()).unwrap();
    let err = ModelConfig::from_hf_file(&path).unwrap_err().to_string();
    assert!(
        err.contains(&path.display().to_string()) && err.contains("model_type") && err.contains("qwen3_moe"),
        "{err}"
    );
}

/// With and without the KV cache, in chunks and one token at a time (chunks of up to 8 tokens
/// take the CPU decode step of decoder_cpu_step.rs, longer ones the general path).
#[test]
fn kv_cache_path_equals_full_forward() {
    for name in ["qwen2", "llama", "qwen3"] {
        let (dec, ids, _) = load(name);
        let full = dec.forward(&ids, None, Logits::All).unwrap();
        let t = ids.dim(1).unwrap();
        let mut cache = dec.new_cache();
        let mut pos = 0;
        for chunk in [5, 1, 7, 1, 1, t - 15] {
            let part = ids.narrow(1, pos, chunk).unwrap();
            let got = dec.forward(&part, Some(&mut cache), Logits::Last).unwrap();
            pos += chunk;
            let want = full.narrow(1, pos - 1, 1).unwrap();
            let (rel, _) = rel_err(&got, &want);
            assert!(rel < 1e-5, "{name}: cached step ending at {pos}: relative error {rel}");
        }
        assert_eq!(cache.len(), t);
        // Rewinding and feeding again gives the same logits (budget forcing rewinds).
        cache.truncate(10);
        let got = dec
            .forward(&ids.narrow(1, 10, 3).unwrap(), Some(&mut cache), Logits::All)
            .unwrap();
        let (rel, _) = rel_err(&got, &full.narrow(1, 10, 3).unwrap());
        assert!(rel < 1e-5, "{name}: after rewind: relative error {rel}");
    }
}

/// The batched CPU decode step (several sequences, each at its own position, as batched
/// generation runs it) against the full forward.
#[test]
fn batched_cpu_step_equals_full_forward() {
    for name in ["qwen2", "llama", "qwen3"] {
        let (dec, ids, _) = load(name);
        let full = dec.forward(&ids, None, Logits::All).unwrap();
        let row = ids.squeeze(0).unwrap().to_vec1::<u32>().unwrap();
        let (mut a, mut b) = (dec.new_cache(), dec.new_cache());
        dec.forward(&ids.narrow(1, 0, 5).unwrap(), Some(&mut a), Logits::Last)
            .unwrap();
        dec.forward(&ids.narrow(1, 0, 9).unwrap(), Some(&mut b), Logits::Last)
            .unwrap();
        let mut caches = [&mut a, &mut b];
        assert!(dec.can_step_cpu_batch(&caches), "{name}: the batched step declines");
        let hidden = dec.step_cpu_batch(&[row[5], row[9]], &mut caches).unwrap();
        for (h, pos) in hidden.iter().zip([5, 9]) {
            let got = Tensor::new(dec.head_cpu(h).unwrap(), &Device::Cpu).unwrap();
            let want = full.i((0, pos)).unwrap();
            let (rel, _) = rel_err(&got, &want);
            assert!(rel < 1e-5, "{name}: batched step at {pos}: relative error {rel}");
        }
    }
}

/// Wraps every loaded tensor in a `Var`, as the trainer will.
struct VarLoader {
    inner: SafetensorsWeights,
    vars: Vec<(String, Var)>,
}

impl WeightLoader for VarLoader {
    fn tensor(&mut self, name: &str, shape: &[usize]) -> s1_studio::model::error::Result<Tensor> {
        let v = Var::from_tensor(&self.inner.tensor(name, shape)?)?;
        self.vars.push((name.to_string(), v.clone()));
        Ok(v.as_tensor().clone())
    }
    fn matrix(&mut self, name: &str, out: usize, inp: usize) -> s1_studio::model::error::Result<Weight> {
        // The tied head reuses the embedding's Var.
        if let Some((_, v)) = self.vars.iter().find(|(n, _)| n == name) {
            return Ok(Weight::Dense(v.as_tensor().clone()));
        }
        Ok(Weight::Dense(self.tensor(name, &[out, inp])?))
    }
    fn contains(&self, name: &str) -> bool {
        self.inner.contains(name)
    }
}

#[test]
fn differentiable_mode_gives_every_weight_a_gradient() {
    for name in ["qwen2", "llama", "qwen3"] {
        let dir = fixture(name);
        let cfg = ModelConfig::from_hf_file(&dir.join("config.json")).unwrap();
        let inner = SafetensorsWeights::open(&dir, DType::F32, &Device::Cpu).unwrap();
        let mut loader = VarLoader { inner, vars: vec![] };
        let mut dec = Decoder::load(&cfg, &mut loader, DType::F32, &Device::Cpu).unwrap();
        dec.set_differentiable(true);
        let ids = Tensor::new(&[[3u32, 17, 99, 4, 250, 8]], &Device::Cpu).unwrap();
        let logits = dec.forward(&ids, None, Logits::All).unwrap();
        let loss = candle_nn::loss::cross_entropy(
            &logits.squeeze(0).unwrap().narrow(0, 0, 5).unwrap(),
            &ids.squeeze(0).unwrap().narrow(0, 1, 5).unwrap(),
        )
        .unwrap();
        let grads = loss.backward().unwrap();
        let missing: Vec<&str> = loader
            .vars
            .iter()
            .filter(|(_, v)| {
                grads
                    .get(v.as_tensor())
                    .is_none_or(|g| g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() == 0.0)
            })
            .map(|(n, _)| n.as_str())
            .collect();
        assert!(missing.is_empty(), "{name}: no gradient for {missing:?}");
    }
}

/// The same fixtures on the GPU (f32): logits match transformers, and the cached path holds.
#[cfg(feature = "cuda")]
mod cuda {
    use super::*;

    fn load_on(name: &str, dev: &Device, dtype: DType) -> (Decoder, Tensor, Tensor) {
        let dir = fixture(name);
        let cfg = ModelConfig::from_hf_file(&dir.join("config.json")).unwrap();
        let mut w = SafetensorsWeights::open(&dir, dtype, dev).unwrap();
        let dec = Decoder::load(&cfg, &mut w, dtype, dev).unwrap();
        let exp = candle_core::safetensors::load(dir.join("expected.safetensors"), &Device::Cpu).unwrap();
        (
            dec,
            exp["input_ids"].to_dtype(DType::U32).unwrap().to_device(dev).unwrap(),
            exp["logits"].clone(),
        )
    }

    #[test]
    fn cuda_logits_match_transformers_and_the_cpu() {
        let dev = Device::new_cuda(0).expect("the cuda feature is on but no CUDA device is usable");
        for name in ["qwen2", "llama", "qwen3"] {
            let (dec, ids, expected) = load_on(name, &dev, DType::F32);
            let got = dec
                .forward(&ids, None, Logits::All)
                .unwrap()
                .to_device(&Device::Cpu)
                .unwrap();
            let (rel, max_rel) = rel_err(&got, &expected);
            eprintln!("{name} on CUDA f32: relative error {rel:.2e}, max {max_rel:.2e}");
            assert!(rel < 1e-4, "{name}: {rel}");
            let (cpu, ids_cpu, _) = load(name);
            let cpu_logits = cpu.forward(&ids_cpu, None, Logits::All).unwrap();
            let (rel, _) = rel_err(&got, &cpu_logits);
            eprintln!("{name}: CUDA vs CPU relative error {rel:.2e}");
            assert!(rel < 1e-4);
            // bf16 on the GPU: within bf16's precision.
            let (dec, ids, expected) = load_on(name, &dev, DType::BF16);
            let got = dec
                .forward(&ids, None, Logits::All)
                .unwrap()
                .to_device(&Device::Cpu)
                .unwrap();
            let (rel, _) = rel_err(&got, &expected);
            eprintln!("{name} on CUDA bf16: relative error {rel:.2e}");
            assert!(rel < 3e-2, "{name} bf16: {rel}");
            // Cached decoding on the GPU equals the full forward.
            let (dec, ids, _) = load_on(name, &dev, DType::F32);
            let full = dec.forward(&ids, None, Logits::All).unwrap();
            let mut cache = dec.new_cache();
            let t = ids.dim(1).unwrap();
            for p in 0..t {
                let got = dec
                    .forward(&ids.narrow(1, p, 1).unwrap(), Some(&mut cache), Logits::Last)
                    .unwrap();
                let (rel, _) = rel_err(
                    &got.to_device(&Device::Cpu).unwrap(),
                    &full.narrow(1, p, 1).unwrap().to_device(&Device::Cpu).unwrap(),
                );
                assert!(rel < 1e-4, "{name}: step {p}: {rel}");
            }
        }
    }
}
