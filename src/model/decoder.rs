//! The Llama-family decoder (Llama, SmolLM2, Qwen2/Qwen2.5, Qwen3), following transformers'
//! `modeling_llama.py` / `modeling_qwen2.py` / `modeling_qwen3.py`: pre-norm blocks of
//! grouped-query attention with rotary embeddings (Qwen3: per-head q/k RMSNorm, qk_norm.rs) and a
//! SwiGLU MLP, RMSNorm, optional tied embeddings.
//!
//! One implementation serves inference (fused candle kernels, KV cache, quantized GGUF weights) and
//! training (`set_differentiable(true)`: the same computation from differentiable ops only, since
//! candle's fused rms_norm, softmax and rope have no backward pass).

use candle_core::{DType, Device, Tensor, D};

use super::config::ModelConfig;
use super::error::Result;
use super::kernels::{fused_attention, fused_block, fused_embedding, fused_ops};
use super::kv_cache::KvCache;
use super::qk_norm::QkNorm;
use super::weights::{Weight, WeightLoader};

pub use super::linear::Linear;

/// Which ops a forward pass uses: the fused inference kernels, or differentiable ops for
/// training (the fused CPU ops of kernels/fused_ops.rs with a backward where they apply, else candle's
/// composed differentiable ops).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Path {
    Inference,
    Train,
    /// Training with candle's composed ops only (what other devices run; a reference in tests).
    TrainComposed,
}

impl Path {
    fn diff(self) -> bool {
        self != Path::Inference
    }

    /// Whether the fused training ops apply to `x`.
    fn fused(self, x: &Tensor) -> bool {
        self == Path::Train && fused_ops::supported(x)
    }

    /// Whether the fused RMSNorm, causal softmax and SwiGLU apply to `x`: on the CPU path, or
    /// as CUDA kernels.
    fn kernels(self, x: &Tensor) -> bool {
        self == Path::Train && (fused_ops::supported(x) || fused_ops::supported_cuda(x))
    }
}

/// Root-mean-square layer norm.
#[derive(Clone)]
pub(super) struct RmsNorm {
    pub(super) weight: Tensor,
    pub(super) eps: f64,
}

impl RmsNorm {
    pub(super) fn load(w: &mut dyn WeightLoader, name: &str, size: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: w.tensor(&format!("{name}.weight"), &[size])?,
            eps,
        })
    }

    pub(super) fn forward(&self, x: &Tensor, path: Path) -> candle_core::Result<Tensor> {
        if !path.diff() {
            return candle_nn::ops::rms_norm(&x.contiguous()?, &self.weight, self.eps as f32);
        }
        if path.kernels(x) && self.weight.dtype() == x.dtype() {
            return fused_ops::rms_norm(x, &self.weight, self.eps as f32);
        }
        // As transformers: normalise in f32, cast back, then scale.
        let dtype = x.dtype();
        let xf = x.to_dtype(DType::F32)?;
        let var = xf.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = xf.broadcast_div(&(var + self.eps)?.sqrt()?)?.to_dtype(dtype)?;
        normed.broadcast_mul(&self.weight)
    }
}

/// Rotary position embedding tables, computed for the positions of each call.
#[derive(Clone)]
pub(super) struct Rotary {
    pub(super) inv_freq: Vec<f32>,
    pub(super) interleaved: bool,
}

impl Rotary {
    fn new(cfg: &ModelConfig) -> Self {
        let d = cfg.head_dim;
        let mut inv_freq: Vec<f64> = (0..d / 2)
            .map(|i| 1.0 / cfg.rope_theta.powf(2.0 * i as f64 / d as f64))
            .collect();
        if let Some(s) = cfg.rope_scaling {
            // transformers' `_compute_llama3_parameters`.
            let old = s.original_max_position_embeddings as f64;
            let low_wavelen = old / s.low_freq_factor;
            let high_wavelen = old / s.high_freq_factor;
            for f in inv_freq.iter_mut() {
                let wavelen = 2.0 * std::f64::consts::PI / *f;
                if wavelen > low_wavelen {
                    *f /= s.factor;
                } else if wavelen >= high_wavelen {
                    let smooth = (old / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
                    *f = (1.0 - smooth) * *f / s.factor + smooth * *f;
                }
            }
        }
        if let Some(factors) = &cfg.rope_freq_factors {
            // llama.cpp's rope_freqs: each angle divided by its factor.
            for (f, k) in inv_freq.iter_mut().zip(factors) {
                *f /= f64::from(*k);
            }
        }
        Self {
            inv_freq: inv_freq.into_iter().map(|f| f as f32).collect(),
            interleaved: cfg.rope_interleaved,
        }
    }

    /// cos and sin tables `[t, d/2]` for positions `start..start + t`.
    fn tables(&self, start: usize, t: usize, dtype: DType, device: &Device) -> candle_core::Result<(Tensor, Tensor)> {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(t * half);
        let mut sin = Vec::with_capacity(t * half);
        for p in start..start + t {
            for &f in &self.inv_freq {
                let a = p as f32 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        let cos = Tensor::from_vec(cos, (t, half), device)?.to_dtype(dtype)?;
        let sin = Tensor::from_vec(sin, (t, half), device)?.to_dtype(dtype)?;
        Ok((cos, sin))
    }

    /// Applies the rotation to `x` `[b, h, t, d]`.
    pub(super) fn apply(&self, x: &Tensor, cos: &Tensor, sin: &Tensor, path: Path) -> candle_core::Result<Tensor> {
        let x = x.contiguous()?;
        match (self.interleaved, path.diff()) {
            (false, false) => candle_nn::rotary_emb::rope(&x, cos, sin),
            (false, true) if path.fused(&x) && cos.dtype() == DType::F32 => fused_ops::rope(&x, cos, sin),
            (false, true) => candle_nn::rotary_emb::rope_slow(&x, cos, sin),
            (true, false) => candle_nn::rotary_emb::rope_i(&x, cos, sin),
            (true, true) => candle_nn::rotary_emb::rope_i_slow(&x, cos, sin),
        }
    }
}

#[derive(Clone)]
pub(super) struct Attention {
    pub(super) q_proj: Linear,
    pub(super) k_proj: Linear,
    pub(super) v_proj: Linear,
    pub(super) o_proj: Linear,
    /// Qwen3's per-head q/k RMSNorm.
    pub(super) qk_norm: Option<QkNorm>,
    pub(super) num_heads: usize,
    pub(super) num_kv_heads: usize,
    pub(super) head_dim: usize,
}

impl Attention {
    fn load(w: &mut dyn WeightLoader, p: &str, cfg: &ModelConfig) -> Result<Self> {
        let (h, d) = (cfg.hidden_size, cfg.head_dim);
        Ok(Self {
            q_proj: Linear::load(w, &format!("{p}.q_proj"), cfg.num_heads * d, h, cfg.qkv_bias)?,
            k_proj: Linear::load(w, &format!("{p}.k_proj"), cfg.num_kv_heads * d, h, cfg.qkv_bias)?,
            v_proj: Linear::load(w, &format!("{p}.v_proj"), cfg.num_kv_heads * d, h, cfg.qkv_bias)?,
            o_proj: Linear::load(w, &format!("{p}.o_proj"), h, cfg.num_heads * d, cfg.o_bias)?,
            qk_norm: QkNorm::load(w, p, cfg)?,
            num_heads: cfg.num_heads,
            num_kv_heads: cfg.num_kv_heads,
            head_dim: d,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        x: &Tensor,
        rotary: &Rotary,
        (cos, sin): (&Tensor, &Tensor),
        mask: Option<&Tensor>,
        cache: Option<(&mut KvCache, usize)>,
        path: Path,
    ) -> candle_core::Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        if path.fused(x) && cache.is_none() && !rotary.interleaved {
            return self.forward_train_fused(x, (cos, sin));
        }
        let differentiable = path.diff();
        let (h, kvh, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let qkv = Linear::forward_group(&[&self.q_proj, &self.k_proj, &self.v_proj], x, !differentiable)?;
        let (q, k) = (qkv[0].reshape((b, t, h, d))?, qkv[1].reshape((b, t, kvh, d))?);
        let (q, k) = QkNorm::apply(self.qk_norm.as_ref(), q, k, path)?;
        let (q, k) = (q.transpose(1, 2)?, k.transpose(1, 2)?);
        let v = qkv[2].reshape((b, t, kvh, d))?.transpose(1, 2)?;
        let q = rotary.apply(&q, cos, sin, path)?;
        let k = rotary.apply(&k, cos, sin, path)?;
        if cache.is_none() && path.kernels(&q) && fused_attention::cuda_applies(&q, d) {
            // Training on CUDA: the FlashAttention kernels (memory linear in t) on the
            // [b, t, heads * d] layout.
            let q = q.transpose(1, 2)?.contiguous()?.reshape((b, t, h * d))?;
            let k = k.transpose(1, 2)?.contiguous()?.reshape((b, t, kvh * d))?;
            let out = fused_attention::causal_attention(&q, &k, &qkv[2].contiguous()?, h, kvh, d)?;
            return self.o_proj.forward(&out, !differentiable);
        }
        let (k, v) = match cache {
            Some((cache, layer)) => cache.append(layer, &k, &v)?,
            None => (k, v.contiguous()?),
        };
        let total = k.dim(2)?;
        // Grouped-query attention without copying keys: the n_rep query heads that share a kv
        // head are stacked along the sequence axis, [b, kvh, n_rep * t, d].
        let n_rep = h / kvh;
        let q = q.reshape((b, kvh, n_rep * t, d))?;
        let scale = 1.0 / (d as f64).sqrt();
        if path.kernels(&q) {
            // Scale, causal mask and softmax in one op with a backward.
            let start = total - t;
            let probs = fused_ops::causal_softmax(&q.matmul(&k.t()?)?, scale as f32, t, start)?;
            let out = probs.matmul(&v)?;
            let out = out.reshape((b, h, t, d))?.transpose(1, 2)?.reshape((b, t, h * d))?;
            return self.o_proj.forward(&out, false);
        }
        let scores = (q.matmul(&k.t()?)? * scale)?;
        let scores = if scores.dtype() == DType::F32 {
            scores
        } else {
            scores.to_dtype(DType::F32)?
        };
        let scores = match mask {
            Some(m) => {
                scores
                    .reshape((b, kvh, n_rep, t, total))?
                    .broadcast_add(m)?
                    .reshape((b, kvh, n_rep * t, total))?
            }
            None => scores,
        };
        let probs = if differentiable {
            candle_nn::ops::softmax(&scores, D::Minus1)?
        } else {
            candle_nn::ops::softmax_last_dim(&scores)?
        };
        let probs = probs.to_dtype(v.dtype())?;
        let out = probs.matmul(&v)?; // [b, kvh, n_rep * t, d]
        let out = out.reshape((b, h, t, d))?.transpose(1, 2)?.reshape((b, t, h * d))?;
        self.o_proj.forward(&out, !differentiable)
    }
}

impl Attention {
    /// The training path on the CPU: fused linear, rope and attention ops with a backward,
    /// operating on the `[b, t, heads * d]` layout the projections write.
    fn forward_train_fused(&self, x: &Tensor, (cos, sin): (&Tensor, &Tensor)) -> candle_core::Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (h, kvh, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let q = self.q_proj.forward_train(x)?.reshape((b, t, h, d))?;
        let k = self.k_proj.forward_train(x)?.reshape((b, t, kvh, d))?;
        let v = self.v_proj.forward_train(x)?;
        let (q, k) = QkNorm::apply(self.qk_norm.as_ref(), q, k, Path::Train)?;
        let q = fused_ops::rope_bthd(&q, cos, sin)?.reshape((b, t, h * d))?;
        let k = fused_ops::rope_bthd(&k, cos, sin)?.reshape((b, t, kvh * d))?;
        let out = fused_attention::causal_attention(&q, &k, &v, h, kvh, d)?;
        self.o_proj.forward_train(&out)
    }
}

#[derive(Clone)]
pub(super) struct Mlp {
    pub(super) gate_proj: Linear,
    pub(super) up_proj: Linear,
    pub(super) down_proj: Linear,
}

impl Mlp {
    fn load(w: &mut dyn WeightLoader, p: &str, cfg: &ModelConfig) -> Result<Self> {
        let (h, i, b) = (cfg.hidden_size, cfg.intermediate_size, cfg.mlp_bias);
        Ok(Self {
            gate_proj: Linear::load(w, &format!("{p}.gate_proj"), i, h, b)?,
            up_proj: Linear::load(w, &format!("{p}.up_proj"), i, h, b)?,
            down_proj: Linear::load(w, &format!("{p}.down_proj"), h, i, b)?,
        })
    }

    pub(super) fn forward(&self, x: &Tensor, path: Path) -> candle_core::Result<Tensor> {
        let fast = !path.diff();
        if path.fused(x) {
            let g = self.gate_proj.forward_train(x)?;
            let u = self.up_proj.forward_train(x)?;
            return self.down_proj.forward_train(&fused_ops::swiglu(&g, &u)?);
        }
        let gu = Linear::forward_group(&[&self.gate_proj, &self.up_proj], x, fast)?;
        if path.kernels(x) {
            return self.down_proj.forward(&fused_ops::swiglu(&gu[0], &gu[1])?, fast);
        }
        let gate = candle_nn::ops::silu(&gu[0])?;
        self.down_proj.forward(&(gate * &gu[1])?, fast)
    }
}

#[derive(Clone)]
pub(super) struct Block {
    pub(super) input_layernorm: RmsNorm,
    pub(super) self_attn: Attention,
    pub(super) post_attention_layernorm: RmsNorm,
    pub(super) mlp: Mlp,
}

impl Block {
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        x: &Tensor,
        rotary: &Rotary,
        tables: (&Tensor, &Tensor),
        mask: Option<&Tensor>,
        cache: Option<(&mut KvCache, usize)>,
        path: Path,
    ) -> candle_core::Result<Tensor> {
        let hs = self.input_layernorm.forward(x, path)?;
        let hs = self.self_attn.forward(&hs, rotary, tables, mask, cache, path)?;
        let x1 = (x + hs)?;
        let hs = self.post_attention_layernorm.forward(&x1, path)?;
        let hs = self.mlp.forward(&hs, path)?;
        x1 + hs
    }
}

impl Block {
    /// The parameters for the whole-block CPU op (dense weights, no adapter), or None.
    fn block_params(&self) -> Option<fused_block::BlockParams> {
        let a = &self.self_attn;
        let m = &self.mlp;
        let lin = |l: &Linear| match (&l.weight, &l.lora) {
            (Weight::Dense(w), None) => Some((w.clone(), l.bias.clone())),
            _ => None,
        };
        Some(fused_block::BlockParams {
            in_norm: self.input_layernorm.weight.clone(),
            post_norm: self.post_attention_layernorm.weight.clone(),
            linears: [
                lin(&a.q_proj)?,
                lin(&a.k_proj)?,
                lin(&a.v_proj)?,
                lin(&a.o_proj)?,
                lin(&m.gate_proj)?,
                lin(&m.up_proj)?,
                lin(&m.down_proj)?,
            ],
            eps: self.input_layernorm.eps as f32,
            heads: a.num_heads,
            kv_heads: a.num_kv_heads,
            head_dim: a.head_dim,
        })
        .filter(|_| self.input_layernorm.eps == self.post_attention_layernorm.eps && a.qk_norm.is_none())
    }
}

/// Which positions the forward pass returns logits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// Every position: `[b, t, vocab]` (training, parity checks).
    All,
    /// Only the last position: `[b, 1, vocab]` (generation; skips the head on the prompt).
    Last,
}

/// The decoder-only language model.
#[derive(Clone)]
pub struct Decoder {
    pub(super) cfg: ModelConfig,
    pub(super) embed_tokens: Tensor,
    pub(super) layers: Vec<Block>,
    pub(super) norm: RmsNorm,
    pub(super) lm_head: Linear,
    pub(super) rotary: Rotary,
    /// The output head is the embedding matrix.
    pub(super) tied_head: bool,
    pub(super) differentiable: bool,
    /// Training uses the fused CPU ops where they apply (default), else composed ops only.
    pub(super) fused_training: bool,
    /// Prompts of several tokens go through `decoder_cpu_prefill` where it applies (default).
    pub(super) cpu_prefill: bool,
    pub(super) device: Device,
    pub(super) dtype: DType,
}

impl Decoder {
    /// Builds the decoder from `weights`, checking every tensor against `cfg`.
    pub fn load(cfg: &ModelConfig, weights: &mut dyn WeightLoader, dtype: DType, device: &Device) -> Result<Self> {
        Self::load_with_progress(cfg, weights, dtype, device, &mut |_, _| {})
    }

    /// As [`Decoder::load`], calling `progress(layers_done, layers)` as layers load.
    pub fn load_with_progress(
        cfg: &ModelConfig,
        weights: &mut dyn WeightLoader,
        dtype: DType,
        device: &Device,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self> {
        let h = cfg.hidden_size;
        let embed_tokens = weights.tensor("model.embed_tokens.weight", &[cfg.vocab_size, h])?;
        let mut layers = Vec::with_capacity(cfg.num_layers);
        for i in 0..cfg.num_layers {
            let p = format!("model.layers.{i}");
            layers.push(Block {
                input_layernorm: RmsNorm::load(weights, &format!("{p}.input_layernorm"), h, cfg.rms_norm_eps)?,
                self_attn: Attention::load(weights, &format!("{p}.self_attn"), cfg)?,
                post_attention_layernorm: RmsNorm::load(
                    weights,
                    &format!("{p}.post_attention_layernorm"),
                    h,
                    cfg.rms_norm_eps,
                )?,
                mlp: Mlp::load(weights, &format!("{p}.mlp"), cfg)?,
            });
            progress(i + 1, cfg.num_layers);
        }
        let norm = RmsNorm::load(weights, "model.norm", h, cfg.rms_norm_eps)?;
        let tied = cfg.tie_word_embeddings || !weights.contains("lm_head.weight");
        let lm_head = if tied {
            Linear {
                weight: weights.matrix("model.embed_tokens.weight", cfg.vocab_size, h)?,
                bias: None,
                lora: None,
            }
        } else {
            Linear::load(weights, "lm_head", cfg.vocab_size, h, false)?
        };
        Ok(Self {
            cfg: cfg.clone(),
            embed_tokens,
            layers,
            norm,
            lm_head,
            rotary: Rotary::new(cfg),
            tied_head: tied,
            differentiable: false,
            fused_training: true,
            cpu_prefill: true,
            device: device.clone(),
            dtype,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Prompts through the CPU prefill kernels (default) or, off, through the general path
    /// (tests compare the two).
    pub fn set_cpu_prefill(&mut self, on: bool) {
        self.cpu_prefill = on;
    }

    /// Use only differentiable ops (for training); slower than the fused inference kernels.
    pub fn set_differentiable(&mut self, on: bool) {
        self.differentiable = on;
    }

    /// Training with the fused CPU ops (default) or candle's composed differentiable ops only.
    pub fn set_fused_training_ops(&mut self, on: bool) {
        self.fused_training = on;
    }

    pub(super) fn path(&self) -> Path {
        if self.differentiable {
            self.train_path()
        } else {
            Path::Inference
        }
    }

    fn train_path(&self) -> Path {
        if self.fused_training {
            Path::Train
        } else {
            Path::TrainComposed
        }
    }

    /// Runs `input_ids` `[b, t]` (positions continue after what `cache` holds) and returns f32
    /// logits. With a cache, the new keys and values are appended to it.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        mut cache: Option<&mut KvCache>,
        logits: Logits,
    ) -> candle_core::Result<Tensor> {
        let (b, t) = input_ids.dims2()?;
        if let Some(c) = cache.as_deref_mut() {
            if self.can_prefill_cpu(b, t, c) {
                return self.prefill_cpu_logits(input_ids, c, logits);
            }
            if self.can_step_cpu(b, t, c) {
                let ids = input_ids.flatten_all()?.to_vec1::<u32>()?;
                let mut rows = Vec::new();
                for (i, &id) in ids.iter().enumerate() {
                    let hidden = self.step_cpu(id, c)?;
                    if logits == Logits::All || i + 1 == ids.len() {
                        rows.extend(self.head_cpu(&hidden)?);
                    }
                }
                let n = rows.len() / self.cfg.vocab_size;
                return Tensor::from_vec(rows, (1, n, self.cfg.vocab_size), &self.device);
            }
        }
        let x = self.through_layers(input_ids, cache)?;
        let x = match logits {
            Logits::All => x,
            Logits::Last => x.narrow(1, t - 1, 1)?,
        };
        let x = self.norm.forward(&x, self.path())?;
        self.lm_head.forward(&x, !self.differentiable)?.to_dtype(DType::F32)
    }

    /// `input_ids` `[b, t]` through the embedding and every layer (positions after what `cache`
    /// holds, which receives the new keys and values): the hidden states before the final norm.
    fn through_layers(&self, input_ids: &Tensor, mut cache: Option<&mut KvCache>) -> candle_core::Result<Tensor> {
        let (b, t) = input_ids.dims2()?;
        let start = cache.as_ref().map_or(0, |c| c.len());
        let mut x =
            self.embed_tokens
                .index_select(&input_ids.flatten_all()?, 0)?
                .reshape((b, t, self.cfg.hidden_size))?;
        let (cos, sin) = self.rotary.tables(start, t, self.dtype, &self.device)?;
        let mask = if t > 1 {
            Some(causal_mask(t, start, &self.device)?)
        } else {
            None
        };
        for (i, layer) in self.layers.iter().enumerate() {
            let c = cache.as_deref_mut().map(|c| (c, i));
            x = layer.forward(&x, &self.rotary, (&cos, &sin), mask.as_ref(), c, self.path())?;
        }
        if let Some(c) = cache {
            c.advance(t);
        }
        Ok(x)
    }

    /// The last hidden states `[b, t, hidden]` (f32) of `input_ids` `[b, t]` from position 0:
    /// after the final norm, before the head (what transformers returns as the last of
    /// `hidden_states`), so text embeddings can be pooled from them. The attention is causal, so
    /// a sequence padded on the right has, at its own positions, the states it has alone. One
    /// sequence of a CPU-quantized model goes through the CPU prefill kernels.
    pub fn hidden_states(&self, input_ids: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t) = input_ids.dims2()?;
        let mut cache = self.new_cache();
        let x = if self.can_prefill_cpu(b, t, &cache) {
            let ids = input_ids.flatten_all()?.to_vec1::<u32>()?;
            let rows = self.prefill_cpu(&ids, &mut cache)?;
            Tensor::from_vec(rows, (1, t, self.cfg.hidden_size), &self.device)?
        } else {
            self.through_layers(input_ids, None)?
        };
        self.norm.forward(&x, Path::Inference)?.to_dtype(DType::F32)
    }

    /// Whether [`Decoder::hidden_states`] is fastest one sequence at a time: a CPU-quantized
    /// model, whose prefill kernels take one sequence (a batch would take candle's slower path).
    pub fn hidden_states_one_at_a_time(&self) -> bool {
        self.can_prefill_cpu(1, 2, &self.new_cache())
    }

    /// Training: the input embeddings `[b, t, hidden]` of `input_ids` `[b, t]`.
    pub fn embed(&self, input_ids: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t) = input_ids.dims2()?;
        fused_embedding::embedding(&self.embed_tokens, input_ids)?.reshape((b, t, self.cfg.hidden_size))
    }

    /// Training: the rotary tables for positions `0..t`.
    pub fn rope_tables(&self, t: usize) -> candle_core::Result<(Tensor, Tensor)> {
        self.rotary.tables(0, t, self.dtype, &self.device)
    }

    /// Training: decoder layer `i` over a whole sequence `x` `[b, t, hidden]` (causal, from
    /// position 0, no cache) with the differentiable ops.
    pub fn layer_forward(&self, i: usize, x: &Tensor, tables: (&Tensor, &Tensor)) -> candle_core::Result<Tensor> {
        let t = x.dim(1)?;
        let path = self.train_path();
        let mask = if t > 1 && !path.kernels(x) {
            Some(causal_mask(t, 0, &self.device)?)
        } else {
            None
        };
        self.layers[i].forward(x, &self.rotary, tables, mask.as_ref(), None, path)
    }

    /// Training: layer `i` as [`Decoder::layer_forward`], but as one whole-block op where it
    /// applies (f32 on the CPU, the fused training ops, every parameter a trainable variable, no
    /// adapter): its backward returns the input's gradient and puts the block's parameter
    /// gradients into `sink` instead of candle's gradient store.
    pub fn layer_forward_into(
        &self,
        i: usize,
        x: &Tensor,
        (cos, sin): (&Tensor, &Tensor),
        sink: &std::sync::Arc<fused_block::GradSink>,
    ) -> candle_core::Result<Tensor> {
        if self.train_path() == Path::Train && !self.rotary.interleaved {
            if let Some(p) = self.layers[i].block_params().filter(|p| p.applies(x)) {
                return fused_block::block(std::sync::Arc::new(p), x, cos, sin, sink);
            }
        }
        self.layer_forward(i, x, (cos, sin))
    }

    /// Training: the final norm (differentiable).
    pub fn final_norm(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.norm.forward(x, self.train_path())
    }

    /// Training: the output projection's weight `[vocab, hidden]` (the embedding when tied).
    pub fn head_weight(&self) -> candle_core::Result<&Tensor> {
        match &self.lm_head.weight {
            Weight::Dense(w) => Ok(w),
            _ => candle_core::bail!("the output head is quantized; training needs dense weights"),
        }
    }

    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// An empty cache for this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.cfg.num_layers)
    }
}

/// Additive causal mask `[t, start + t]` (f32): query i at position start+i sees keys <= start+i.
fn causal_mask(t: usize, start: usize, device: &Device) -> candle_core::Result<Tensor> {
    let total = start + t;
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| (0..total).map(move |j| if j > start + i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(mask, (t, total), device)
}
