//! `s1-studio bench decode`: greedy decode tokens/s against transformers (same random Qwen2
//! safetensors) and llama.cpp (same GGUF), each measured in the same run.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;

use super::{baseline_json, bench_config, median};
use crate::generate::Sampler;
use crate::model::config::ModelConfig;
use crate::model::decoder::{Decoder, Logits};
use crate::model::weights::SafetensorsWeights;
use crate::model::{load_model, parse_device, LoadOptions};

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Where to write the random Qwen2 benchmark model (reused when present)
    #[arg(long, default_value = "target/bench/qwen2-29m")]
    model_dir: PathBuf,
    /// The GGUF for the llama.cpp comparison (SmolLM2-135M-Instruct Q4_1)
    #[arg(long, default_value = "models/SmolLM2-135M-Instruct.Q4_1.gguf")]
    gguf: PathBuf,
    /// Prompt tokens before decoding
    #[arg(long, default_value_t = 32)]
    prompt_tokens: usize,
    /// Tokens decoded per repetition
    #[arg(long, default_value_t = 128)]
    new_tokens: usize,
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Python with torch + transformers (and llama-cpp-python) for the baselines
    #[arg(long, env = "S1_BENCH_PYTHON", default_value = "python3")]
    python: String,
    /// Which comparisons to run
    #[arg(long, default_value = "all", value_parser = ["all", "safetensors", "gguf"])]
    which: String,
    /// Device for the safetensors model (cpu, cuda); the transformers baseline uses the same
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Skip the baselines (only this engine's figures)
    #[arg(long)]
    no_baselines: bool,
    /// Write the results as JSON here too
    #[arg(long)]
    json: Option<PathBuf>,
}

fn prompt_ids(n: usize, vocab: usize) -> Vec<u32> {
    (0..n).map(|i| ((i * 7919 + 13) % vocab) as u32).collect()
}

/// Median decode tokens/s over `repeats` runs of greedy decoding with a KV cache.
pub(super) fn time_decode(
    decoder: &Decoder,
    max_token_id: u32,
    prompt: &[u32],
    new_tokens: usize,
    repeats: usize,
) -> anyhow::Result<f64> {
    let mut rates = Vec::new();
    for _ in 0..repeats.max(1) {
        let mut cache = decoder.new_cache();
        let mut sampler = Sampler::new(Default::default(), max_token_id);
        let dev = decoder.device();
        let ids = candle_core::Tensor::new(prompt, dev)?.unsqueeze(0)?;
        let mut logits = decoder
            .forward(&ids, Some(&mut cache), Logits::Last)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let t = Instant::now();
        for _ in 0..new_tokens {
            let id = sampler.sample(&mut logits, &[]);
            let ids = candle_core::Tensor::new(&[id], dev)?.unsqueeze(0)?;
            logits = decoder
                .forward(&ids, Some(&mut cache), Logits::Last)?
                .flatten_all()?
                .to_vec1::<f32>()?;
        }
        rates.push(new_tokens as f64 / t.elapsed().as_secs_f64());
    }
    Ok(median(&mut rates))
}

/// Runs a baseline script that prints a JSON object with `tokens_per_s` on its last line.
fn baseline(python: &str, script_name: &str, args: &[String]) -> anyhow::Result<f64> {
    baseline_json(python, script_name, args)?["tokens_per_s"]
        .as_f64()
        .context("no tokens_per_s in the baseline's output")
}

pub fn run(a: DecodeArgs) -> anyhow::Result<()> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let cfg = bench_config();
    if !a.model_dir.join("model.safetensors").exists() {
        crate::model::init::write_weights(&cfg, 0, &a.model_dir)?;
    }
    let dev = parse_device(&a.device)?;
    let loaded_cfg = ModelConfig::from_hf_file(&a.model_dir.join("config.json"))?;
    let mut w = SafetensorsWeights::open(&a.model_dir, candle_core::DType::F32, &dev)?;
    let decoder = Decoder::load(&loaded_cfg, &mut w, candle_core::DType::F32, &dev)?;
    let prompt = prompt_ids(a.prompt_tokens, cfg.vocab_size);
    let common = vec![
        "--prompt-tokens".to_string(),
        a.prompt_tokens.to_string(),
        "--new-tokens".into(),
        a.new_tokens.to_string(),
        "--repeats".into(),
        a.repeats.to_string(),
        "--threads".into(),
        threads.to_string(),
        "--device".into(),
        a.device.clone(),
    ];
    let mut rows: Vec<(String, f64, Option<f64>, String)> = Vec::new();

    if a.which != "gguf" {
        let ours = time_decode(&decoder, cfg.vocab_size as u32 - 1, &prompt, a.new_tokens, a.repeats)?;
        let base = if a.no_baselines {
            None
        } else {
            let mut args = vec!["--model".to_string(), a.model_dir.display().to_string()];
            args.extend(common.clone());
            Some(baseline(&a.python, "bench_decode_transformers.py", &args)?)
        };
        rows.push((
            format!("qwen2-29.4M f32 ({})", a.device),
            ours,
            base,
            "transformers (PyTorch CPU)".into(),
        ));
    }

    if a.which == "safetensors" || a.device != "cpu" {
    } else if a.gguf.exists() {
        let m = load_model(&a.gguf, &LoadOptions::default())?;
        let gprompt = prompt_ids(a.prompt_tokens, 1000);
        let ours = time_decode(&m.decoder, m.tokenizer.max_token_id, &gprompt, a.new_tokens, a.repeats)?;
        let base = if a.no_baselines {
            None
        } else {
            let mut args = vec!["--gguf".to_string(), a.gguf.display().to_string()];
            args.extend(common.clone());
            Some(baseline(&a.python, "bench_decode_llamacpp.py", &args)?)
        };
        rows.push((
            "SmolLM2-135M Q4_1 GGUF".into(),
            ours,
            base,
            "llama.cpp (llama-cpp-python)".into(),
        ));
    } else {
        eprintln!(
            "note: {} not found; skipping the llama.cpp comparison (scripts/fetch-test-models.sh fetches it)",
            a.gguf.display()
        );
    }

    println!(
        "decode, batch 1, greedy, {} prompt + {} new tokens, {threads} threads, median of {}",
        a.prompt_tokens, a.new_tokens, a.repeats
    );
    println!(
        "{:<30} {:>12} {:>12} {:>8}  baseline",
        "model", "s1-studio", "baseline", "ratio"
    );
    let mut json = Vec::new();
    for (name, ours, base, base_name) in &rows {
        let (b, r) = match base {
            Some(b) => (format!("{b:.1}"), format!("{:.2}x", ours / b)),
            None => ("-".into(), "-".into()),
        };
        println!("{name:<30} {ours:>12.1} {b:>12} {r:>8}  {base_name}");
        json.push(serde_json::json!({"model": name, "tokens_per_s": ours, "baseline": base_name, "baseline_tokens_per_s": base, "ratio": base.map(|b| ours / b)}));
    }
    if let Some(p) = a.json {
        std::fs::write(&p, serde_json::to_string_pretty(&json)?).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
