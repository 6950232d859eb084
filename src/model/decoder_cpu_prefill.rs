//! The CPU prefill: a prompt of many tokens through the decoder at once on this project's own
//! kernels, for models whose layer matrices are all CPU-quantized (GGUF). Each matrix product
//! runs over a tile of prompt rows (`cpu_gemv`'s multi-row kernels unpack a weight block once
//! for two activation rows, and a tile's 8-bit activations stay in cache while the weights
//! stream), attention runs over the prompt with the causal mask from the host KV cache, parallel
//! over heads and blocks of queries. It computes what [`Decoder::step_cpu`] computes token by
//! token (the same 8-bit activations, the same cache contents), without candle's per-op
//! dispatch and copies, which made a 40-token prompt cost ~150 ms on SmolLM2-135M.

use candle_core::{DType, Tensor};

use super::decoder::{Decoder, Logits};
use super::decoder_cpu_step::{add_bias, gemv_rows, head_rms_norm, rms_norm, rope, with_f32};
use super::kernels::cpu_gemv::dot_f32;
use super::kernels::cpu_pool::SpinPool;
use super::kernels::cpu_vmath;
use super::kv_cache::{HostKv, KvCache};
use super::weights::Weight;

/// Prompt rows per matrix product: their 8-bit activations (`k / 32` blocks of 40 bytes each)
/// stay in the L2 cache while every weight row meets all of them.
const ROW_TILE: usize = 64;

/// Queries per attention task.
const QUERY_TILE: usize = 16;

struct OutPtr(*mut f32);
// SAFETY: each task writes the disjoint output rows of its own (head, query block).
unsafe impl Sync for OutPtr {}

/// `o += w * v` (vectorised with AVX2 where present).
fn axpy(o: &mut [f32], w: f32, v: &[f32]) {
    #[inline(always)]
    fn body(o: &mut [f32], w: f32, v: &[f32]) {
        o.iter_mut().zip(v).for_each(|(o, v)| *o += w * v);
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        unsafe fn fast(o: &mut [f32], w: f32, v: &[f32]) {
            body(o, w, v)
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { fast(o, w, v) };
        }
    }
    body(o, w, v)
}

impl Decoder {
    /// Whether `forward` may run a prompt of `t` tokens through [`Decoder::prefill_cpu`]: the
    /// conditions of the CPU decode step, and every layer matrix CPU-quantized (dense f32 models
    /// keep candle's gemm for many rows).
    pub(super) fn can_prefill_cpu(&self, b: usize, t: usize, cache: &KvCache) -> bool {
        self.cpu_prefill
            && t > 1
            && self.can_step_cpu(b, 1, cache)
            && self.layers.iter().all(|l| {
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
                .iter()
                .all(|l| matches!(l.weight(), Weight::CpuQuant(_)))
            })
    }

    /// `forward` for a prompt through [`Decoder::prefill_cpu`]: logits `[1, rows, vocab]`.
    pub(super) fn prefill_cpu_logits(
        &self,
        input_ids: &Tensor,
        cache: &mut KvCache,
        logits: Logits,
    ) -> candle_core::Result<Tensor> {
        let ids = input_ids.flatten_all()?.to_vec1::<u32>()?;
        let hidden = self.prefill_cpu(&ids, cache)?;
        let hsz = self.cfg.hidden_size;
        let rows: Vec<Vec<f32>> = match logits {
            Logits::All => hidden.chunks_exact(hsz).map(<[f32]>::to_vec).collect(),
            Logits::Last => vec![hidden[hidden.len() - hsz..].to_vec()],
        };
        let out: Vec<f32> = self.head_cpu_batch(&rows)?.concat();
        let n = rows.len();
        Tensor::from_vec(out, (1, n, self.cfg.vocab_size), &self.device)
    }

    /// Feeds `tokens` at the cache's end and returns their final hidden states (before the
    /// norm), `[tokens, hidden]` row-major.
    pub fn prefill_cpu(&self, tokens: &[u32], cache: &mut KvCache) -> candle_core::Result<Vec<f32>> {
        let cfg = &self.cfg;
        let (hsz, d) = (cfg.hidden_size, cfg.head_dim);
        let (nh, nkv) = (cfg.num_heads, cfg.num_kv_heads);
        let n = tokens.len();
        if n == 0 {
            candle_core::bail!("cpu prefill: no tokens");
        }
        if self.dtype != DType::F32 {
            candle_core::bail!("cpu prefill: needs f32 activations");
        }
        if let Some(&t) = tokens.iter().find(|&&t| t as usize >= cfg.vocab_size) {
            candle_core::bail!("token id {t} is outside the embedding ({} rows)", cfg.vocab_size);
        }
        let start = cache.len();
        let mut x = with_f32(&self.embed_tokens, |e| {
            tokens
                .iter()
                .flat_map(|&t| e[t as usize * hsz..(t as usize + 1) * hsz].iter().copied())
                .collect::<Vec<f32>>()
        })?;
        let tables: Vec<(Vec<f32>, Vec<f32>)> = (start..start + n)
            .map(|pos| {
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
        for (li, layer) in self.layers.iter().enumerate() {
            let att = &layer.self_attn;
            let h = rms_rows(&x, hsz, &layer.input_layernorm.weight, layer.input_layernorm.eps)?;
            let mut qkv = gemv_rows(&[&att.q_proj, &att.k_proj, &att.v_proj], &h, n, ROW_TILE)?;
            let mut v_all = qkv.pop().unwrap_or_default();
            let mut k_all = qkv.pop().unwrap_or_default();
            let mut q_all = qkv.pop().unwrap_or_default();
            let Some(store) = cache.host(li, nkv, d) else {
                candle_core::bail!("cpu prefill: the cache holds device tensors");
            };
            store.reserve(start + n, start);
            for i in 0..n {
                let q = &mut q_all[i * nh * d..(i + 1) * nh * d];
                let k = &mut k_all[i * nkv * d..(i + 1) * nkv * d];
                let v = &mut v_all[i * nkv * d..(i + 1) * nkv * d];
                add_bias(q, &att.q_proj)?;
                add_bias(k, &att.k_proj)?;
                add_bias(v, &att.v_proj)?;
                if let Some(nrm) = &att.qk_norm {
                    head_rms_norm(q, d, &nrm.q)?;
                    head_rms_norm(k, d, &nrm.k)?;
                }
                let (cos, sin) = &tables[i];
                rope(q, d, cos, sin, self.rotary.interleaved);
                rope(k, d, cos, sin, self.rotary.interleaved);
                for g in 0..nkv {
                    store.write(g, start + i, &k[g * d..(g + 1) * d], &v[g * d..(g + 1) * d]);
                }
            }
            let attn = causal_attention(&q_all, store, start, n, (nh, nkv, d));
            let mut o = gemv_rows(&[&att.o_proj], &attn, n, ROW_TILE)?.remove(0);
            for row in o.chunks_exact_mut(hsz) {
                add_bias(row, &att.o_proj)?;
            }
            x.iter_mut().zip(&o).for_each(|(x, o)| *x += o);
            let post = &layer.post_attention_layernorm;
            let h = rms_rows(&x, hsz, &post.weight, post.eps)?;
            let mlp = &layer.mlp;
            let mut gu = gemv_rows(&[&mlp.gate_proj, &mlp.up_proj], &h, n, ROW_TILE)?;
            let mut u_all = gu.pop().unwrap_or_default();
            let mut g_all = gu.pop().unwrap_or_default();
            let inter = cfg.intermediate_size;
            let mut act = vec![0f32; n * inter];
            for ((g, u), y) in g_all
                .chunks_exact_mut(inter)
                .zip(u_all.chunks_exact_mut(inter))
                .zip(act.chunks_exact_mut(inter))
            {
                add_bias(g, &mlp.gate_proj)?;
                add_bias(u, &mlp.up_proj)?;
                cpu_vmath::swiglu(g, u, y);
            }
            let mut down = gemv_rows(&[&mlp.down_proj], &act, n, ROW_TILE)?.remove(0);
            for row in down.chunks_exact_mut(hsz) {
                add_bias(row, &mlp.down_proj)?;
            }
            x.iter_mut().zip(&down).for_each(|(x, o)| *x += o);
        }
        cache.advance(n);
        Ok(x)
    }
}

/// RMSNorm of each `hsz`-sized row of `x`.
fn rms_rows(x: &[f32], hsz: usize, w: &Tensor, eps: f64) -> candle_core::Result<Vec<f32>> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks_exact(hsz) {
        out.extend(rms_norm(row, w, eps)?);
    }
    Ok(out)
}

/// Attention of the `n` new queries (`q`: `[n, heads, d]`, at positions `start..start+n`) over
/// the cached keys and values up to and including each query's own position.
fn causal_attention(
    q: &[f32],
    store: &HostKv,
    start: usize,
    n: usize,
    (nh, nkv, d): (usize, usize, usize),
) -> Vec<f32> {
    let n_rep = nh / nkv;
    let scale = 1.0 / (d as f32).sqrt();
    let mut out = vec![0f32; n * nh * d];
    let ptr = OutPtr(out.as_mut_ptr());
    let ptr = &ptr;
    let blocks = n.div_ceil(QUERY_TILE);
    let task = |t: usize| {
        let (hq, blk) = (t / blocks, t % blocks);
        let g = hq / n_rep;
        let last = (blk + 1) * QUERY_TILE;
        let last = last.min(n);
        let (keys, vals) = (store.keys(g, start + last), store.values(g, start + last));
        let mut scores = Vec::with_capacity(start + last);
        let mut o = vec![0f32; d];
        for i in blk * QUERY_TILE..last {
            let len = start + i + 1;
            let qh = &q[(i * nh + hq) * d..(i * nh + hq + 1) * d];
            scores.clear();
            scores.extend(keys[..len * d].chunks_exact(d).map(|kt| dot_f32(qh, kt)));
            let max = cpu_vmath::max(&scores);
            let sum = cpu_vmath::exp_shift(&mut scores, scale, max * scale);
            let inv = 1.0 / sum;
            o.iter_mut().for_each(|v| *v = 0.0);
            for (p, vt) in scores.iter().zip(vals[..len * d].chunks_exact(d)) {
                axpy(&mut o, p * inv, vt);
            }
            // SAFETY: task (hq, blk) writes only the d values of head hq for its own queries.
            unsafe { std::ptr::copy_nonoverlapping(o.as_ptr(), ptr.0.add((i * nh + hq) * d), d) };
        }
    };
    SpinPool::global().run(nh * blocks, &task);
    out
}
