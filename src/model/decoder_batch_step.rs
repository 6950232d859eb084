//! One decode step for several sequences at once, on any device: the token of each sequence
//! goes through the linear layers together (`[n, 1, hidden]`, so each weight is read once for all
//! of them, which is what decode time is spent on), is rotated at its own position, and attends
//! to its own KV cache (sequences differ in length; no padding, no copy of the caches). The
//! scheduler uses it where the CPU batch step (`decoder_cpu_step`) does not apply: CUDA, bf16 and
//! f16. It computes what [`Decoder::forward`] computes for each sequence alone, up to rounding
//! (tests/batch_generation.rs and, on a GPU, tests/cuda_inference.rs compare the two).

use candle_core::{DType, Device, Tensor};

use super::argmax;
use super::decoder::Logits;

use super::decoder::{Attention, Block, Decoder, Linear};
use super::kv_cache::KvCache;
use super::qk_norm::QkNorm;

impl Decoder {
    /// Whether [`Decoder::step_batch`] applies: inference (not the differentiable training path).
    pub fn can_step_batch(&self) -> bool {
        !self.differentiable
    }

    /// Feeds `tokens[i]` after the end of `caches[i]` for every `i` and returns each sequence's
    /// f32 logits for its next token. Every cache must belong to this model.
    pub fn step_batch(&self, tokens: &[u32], caches: &mut [&mut KvCache]) -> candle_core::Result<Vec<Vec<f32>>> {
        let n = tokens.len();
        if n != caches.len() {
            candle_core::bail!("step_batch: {n} tokens for {} caches", caches.len());
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        let ids = Tensor::new(tokens, &self.device)?;
        let mut x = self
            .embed_tokens
            .index_select(&ids, 0)?
            .reshape((n, 1, self.cfg.hidden_size))?;
        let positions: Vec<usize> = caches.iter().map(|c| c.len()).collect();
        let (cos, sin) = self.rotary_at(&positions)?;
        for (i, layer) in self.layers.iter().enumerate() {
            x = self.block_step(layer, i, &x, (&cos, &sin), caches)?;
        }
        for c in caches.iter_mut() {
            c.advance(1);
        }
        let x = self.norm.forward(&x, self.path())?;
        let logits = self.lm_head.forward(&x, true)?.to_dtype(DType::F32)?;
        logits.reshape((n, self.cfg.vocab_size))?.to_vec2::<f32>()
    }

    /// cos and sin tables `[n, 1, d/2]`, row `i` for position `positions[i]`.
    fn rotary_at(&self, positions: &[usize]) -> candle_core::Result<(Tensor, Tensor)> {
        let freqs = &self.rotary.inv_freq;
        let half = freqs.len();
        let mut cos = Vec::with_capacity(positions.len() * half);
        let mut sin = Vec::with_capacity(positions.len() * half);
        for &p in positions {
            for &f in freqs {
                // As Rotary::tables: the angle in f32 from an f32 position.
                let a = p as f32 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        let shape = (positions.len(), 1, half);
        let to = |v: Vec<f32>, dev: &Device| Tensor::from_vec(v, shape, dev)?.to_dtype(self.dtype);
        Ok((to(cos, &self.device)?, to(sin, &self.device)?))
    }

    fn block_step(
        &self,
        layer: &Block,
        index: usize,
        x: &Tensor,
        tables: (&Tensor, &Tensor),
        caches: &mut [&mut KvCache],
    ) -> candle_core::Result<Tensor> {
        let path = self.path();
        let hs = layer.input_layernorm.forward(x, path)?;
        let hs = self.attention_step(&layer.self_attn, index, &hs, tables, caches)?;
        let x1 = (x + hs)?;
        let hs = layer.post_attention_layernorm.forward(&x1, path)?;
        x1 + layer.mlp.forward(&hs, path)?
    }

    fn attention_step(
        &self,
        a: &Attention,
        index: usize,
        x: &Tensor,
        (cos, sin): (&Tensor, &Tensor),
        caches: &mut [&mut KvCache],
    ) -> candle_core::Result<Tensor> {
        let path = self.path();
        let n = x.dim(0)?;
        let (h, kvh, d) = (a.num_heads, a.num_kv_heads, a.head_dim);
        let qkv = Linear::forward_group(&[&a.q_proj, &a.k_proj, &a.v_proj], x, true)?;
        let (q, k) = (qkv[0].reshape((n, 1, h, d))?, qkv[1].reshape((n, 1, kvh, d))?);
        let (q, k) = QkNorm::apply(a.qk_norm.as_ref(), q, k, path)?;
        // [n, 1, heads, d] -> [n, heads, 1, d] is a reshape (one position).
        let q = self.rotary.apply(&q.reshape((n, h, 1, d))?, cos, sin, path)?;
        let k = self.rotary.apply(&k.reshape((n, kvh, 1, d))?, cos, sin, path)?;
        let v = qkv[2].reshape((n, kvh, 1, d))?;
        let n_rep = h / kvh;
        let scale = 1.0 / (d as f64).sqrt();
        let mut outs = Vec::with_capacity(n);
        for (s, cache) in caches.iter_mut().enumerate() {
            let (keys, values) = cache.append(index, &k.narrow(0, s, 1)?, &v.narrow(0, s, 1)?)?;
            // The n_rep query heads sharing a kv head stacked as rows: [1, kvh, n_rep, d].
            let qs = q.narrow(0, s, 1)?.reshape((1, kvh, n_rep, d))?;
            let scores = (qs.matmul(&keys.t()?)? * scale)?.to_dtype(DType::F32)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(values.dtype())?;
            outs.push(probs.matmul(&values)?.reshape((1, 1, h * d))?);
        }
        let out = Tensor::cat(&outs, 0)?;
        a.o_proj.forward(&out, true)
    }
}

impl Decoder {
    /// The worst relative error (L2) between the logits [`Decoder::step_batch`] gives the
    /// sequences started by `prompts` over `steps` greedy steps and those of feeding each alone
    /// through [`Decoder::forward`] with its own cache (each fed its own greedy token): what the
    /// batched step computes, checked (`bench gpu-decode --batches`, the tests).
    pub fn step_batch_error(&self, prompts: &[Vec<u32>], steps: usize) -> candle_core::Result<f32> {
        let feed = |cache: &mut KvCache, ids: &[u32]| -> candle_core::Result<Vec<f32>> {
            let t = Tensor::new(ids, &self.device)?.unsqueeze(0)?;
            self.forward(&t, Some(cache), Logits::Last)?
                .flatten_all()?
                .to_vec1::<f32>()
        };
        let mut alone: Vec<KvCache> = prompts.iter().map(|_| self.new_cache()).collect();
        let mut together: Vec<KvCache> = prompts.iter().map(|_| self.new_cache()).collect();
        let mut tokens = Vec::with_capacity(prompts.len());
        for (s, p) in prompts.iter().enumerate() {
            feed(&mut together[s], p)?;
            tokens.push(argmax(&feed(&mut alone[s], p)?));
        }
        let mut worst = 0f32;
        for _ in 0..steps {
            let mut refs: Vec<&mut KvCache> = together.iter_mut().collect();
            let rows = self.step_batch(&tokens, &mut refs)?;
            for (s, row) in rows.iter().enumerate() {
                let want = feed(&mut alone[s], &tokens[s..s + 1])?;
                if row.len() != want.len() || together[s].len() != alone[s].len() {
                    candle_core::bail!("step_batch: sequence {s} differs in shape from feeding it alone");
                }
                let num: f32 = row.iter().zip(&want).map(|(a, b)| (a - b) * (a - b)).sum();
                let den: f32 = want.iter().map(|b| b * b).sum();
                worst = worst.max((num / den.max(1e-30)).sqrt());
                tokens[s] = argmax(&want);
            }
        }
        Ok(worst)
    }
}
