//! `s1-studio bench train`: one SFT step (forward, backward, clipping, AdamW) of the 29.4M
//! Qwen2 benchmark model (or a random model of Qwen2.5-0.5B's shape) on a 4 x 256 batch,
//! against PyTorch + transformers on the same model, the same batch and the same optimizer
//! settings, measured in the same run. In bf16 (CUDA) the weights compute in bf16 and the
//! optimizer keeps f32 masters; the baselines are PyTorch in pure bf16 and PyTorch with f32
//! weights under bf16 autocast (what transformers' Trainer does with `bf16=True`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use candle_core::{DType, Tensor};
use clap::Args;

use super::{baseline_json, bench_config, median};
use crate::model::config::ModelConfig;
use crate::model::decoder::Decoder;
use crate::model::weights::SafetensorsWeights;
use crate::train::config::TrainDtype;
use crate::train::data::{MicroBatch, IGNORE};
use crate::train::optim::{self, AdamW, AdamWParams};
use crate::train::step::accumulate_micro_batch;

/// The benchmark model's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    /// The 29.4M Qwen2 of the engine benchmarks (vocabulary 8,192).
    #[value(name = "29m")]
    M29,
    /// Qwen2.5-0.5B's shape (494M parameters, vocabulary 151,936), random weights.
    #[value(name = "0.5b")]
    B05,
    /// Qwen2.5-1.5B's shape (1.5B parameters, head size 128), random weights.
    #[value(name = "1.5b")]
    B15,
}

impl Shape {
    fn config(self) -> ModelConfig {
        // (hidden, intermediate, layers, heads, kv heads, head size) of the Qwen2.5 shapes.
        let (hidden, inter, layers, heads, kv, head) = match self {
            Shape::M29 => return bench_config(),
            Shape::B05 => (896, 4864, 24, 14, 2, 64),
            Shape::B15 => (1536, 8960, 28, 12, 2, 128),
        };
        ModelConfig {
            vocab_size: 151_936,
            hidden_size: hidden,
            intermediate_size: inter,
            num_layers: layers,
            num_heads: heads,
            num_kv_heads: kv,
            head_dim: head,
            max_position_embeddings: 32_768,
            ..bench_config()
        }
    }

    fn label(self) -> &'static str {
        match self {
            Shape::M29 => "qwen2-29.4M",
            Shape::B05 => "qwen2.5-0.5B-shape",
            Shape::B15 => "qwen2.5-1.5B-shape",
        }
    }
}

#[derive(Debug, Args)]
pub struct TrainBenchArgs {
    /// Where to write the random benchmark model (reused when present); default
    /// target/bench/<shape>
    #[arg(long)]
    model_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "29m")]
    shape: Shape,
    #[arg(long, value_enum, default_value = "f32")]
    dtype: TrainDtype,
    /// Peak dense TFLOP/s of the device at this precision, for MFU (default: 989 for bf16 on
    /// CUDA, an H100/H200's dense bf16 rate; none otherwise)
    #[arg(long)]
    peak_tflops: Option<f64>,
    #[arg(long, default_value_t = 4)]
    batch: usize,
    #[arg(long, default_value_t = 256)]
    seq: usize,
    /// Timed steps per round (after one warm-up step); the median over all rounds is reported
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Rounds of our steps and the baseline's run, alternating on the CPU so that a slow spell of
    /// a shared machine falls on both (on a GPU the baselines' rounds come first)
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Gradient checkpointing per layer
    #[arg(long)]
    checkpointing: bool,
    /// Print each step's forward+backward, norm and optimizer times (S1_PROFILE_STEP=1 splits
    /// the forward and backward further)
    #[arg(long)]
    phases: bool,
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

/// Model FLOPs of one training step per token (forward + backward): 6 per weight of every
/// matrix product (the head included, embeddings excluded) plus the attention's
/// 12 * layers * seq * heads * head_dim (PaLM's accounting, no causal discount).
pub fn flops_per_token(c: &ModelConfig, seq: usize) -> f64 {
    let (h, d) = (c.hidden_size as f64, c.head_dim as f64);
    let q = c.num_heads as f64 * d;
    let kv = c.num_kv_heads as f64 * d;
    let per_layer = h * q + 2.0 * h * kv + q * h + 3.0 * h * c.intermediate_size as f64;
    let matmul = per_layer * c.num_layers as f64 + c.vocab_size as f64 * h;
    6.0 * matmul + 12.0 * c.num_layers as f64 * seq as f64 * q
}

pub fn run(a: TrainBenchArgs) -> anyhow::Result<()> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    crate::train::alloc::keep_freed_memory();
    let cfg = a.shape.config();
    let model_dir = a
        .model_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/bench").join(a.shape.label()));
    if !model_dir.join("model.safetensors").exists() {
        crate::model::init::write_weights(&cfg, 0, &model_dir)?;
    }
    let dev = crate::model::parse_device(&a.device)?;
    let dtype = a.dtype.dtype();
    if dtype == DType::BF16 && dev.is_cpu() {
        anyhow::bail!("--dtype bf16 trains on CUDA only (the CPU trainer computes in f32)");
    }
    let dtype_names: &[&str] = match a.dtype {
        TrainDtype::F32 => &["f32"],
        TrainDtype::Bf16 => &["bf16", "amp"],
    };
    // Per baseline: its step times over all rounds, and its last report.
    let mut bases: Vec<(Vec<f64>, serde_json::Value)> = vec![(Vec::new(), serde_json::Value::Null); dtype_names.len()];
    let rounds = a.rounds.max(1);
    // The baselines' rounds: in their own process, one after another.
    let run_baselines = |bases: &mut Vec<(Vec<f64>, serde_json::Value)>| -> anyhow::Result<()> {
        for (name, (btimes, last)) in dtype_names.iter().zip(bases.iter_mut()).filter(|_| !a.no_baselines) {
            let mut args = vec![
                "--model".to_string(),
                model_dir.display().to_string(),
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
                "--dtype".into(),
                name.to_string(),
            ];
            // The same memory trade as ours: recomputation costs both sides the same.
            if a.checkpointing {
                args.push("--checkpointing".into());
            }
            // A baseline that fails (PyTorch out of memory at a shape we train) is reported as
            // such; our figures still print.
            let report = match baseline_json(&a.python, "bench_train_transformers.py", &args) {
                Ok(r) => r,
                Err(e) => {
                    let msg = format!("{e:#}");
                    eprintln!("the {name} baseline failed: {msg}");
                    *last = serde_json::json!({ "error": msg });
                    continue;
                }
            };
            btimes.extend(
                report["steps"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_f64()),
            );
            *last = report;
        }
        Ok(())
    };
    // On the CPU our rounds alternate with the baselines', so that a slow spell of a shared
    // machine hits both. On a GPU the baselines run first, before we hold any GPU memory: beside
    // our model and optimizer state a large shape would leave PyTorch too little.
    let alternate = dev.is_cpu();
    if !alternate && !a.no_baselines {
        for _ in 0..rounds {
            run_baselines(&mut bases)?;
        }
    }
    let loaded = ModelConfig::from_hf_file(&model_dir.join("config.json"))?;
    let mut w = SafetensorsWeights::open(&model_dir, dtype, &dev)?;
    let mut dec = Decoder::load(&loaded, &mut w, dtype, &dev)?;
    let named = dec.make_trainable()?;
    let vars: Vec<_> = named.iter().map(|(_, v)| v.clone()).collect();
    let mut opt = AdamW::new(named, AdamWParams::default())?;
    let b = batch(a.batch, a.seq, cfg.vocab_size);
    let mut times = Vec::new();
    let mut losses = Vec::new();
    for round in 0..rounds {
        // One warm-up step in the first round.
        for step in usize::from(round > 0)..=a.steps {
            let t = Instant::now();
            let mut acc = vec![None; vars.len()];
            let scales = vec![1.0 / b.loss_tokens as f64; b.rows];
            let loss = accumulate_micro_batch(&dec, &vars, &b, &scales, a.checkpointing, &mut acc)?;
            let grads: Vec<Tensor> = acc
                .into_iter()
                .map(|g| g.context("a parameter got no gradient"))
                .collect::<anyhow::Result<_>>()?;
            let t_fb = t.elapsed().as_secs_f64();
            let norm = optim::global_norm(&grads)?;
            let t_norm = t.elapsed().as_secs_f64();
            opt.apply(&grads, 1e-5, optim::clip_scale(norm, 1.0))?;
            if a.phases {
                dev.synchronize()?;
                let end = t.elapsed().as_secs_f64();
                eprintln!(
                    "step {step}: forward+backward {:.2} ms, norm {:.2} ms, AdamW {:.2} ms",
                    t_fb * 1e3,
                    (t_norm - t_fb) * 1e3,
                    (end - t_norm) * 1e3
                );
            }
            if !dev.is_cpu() {
                dev.synchronize()?;
            }
            if step > 0 {
                times.push(t.elapsed().as_secs_f64());
            }
            if round == 0 {
                losses.push(loss);
            }
        }
        if alternate {
            run_baselines(&mut bases)?;
        }
    }
    let step_s = median(&mut times);
    let tokens = (a.batch * a.seq) as f64;
    let ours = tokens / step_s;
    // The baselines' step time and tokens/s: the median over all their rounds.
    let bases: Vec<serde_json::Value> = bases
        .into_iter()
        .filter(|(_, last)| !last.is_null())
        .map(|(mut bt, mut last)| {
            if !bt.is_empty() {
                let m = median(&mut bt);
                last["step_s"] = serde_json::json!(m);
                last["tokens_per_s"] = serde_json::json!(tokens / m);
                last["steps"] = serde_json::json!(bt);
            }
            last
        })
        .collect();
    let peak = a
        .peak_tflops
        .or((a.dtype == TrainDtype::Bf16 && !dev.is_cpu()).then_some(989.0));
    let flops = flops_per_token(&cfg, a.seq);
    let mfu = |tps: f64| peak.map(|p| 100.0 * tps * flops / (p * 1e12));
    let fmt_mfu = |m: Option<f64>| m.map(|m| format!("{m:.2}%")).unwrap_or_else(|| "-".into());
    println!(
        "train step (forward, backward, clip, AdamW), {} {:?}, batch {}x{}, {threads} threads, {}, median of {} steps \
         in {rounds} rounds {}{}",
        a.shape.label(),
        a.dtype,
        a.batch,
        a.seq,
        a.device,
        a.steps * rounds,
        if alternate {
            "alternating with the baseline"
        } else {
            "(the baselines first, before ours holds GPU memory)"
        },
        if a.checkpointing {
            ", gradient checkpointing"
        } else {
            ""
        }
    );
    println!(
        "{:<44} {:>10} {:>12} {:>10} {:>8}",
        "", "step s", "tokens/s", "first loss", "MFU"
    );
    println!(
        "{:<44} {:>10.4} {:>12.1} {:>10.4} {:>8}",
        "s1-studio",
        step_s,
        ours,
        losses[0],
        fmt_mfu(mfu(ours))
    );
    let peak_rss = super::curate::peak_rss_mib();
    println!("peak resident memory of this process (ours; the baselines run in their own): {peak_rss:.0} MiB");
    let mut json = serde_json::json!({
        "peak_rss_mib": peak_rss, "step_s": step_s, "tokens_per_s": ours, "steps": times, "rounds": rounds, "losses": losses, "device": a.device,
        "shape": a.shape.label(), "dtype": format!("{:?}", a.dtype), "flops_per_token": flops,
        "peak_tflops": peak, "mfu_percent": mfu(ours),
    });
    let mut base_json = Vec::new();
    for (b, name) in bases.iter().zip(dtype_names) {
        let bt = b["tokens_per_s"].as_f64().unwrap_or(f64::NAN);
        let bl = b["losses"].get(0).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
        let label = format!("{} ({name})", b["engine"].as_str().unwrap_or("baseline"));
        if let Some(err) = b["error"].as_str() {
            let oom = err.contains("OutOfMemoryError") || err.contains("out of memory");
            let what = if oom { "out of memory" } else { "failed" };
            println!("{label}: {what} (see above)");
            let mut b = b.clone();
            b["dtype"] = serde_json::json!(name);
            base_json.push(b);
            continue;
        }
        println!(
            "{:<44} {:>10.4} {:>12.1} {:>10.4} {:>8}",
            label,
            b["step_s"].as_f64().unwrap_or(f64::NAN),
            bt,
            bl,
            fmt_mfu(mfu(bt))
        );
        println!("ratio against {name} (tokens/s): {:.2}x", ours / bt);
        let mut b = b.clone();
        b["dtype"] = serde_json::json!(name);
        b["ratio"] = serde_json::json!(ours / bt);
        base_json.push(b);
    }
    if let Some(first) = base_json.first() {
        json["ratio"] = first["ratio"].clone();
        json["baseline"] = first.clone();
    }
    json["baselines"] = serde_json::json!(base_json);
    if let Some(p) = a.json {
        std::fs::write(&p, serde_json::to_string_pretty(&json)?).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
