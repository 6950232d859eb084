//! The CPU decode step: one token through the decoder in plain loops over f32 buffers, with the
//! matrix products in `kernels::cpu_gemv` and keys/values in the host KV cache. It computes exactly what
//! `Decoder::forward` computes (tests/model_parity.rs checks the two against each other and
//! against transformers) but skips candle's per-op dispatch and allocation, which cost as much
//! as the weights' memory traffic for a small model.

use std::collections::BTreeMap;

use candle_core::quantized::QMatMul;
use candle_core::{CpuStorage, DType, Storage, Tensor};

use super::decoder::{Decoder, Linear, RmsNorm};
use super::kernels::cpu_pool::SpinPool;
use super::kv_cache::KvCache;
use super::weights::Weight;

/// Calls `f` with the f32 data of a contiguous CPU tensor.
pub(super) fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let (st, layout) = t.storage_and_layout();
    match (&*st, layout.contiguous_offsets()) {
        (Storage::Cpu(CpuStorage::F32(v)), Some((a, b))) => Ok(f(&v[a..b])),
        _ => candle_core::bail!("cpu decode: expected a contiguous f32 CPU tensor"),
    }
}

pub(super) fn rms_norm(x: &[f32], w: &Tensor, eps: f64) -> candle_core::Result<Vec<f32>> {
    let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let inv = 1.0 / (ms + eps as f32).sqrt();
    with_f32(w, |w| x.iter().zip(w).map(|(v, w)| v * inv * w).collect())
}

pub(super) fn add_bias(y: &mut [f32], lin: &Linear) -> candle_core::Result<()> {
    if let Some(b) = &lin.bias {
        with_f32(b, |b| y.iter_mut().zip(b).for_each(|(y, b)| *y += b))?;
    }
    Ok(())
}

/// Qwen3's q/k norm: RMSNorm over each `dim`-sized head of `x`, in place (the weight read once,
/// no allocation per head: this runs for every head of every layer of every token).
pub(super) fn head_rms_norm(x: &mut [f32], dim: usize, norm: &RmsNorm) -> candle_core::Result<()> {
    let eps = norm.eps as f32;
    with_f32(&norm.weight, |w| {
        for head in x.chunks_exact_mut(dim) {
            let ms = head.iter().map(|v| v * v).sum::<f32>() / dim as f32;
            let inv = 1.0 / (ms + eps).sqrt();
            head.iter_mut().zip(w).for_each(|(v, w)| *v = *v * inv * w);
        }
    })
}

/// Rotates each `dim`-sized head of `x` in place for one position.
pub(super) fn rope(x: &mut [f32], dim: usize, cos: &[f32], sin: &[f32], interleaved: bool) {
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

/// Rows of activations per `gemv_many` call: 8 where a dense weight is among `lins` (its kernel
/// takes at most 8), else 64 (the quantized kernels read each weight once for all of them).
fn row_tile(lins: &[&Linear]) -> usize {
    if lins.iter().all(|l| matches!(l.weight(), Weight::CpuQuant(_))) {
        64
    } else {
        8
    }
}

/// `W x` (no bias) for each of `lins` over the `m` rows of `x`, `tile` rows per `gemv_many` call;
/// per matrix an `[m, out]` block. The decode step and the prefill share it.
pub(super) fn gemv_rows(lins: &[&Linear], x: &[f32], m: usize, tile: usize) -> candle_core::Result<Vec<Vec<f32>>> {
    let k = x.len() / m.max(1);
    let mut per_mat: Vec<Vec<f32>> = Vec::with_capacity(lins.len());
    for l in lins {
        per_mat.push(Vec::with_capacity(l.out_features()? * m));
    }
    for rows in x.chunks(tile * k) {
        let rows_here = rows.len() / k;
        let y = Linear::gemv_many(lins, rows, rows_here)?
            .ok_or_else(|| candle_core::Error::Msg("cpu row kernels: unsupported weight".into()))?;
        let mut off = 0;
        for (i, l) in lins.iter().enumerate() {
            let n = l.out_features()? * rows_here;
            per_mat[i].extend_from_slice(&y[off..off + n]);
            off += n;
        }
    }
    Ok(per_mat)
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
            && self.kernels_read_all()
    }

    /// Every matrix of the model (the 7 of each layer, then the output head).
    fn matrices(&self) -> impl Iterator<Item = &Linear> {
        self.layers
            .iter()
            .flat_map(|l| {
                let (a, m) = (&l.self_attn, &l.mlp);
                [
                    &a.q_proj,
                    &a.k_proj,
                    &a.v_proj,
                    &a.o_proj,
                    &m.gate_proj,
                    &m.up_proj,
                    &m.down_proj,
                ]
            })
            .chain(std::iter::once(&self.lm_head))
    }

    /// Whether `cpu_gemv` reads every matrix (CPU-quantized, or dense f32 on the CPU), so that
    /// the CPU decode step can run: a GGUF with one tensor of a type the kernels lack (Q3_K, ...)
    /// decodes through candle's ops instead.
    pub fn kernels_read_all(&self) -> bool {
        self.matrices().all(|l| match l.weight() {
            Weight::CpuQuant(_) => true,
            Weight::Dense(w) => w.dtype() == DType::F32 && w.device().is_cpu() && w.is_contiguous(),
            Weight::Quantized(_) => false,
        })
    }

    /// How many matrices of each kind the model holds, as `kernel Q4K` (this project's CPU
    /// kernels), `candle Q3K` (candle's quantized product) or `dense F32`: what a benchmark or a
    /// test reports about where the products run.
    pub fn weight_kinds(&self) -> BTreeMap<String, usize> {
        let mut kinds = BTreeMap::new();
        for l in self.matrices() {
            let kind = match l.weight() {
                Weight::CpuQuant(q) => format!("kernel {:?}", q.format()),
                Weight::Quantized(q) => match &**q {
                    QMatMul::QTensor(t) => format!("candle {:?}", t.dtype()),
                    QMatMul::Tensor(t) | QMatMul::TensorF16(t) => format!("dense {:?}", t.dtype()),
                },
                Weight::Dense(w) => format!("dense {:?}", w.dtype()),
            };
            *kinds.entry(kind).or_insert(0) += 1;
        }
        kinds
    }

    /// Feeds one token at the cache's end and returns the final hidden state (before the norm).
    pub(super) fn step_cpu(&self, token: u32, cache: &mut KvCache) -> candle_core::Result<Vec<f32>> {
        Ok(self.step_cpu_batch(&[token], &mut [cache])?.remove(0))
    }

    /// Feeds one token to each of several sequences (each at its own cache's end, so at its own
    /// position) and returns their final hidden states: the weights are read once for all rows.
    pub fn step_cpu_batch(&self, tokens: &[u32], caches: &mut [&mut KvCache]) -> candle_core::Result<Vec<Vec<f32>>> {
        let cfg = &self.cfg;
        let (hsz, d) = (cfg.hidden_size, cfg.head_dim);
        let (nh, nkv) = (cfg.num_heads, cfg.num_kv_heads);
        let n_rep = nh / nkv;
        let bsz = tokens.len();
        if caches.len() != bsz {
            candle_core::bail!("cpu decode: {bsz} tokens for {} caches", caches.len());
        }
        if let Some(&t) = tokens.iter().find(|&&t| t as usize >= cfg.vocab_size) {
            candle_core::bail!("token id {t} is outside the embedding ({} rows)", cfg.vocab_size);
        }
        let mut x = with_f32(&self.embed_tokens, |e| {
            tokens
                .iter()
                .flat_map(|&t| e[t as usize * hsz..(t as usize + 1) * hsz].iter().copied())
                .collect::<Vec<f32>>()
        })?;
        let positions: Vec<usize> = caches.iter().map(|c| c.len()).collect();
        let tables: Vec<(Vec<f32>, Vec<f32>)> = positions
            .iter()
            .map(|&pos| {
                self.rotary
                    .inv_freq
                    .iter()
                    .map(|&f| {
                        let a = pos as f32 * f;
                        (a.cos(), a.sin())
                    })
                    .unzip()
            })
            .collect();
        let scale = 1.0 / (d as f32).sqrt();
        // W x for every row; the dense kernels take at most 8 rows at a time, the quantized ones
        // all rows in one pass (each weight block unpacked once for two rows, read once for all).
        let gemv = |lins: &[&Linear], x: &[f32]| gemv_rows(lins, x, bsz, row_tile(lins));
        let rms_rows = |x: &[f32], w: &Tensor, eps: f64| -> candle_core::Result<Vec<f32>> {
            let mut out = Vec::with_capacity(x.len());
            for row in x.chunks_exact(hsz) {
                out.extend(rms_norm(row, w, eps)?);
            }
            Ok(out)
        };
        for (li, layer) in self.layers.iter().enumerate() {
            let att = &layer.self_attn;
            let h = rms_rows(&x, &layer.input_layernorm.weight, layer.input_layernorm.eps)?;
            let mut qkv = gemv(&[&att.q_proj, &att.k_proj, &att.v_proj], &h)?;
            let v_all = qkv.pop().unwrap_or_default();
            let mut k_all = qkv.pop().unwrap_or_default();
            let mut q_all = qkv.pop().unwrap_or_default();
            let mut attn = vec![0f32; bsz * nh * d];
            for b in 0..bsz {
                let q = &mut q_all[b * nh * d..(b + 1) * nh * d];
                let k = &mut k_all[b * nkv * d..(b + 1) * nkv * d];
                let v = &v_all[b * nkv * d..(b + 1) * nkv * d];
                add_bias(q, &att.q_proj)?;
                add_bias(k, &att.k_proj)?;
                let mut v = v.to_vec();
                add_bias(&mut v, &att.v_proj)?;
                if let Some(n) = &att.qk_norm {
                    head_rms_norm(q, d, &n.q)?;
                    head_rms_norm(k, d, &n.k)?;
                }
                let (cos, sin) = &tables[b];
                rope(q, d, cos, sin, self.rotary.interleaved);
                rope(k, d, cos, sin, self.rotary.interleaved);
                let pos = positions[b];
                let Some(store) = caches[b].host(li, nkv, d) else {
                    candle_core::bail!("cpu decode: the cache holds device tensors");
                };
                store.reserve(pos + 1, pos);
                for g in 0..nkv {
                    store.write(g, pos, &k[g * d..(g + 1) * d], &v[g * d..(g + 1) * d]);
                }
            }
            {
                let out = OutPtr(attn.as_mut_ptr());
                let out = &out;
                let q_all = &q_all;
                let stores: Vec<&super::kv_cache::HostKv> = caches
                    .iter_mut()
                    .map(|c| c.host(li, nkv, d).map(|s| &*s))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| candle_core::Error::Msg("cpu decode: the cache holds device tensors".into()))?;
                let stores = &stores;
                let positions = &positions;
                let head = |task: usize| {
                    let (b, hq) = (task / nh, task % nh);
                    let g = hq / n_rep;
                    let len = positions[b] + 1;
                    let (keys, vals) = (stores[b].keys(g, len), stores[b].values(g, len));
                    let qh = &q_all[(b * nh + hq) * d..(b * nh + hq + 1) * d];
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
                    // SAFETY: task (b, hq) writes only its own d values of attn.
                    unsafe { std::ptr::copy_nonoverlapping(o.as_ptr(), out.0.add((b * nh + hq) * d), d) };
                };
                let work: usize = positions.iter().map(|p| (p + 1) * d * nh).sum();
                if work > 1 << 16 {
                    SpinPool::global().run(bsz * nh, &head);
                } else {
                    (0..bsz * nh).for_each(head);
                }
            }
            let mut o = gemv(&[&att.o_proj], &attn)?.remove(0);
            for row in o.chunks_exact_mut(hsz) {
                add_bias(row, &att.o_proj)?;
            }
            x.iter_mut().zip(&o).for_each(|(x, o)| *x += o);
            let h = rms_rows(
                &x,
                &layer.post_attention_layernorm.weight,
                layer.post_attention_layernorm.eps,
            )?;
            let mlp = &layer.mlp;
            let mut gu = gemv(&[&mlp.gate_proj, &mlp.up_proj], &h)?;
            let u_all = gu.pop().unwrap_or_default();
            let mut g_all = gu.pop().unwrap_or_default();
            let inter = cfg.intermediate_size;
            for (g, u) in g_all.chunks_exact_mut(inter).zip(u_all.chunks_exact(inter)) {
                let mut u = u.to_vec();
                add_bias(g, &mlp.gate_proj)?;
                add_bias(&mut u, &mlp.up_proj)?;
                for (g, u) in g.iter_mut().zip(u.iter()) {
                    *g = *g / (1.0 + (-*g).exp()) * u;
                }
            }
            let mut down = gemv(&[&mlp.down_proj], &g_all)?.remove(0);
            for row in down.chunks_exact_mut(hsz) {
                add_bias(row, &mlp.down_proj)?;
            }
            x.iter_mut().zip(&down).for_each(|(x, o)| *x += o);
        }
        for c in caches.iter_mut() {
            c.advance(1);
        }
        Ok(x.chunks_exact(hsz).map(|r| r.to_vec()).collect())
    }

    /// Final norm and output head for several hidden states, the head's weights read once per
    /// 8 rows.
    pub fn head_cpu_batch(&self, hidden: &[Vec<f32>]) -> candle_core::Result<Vec<Vec<f32>>> {
        let mut normed = Vec::with_capacity(hidden.iter().map(Vec::len).sum());
        for h in hidden {
            normed.extend(rms_norm(h, &self.norm.weight, self.norm.eps)?);
        }
        let hsz = self.cfg.hidden_size;
        let mut out = Vec::with_capacity(hidden.len());
        for rows in normed.chunks(row_tile(&[&self.lm_head]) * hsz) {
            let m = rows.len() / hsz;
            let logits = Linear::gemv_many(&[&self.lm_head], rows, m)?
                .ok_or_else(|| candle_core::Error::Msg("cpu decode: unsupported head weight".into()))?;
            for row in logits.chunks_exact(logits.len() / m) {
                let mut row = row.to_vec();
                add_bias(&mut row, &self.lm_head)?;
                out.push(row);
            }
        }
        Ok(out)
    }

    /// Whether [`Decoder::step_cpu_batch`] can run with these caches.
    pub fn can_step_cpu_batch(&self, caches: &[&mut KvCache]) -> bool {
        caches.iter().all(|c| self.can_step_cpu(1, 1, c))
    }

    /// Final norm and output head for one hidden state.
    pub fn head_cpu(&self, x: &[f32]) -> candle_core::Result<Vec<f32>> {
        let h = rms_norm(x, &self.norm.weight, self.norm.eps)?;
        let mut logits = Linear::gemv_many(&[&self.lm_head], &h, 1)?
            .ok_or_else(|| candle_core::Error::Msg("cpu decode: unsupported head weight".into()))?;
        add_bias(&mut logits, &self.lm_head)?;
        Ok(logits)
    }
}
