//! `s1-studio bench gpu-decode`: greedy decode of a model of Qwen2.5-0.5B's shape (random
//! weights, bf16) on a GPU, batch 1 and (`--batches`) several sequences at once, against PyTorch +
//! transformers on the same GPU in the same run, and the
//! fraction of the GPU's memory bandwidth that decoding reaches. Decoding one token reads every
//! weight once (the tied embedding as the output head) plus the KV cache, so bytes per token
//! times tokens per second is the bandwidth it uses; it is set against a device-to-device copy
//! measured here and against the GPU's nominal peak when the name is known.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor};
use clap::Args;

use super::decode::{time_decode, time_decode_batch};
use super::{baseline_json, median};
use crate::model::config::{Arch, ModelConfig};
use crate::model::decoder::Decoder;
use crate::model::device::DeviceChoice;
use crate::model::weights::SafetensorsWeights;

#[derive(Debug, Args)]
pub struct GpuDecodeArgs {
    /// Model shape: `0.5b` (Qwen2.5-0.5B: 494M parameters) or `tiny` (a quick check of the path)
    #[arg(long, default_value = "0.5b", value_parser = ["0.5b", "tiny"])]
    size: String,
    /// Where the random model is written (reused when present)
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// cuda, cuda:N (cpu runs the same measurement on the CPU)
    #[arg(long, default_value = "cuda")]
    device: DeviceChoice,
    /// bf16, f16 or f32
    #[arg(long, default_value = "bf16", value_parser = ["bf16", "f16", "f32"])]
    dtype: String,
    #[arg(long, default_value_t = 32)]
    prompt_tokens: usize,
    #[arg(long, default_value_t = 256)]
    new_tokens: usize,
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Python with torch + transformers for the baseline
    #[arg(long, env = "S1_BENCH_PYTHON", default_value = "python3")]
    python: String,
    /// Skip the baseline (only this engine's figures)
    #[arg(long)]
    no_baselines: bool,
    /// Also decode this many sequences at once (comma-separated; what a server's concurrent
    /// requests run), after checking the batched step against each sequence alone
    #[arg(long, value_delimiter = ',')]
    batches: Vec<usize>,
    /// Write the results as JSON here too
    #[arg(long)]
    json: Option<PathBuf>,
}

/// The model: Qwen2.5-0.5B's published configuration, or a tiny one of the same kind.
fn config(size: &str) -> ModelConfig {
    let (vocab, hidden, inter, layers, heads, kv) = match size {
        "tiny" => (4096, 256, 768, 2, 4, 2),
        _ => (151_936, 896, 4864, 24, 14, 2),
    };
    ModelConfig {
        arch: Arch::Qwen2,
        vocab_size: vocab,
        hidden_size: hidden,
        intermediate_size: inter,
        num_layers: layers,
        num_heads: heads,
        num_kv_heads: kv,
        head_dim: hidden / heads,
        rms_norm_eps: 1e-6,
        rope_theta: 1e6,
        rope_scaling: None,
        rope_freq_factors: None,
        rope_interleaved: false,
        max_position_embeddings: 32_768,
        tie_word_embeddings: true,
        qkv_bias: true,
        o_bias: false,
        mlp_bias: false,
        saved_dtype: Some("bfloat16".into()),
        bos_token_id: None,
        eos_token_ids: vec![],
    }
}

fn dtype(s: &str) -> (DType, &'static str) {
    match s {
        "f16" => (DType::F16, "float16"),
        "f32" => (DType::F32, "float32"),
        _ => (DType::BF16, "bfloat16"),
    }
}

/// Writes config.json and bf16 safetensors of random weights.
fn write_model(cfg: &ModelConfig, dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cfg_path = dir.join("config.json");
    std::fs::write(&cfg_path, serde_json::to_string_pretty(&cfg.to_hf_json())?)
        .with_context(|| format!("writing {}", cfg_path.display()))?;
    let weights = crate::model::init::random_weights(cfg, 0)?
        .into_iter()
        .map(|(k, v)| Ok((k, v.to_dtype(DType::BF16)?)))
        .collect::<candle_core::Result<std::collections::HashMap<_, _>>>()?;
    let st = dir.join("model.safetensors");
    crate::model::weights::save_safetensors(&weights, &st)?;
    Ok(())
}

/// Bytes one decode step reads: every weight once (the tied embedding as the head, not as the
/// lookup, which reads one row), and the keys and values of `context` positions.
pub fn bytes_per_token(cfg: &ModelConfig, elem: usize, context: usize) -> f64 {
    let params = cfg.num_parameters();
    let kv = cfg.num_layers * 2 * cfg.num_kv_heads * cfg.head_dim * context;
    ((params + kv) * elem) as f64
}

/// Device-to-device copy bandwidth (bytes read + written per second), median of a few copies
/// of 1 GiB (256 MiB on the CPU).
fn copy_bandwidth(dev: &Device) -> anyhow::Result<f64> {
    let n = if dev.is_cpu() { 1 << 26 } else { 1 << 28 };
    let src = Tensor::zeros(n, DType::F32, dev)?;
    let mut rates = Vec::new();
    for i in 0..6 {
        dev.synchronize()?;
        let t = Instant::now();
        let dst = src.copy()?;
        dev.synchronize()?;
        let s = t.elapsed().as_secs_f64();
        drop(dst);
        if i > 0 {
            rates.push(2.0 * (n * 4) as f64 / s);
        }
    }
    Ok(median(&mut rates))
}

/// The nominal memory bandwidth (bytes/s) of GPUs by name, from their data sheets.
pub fn nominal_bandwidth(name: &str) -> Option<f64> {
    const TABLE: &[(&str, f64)] = &[
        ("H200", 4.8e12),
        ("H100 NVL", 3.9e12),
        ("H100 PCIe", 2.0e12),
        ("H100", 3.35e12),
        ("GH200", 4.0e12),
        ("A100-SXM4-80GB", 2.039e12),
        ("A100 80GB PCIe", 1.935e12),
        ("A100", 1.555e12),
        ("L40S", 0.864e12),
        ("L4", 0.3e12),
        ("A10G", 0.6e12),
        ("A10", 0.6e12),
        ("RTX 4090", 1.008e12),
        ("RTX 3090", 0.936e12),
        ("V100", 0.9e12),
        ("T4", 0.32e12),
    ];
    TABLE.iter().find(|(k, _)| name.contains(k)).map(|(_, v)| *v)
}

/// `n` prompts of different lengths for the batched step's check: `prompt` shifted by each row,
/// row s without its first s % 4 tokens.
fn batch_prompts(prompt: &[u32], n: usize, vocab: u32) -> Vec<Vec<u32>> {
    (0..n)
        .map(|s| {
            let p: Vec<u32> = prompt.iter().skip(s % 4).map(|&t| (t + s as u32) % vocab).collect();
            if p.is_empty() {
                vec![s as u32 % vocab]
            } else {
                p
            }
        })
        .collect()
}

pub fn run(a: GpuDecodeArgs) -> anyhow::Result<()> {
    let dev = a.device.open()?;
    let device_name = crate::model::device::available_devices()
        .into_iter()
        .find(|d| d.choice == a.device)
        .map(|d| d.name)
        .unwrap_or_else(|| a.device.to_string());
    let cfg = config(&a.size);
    let dir = a
        .model_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("target/bench/qwen2.5-{}-shape", a.size)));
    if !dir.join("model.safetensors").exists() {
        eprintln!("writing the random {} model to {}", a.size, dir.display());
        write_model(&cfg, &dir)?;
    }
    let (dt, torch_dt) = dtype(&a.dtype);
    let mut w = SafetensorsWeights::open(&dir, dt, &dev)?;
    let decoder = Decoder::load(&cfg, &mut w, dt, &dev)?;
    let prompt: Vec<u32> = (0..a.prompt_tokens)
        .map(|i| ((i * 7919 + 13) % cfg.vocab_size) as u32)
        .collect();
    let ours = time_decode(&decoder, cfg.vocab_size as u32 - 1, &prompt, a.new_tokens, a.repeats)?;
    let base_args: Vec<String> = [
        "--model",
        &dir.display().to_string(),
        "--prompt-tokens",
        &a.prompt_tokens.to_string(),
        "--new-tokens",
        &a.new_tokens.to_string(),
        "--repeats",
        &a.repeats.to_string(),
        "--device",
        &a.device.to_string(),
        "--dtype",
        torch_dt,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let base = if a.no_baselines {
        None
    } else {
        let v = baseline_json(&a.python, "bench_decode_transformers.py", &base_args)?;
        Some(
            v["tokens_per_s"]
                .as_f64()
                .context("no tokens_per_s in the baseline's output")?,
        )
    };
    if !ours.is_finite() || ours <= 0.0 {
        bail!("no decode rate measured");
    }
    // The average context over the decoded tokens.
    let context = a.prompt_tokens + a.new_tokens / 2;
    let bytes = bytes_per_token(&cfg, dt.size_in_bytes(), context);
    let copy = copy_bandwidth(&dev)?;
    let nominal = nominal_bandwidth(&device_name);
    let used = bytes * ours;
    println!(
        "decode, batch 1, greedy, {} prompt + {} new tokens, median of {}, {} ({}), {} params {}",
        a.prompt_tokens,
        a.new_tokens,
        a.repeats,
        a.device,
        device_name,
        cfg.num_parameters(),
        a.dtype
    );
    match base {
        Some(b) => println!("s1-studio {ours:.1} tok/s, transformers {b:.1} tok/s: {:.2}x", ours / b),
        None => println!("s1-studio {ours:.1} tok/s"),
    }
    println!(
        "{:.1} MB per token -> {:.0} GB/s: {:.0}% of the measured copy bandwidth ({:.0} GB/s){}",
        bytes / 1e6,
        used / 1e9,
        100.0 * used / copy,
        copy / 1e9,
        match nominal {
            Some(n) => format!(", {:.0}% of the nominal {:.0} GB/s", 100.0 * used / n, n / 1e9),
            None => String::new(),
        }
    );
    let mut batch_rows = Vec::new();
    for &n in a.batches.iter().filter(|&&n| n > 1) {
        let err = decoder.step_batch_error(&batch_prompts(&prompt, n, cfg.vocab_size as u32), 2)?;
        let tol = if dt == DType::F32 { 1e-4 } else { 3e-2 };
        if err.is_nan() || err >= tol {
            bail!("the batched step of {n} sequences differs from each alone: relative error {err:.2e} > {tol:.0e}");
        }
        let ours_n = time_decode_batch(&decoder, &prompt, a.new_tokens, a.repeats, n)?;
        let base_n = if a.no_baselines {
            None
        } else {
            let mut args = base_args.clone();
            args.extend(["--batch".to_string(), n.to_string()]);
            let v = baseline_json(&a.python, "bench_decode_transformers.py", &args)?;
            Some(
                v["tokens_per_s"]
                    .as_f64()
                    .context("no tokens_per_s in the baseline's output")?,
            )
        };
        match base_n {
            Some(b) => println!(
                "batch {n}: s1-studio {ours_n:.1} tok/s ({:.2}x its batch 1), transformers {b:.1} tok/s: {:.2}x \
                 (batched step vs alone: relative error {err:.1e})",
                ours_n / ours,
                ours_n / b
            ),
            None => println!(
                "batch {n}: s1-studio {ours_n:.1} tok/s ({:.2}x its batch 1; batched step vs alone: relative \
                 error {err:.1e})",
                ours_n / ours
            ),
        }
        batch_rows.push(serde_json::json!({
            "batch": n, "tokens_per_s": ours_n, "baseline_tokens_per_s": base_n,
            "ratio": base_n.map(|b| ours_n / b), "step_vs_alone_relative_error": err,
        }));
    }
    if let Some(p) = &a.json {
        let v = serde_json::json!({
            "batches": batch_rows,
            "device": a.device.to_string(), "gpu": device_name, "dtype": a.dtype,
            "parameters": cfg.num_parameters(), "tokens_per_s": ours,
            "baseline": "transformers (PyTorch)", "baseline_tokens_per_s": base,
            "ratio": base.map(|b| ours / b), "bytes_per_token": bytes,
            "bandwidth_bytes_per_s": used, "copy_bandwidth_bytes_per_s": copy,
            "fraction_of_copy": used / copy, "nominal_bandwidth_bytes_per_s": nominal,
            "fraction_of_nominal": nominal.map(|n| used / n),
        });
        std::fs::write(p, serde_json::to_string_pretty(&v)?).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_05b_shape_is_qwen25_05b() {
        // Qwen2.5-0.5B: 494,032,768 parameters (tied embeddings).
        assert_eq!(config("0.5b").num_parameters(), 494_032_768);
    }

    #[test]
    fn bytes_per_token_counts_weights_and_cache() {
        let cfg = config("tiny");
        let none = bytes_per_token(&cfg, 2, 0);
        assert_eq!(none, (cfg.num_parameters() * 2) as f64);
        let ten = bytes_per_token(&cfg, 2, 10);
        assert_eq!(ten - none, (2 * 2 * 2 * 64 * 10 * 2) as f64);
    }

    /// The whole measurement on the CPU with the tiny shape (CI has no GPU): it writes the
    /// model, decodes, and reports bytes and bandwidth consistently.
    #[test]
    fn runs_end_to_end_on_the_cpu() {
        let d = tempfile::tempdir().unwrap();
        let json = d.path().join("out.json");
        run(GpuDecodeArgs {
            size: "tiny".into(),
            model_dir: Some(d.path().join("m")),
            device: DeviceChoice::Cpu,
            dtype: "f32".into(),
            prompt_tokens: 4,
            new_tokens: 8,
            repeats: 1,
            python: "python3".into(),
            no_baselines: true,
            batches: vec![3],
            json: Some(json.clone()),
        })
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let rate = v["tokens_per_s"].as_f64().unwrap();
        let bytes = v["bytes_per_token"].as_f64().unwrap();
        assert!(rate > 0.0);
        assert_eq!(bytes, bytes_per_token(&config("tiny"), 4, 4 + 4));
        let used = v["bandwidth_bytes_per_s"].as_f64().unwrap();
        assert!((used - bytes * rate).abs() <= 1e-6 * used);
        assert!(v["baseline_tokens_per_s"].is_null() && v["fraction_of_nominal"].is_null());
        let b = &v["batches"][0];
        assert_eq!(b["batch"], 3);
        assert!(b["tokens_per_s"].as_f64().unwrap() > 0.0);
        assert!(b["step_vs_alone_relative_error"].as_f64().unwrap() < 1e-4);
    }

    #[test]
    fn known_gpus_have_a_nominal_bandwidth() {
        assert_eq!(nominal_bandwidth("NVIDIA H200"), Some(4.8e12));
        assert_eq!(nominal_bandwidth("NVIDIA H100 80GB HBM3"), Some(3.35e12));
        assert_eq!(nominal_bandwidth("NVIDIA A100-SXM4-80GB"), Some(2.039e12));
        assert_eq!(nominal_bandwidth("CPU"), None);
    }
}
