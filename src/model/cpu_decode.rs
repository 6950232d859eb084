//! The CPU decode step: one token through the decoder in plain loops over f32 buffers, with the
//! matrix products in `cpu_gemv` and keys/values in the host KV cache. It computes exactly what
//! `Decoder::forward` computes (tests/model_parity.rs checks the two against each other and
//! against transformers) but skips candle's per-op dispatch and allocation, which cost as much
//! as the weights' memory traffic for a small model.

use candle_core::{CpuStorage, DType, Storage, Tensor};

use super::cpu_pool::SpinPool;
use super::decoder::{Decoder, Linear};
use super::kv_cache::KvCache;

/// Calls `f` with the f32 data of a contiguous CPU tensor.
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let (st, layout) = t.storage_and_layout();
    match (&*st, layout.contiguous_offsets()) {
        (Storage::Cpu(CpuStorage::F32(v)), Some((a, b))) => Ok(f(&v[a..b])),
        _ => candle_core::bail!("cpu decode: expected a contiguous f32 CPU tensor"),
    }
}

fn rms_norm(x: &[f32], w: &Tensor, eps: f64) -> candle_core::Result<Vec<f32>> {
    let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let inv = 1.0 / (ms + eps as f32).sqrt();
    with_f32(w, |w| x.iter().zip(w).map(|(v, w)| v * inv * w).collect())
}

fn add_bias(y: &mut [f32], lin: &Linear) -> candle_core::Result<()> {
    if let Some(b) = &lin.bias {
        with_f32(b, |b| y.iter_mut().zip(b).for_each(|(y, b)| *y += b))?;
    }
    Ok(())
}

/// Rotates each `dim`-sized head of `x` in place for one position.
fn rope(x: &mut [f32], dim: usize, cos: &[f32], sin: &[f32], interleaved: bool) {
    let half = dim / 2;
    for head in x.chunks_exact_mut(dim) {
        for i in 0..half {
            let (a, b) = if interleaved { (2 * i, 2 * i + 1) } else { (i, i + half) };
            let (x1, x2) = (head[a], head[b]);
            head[a] = x1 * cos[i] - x2 * sin[i];
            head[b] = x2 * cos[i] + x1 * sin[i];
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

struct OutPtr(*mut f32);
// SAFETY: each task writes the disjoint output slice of its own head.
unsafe impl Sync for OutPtr {}

impl Decoder {
    /// Whether `forward` may run this call through [`Decoder::step_cpu`].
    pub(super) fn can_step_cpu(&self, b: usize, t: usize, cache: &KvCache) -> bool {
        self.device.is_cpu()
            && self.dtype == DType::F32
            && !self.differentiable
            && !self.has_lora()
            && b == 1
            && t <= 8
            && cache.is_host()
    }

    /// Feeds one token at the cache's end and returns the final hidden state (before the norm).
    pub(super) fn step_cpu(&self, token: u32, cache: &mut KvCache) -> candle_core::Result<Vec<f32>> {
        let cfg = &self.cfg;
        let (hsz, d) = (cfg.hidden_size, cfg.head_dim);
        let (nh, nkv) = (cfg.num_heads, cfg.num_kv_heads);
        let n_rep = nh / nkv;
        let pos = cache.len();
        if token as usize >= cfg.vocab_size {
            candle_core::bail!("token id {token} is outside the embedding ({} rows)", cfg.vocab_size);
        }
        let mut x = with_f32(&self.embed_tokens, |e| {
            e[token as usize * hsz..(token as usize + 1) * hsz].to_vec()
        })?;
        let (cos, sin): (Vec<f32>, Vec<f32>) = self
            .rotary
            .inv_freq
            .iter()
            .map(|&f| {
                let a = pos as f32 * f;
                (a.cos(), a.sin())
            })
            .unzip();
        let scale = 1.0 / (d as f32).sqrt();
        let gemv = |lins: &[&Linear], x: &[f32]| -> candle_core::Result<Vec<f32>> {
            Linear::gemv_many(lins, x, 1)?
                .ok_or_else(|| candle_core::Error::Msg("cpu decode: unsupported weight".into()))
        };
        for (li, layer) in self.layers.iter().enumerate() {
            let att = &layer.self_attn;
            let h = rms_norm(&x, &layer.input_layernorm.weight, layer.input_layernorm.eps)?;
            let mut qkv = gemv(&[&att.q_proj, &att.k_proj, &att.v_proj], &h)?;
            let (q, kv) = qkv.split_at_mut(nh * d);
            let (k, v) = kv.split_at_mut(nkv * d);
            add_bias(q, &att.q_proj)?;
            add_bias(k, &att.k_proj)?;
            add_bias(v, &att.v_proj)?;
            rope(q, d, &cos, &sin, self.rotary.interleaved);
            rope(k, d, &cos, &sin, self.rotary.interleaved);
            let Some(store) = cache.host(li, nkv, d) else {
                candle_core::bail!("cpu decode: the cache holds device tensors");
            };
            store.reserve(pos + 1, pos);
            for g in 0..nkv {
                store.write(g, pos, &k[g * d..(g + 1) * d], &v[g * d..(g + 1) * d]);
            }
            let len = pos + 1;
            let mut attn = vec![0f32; nh * d];
            let out = OutPtr(attn.as_mut_ptr());
            let out = &out;
            let q = &*q;
            let store = &*store;
            let head = |hq: usize| {
                let g = hq / n_rep;
                let (keys, vals) = (store.keys(g, len), store.values(g, len));
                let qh = &q[hq * d..(hq + 1) * d];
                let mut scores: Vec<f32> = keys.chunks_exact(d).map(|kt| dot(qh, kt) * scale).collect();
                let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0;
                for s in scores.iter_mut() {
                    *s = (*s - max).exp();
                    sum += *s;
                }
                let mut o = vec![0f32; d];
                for (p, vt) in scores.iter().zip(vals.chunks_exact(d)) {
                    let w = p / sum;
                    o.iter_mut().zip(vt).for_each(|(o, v)| *o += w * v);
                }
                // SAFETY: head hq writes only attn[hq*d..(hq+1)*d].
                unsafe { std::ptr::copy_nonoverlapping(o.as_ptr(), out.0.add(hq * d), d) };
            };
            if len * d * nh > 1 << 16 {
                SpinPool::global().run(nh, &head);
            } else {
                (0..nh).for_each(head);
            }
            let mut o = gemv(&[&att.o_proj], &attn)?;
            add_bias(&mut o, &att.o_proj)?;
            x.iter_mut().zip(&o).for_each(|(x, o)| *x += o);
            let h = rms_norm(
                &x,
                &layer.post_attention_layernorm.weight,
                layer.post_attention_layernorm.eps,
            )?;
            let mlp = &layer.mlp;
            let mut gu = gemv(&[&mlp.gate_proj, &mlp.up_proj], &h)?;
            let (g, u) = gu.split_at_mut(cfg.intermediate_size);
            add_bias(g, &mlp.gate_proj)?;
            add_bias(u, &mlp.up_proj)?;
            for (g, u) in g.iter_mut().zip(u.iter()) {
                *g = *g / (1.0 + (-*g).exp()) * u;
            }
            let mut down = gemv(&[&mlp.down_proj], g)?;
            add_bias(&mut down, &mlp.down_proj)?;
            x.iter_mut().zip(&down).for_each(|(x, o)| *x += o);
        }
        cache.advance(1);
        Ok(x)
    }

    /// Final norm and output head for one hidden state.
    pub(super) fn head_cpu(&self, x: &[f32]) -> candle_core::Result<Vec<f32>> {
        let h = rms_norm(x, &self.norm.weight, self.norm.eps)?;
        let mut logits = Linear::gemv_many(&[&self.lm_head], &h, 1)?
            .ok_or_else(|| candle_core::Error::Msg("cpu decode: unsupported head weight".into()))?;
        add_bias(&mut logits, &self.lm_head)?;
        Ok(logits)
    }
}
