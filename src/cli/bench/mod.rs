//! `s1-studio bench ...`: the performance benchmarks, each against a named baseline measured in
//! the same run (one file per benchmark), and what they share: the benchmark model's shape, the
//! median, and running a Python baseline script. (The evaluation sets are eval::benchmarks.)

mod attention;
mod curate;
mod decode;
mod gpu_decode;
mod grads;
mod serve;
mod train;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use clap::Subcommand;

use crate::model::config::ModelConfig;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Greedy decode tokens/s (KV cache) against transformers and llama.cpp (Q4_1 and Q4_K_M
    /// GGUFs), and this engine's batched decode
    Decode(decode::DecodeArgs),
    /// Batch-1 decode of a Qwen2.5-0.5B-shaped bf16 model on a GPU against transformers, and the
    /// fraction of the GPU's memory bandwidth it reaches
    GpuDecode(gpu_decode::GpuDecodeArgs),
    /// One SFT step (forward, backward, AdamW) against PyTorch + transformers
    Train(train::TrainBenchArgs),
    /// Loss and gradients on a device/precision against the transformers parity fixtures
    Grads(grads::GradsArgs),
    /// The CPU training attention, tiled against materialising, over sequence lengths
    Attention(attention::AttentionBenchArgs),
    /// `s1-studio serve` against llama-cpp-python's server on the same GGUF: aggregate tokens/s
    /// and time to first token at 1, 4 and 16 concurrent streams
    Serve(serve::ServeBenchArgs),
    /// A synthetic pool (1M rows) through import, rules, dedup, decontamination and selection
    Curate(curate::CurateBenchArgs),
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Decode(a) => decode::run(a),
        BenchCommand::GpuDecode(a) => gpu_decode::run(a),
        BenchCommand::Train(a) => train::run(a),
        BenchCommand::Grads(a) => grads::run(a),
        BenchCommand::Curate(a) => curate::run(a),
        BenchCommand::Attention(a) => attention::run(a),
        BenchCommand::Serve(a) => serve::run(a),
    }
}

/// The engine issue's benchmark model: 29.4M parameters, tied embeddings.
fn bench_config() -> ModelConfig {
    ModelConfig::bench_29m()
}

/// The median of `xs` (sorted in place); NaN when empty.
fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name)
}

/// Runs a baseline script and returns the JSON object on its last line.
fn baseline_json(python: &str, script_name: &str, args: &[String]) -> anyhow::Result<serde_json::Value> {
    let out = Command::new(python)
        .arg(script(script_name))
        .args(args)
        .output()
        .with_context(|| format!("running {python} {script_name}"))?;
    if !out.status.success() {
        bail!(
            "{script_name} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .rev()
                .take(8)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).with_context(|| format!("{script_name} printed {last:?}"))
}
