//! `s1-studio bench train`: one SFT step (forward, backward, clipping, AdamW) of the 29.4M
//! Qwen2 benchmark model on a 4 x 256 batch, against PyTorch + transformers on the same model,
//! the same batch and the same optimizer settings, measured in the same run.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use candle_core::{DType, Tensor};
use clap::Args;

use super::bench::{baseline_json, bench_config};
use crate::model::config::ModelConfig;
use crate::model::decoder::Decoder;
use crate::model::weights::SafetensorsWeights;
use crate::train::data::{MicroBatch, IGNORE};
use crate::train::optim::{self, AdamW, AdamWParams};
use crate::train::step::accumulate_micro_batch;

#[derive(Debug, Args)]
pub struct TrainBenchArgs {
    /// Where to write the random Qwen2 benchmark model (reused when present)
    #[arg(long, default_value = "target/bench/qwen2-29m")]
    model_dir: PathBuf,
    #[arg(long, default_value_t = 4)]
    batch: usize,
    #[arg(long, default_value_t = 256)]
    seq: usize,
    /// Timed steps (after one warm-up step); the median is reported
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Gradient checkpointing per layer
    #[arg(long)]
    checkpointing: bool,
    /// cpu or cuda[:N]; the PyTorch baseline runs on the same
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Python with torch + transformers for the baseline
    #[arg(long, env = "S1_BENCH_PYTHON", default_value = "python3")]
    python: String,
    #[arg(long)]
    no_baselines: bool,
    /// Write the results as JSON here too
    #[arg(long)]
    json: Option<PathBuf>,
}

/// The benchmark batch, the same formula as scripts/bench_train_transformers.py; every
/// position but the last of a row predicts the next token (labels = input_ids there).
fn batch(rows: usize, seq: usize, vocab: usize) -> MicroBatch {
    let ids: Vec<u32> = (0..rows)
        .flat_map(|r| (0..seq).map(move |i| ((r * 7919 + i * 104729 + 17) % vocab) as u32))
        .collect();
    let mut targets = vec![IGNORE; rows * seq];
    for r in 0..rows {
        for p in 0..seq - 1 {
            targets[r * seq + p] = ids[r * seq + p + 1];
        }
    }
    MicroBatch {
        rows,
        seq,
        loss_tokens: rows * (seq - 1),
        ids,
        targets,
    }
}

pub fn run(a: TrainBenchArgs) -> anyhow::Result<()> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    crate::train::alloc::keep_freed_memory();
    let cfg = bench_config();
    if !a.model_dir.join("model.safetensors").exists() {
        crate::model::init::write_weights(&cfg, 0, &a.model_dir)?;
    }
    let dev = super::parse_device(&a.device)?;
    let loaded = ModelConfig::from_hf_file(&a.model_dir.join("config.json"))?;
    let mut w = SafetensorsWeights::open(&a.model_dir, DType::F32, &dev)?;
    let mut dec = Decoder::load(&loaded, &mut w, DType::F32, &dev)?;
    let named = dec.make_trainable()?;
    let vars: Vec<_> = named.iter().map(|(_, v)| v.clone()).collect();
    let mut opt = AdamW::new(named, AdamWParams::default())?;
    let b = batch(a.batch, a.seq, cfg.vocab_size);
    let mut times = Vec::new();
    let mut losses = Vec::new();
    for step in 0..=a.steps {
        let t = Instant::now();
        let mut acc = vec![None; vars.len()];
        let sum = accumulate_micro_batch(&dec, &vars, &b, 1.0 / b.loss_tokens as f64, a.checkpointing, &mut acc)?;
        let grads: Vec<Tensor> = acc
            .into_iter()
            .map(|g| g.context("a parameter got no gradient"))
            .collect::<anyhow::Result<_>>()?;
        let norm = optim::global_norm(&grads)?;
        opt.apply(&grads, 1e-5, optim::clip_scale(norm, 1.0))?;
        if !dev.is_cpu() {
            dev.synchronize()?;
        }
        if step > 0 {
            times.push(t.elapsed().as_secs_f64());
        }
        losses.push(sum / b.loss_tokens as f64);
    }
    times.sort_by(f64::total_cmp);
    let step_s = times[times.len() / 2];
    let tokens = (a.batch * a.seq) as f64;
    let ours = tokens / step_s;
    let base = if a.no_baselines {
        None
    } else {
        let args = vec![
            "--model".to_string(),
            a.model_dir.display().to_string(),
            "--batch".into(),
            a.batch.to_string(),
            "--seq".into(),
            a.seq.to_string(),
            "--steps".into(),
            a.steps.to_string(),
            "--threads".into(),
            threads.to_string(),
            "--device".into(),
            a.device.clone(),
        ];
        Some(baseline_json(&a.python, "bench_train_transformers.py", &args)?)
    };
    println!(
        "train step (forward, backward, clip, AdamW), qwen2-29.4M f32, batch {}x{}, {threads} threads, {}, median of {}{}",
        a.batch,
        a.seq,
        a.device,
        a.steps,
        if a.checkpointing { ", gradient checkpointing" } else { "" }
    );
    println!("{:<28} {:>10} {:>12} {:>10}", "", "step s", "tokens/s", "first loss");
    println!(
        "{:<28} {:>10.3} {:>12.1} {:>10.4}",
        "s1-studio", step_s, ours, losses[0]
    );
    let mut json = serde_json::json!({"step_s": step_s, "tokens_per_s": ours, "losses": losses, "device": a.device});
    if let Some(b) = &base {
        let bt = b["tokens_per_s"].as_f64().unwrap_or(f64::NAN);
        let bl = b["losses"].get(0).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
        println!(
            "{:<28} {:>10.3} {:>12.1} {:>10.4}",
            b["engine"].as_str().unwrap_or("baseline"),
            b["step_s"].as_f64().unwrap_or(f64::NAN),
            bt,
            bl
        );
        println!("ratio (tokens/s): {:.2}x", ours / bt);
        json["baseline"] = b.clone();
        json["ratio"] = serde_json::json!(ours / bt);
    }
    if let Some(p) = a.json {
        std::fs::write(&p, serde_json::to_string_pretty(&json)?).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
