//! Plausibility of a model's shape read from a file, checked before anything is allocated from
//! it: a hostile `config.json` or GGUF must fail with its name and the field, not abort on a
//! terabyte `Vec::with_capacity` or load NaN-producing settings silently.

use std::path::Path;

use super::config::ModelConfig;
use super::error::{ModelError, Result};

/// Upper bounds no real dense model reaches (the largest open models have ~130 layers, hidden
/// 16k-25k, vocabularies of 256k, contexts of 1-10M).
const MAX_LAYERS: usize = 1024;
const MAX_HIDDEN: usize = 1 << 17;
const MAX_HEADS: usize = 1024;
const MAX_HEAD_DIM: usize = 4096;
const MAX_INTERMEDIATE: usize = 1 << 20;
const MAX_VOCAB: usize = 1 << 23;
const MAX_CONTEXT: usize = 1 << 26;

fn range(path: &Path, field: &str, v: usize, max: usize) -> Result<()> {
    if v == 0 || v > max {
        return Err(ModelError::bad(
            path,
            format!("`{field}` is {v}; a plausible model has 1 to {max}"),
        ));
    }
    Ok(())
}

fn positive(path: &Path, field: &str, v: f64) -> Result<()> {
    if !(v.is_finite() && v > 0.0) {
        return Err(ModelError::bad(
            path,
            format!("`{field}` is {v}; it must be a positive number"),
        ));
    }
    Ok(())
}

impl ModelConfig {
    /// The config when every size and constant is plausible; else an error naming `path` and
    /// the field.
    pub(crate) fn validated(self, path: &Path) -> Result<Self> {
        range(path, "num_hidden_layers (block_count)", self.num_layers, MAX_LAYERS)?;
        range(path, "hidden_size (embedding_length)", self.hidden_size, MAX_HIDDEN)?;
        range(path, "num_attention_heads", self.num_heads, MAX_HEADS)?;
        range(path, "num_key_value_heads", self.num_kv_heads, MAX_HEADS)?;
        range(path, "head_dim", self.head_dim, MAX_HEAD_DIM)?;
        if !self.head_dim.is_multiple_of(2) {
            return Err(ModelError::bad(
                path,
                format!("`head_dim` {} must be even for rotary embeddings", self.head_dim),
            ));
        }
        range(
            path,
            "intermediate_size (feed_forward_length)",
            self.intermediate_size,
            MAX_INTERMEDIATE,
        )?;
        range(path, "vocab_size", self.vocab_size, MAX_VOCAB)?;
        range(
            path,
            "max_position_embeddings (context_length)",
            self.max_position_embeddings,
            MAX_CONTEXT,
        )?;
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return Err(ModelError::bad(
                path,
                format!(
                    "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                    self.num_heads, self.num_kv_heads
                ),
            ));
        }
        positive(path, "rope_theta", self.rope_theta)?;
        positive(path, "rms_norm_eps", self.rms_norm_eps)?;
        if self.rms_norm_eps >= 1.0 {
            return Err(ModelError::bad(
                path,
                format!("`rms_norm_eps` is {}; it must be below 1", self.rms_norm_eps),
            ));
        }
        if let Some(s) = &self.rope_scaling {
            positive(path, "rope_scaling.factor", s.factor)?;
            positive(path, "rope_scaling.low_freq_factor", s.low_freq_factor)?;
            positive(path, "rope_scaling.high_freq_factor", s.high_freq_factor)?;
            if s.high_freq_factor <= s.low_freq_factor {
                return Err(ModelError::bad(
                    path,
                    "`rope_scaling.high_freq_factor` must exceed `low_freq_factor`",
                ));
            }
            range(
                path,
                "rope_scaling.original_max_position_embeddings",
                s.original_max_position_embeddings,
                MAX_CONTEXT,
            )?;
        }
        if self.checked_num_parameters().is_none() {
            return Err(ModelError::bad(
                path,
                "the sizes imply more parameters than fit in memory",
            ));
        }
        Ok(self)
    }

    /// Checks the parameter count the config implies against the bytes of its weight files:
    /// even at 2 bits a parameter a file cannot hold more than 4 parameters a byte.
    pub fn check_against_bytes(&self, path: &Path, bytes: u64) -> Result<()> {
        let params = self.checked_num_parameters().unwrap_or(usize::MAX) as u64;
        if params / 4 > bytes {
            return Err(ModelError::bad(
                path,
                format!("the config implies {params} parameters but the weights hold only {bytes} bytes"),
            ));
        }
        Ok(())
    }

    /// bos/eos ids must name rows of the embedding.
    pub fn check_token_ids(&self, path: &Path) -> Result<()> {
        let ids = self.bos_token_id.iter().chain(&self.eos_token_ids);
        if let Some(id) = ids.copied().find(|&id| id as usize >= self.vocab_size) {
            return Err(ModelError::bad(
                path,
                format!("token id {id} (bos/eos) is past the vocabulary of {}", self.vocab_size),
            ));
        }
        Ok(())
    }
}
