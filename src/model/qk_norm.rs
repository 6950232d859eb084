//! Qwen3's per-head RMSNorm on queries and keys (`self_attn.q_norm`, `self_attn.k_norm`, each
//! `head_dim` wide), as transformers' `modeling_qwen3.py` applies it: on the projections viewed
//! as `[b, t, heads, head_dim]`, after any bias and before the rotary embedding.
//!
//! It runs through the decoder's [`RmsNorm`], so the training path is differentiable (the fused
//! CPU/CUDA rms_norm op normalises rows of the weight's width, here one head) and gradients reach
//! both weights. The CPU decode step (decoder_cpu_step.rs) applies the same norms in its own
//! loops; the whole-block training op (kernels/fused_block.rs) has none and declines these models.

use candle_core::Tensor;

use super::config::ModelConfig;
use super::decoder::{Path, RmsNorm};
use super::error::Result;
use super::weights::WeightLoader;

/// The two norms of one attention layer.
#[derive(Clone)]
pub(super) struct QkNorm {
    pub(super) q: RmsNorm,
    pub(super) k: RmsNorm,
}

impl QkNorm {
    /// Loads `{p}.q_norm.weight` and `{p}.k_norm.weight` when the architecture has them.
    pub(super) fn load(w: &mut dyn WeightLoader, p: &str, cfg: &ModelConfig) -> Result<Option<Self>> {
        if !cfg.arch.qk_norm() {
            return Ok(None);
        }
        let (d, eps) = (cfg.head_dim, cfg.rms_norm_eps);
        Ok(Some(Self {
            q: RmsNorm::load(w, &format!("{p}.q_norm"), d, eps)?,
            k: RmsNorm::load(w, &format!("{p}.k_norm"), d, eps)?,
        }))
    }

    /// Normalises each head of `q` `[b, t, h, d]` and `k` `[b, t, kvh, d]`.
    pub(super) fn apply(
        norm: Option<&Self>,
        q: Tensor,
        k: Tensor,
        path: Path,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        match norm {
            Some(n) => Ok((n.q.forward(&q, path)?, n.k.forward(&k, path)?)),
            None => Ok((q, k)),
        }
    }
}
