//! The memory a training run needs, estimated from the model's shape and the settings before
//! anything is allocated: weights, gradients and AdamW moments, plus the activations of one
//! micro-batch. Printed by `train` before the first step and shown in the Train view beside the
//! memory the chosen device has; a run that would not fit (the system's available memory on the
//! CPU, the GPU's free memory on CUDA) is refused with the setting to lower.
//!
//! Activations, per token of a micro-batch (`batch * block_size` tokens), in the compute dtype:
//! - with gradient checkpointing, every layer's input (`hidden`), plus one layer's forward stash
//!   and its backward temporaries (about twice the stash: the norms' outputs, q, k, v, the
//!   attention output, gate, up and their product);
//! - without, every layer's stash and one layer's backward temporaries;
//! - attention: linear in t from the tiled length on (two statistics per row and head), else the
//!   `[t, t]` probabilities of every head (kept for the backward up to 256 MB).
//!
//! The chunked head holds one chunk of logits at a time, a constant left out. On the 29.4M
//! benchmark model with checkpointing, this gives 82 KB per token where `bench train` measured
//! 88 KB (peak RSS 707, 964 and 1,994 MiB at t = 1,024, 4,096 and 16,384).

use crate::model::ModelConfig;

use super::TrainSettings;

/// Bytes of what a run keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Weights, gradients and optimizer state.
    pub state: u64,
    /// The activations of one micro-batch.
    pub activations: u64,
}

impl MemoryEstimate {
    pub fn total(&self) -> u64 {
        self.state + self.activations
    }

    /// One line for the log: "1.9 GB (0.5 GB weights + optimizer, 1.4 GB activations)".
    pub fn describe(&self) -> String {
        let gb = |b: u64| b as f64 / 1e9;
        format!(
            "{:.1} GB ({:.1} GB weights + gradients + optimizer, {:.1} GB activations)",
            gb(self.total()),
            gb(self.state),
            gb(self.activations)
        )
    }

    /// Bytes of the weights as loaded before training starts (they are part of
    /// [`MemoryEstimate::state`], and already out of what the device reports free).
    pub fn loaded_weights(&self, cfg: &ModelConfig, s: &TrainSettings) -> u64 {
        let bytes = if s.dtype == super::config::TrainDtype::Bf16 {
            2
        } else {
            4
        };
        (cfg.num_parameters() as u64 * bytes).min(self.state)
    }

    /// An error naming the setting to lower when the run does not fit in `available` bytes.
    pub fn refusal(&self, available: u64, s: &TrainSettings) -> Option<String> {
        if self.total() <= available {
            return None;
        }
        let lower = if self.activations >= self.state {
            if s.gradient_checkpointing {
                format!(
                    "lower --block-size ({}) or --batch ({}; --grad-accum keeps the global batch)",
                    s.block_size, s.batch
                )
            } else {
                "add --gradient-checkpointing, or lower --block-size or --batch".to_string()
            }
        } else if s.lora.is_none() {
            "use LoRA (--lora-rank 16) or a smaller model".to_string()
        } else {
            "use a smaller model".to_string()
        };
        Some(format!(
            "out of memory: the run needs about {}, but {:.1} GB is available; {lower}",
            self.describe(),
            available as f64 / 1e9
        ))
    }
}

/// The estimate for training `cfg` with `s` (see the module doc).
pub fn estimate(cfg: &ModelConfig, s: &TrainSettings) -> MemoryEstimate {
    let params = cfg.num_parameters() as u64;
    // f32 weights + gradients + two moments (bf16 runs: bf16 weights and gradients beside f32
    // masters and moments, the same 16 bytes); LoRA: the frozen weights dominate.
    let state = params * if s.lora.is_some() { 4 } else { 16 };
    let elem = if s.dtype == super::config::TrainDtype::Bf16 {
        2
    } else {
        4
    };
    let (t, rows) = (s.block_size as u64, s.batch.max(1) as u64);
    let (hidden, inter, layers) = (
        cfg.hidden_size as u64,
        cfg.intermediate_size as u64,
        cfg.num_layers as u64,
    );
    let (q, kv) = (
        (cfg.num_heads * cfg.head_dim) as u64,
        (cfg.num_kv_heads * cfg.head_dim) as u64,
    );
    // x, the two norm outputs, the residual; q, k, v, the attention output; gate, up, product.
    let stash = 4 * hidden + 2 * q + 2 * kv + 3 * inter;
    let per_token = if s.gradient_checkpointing {
        layers * hidden + 2 * stash
    } else {
        layers * stash + stash
    };
    let heads = cfg.num_heads as u64;
    let attention = if crate::model::kernels::fused_attention::tiled(s.block_size) {
        2 * heads * rows * t * 4
    } else {
        (heads * rows * t * t * 4).min(256 << 20)
    };
    MemoryEstimate {
        state,
        activations: rows * t * per_token * elem + attention,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 29.4M benchmark model's shape, at s1's longest context.
    fn config() -> ModelConfig {
        ModelConfig {
            max_position_embeddings: 32_768,
            ..ModelConfig::bench_29m()
        }
    }

    /// With checkpointing and the tiled attention, doubling the block size doubles the
    /// activations; the materialising range (short blocks) grows faster.
    #[test]
    fn activations_grow_linearly_from_the_tiled_length() {
        let cfg = config();
        let act = |t: usize| {
            let s = TrainSettings {
                block_size: t,
                gradient_checkpointing: true,
                ..TrainSettings::default()
            };
            estimate(&cfg, &s).activations
        };
        let from = crate::model::kernels::fused_attention::DEFAULT_TILED_FROM;
        assert_eq!(act(4 * from), 2 * act(2 * from));
        assert!(
            act(from / 2) > act(from / 4) * 2,
            "the [t, t] probabilities below the tiled length"
        );
    }

    #[test]
    fn refusal_names_the_setting_to_lower() {
        let cfg = config();
        let s = TrainSettings {
            block_size: 32_768,
            batch: 8,
            gradient_checkpointing: true,
            ..TrainSettings::default()
        };
        let e = estimate(&cfg, &s);
        assert!(e.activations > e.state);
        let msg = e.refusal(e.total() - 1, &s).expect("one byte short");
        assert!(
            msg.contains("--block-size (32768)") && msg.contains("--batch (8"),
            "{msg}"
        );
        assert_eq!(e.refusal(e.total(), &s), None);
        let no_ckpt = TrainSettings {
            gradient_checkpointing: false,
            ..s
        };
        let e = estimate(&cfg, &no_ckpt);
        assert!(e
            .refusal(1, &no_ckpt)
            .is_some_and(|m| m.contains("--gradient-checkpointing")));
    }
}
