//! The language-model head and cross-entropy in one op, computed in chunks of rows so that the
//! full tokens-by-vocabulary logits are never held at once (on the CPU). Rows without a target
//! cost nothing. When a backward will follow, the forward computes the gradients in the same pass
//! over each chunk (the logits are not computed twice); the backward then only scales them.
//! Other devices: chunked candle ops (each chunk's logits live only inside it).

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;

use super::data::IGNORE;
use crate::model::kernels::cpu_gemm::{matmul_rows, transpose};
use crate::model::kernels::cpu_vmath;
#[cfg(feature = "cuda")]
use crate::model::kernels::{cuda_fwd, cuda_train_ops};

/// Rows of logits computed at once for a vocabulary: about 4M floats (16 MB), 16 to 256 rows.
pub fn chunk_rows(vocab: usize) -> usize {
    (4_194_304 / vocab.max(1)).clamp(16, 256)
}

/// Weighted sum over rows of `-log softmax(x W^T)[target]` for rows with a target: row `r`'s
/// loss counts `weights[r]` times (the trainer's loss weighting puts the normaliser there).
/// `x` `[n, h]`, `w` `[vocab, h]`, `targets` and `weights` `n` long (targets: ids or
/// [`IGNORE`]). Returns a scalar (f32) with a backward to `x` and `w`; `for_backward` says
/// whether a backward will follow (then the CPU path computes the gradients during the forward).
pub fn head_cross_entropy_sum(
    x: &Tensor,
    w: &Tensor,
    targets: &[u32],
    weights: &[f32],
    for_backward: bool,
) -> Result<Tensor> {
    let (n, _h) = x.dims2()?;
    if n != targets.len() || n != weights.len() {
        candle_core::bail!(
            "head_cross_entropy: {n} rows but {} targets and {} weights",
            targets.len(),
            weights.len()
        );
    }
    if x.device().is_cpu() && x.dtype() == DType::F32 && w.dtype() == DType::F32 {
        let op = HeadCrossEntropy {
            rows: (0..n as u32).filter(|&r| targets[r as usize] != IGNORE).collect(),
            targets: targets.to_vec(),
            weights: weights.to_vec(),
            for_backward,
            stash: Mutex::new(None),
        };
        return x.contiguous()?.apply_op2(&w.contiguous()?, op)?.sum_all();
    }
    chunked_candle(x, w, targets, weights)
}

/// Other devices: per chunk of rows with targets, the logits product and then candle's ops,
/// or on CUDA the cross-entropy kernel (one pass forward, one backward; chunks of ~256M
/// logits, since the graph keeps each chunk's logits for the backward anyway). Each row's loss
/// is multiplied by its weight before the sum, so the kernel's backward receives the weight as
/// the row's upstream gradient.
fn chunked_candle(x: &Tensor, w: &Tensor, targets: &[u32], weights: &[f32]) -> Result<Tensor> {
    let rows: Vec<u32> = (0..targets.len() as u32)
        .filter(|&r| targets[r as usize] != IGNORE)
        .collect();
    let vocab = w.dim(0)?;
    let kernel = crate::model::kernels::fused_ops::supported_cuda(x);
    let chunk = if kernel {
        ((1usize << 28) / vocab.max(1)).max(256)
    } else {
        chunk_rows(vocab) * 4
    };
    let mut total: Option<Tensor> = None;
    for chunk in rows.chunks(chunk) {
        let idx = Tensor::new(chunk, x.device())?;
        let xs = x.index_select(&idx, 0)?;
        let tg: Vec<u32> = chunk.iter().map(|&r| targets[r as usize]).collect();
        let tg = Tensor::new(tg.as_slice(), x.device())?;
        let wt: Vec<f32> = chunk.iter().map(|&r| weights[r as usize]).collect();
        let wt = Tensor::new(wt.as_slice(), x.device())?;
        let logits = xs.matmul(&w.t()?)?;
        #[cfg(feature = "cuda")]
        if kernel {
            let part = (logits.apply_op2(&tg, RowCrossEntropy)?.to_dtype(DType::F32)? * &wt)?.sum_all()?;
            total = Some(match total {
                Some(t) => (t + part)?,
                None => part,
            });
            continue;
        }
        let logits = logits.to_dtype(DType::F32)?;
        let lse = logits.log_sum_exp(D::Minus1)?;
        let picked = logits.gather(&tg.unsqueeze(1)?, 1)?.squeeze(1)?;
        let part = ((lse - picked)? * &wt)?.sum_all()?;
        total = Some(match total {
            Some(t) => (t + part)?,
            None => part,
        });
    }
    match total {
        Some(t) => Ok(t),
        None => Tensor::new(0f32, x.device()),
    }
}

/// Per-row cross-entropy of logits `[rows, vocab]` against u32 targets (CUDA kernels).
#[cfg(feature = "cuda")]
struct RowCrossEntropy;

#[cfg(feature = "cuda")]
impl CustomOp2 for RowCrossEntropy {
    fn name(&self) -> &'static str {
        "s1-row-cross-entropy"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        let _span = crate::model::kernels::op_profile::span(self.name());
        candle_core::bail!("s1-row-cross-entropy runs on CUDA (the CPU uses the fused head op)")
    }

    cuda_fwd!(|self, (xs, xl), (ts, tl)| {
        let rows = xl.shape().dims2()?.0;
        Ok((cuda_train_ops::ce_fwd((xs, xl), (ts, tl))?, Shape::from(rows)))
    });

    fn bwd(&self, x: &Tensor, t: &Tensor, _loss: &Tensor, g: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = g.to_dtype(DType::F32)?.contiguous()?;
        Ok((Some(x.apply_op3_no_bwd(t, &g, &RowCrossEntropyBwd)?), None))
    }
}

#[cfg(feature = "cuda")]
struct RowCrossEntropyBwd;

#[cfg(feature = "cuda")]
impl CustomOp3 for RowCrossEntropyBwd {
    fn name(&self) -> &'static str {
        "s1-row-cross-entropy-bwd"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _span = crate::model::kernels::op_profile::span(self.name());
        candle_core::bail!("s1-row-cross-entropy-bwd runs on CUDA")
    }

    cuda_fwd!(|self, (xs, xl), (ts, tl), (gs, gl)| {
        let dx = cuda_train_ops::ce_bwd((xs, xl), (ts, tl), (gs, gl))?;
        Ok((dx, xl.shape().clone()))
    });
}

/// Gradients computed in the forward (of the weighted losses), for a backward whose upstream
/// gradient is the same for every row.
struct Stash {
    dx: Vec<f32>,
    dw: Vec<f32>,
}

/// Outputs each row's loss times its weight.
struct HeadCrossEntropy {
    /// Rows with a target.
    rows: Vec<u32>,
    targets: Vec<u32>,
    /// One per row.
    weights: Vec<f32>,
    for_backward: bool,
    stash: Mutex<Option<Stash>>,
}

/// One pass over the chunks: the loss of every row; with `grads`, also
/// dx = g (softmax - onehot) W and dW = sum_rows g (softmax - onehot)^T x, where g is the
/// upstream gradient of each row (1 when `g` is None).
#[allow(clippy::too_many_arguments)]
fn pass(
    x: &[f32],
    w: &[f32],
    rows: &[u32],
    targets: &[u32],
    h: usize,
    vocab: usize,
    grads: bool,
    g: Option<&[f32]>,
) -> Result<(Vec<f32>, Option<Stash>)> {
    let n = x.len() / h;
    let chunk = chunk_rows(vocab);
    let mut losses = vec![0f32; n];
    let mut dx = if grads { vec![0f32; n * h] } else { Vec::new() };
    // The products run on row-major operands (see cpu_gemm::transpose): W^T for the logits, and
    // dW^T = x^T (softmax - onehot) accumulated over the chunks, transposed once at the end.
    let wt = transpose(w, vocab, h)?;
    let mut dwt = if grads { vec![0f32; h * vocab] } else { Vec::new() };
    let mut logits = vec![0f32; chunk.min(rows.len().max(1)) * vocab];
    let mut xc = vec![0f32; chunk * h];
    let mut dxc = vec![0f32; chunk * h];
    for (ci, rs) in rows.chunks(chunk).enumerate() {
        let c = rs.len();
        for (i, &r) in rs.iter().enumerate() {
            xc[i * h..(i + 1) * h].copy_from_slice(&x[r as usize * h..(r as usize + 1) * h]);
        }
        let lg = &mut logits[..c * vocab];
        matmul_rows(c, vocab, h, lg, &xc, &wt, false)?;
        let chunk_losses: Vec<f32> = lg
            .par_chunks_mut(vocab)
            .zip(rs.par_iter())
            .map(|(row, &r)| {
                let target = targets[r as usize] as usize;
                let max = cpu_vmath::max(row);
                let picked = row[target] - max;
                let sum = cpu_vmath::exp_shift(row, 1.0, max);
                if grads {
                    let gr = g.map_or(1.0, |g| g[r as usize]);
                    let scale = gr / sum;
                    row.iter_mut().for_each(|v| *v *= scale);
                    row[target] -= gr;
                }
                sum.ln() - picked
            })
            .collect();
        for (&r, l) in rs.iter().zip(chunk_losses) {
            losses[r as usize] = l;
        }
        if grads {
            // dx rows = (softmax - onehot) W; dW^T += x^T (softmax - onehot).
            matmul_rows(c, h, vocab, &mut dxc, lg, w, false)?;
            matmul_rows(h, vocab, c, &mut dwt, &transpose(&xc[..c * h], c, h)?, lg, ci > 0)?;
            for (i, &r) in rs.iter().enumerate() {
                dx[r as usize * h..(r as usize + 1) * h].copy_from_slice(&dxc[i * h..(i + 1) * h]);
            }
        }
    }
    let stash = if grads {
        Some(Stash {
            dx,
            dw: transpose(&dwt, h, vocab)?,
        })
    } else {
        None
    };
    Ok((losses, stash))
}

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    crate::model::kernels::cpu_gemm::f32_slice(s, l, "head_cross_entropy")
}

fn check_targets(rows: &[u32], targets: &[u32], vocab: usize) -> Result<()> {
    if let Some(&bad) = rows.iter().find(|&&r| targets[r as usize] as usize >= vocab) {
        candle_core::bail!(
            "target id {} is outside the vocabulary ({vocab})",
            targets[bad as usize]
        );
    }
    Ok(())
}

impl CustomOp2 for HeadCrossEntropy {
    fn name(&self) -> &'static str {
        "s1-head-cross-entropy"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, ws: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        let _span = crate::model::kernels::op_profile::span(self.name());
        let (x, w) = (contiguous(xs, xl)?, contiguous(ws, wl)?);
        let (n, h) = xl.shape().dims2()?;
        let vocab = wl.shape().dims2()?.0;
        check_targets(&self.rows, &self.targets, vocab)?;
        let (mut losses, stash) = pass(
            x,
            w,
            &self.rows,
            &self.targets,
            h,
            vocab,
            self.for_backward,
            Some(&self.weights),
        )?;
        losses.iter_mut().zip(&self.weights).for_each(|(l, w)| *l *= w);
        *self.stash.lock().unwrap_or_else(|e| e.into_inner()) = stash;
        Ok((CpuStorage::F32(losses), Shape::from(n)))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (n, h) = x.dims2()?;
        let vocab = w.dim(0)?;
        let g = grad.to_vec1::<f32>()?;
        let stash = self.stash.lock().unwrap_or_else(|e| e.into_inner()).take();
        let uniform = self.rows.first().map(|&r| g[r as usize]);
        let is_uniform = self.rows.iter().all(|&r| Some(g[r as usize]) == uniform);
        if let (Some(mut st), true) = (stash, is_uniform) {
            // The upstream gradient is the same for every row: scale the stashed gradients.
            let c = uniform.unwrap_or(0.0);
            st.dx
                .par_chunks_mut(16384)
                .for_each(|p| p.iter_mut().for_each(|v| *v *= c));
            st.dw
                .par_chunks_mut(16384)
                .for_each(|p| p.iter_mut().for_each(|v| *v *= c));
            let dev = x.device();
            return Ok((
                Some(Tensor::from_vec(st.dx, (n, h), dev)?),
                Some(Tensor::from_vec(st.dw, (vocab, h), dev)?),
            ));
        }
        let bwd = HeadCrossEntropyBwd {
            rows: self.rows.clone(),
            targets: self.targets.clone(),
        };
        // The gradient of row r's output is its upstream gradient times its weight.
        let weights = Tensor::from_slice(&self.weights, n, grad.device())?;
        let g = (grad.to_dtype(DType::F32)? * weights)?.contiguous()?;
        let packed = x.apply_op3_no_bwd(w, &g, &bwd)?;
        Ok((Some(packed.narrow(0, 0, n)?), Some(packed.narrow(0, n, vocab)?)))
    }
}

/// The backward for any upstream gradient (recomputes the logits): `[n + vocab, h]`, the rows
/// of dx then dW.
struct HeadCrossEntropyBwd {
    rows: Vec<u32>,
    targets: Vec<u32>,
}

impl CustomOp3 for HeadCrossEntropyBwd {
    fn name(&self) -> &'static str {
        "s1-head-cross-entropy-bwd"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _span = crate::model::kernels::op_profile::span(self.name());
        let (x, w, g) = (contiguous(xs, xl)?, contiguous(ws, wl)?, contiguous(gs, gl)?);
        let (n, h) = xl.shape().dims2()?;
        let vocab = wl.shape().dims2()?.0;
        let (_, stash) = pass(x, w, &self.rows, &self.targets, h, vocab, true, Some(g))?;
        let mut st = stash.unwrap_or(Stash {
            dx: vec![0f32; n * h],
            dw: vec![0f32; vocab * h],
        });
        st.dx.extend_from_slice(&st.dw);
        Ok((CpuStorage::F32(st.dx), Shape::from((n + vocab, h))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The fused op against log-softmax + gather on the full logits, for the weighted loss and
    /// both gradients: weights inside the op with a uniform upstream gradient (stashed path),
    /// and half of them inside, half applied after (a per-row upstream gradient: recompute).
    #[test]
    fn matches_full_logits_cross_entropy() {
        let (n, h, vocab) = (40usize, 12usize, 50usize);
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, h), &Device::Cpu).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(0f32, 1.0, (vocab, h), &Device::Cpu).unwrap()).unwrap();
        let targets: Vec<u32> = (0..n)
            .map(|i| if i % 7 == 3 { IGNORE } else { (i * 13 % vocab) as u32 })
            .collect();
        let rows: Vec<u32> = (0..n as u32).filter(|&r| targets[r as usize] != IGNORE).collect();
        let weights: Vec<f32> = (0..n).map(|i| 0.5 + (i % 3) as f32).collect();
        for per_row in [false, true] {
            let reference = {
                let idx = Tensor::new(rows.as_slice(), &Device::Cpu).unwrap();
                let logits = x
                    .as_tensor()
                    .index_select(&idx, 0)
                    .unwrap()
                    .matmul(&w.as_tensor().t().unwrap())
                    .unwrap();
                let lse = logits.log_sum_exp(D::Minus1).unwrap();
                let tg: Vec<u32> = rows.iter().map(|&r| targets[r as usize]).collect();
                let tg = Tensor::new(tg.as_slice(), &Device::Cpu).unwrap().unsqueeze(1).unwrap();
                let l = (lse - logits.gather(&tg, 1).unwrap().squeeze(1).unwrap()).unwrap();
                let wr: Vec<f32> = rows.iter().map(|&r| weights[r as usize]).collect();
                (l * Tensor::new(wr.as_slice(), &Device::Cpu).unwrap())
                    .unwrap()
                    .sum_all()
                    .unwrap()
            };
            let ours = if per_row {
                let op = HeadCrossEntropy {
                    rows: rows.clone(),
                    targets: targets.clone(),
                    weights: vec![0.5; n],
                    for_backward: true,
                    stash: Mutex::new(None),
                };
                let l = x.as_tensor().apply_op2(w.as_tensor(), op).unwrap();
                let rest: Vec<f32> = weights.iter().map(|w| w / 0.5).collect();
                (l * Tensor::new(rest.as_slice(), &Device::Cpu).unwrap())
                    .unwrap()
                    .sum_all()
                    .unwrap()
            } else {
                head_cross_entropy_sum(x.as_tensor(), w.as_tensor(), &targets, &weights, true).unwrap()
            };
            let (a, b) = (ours.to_scalar::<f32>().unwrap(), reference.to_scalar::<f32>().unwrap());
            assert!((a - b).abs() < 1e-4 * b.abs(), "loss {a} vs {b}");
            let (go, gr) = (ours.backward().unwrap(), reference.backward().unwrap());
            for v in [&x, &w] {
                let d = (go.get(v.as_tensor()).unwrap() - gr.get(v.as_tensor()).unwrap()).unwrap();
                let err = d
                    .abs()
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .max(0)
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                assert!(err < 1e-4, "per_row {per_row}: gradient error {err}");
            }
        }
    }
}
