//! Training settings with the "s1" preset (S1_RECIPE.md §3), every value settable.

use std::path::PathBuf;

use super::data::TraceColumns;
use super::mask::LossMask;
use super::optim::AdamWParams;
use crate::model::DeviceChoice;

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
    /// Where the run computes; written as "cpu" or "cuda:N" (older files' "cuda" reads as GPU 0).
    pub device: DeviceChoice,
    /// The precision the model computes in; bf16 keeps f32 master weights in the optimizer.
    #[serde(default)]
    pub dtype: TrainDtype,
    /// Continue from the newest checkpoint in `out` (weights, optimizer state, step).
    #[serde(default)]
    pub resume: bool,
    /// Which tokens are trained on (s1: TRL's completion-only collator).
    #[serde(default)]
    pub loss_mask: LossMask,
    /// How the token losses of a global batch are weighed (s1: each example's mean, then the
    /// mean over the examples).
    #[serde(default)]
    pub loss_weighting: LossWeighting,
    /// What the last, short global batch of an epoch becomes (s1: filled with the epoch's first
    /// examples).
    #[serde(default)]
    pub last_batch: LastBatch,
}

/// The last global batch of an epoch when the examples do not divide into global batches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LastBatch {
    /// s1's: completed with the epoch's first examples, as accelerate's `even_batches` does when
    /// the data is sharded over the GPUs (1,000 examples on 16 GPUs: the 63rd step holds the
    /// last 8 and the first 8 again).
    #[default]
    Fill,
    /// A smaller last step: every example once per epoch.
    Short,
}

impl LastBatch {
    /// The name used by the CLI and the settings file.
    pub fn name(self) -> &'static str {
        match self {
            LastBatch::Fill => "fill",
            LastBatch::Short => "short",
        }
    }
}

/// How an optimizer step's loss combines the token losses of its examples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LossWeighting {
    /// s1's: each example's loss is the mean over its own tokens and the step's loss is the
    /// mean over its examples (sft.sh runs micro-batches of 1 on 16 GPUs, and the gradients are
    /// averaged over the GPUs), so a short trace weighs as much as a long one.
    #[default]
    Example,
    /// The sum of the token losses over the global batch's tokens: every token weighs the same,
    /// so long traces weigh more.
    Token,
}

impl LossWeighting {
    /// The name used by the CLI and the settings file.
    pub fn name(self) -> &'static str {
        match self {
            LossWeighting::Example => "example",
            LossWeighting::Token => "token",
        }
    }

    /// The weight of each row's token-loss sum for a step whose rows have `tokens[r]` trained
    /// tokens each: example weighting gives `1 / (tokens[r] * rows with tokens)` (0 for a row
    /// without any), token weighting `1 / (all tokens)`.
    pub fn row_scales(self, tokens: &[usize]) -> Vec<f64> {
        match self {
            LossWeighting::Example => {
                let rows = tokens.iter().filter(|&&t| t > 0).count().max(1) as f64;
                tokens
                    .iter()
                    .map(|&t| if t > 0 { 1.0 / (t as f64 * rows) } else { 0.0 })
                    .collect()
            }
            LossWeighting::Token => {
                let all = tokens.iter().sum::<usize>().max(1) as f64;
                vec![1.0 / all; tokens.len()]
            }
        }
    }
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
    /// global batch 16 (1 x 16 accumulation), clipping at 1.0, block size 32,768, seed 42, TRL's
    /// completion-only loss mask, each example's mean loss averaged over the examples, and an
    /// epoch's short last batch filled as accelerate fills it.
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
            device: DeviceChoice::Cpu,
            dtype: TrainDtype::F32,
            resume: false,
            loss_mask: LossMask::Completion,
            loss_weighting: LossWeighting::Example,
            last_batch: LastBatch::Fill,
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
        if self.dtype == TrainDtype::Bf16 && self.device.is_cpu() {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings files and run folders' training_settings.json written before the device was a
    /// `DeviceChoice` (a free string) read as before; a misspelt device is an error naming it.
    #[test]
    fn older_settings_files_keep_their_device() {
        let cpu: TrainSettings = serde_json::from_str(r#"{"device": "cpu", "epochs": 3}"#).unwrap();
        assert_eq!((cpu.device, cpu.epochs), (DeviceChoice::Cpu, 3));
        let cuda: TrainSettings = serde_json::from_str(r#"{"device": "cuda"}"#).unwrap();
        assert_eq!(cuda.device, DeviceChoice::Cuda(0));
        let back = serde_json::to_value(&cuda).unwrap();
        assert_eq!(back["device"], "cuda:0");
        let again: TrainSettings = serde_json::from_value(back).unwrap();
        assert_eq!(again, cuda);
        let err = serde_json::from_str::<TrainSettings>(r#"{"device": "gpu"}"#).unwrap_err();
        assert!(err.to_string().contains("device `gpu`"), "{err}");
    }

    /// bf16 needs a GPU: the check reads the chosen device, not its spelling.
    #[test]
    fn bf16_needs_cuda() {
        let mut s = TrainSettings {
            dtype: TrainDtype::Bf16,
            ..TrainSettings::default()
        };
        assert!(s.validate().unwrap_err().contains("bf16 training needs a CUDA device"));
        s.device = DeviceChoice::Cuda(1);
        assert_eq!(s.validate(), Ok(()));
    }
}
