//! The language-model head and cross-entropy in one op, computed in chunks of rows so that the
//! full tokens-by-vocabulary logits are never held at once (on the CPU). Rows without a target
//! cost nothing. Other devices: chunked candle ops (each chunk's logits live only inside it).

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;

use super::data::IGNORE;

/// Rows of logits computed at once: `LOSS_CHUNK * vocab` floats (e.g. 64 x 151,936 x 4 B = 39 MB).
pub const LOSS_CHUNK: usize = 64;

/// Sum over rows of `-log softmax(x W^T)[target]` for rows with a target. `x` `[n, h]`,
/// `w` `[vocab, h]`, `targets` `n` ids or [`IGNORE`]. Returns a scalar (f32) with a backward to
/// `x` and `w`.
pub fn head_cross_entropy_sum(x: &Tensor, w: &Tensor, targets: &[u32]) -> Result<Tensor> {
    let (n, _h) = x.dims2()?;
    if n != targets.len() {
        candle_core::bail!("head_cross_entropy: {n} rows but {} targets", targets.len());
    }
    if x.device().is_cpu() && x.dtype() == DType::F32 && w.dtype() == DType::F32 {
        let rows: Vec<u32> = (0..n as u32).filter(|&r| targets[r as usize] != IGNORE).collect();
        let op = HeadCrossEntropy {
            rows,
            targets: targets.to_vec(),
        };
        return x.contiguous()?.apply_op2(&w.contiguous()?, op)?.sum_all();
    }
    chunked_candle(x, w, targets)
}

/// The portable path: candle ops per chunk of rows with targets.
fn chunked_candle(x: &Tensor, w: &Tensor, targets: &[u32]) -> Result<Tensor> {
    let rows: Vec<u32> = (0..targets.len() as u32).filter(|&r| targets[r as usize] != IGNORE).collect();
    let mut total: Option<Tensor> = None;
    for chunk in rows.chunks(LOSS_CHUNK * 8) {
        let idx = Tensor::new(chunk, x.device())?;
        let xs = x.index_select(&idx, 0)?;
        let logits = xs.matmul(&w.t()?)?.to_dtype(DType::F32)?;
        let lse = logits.log_sum_exp(D::Minus1)?;
        let tg: Vec<u32> = chunk.iter().map(|&r| targets[r as usize]).collect();
        let tg = Tensor::new(tg.as_slice(), x.device())?.unsqueeze(1)?;
        let picked = logits.gather(&tg, 1)?.squeeze(1)?;
        let part = (lse - picked)?.sum_all()?;
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

struct HeadCrossEntropy {
    /// Rows with a target.
    rows: Vec<u32>,
    targets: Vec<u32>,
}

/// `dst[m, n] = a[m, k] * b[n, k]^T` (b row-major `[n, k]`), single-threaded gemm.
#[allow(clippy::too_many_arguments)]
fn gemm_abt(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], dst: &mut [f32], accumulate: bool, par: gemm::Parallelism) {
    debug_assert!(a.len() >= m * k && b.len() >= n * k && dst.len() >= m * n);
    // SAFETY: the slices hold the sizes asserted above; strides describe row-major layouts.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            k as isize,
            1,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

/// `dst[m, n] (+)= a[m, k] * b[k, n]`, all row-major.
#[allow(clippy::too_many_arguments)]
fn gemm_ab(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], dst: &mut [f32], accumulate: bool, par: gemm::Parallelism) {
    debug_assert!(a.len() >= m * k && b.len() >= k * n && dst.len() >= m * n);
    // SAFETY: as above.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

/// `dst[m, n] (+)= a[k, m]^T * b[k, n]` (a row-major `[k, m]`).
#[allow(clippy::too_many_arguments)]
fn gemm_atb(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], dst: &mut [f32], accumulate: bool, par: gemm::Parallelism) {
    debug_assert!(a.len() >= m * k && b.len() >= k * n && dst.len() >= m * n);
    // SAFETY: as above.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            m as isize,
            1,
            b.as_ptr(),
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

fn threads() -> gemm::Parallelism {
    match rayon::current_num_threads() {
        0 | 1 => gemm::Parallelism::None,
        n => gemm::Parallelism::Rayon(n),
    }
}

impl HeadCrossEntropy {
    /// Gathers the rows with targets of `x` into a dense `[rows, h]` block.
    fn gather(&self, x: &[f32], h: usize, from: usize, to: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity((to - from) * h);
        for &r in &self.rows[from..to] {
            out.extend_from_slice(&x[r as usize * h..(r as usize + 1) * h]);
        }
        out
    }

    /// Logits of a chunk `[c, vocab]`, turned in place into softmax probabilities; returns the
    /// loss of each row.
    fn softmax_chunk(&self, xs: &[f32], w: &[f32], h: usize, vocab: usize, from: usize, logits: &mut [f32]) -> Vec<f32> {
        let c = xs.len() / h;
        gemm_abt(c, vocab, h, xs, w, logits, false, gemm::Parallelism::None);
        logits
            .chunks_mut(vocab)
            .enumerate()
            .map(|(i, row)| {
                let target = self.targets[self.rows[from + i] as usize] as usize;
                let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                let picked = row[target] - max;
                let mut sum = 0f32;
                for v in row.iter_mut() {
                    *v = (*v - max).exp();
                    sum += *v;
                }
                sum.ln() - picked
            })
            .collect()
    }
}

impl CustomOp2 for HeadCrossEntropy {
    fn name(&self) -> &'static str {
        "s1-head-cross-entropy"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, ws: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(xs, xl)?;
        let w = contiguous(ws, wl)?;
        let (n, h) = xl.shape().dims2()?;
        let vocab = wl.shape().dims2()?.0;
        if let Some(&bad) = self.rows.iter().find(|&&r| self.targets[r as usize] as usize >= vocab) {
            candle_core::bail!("target id {} is outside the vocabulary ({vocab})", self.targets[bad as usize]);
        }
        let chunks: Vec<(usize, usize)> = (0..self.rows.len())
            .step_by(LOSS_CHUNK)
            .map(|a| (a, (a + LOSS_CHUNK).min(self.rows.len())))
            .collect();
        let losses: Vec<Vec<f32>> = chunks
            .par_iter()
            .map(|&(a, b)| {
                let xc = self.gather(x, h, a, b);
                let mut logits = vec![0f32; (b - a) * vocab];
                self.softmax_chunk(&xc, w, h, vocab, a, &mut logits)
            })
            .collect();
        let mut out = vec![0f32; n];
        for (&r, l) in self.rows.iter().zip(losses.into_iter().flatten()) {
            out[r as usize] = l;
        }
        Ok((CpuStorage::F32(out), Shape::from(n)))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (n, _) = x.dims2()?;
        let vocab = w.dim(0)?;
        let bwd = HeadCrossEntropyBwd {
            rows: self.rows.clone(),
            targets: self.targets.clone(),
        };
        let packed = x.apply_op3_no_bwd(w, &grad.contiguous()?, &bwd)?;
        Ok((Some(packed.narrow(0, 0, n)?), Some(packed.narrow(0, n, vocab)?)))
    }
}

/// The backward: returns `[n + vocab, h]`, the rows of dx then dW.
struct HeadCrossEntropyBwd {
    rows: Vec<u32>,
    targets: Vec<u32>,
}

impl candle_core::CustomOp3 for HeadCrossEntropyBwd {
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
        let x = contiguous(xs, xl)?;
        let w = contiguous(ws, wl)?;
        let g = contiguous(gs, gl)?;
        let (n, h) = xl.shape().dims2()?;
        let vocab = wl.shape().dims2()?.0;
        let fwd = HeadCrossEntropy {
            rows: self.rows.clone(),
            targets: self.targets.clone(),
        };
        let mut out = vec![0f32; (n + vocab) * h];
        let (dx, dw) = out.split_at_mut(n * h);
        let mut probs_buf = vec![0f32; LOSS_CHUNK.min(self.rows.len().max(1)) * vocab];
        let mut dxc = vec![0f32; LOSS_CHUNK * h];
        for a in (0..self.rows.len()).step_by(LOSS_CHUNK) {
            let b = (a + LOSS_CHUNK).min(self.rows.len());
            let c = b - a;
            let xc = fwd.gather(x, h, a, b);
            let probs = &mut probs_buf[..c * vocab];
            gemm_abt(c, vocab, h, &xc, w, probs, false, threads());
            // d loss / d logits = g (softmax - onehot)
            probs.par_chunks_mut(vocab).enumerate().for_each(|(i, row)| {
                let r = self.rows[a + i] as usize;
                let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                let mut sum = 0f32;
                for v in row.iter_mut() {
                    *v = (*v - max).exp();
                    sum += *v;
                }
                let scale = g[r] / sum;
                row.iter_mut().for_each(|v| *v *= scale);
                row[self.targets[r] as usize] -= g[r];
            });
            // dx rows = dlogits W; dW += dlogits^T x.
            gemm_ab(c, h, vocab, probs, w, &mut dxc[..c * h], false, threads());
            for (i, &r) in self.rows[a..b].iter().enumerate() {
                dx[r as usize * h..(r as usize + 1) * h].copy_from_slice(&dxc[i * h..(i + 1) * h]);
            }
            gemm_atb(vocab, h, c, probs, &xc, dw, a > 0, threads());
        }
        Ok((CpuStorage::F32(out), Shape::from((n + vocab, h))))
    }
}

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("head_cross_entropy: expects contiguous inputs"),
    }
}
