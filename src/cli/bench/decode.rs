//! `s1-studio bench decode`: greedy decode tokens/s against transformers (same random Qwen2
//! safetensors) and llama.cpp (same GGUFs: SmolLM2-135M in Q4_1 and re-quantized to Q4_K_M),
//! each measured in the same run; for the GGUFs also this engine's batched decode (several
//! sequences per step, the weights read once for all) and prompt prefill tokens/s against
//! llama.cpp's prompt eval at several prompt lengths.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;

use super::{baseline_json, bench_config, median};
use crate::generate::Sampler;
use crate::model::argmax;
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
    /// The K-quant GGUF for the llama.cpp comparison (SmolLM2-135M-Instruct re-quantized to
    /// Q4_K_M by scripts/make_q4km_smollm2.py)
    #[arg(long, default_value = "models/SmolLM2-135M-Instruct.Q4_K_M.gguf")]
    q4km: PathBuf,
    /// Batch sizes timed for this engine's batched decode of the GGUFs (batch 1 is always timed)
    #[arg(long, value_delimiter = ',', default_value = "4,16")]
    batches: Vec<usize>,
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
    #[arg(long, default_value = "all", value_parser = ["all", "safetensors", "gguf", "q4_1", "q4_k_m"])]
    which: String,
    /// Device for the safetensors model (cpu, cuda); the transformers baseline uses the same
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Prompt lengths timed for prefill (prompt eval) of the GGUFs against llama.cpp's prompt
    /// eval; empty to skip
    #[arg(long, value_delimiter = ',', default_value = "40,256,1024")]
    prefill_lengths: Vec<usize>,
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

/// Median prefill tokens/s: a prompt of `len` tokens into an empty cache, up to the last
/// position's logits (one untimed warm-up run first).
fn time_prefill(decoder: &Decoder, len: usize, repeats: usize) -> anyhow::Result<f64> {
    let ids = candle_core::Tensor::new(prompt_ids(len, 1000).as_slice(), decoder.device())?.unsqueeze(0)?;
    let mut rates = Vec::new();
    for i in 0..=repeats.max(1) {
        let mut cache = decoder.new_cache();
        let t = Instant::now();
        decoder
            .forward(&ids, Some(&mut cache), Logits::Last)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        if i > 0 {
            rates.push(len as f64 / t.elapsed().as_secs_f64());
        }
    }
    Ok(median(&mut rates))
}

/// Median decode tokens/s (all sequences together) of `batch` sequences decoded in lockstep,
/// each after its own prompt, greedy: through the CPU batch step where it applies (f32 on the
/// CPU), else `Decoder::step_batch` (CUDA, bf16), as the scheduler chooses.
pub(super) fn time_decode_batch(
    decoder: &Decoder,
    prompt: &[u32],
    new_tokens: usize,
    repeats: usize,
    batch: usize,
) -> anyhow::Result<f64> {
    let dev = decoder.device();
    let mut rates = Vec::new();
    for _ in 0..repeats.max(1) {
        let mut caches: Vec<_> = (0..batch).map(|_| decoder.new_cache()).collect();
        let mut tokens = Vec::with_capacity(batch);
        for (i, cache) in caches.iter_mut().enumerate() {
            // A different prompt per sequence: the rows of a batch do not coincide.
            let p: Vec<u32> = prompt.iter().map(|&t| t + i as u32).collect();
            let ids = candle_core::Tensor::new(p.as_slice(), dev)?.unsqueeze(0)?;
            let logits = decoder
                .forward(&ids, Some(cache), Logits::Last)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            tokens.push(argmax(&logits));
        }
        let mut refs: Vec<_> = caches.iter_mut().collect();
        let cpu = decoder.can_step_cpu_batch(&refs);
        anyhow::ensure!(
            cpu || decoder.can_step_batch(),
            "this model cannot run a batched decode step (set up for training?)"
        );
        let t = Instant::now();
        for _ in 0..new_tokens {
            let rows = if cpu {
                let hidden = decoder.step_cpu_batch(&tokens, &mut refs)?;
                decoder.head_cpu_batch(&hidden)?
            } else {
                decoder.step_batch(&tokens, &mut refs)?
            };
            tokens = rows.iter().map(|l| argmax(l)).collect();
        }
        rates.push((batch * new_tokens) as f64 / t.elapsed().as_secs_f64());
    }
    Ok(median(&mut rates))
}

/// The tensor types a GGUF holds, as `Q5_0 x 196, Q4K x 16, ...` (most first).
fn gguf_types(path: &std::path::Path) -> anyhow::Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let content = candle_core::quantized::gguf_file::Content::read(&mut f)
        .with_context(|| format!("reading {}", path.display()))?;
    let mut counts = std::collections::BTreeMap::new();
    for info in content.tensor_infos.values() {
        *counts.entry(format!("{:?}", info.ggml_dtype)).or_insert(0usize) += 1;
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    Ok(counts
        .iter()
        .map(|(t, n)| format!("{t} x {n}"))
        .collect::<Vec<_>>()
        .join(", "))
}

/// Runs a baseline script that prints a JSON object with `tokens_per_s` on its last line.
fn baseline(python: &str, script_name: &str, args: &[String]) -> anyhow::Result<f64> {
    baseline_json(python, script_name, args)?["tokens_per_s"]
        .as_f64()
        .context("no tokens_per_s in the baseline's output")
}

pub fn run(a: DecodeArgs) -> anyhow::Result<()> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
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
    let mut notes: Vec<String> = Vec::new();

    if a.which == "all" || a.which == "safetensors" {
        let cfg = bench_config();
        if !a.model_dir.join("model.safetensors").exists() {
            crate::model::init::write_weights(&cfg, 0, &a.model_dir)?;
        }
        let dev = parse_device(&a.device)?;
        let loaded_cfg = ModelConfig::from_hf_file(&a.model_dir.join("config.json"))?;
        let mut w = SafetensorsWeights::open(&a.model_dir, candle_core::DType::F32, &dev)?;
        let decoder = Decoder::load(&loaded_cfg, &mut w, candle_core::DType::F32, &dev)?;
        let prompt = prompt_ids(a.prompt_tokens, cfg.vocab_size);
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

    let gguf_cases = [
        (
            &a.gguf,
            "q4_1",
            "SmolLM2-135M Q4_1 GGUF",
            "scripts/fetch-test-models.sh fetches it",
        ),
        (
            &a.q4km,
            "q4_k_m",
            "SmolLM2-135M Q4_K_M GGUF",
            "scripts/make_q4km_smollm2.py makes it from the Q4_1 with llama-cpp-python",
        ),
    ];
    for (path, key, name, how) in gguf_cases {
        if a.which == "safetensors" || a.device != "cpu" || !(a.which == "all" || a.which == "gguf" || a.which == key) {
            continue;
        }
        if !path.exists() {
            eprintln!(
                "note: {} not found; skipping its llama.cpp comparison ({how})",
                path.display()
            );
            continue;
        }
        let mut m = load_model(path, &LoadOptions::default())?;
        let kinds = m.decoder.weight_kinds();
        let all_ours = m.decoder.kernels_read_all();
        notes.push(format!(
            "{name}: tensors {}; matrices {}; all on this engine's CPU kernels: {}",
            gguf_types(path)?,
            kinds
                .iter()
                .map(|(k, n)| format!("{k} x {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            if all_ours { "yes" } else { "no" }
        ));
        let gprompt = prompt_ids(a.prompt_tokens, 1000);
        let ours = time_decode(&m.decoder, m.tokenizer.max_token_id, &gprompt, a.new_tokens, a.repeats)?;
        let base = if a.no_baselines {
            None
        } else {
            let mut args = vec!["--gguf".to_string(), path.display().to_string()];
            args.extend(common.clone());
            Some(baseline(&a.python, "bench_decode_llamacpp.py", &args)?)
        };
        rows.push((name.to_string(), ours, base, "llama.cpp (llama-cpp-python)".into()));
        if !a.prefill_lengths.is_empty() {
            let base = if a.no_baselines {
                None
            } else {
                let lengths = a
                    .prefill_lengths
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                let args = [
                    "--gguf".to_string(),
                    path.display().to_string(),
                    "--lengths".into(),
                    lengths,
                    "--repeats".into(),
                    a.repeats.to_string(),
                    "--threads".into(),
                    threads.to_string(),
                ];
                Some(baseline_json(&a.python, "bench_prefill_llamacpp.py", &args)?)
            };
            for &len in &a.prefill_lengths {
                m.decoder.set_cpu_prefill(false);
                let general = time_prefill(&m.decoder, len, a.repeats)?;
                m.decoder.set_cpu_prefill(true);
                let ours = time_prefill(&m.decoder, len, a.repeats)?;
                rows.push((
                    format!("{name}, prefill {len}, general path"),
                    general,
                    None,
                    "(before: candle's ops)".into(),
                ));
                let b = match &base {
                    Some(j) => Some(
                        j["prefill_tokens_per_s"][len.to_string()]
                            .as_f64()
                            .context("no prefill_tokens_per_s for this length in the baseline's output")?,
                    ),
                    None => None,
                };
                rows.push((
                    format!("{name}, prefill {len}"),
                    ours,
                    b,
                    "llama.cpp prompt eval".into(),
                ));
            }
        }
        for &batch in a.batches.iter().filter(|&&b| b > 1) {
            let rate = time_decode_batch(&m.decoder, &gprompt, a.new_tokens, a.repeats, batch)?;
            rows.push((
                format!("{name}, batch {batch}"),
                rate,
                None,
                "(this engine only)".into(),
            ));
        }
    }

    println!(
        "decode, greedy, {} prompt + {} new tokens, {threads} threads, median of {}; batch 1 unless \
         named (batched rows: tokens/s of all sequences together)",
        a.prompt_tokens, a.new_tokens, a.repeats
    );
    for n in &notes {
        println!("{n}");
    }
    println!(
        "{:<36} {:>12} {:>12} {:>8}  baseline",
        "model", "s1-studio", "baseline", "ratio"
    );
    let mut json = Vec::new();
    for (name, ours, base, base_name) in &rows {
        let (b, r) = match base {
            Some(b) => (format!("{b:.1}"), format!("{:.2}x", ours / b)),
            None => ("-".into(), "-".into()),
        };
        println!("{name:<36} {ours:>12.1} {b:>12} {r:>8}  {base_name}");
        json.push(serde_json::json!({"model": name, "tokens_per_s": ours, "baseline": base_name, "baseline_tokens_per_s": base, "ratio": base.map(|b| ours / b)}));
    }
    if let Some(p) = a.json {
        std::fs::write(&p, serde_json::to_string_pretty(&json)?).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
