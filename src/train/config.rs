//! Training settings with the "s1" preset (S1_RECIPE.md §3), every value settable.

use std::path::PathBuf;

use super::data::TraceColumns;
use super::optim::AdamWParams;

/// Low-rank adapters instead of full fine-tuning.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoraSettings {
    pub rank: usize,
    pub alpha: f64,
    /// Module names the adapters attach to (peft's `target_modules`), e.g. q_proj, v_proj.
    pub target_modules: Vec<String>,
}

/// Everything a run needs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TrainSettings {
    pub model: PathBuf,
    pub data: PathBuf,
    pub out: PathBuf,
    pub trace_columns: TraceColumns,
    pub epochs: usize,
    pub lr: f64,
    pub warmup_ratio: f64,
    pub adam: AdamWParams,
    /// Rows per micro-batch.
    pub batch: usize,
    /// Micro-batches per optimizer step (global batch = batch * grad_accum).
    pub grad_accum: usize,
    pub block_size: usize,
    pub max_grad_norm: f64,
    pub seed: u64,
    pub gradient_checkpointing: bool,
    pub lora: Option<LoraSettings>,
    /// Save a checkpoint every this many steps (0: at the end of each epoch only).
    pub save_every: usize,
    /// Keep only the newest this many checkpoints (0: keep all).
    pub save_total_limit: usize,
    /// "cpu" or "cuda[:N]".
    pub device: String,
    /// The precision the model computes in; bf16 keeps f32 master weights in the optimizer.
    #[serde(default)]
    pub dtype: TrainDtype,
    /// Continue from the newest checkpoint in `out` (weights, optimizer state, step).
    #[serde(default)]
    pub resume: bool,
}

/// Training precision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TrainDtype {
    /// f32 everywhere (the CPU trainer's only precision).
    #[default]
    F32,
    /// bf16 weights and activations with f32 master weights and optimizer state (CUDA).
    Bf16,
}

impl TrainDtype {
    pub fn dtype(self) -> candle_core::DType {
        match self {
            TrainDtype::F32 => candle_core::DType::F32,
            TrainDtype::Bf16 => candle_core::DType::BF16,
        }
    }
}

impl LoraSettings {
    /// Rank `rank`, alpha `2 * rank`, on every linear layer of the blocks.
    pub fn new(rank: usize) -> Self {
        Self {
            rank,
            alpha: 2.0 * rank as f64,
            target_modules: crate::model::lora::MODULES.iter().map(|m| m.to_string()).collect(),
        }
    }
}

impl Default for TrainSettings {
    /// The s1 preset with no paths chosen yet.
    fn default() -> Self {
        Self::s1(PathBuf::new(), PathBuf::new(), PathBuf::new())
    }
}

impl TrainSettings {
    /// The s1 preset: 5 epochs, lr 1e-5, 5% warmup then cosine, AdamW (0.9, 0.95, wd 1e-4),
    /// global batch 16 (1 x 16 accumulation), clipping at 1.0, block size 32,768, seed 42.
    pub fn s1(model: PathBuf, data: PathBuf, out: PathBuf) -> Self {
        Self {
            model,
            data,
            out,
            trace_columns: TraceColumns::Auto,
            epochs: 5,
            lr: 1e-5,
            warmup_ratio: 0.05,
            adam: AdamWParams::default(),
            batch: 1,
            grad_accum: 16,
            block_size: 32768,
            max_grad_norm: 1.0,
            seed: 42,
            gradient_checkpointing: false,
            lora: None,
            save_every: 0,
            save_total_limit: 2,
            device: "cpu".into(),
            dtype: TrainDtype::F32,
            resume: false,
        }
    }

    pub fn global_batch(&self) -> usize {
        self.batch.max(1) * self.grad_accum.max(1)
    }

    /// Settings that make no sense, said plainly.
    pub fn validate(&self) -> Result<(), String> {
        let mut bad = Vec::new();
        if self.epochs == 0 {
            bad.push("epochs must be at least 1".to_string());
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            bad.push(format!("lr must be a positive number (got {})", self.lr));
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            bad.push(format!("warmup ratio must be in [0, 1) (got {})", self.warmup_ratio));
        }
        if self.batch == 0 || self.grad_accum == 0 {
            bad.push("batch and grad-accum must be at least 1".into());
        }
        if self.dtype == TrainDtype::Bf16 && self.device.trim() == "cpu" {
            bad.push("bf16 training needs a CUDA device; on the CPU train in f32".into());
        }
        if self.block_size < 2 {
            bad.push("block size must be at least 2 tokens".into());
        }
        if !(0.0..1.0).contains(&self.adam.beta1) || !(0.0..1.0).contains(&self.adam.beta2) {
            bad.push("AdamW betas must be in [0, 1)".into());
        }
        if let Some(l) = &self.lora {
            if l.rank == 0 {
                bad.push("LoRA rank must be at least 1".into());
            }
            if l.target_modules.is_empty() {
                bad.push("LoRA needs at least one target module".into());
            }
            if let Some(m) = l
                .target_modules
                .iter()
                .find(|m| !crate::model::lora::MODULES.contains(&m.as_str()))
            {
                bad.push(format!(
                    "unknown LoRA target module `{m}` (use {})",
                    crate::model::lora::MODULES.join(", ")
                ));
            }
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(bad.join("; "))
        }
    }
}
