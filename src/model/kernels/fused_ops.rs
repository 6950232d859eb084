//! Fused ops with a backward pass, for the decoder's training path: RMSNorm, rotary
//! embedding, the causal softmax of attention, and SwiGLU. candle's own fused rms_norm, softmax
//! and rope have no backward (gradients stop there without an error), and their differentiable
//! compositions run one single-threaded elementwise op at a time. On the CPU these run f32 rows
//! in parallel (rayon) and compute their gradients in one pass each; with the `cuda` feature,
//! RMSNorm, the causal softmax and SwiGLU also run as CUDA kernels (cuda_train_ops.rs) in f32 or bf16.
//! Anything else takes the composed differentiable ops in decoder.rs.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_gemm::f32_slice as slice;

/// Whether the fused training ops apply to `x` (f32 on the CPU).
pub fn supported(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32
}

/// Whether RMSNorm, the causal softmax and SwiGLU have CUDA kernels for `x` (f32 or bf16 on a
/// CUDA device, in a build with the `cuda` feature), unless S1_NO_CUDA_KERNELS is set (to time
/// or check candle's composed ops instead).
pub fn supported_cuda(x: &Tensor) -> bool {
    #[cfg(feature = "cuda")]
    {
        use std::sync::OnceLock;
        static OFF: OnceLock<bool> = OnceLock::new();
        x.device().is_cuda()
            && super::cuda_train_ops::supported(x.dtype())
            && !*OFF.get_or_init(|| std::env::var_os("S1_NO_CUDA_KERNELS").is_some())
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = x;
        false
    }
}

/// The f32 slice of a contiguous CPU tensor argument.
/// Rows per parallel task so that each task has at least ~16K elements.
fn rows_per_task(width: usize) -> usize {
    (16384 / width.max(1)).max(1)
}

// ---------------------------------------------------------------------------------------------
// RMSNorm: y = x / sqrt(mean(x^2) + eps) * w

struct RmsNorm {
    eps: f32,
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "s1-rms-norm"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, ws: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        let _span = super::op_profile::span(self.name());
        let x = slice(xs, xl, self.name())?;
        let w = slice(ws, wl, self.name())?;
        let mut y = vec![0f32; x.len()];
        rms_norm_rows(x, w, self.eps, &mut y);
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }

    cuda_fwd!(|self, (xs, xl), (ws, wl)| {
        Ok((
            super::cuda_train_ops::rms_fwd(xs, xl, ws, wl, self.eps)?,
            xl.shape().clone(),
        ))
    });

    fn bwd(&self, x: &Tensor, w: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let h = w.elem_count();
        let rows = x.elem_count() / h;
        let packed = x.apply_op3_no_bwd(w, &dy.contiguous()?, &RmsNormBwd { eps: self.eps })?;
        let dx = packed.narrow(0, 0, rows)?.reshape(x.shape())?;
        let dw = packed.narrow(0, rows, 1)?.reshape(w.shape())?;
        Ok((Some(dx), Some(dw)))
    }
}

/// Returns `[rows + 1, h]`: the rows of dx, then dw.
struct RmsNormBwd {
    eps: f32,
}

impl CustomOp3 for RmsNormBwd {
    fn name(&self) -> &'static str {
        "s1-rms-norm-bwd"
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
        let _span = super::op_profile::span(self.name());
        let x = slice(xs, xl, self.name())?;
        let w = slice(ws, wl, self.name())?;
        let dy = slice(gs, gl, self.name())?;
        let h = w.len();
        let rows = x.len() / h;
        let mut out = vec![0f32; x.len() + h];
        let (dx, dw) = out.split_at_mut(x.len());
        dw.copy_from_slice(&rms_norm_bwd_rows(x, w, dy, self.eps, dx));
        Ok((CpuStorage::F32(out), Shape::from((rows + 1, h))))
    }

    cuda_fwd!(|self, (xs, xl), (ws, wl), (gs, gl)| {
        let h = wl.shape().elem_count();
        let rows = xl.shape().elem_count() / h;
        let out = super::cuda_train_ops::rms_bwd((xs, xl), (ws, wl), (gs, gl), self.eps)?;
        Ok((out, Shape::from((rows + 1, h))))
    });
}

/// `y = x / sqrt(mean(x^2) + eps) * w` for each row of `x` (rows of `w.len()`), in parallel.
pub(crate) fn rms_norm_rows(x: &[f32], w: &[f32], eps: f32, y: &mut [f32]) {
    let h = w.len();
    let chunk = rows_per_task(h) * h;
    y.par_chunks_mut(chunk).zip(x.par_chunks(chunk)).for_each(|(yc, xc)| {
        for (yr, xr) in yc.chunks_mut(h).zip(xc.chunks(h)) {
            let ms = xr.iter().map(|v| v * v).sum::<f32>() / h as f32;
            let r = 1.0 / (ms + eps).sqrt();
            for ((o, &v), &g) in yr.iter_mut().zip(xr).zip(w) {
                *o = v * r * g;
            }
        }
    });
}

/// The backward of [`rms_norm_rows`] given `dy`: adds the input gradient into `dx` and returns
/// the weight gradient (summed over the rows in a fixed order).
pub(crate) fn rms_norm_bwd_rows(x: &[f32], w: &[f32], dy: &[f32], eps: f32, dx: &mut [f32]) -> Vec<f32> {
    let h = w.len();
    let chunk = rows_per_task(h) * h;
    let parts: Vec<Vec<f32>> = dx
        .par_chunks_mut(chunk)
        .zip(x.par_chunks(chunk))
        .zip(dy.par_chunks(chunk))
        .map(|((dxc, xc), gc)| {
            let mut dw = vec![0f32; h];
            for ((dxr, xr), gr) in dxc.chunks_mut(h).zip(xc.chunks(h)).zip(gc.chunks(h)) {
                let ms = xr.iter().map(|v| v * v).sum::<f32>() / h as f32;
                let r = 1.0 / (ms + eps).sqrt();
                // n = x r; dn = dy w; dx = r (dn - n mean(dn n)); dw += dy n
                let mut dot = 0f32;
                for i in 0..h {
                    let n = xr[i] * r;
                    dot += gr[i] * w[i] * n;
                    dw[i] += gr[i] * n;
                }
                let mean = dot / h as f32;
                for i in 0..h {
                    dxr[i] += r * (gr[i] * w[i] - xr[i] * r * mean);
                }
            }
            dw
        })
        .collect();
    let mut dw = vec![0f32; h];
    for p in parts {
        dw.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
    }
    dw
}

/// RMSNorm over the last axis of `x` (contiguous f32 on the CPU) scaled by `w`, with a backward.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f32) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, RmsNorm { eps })
}

// ---------------------------------------------------------------------------------------------
// Rotary embedding, halves layout (transformers' rotate_half): for each row of d,
// y1 = x1 cos - x2 sin, y2 = x2 cos + x1 sin.

struct Rope {
    /// Rotate by the negative angle (the transpose: the backward of the forward rotation).
    inverse: bool,
    /// `[b, t, h, d]` (positions on axis 1) instead of `[b, h, t, d]` (positions on axis 2).
    bthd: bool,
}

impl CustomOp3 for Rope {
    fn name(&self) -> &'static str {
        "s1-rope"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        cs: &CpuStorage,
        cl: &Layout,
        ss: &CpuStorage,
        sl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _span = super::op_profile::span(self.name());
        let x = slice(xs, xl, self.name())?;
        let cos = slice(cs, cl, self.name())?;
        let sin = slice(ss, sl, self.name())?;
        let dims = xl.shape().dims();
        if dims.len() != 4 {
            candle_core::bail!("s1-rope: expects a rank-4 input, got {dims:?}");
        }
        let d = dims[3];
        // Rows of d: the position of row r is (r / inner) % t.
        let (t, inner) = if self.bthd { (dims[1], dims[2]) } else { (dims[2], 1) };
        let half = d / 2;
        if cos.len() != t * half || sin.len() != t * half {
            candle_core::bail!("s1-rope: tables hold {} values for {t} positions of {d}", cos.len());
        }
        let mut y = x.to_vec();
        rope_in_place(&mut y, cos, sin, t, inner, d, self.inverse);
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let inv = Rope {
            inverse: !self.inverse,
            bthd: self.bthd,
        };
        let dx = dy.contiguous()?.apply_op3_no_bwd(cos, sin, &inv)?;
        Ok((Some(dx), None, None))
    }
}

/// Rotates rows of `d` in place (halves layout); row r is at position `(r / inner) % t` of the
/// tables `[t, d/2]`. `inverse` rotates by the negative angle (the backward).
pub(crate) fn rope_in_place(xs: &mut [f32], cos: &[f32], sin: &[f32], t: usize, inner: usize, d: usize, inverse: bool) {
    let half = d / 2;
    let sign = if inverse { -1.0 } else { 1.0 };
    let rows_per = rows_per_task(d);
    xs.par_chunks_mut(rows_per * d).enumerate().for_each(|(ci, xc)| {
        for (k, xr) in xc.chunks_mut(d).enumerate() {
            let p = ((ci * rows_per + k) / inner) % t;
            let (c, s) = (&cos[p * half..(p + 1) * half], &sin[p * half..(p + 1) * half]);
            let (x1, x2) = xr.split_at_mut(half);
            for i in 0..half {
                let (a, b) = (x1[i], x2[i]);
                let si = sign * s[i];
                x1[i] = a * c[i] - b * si;
                x2[i] = b * c[i] + a * si;
            }
        }
    });
}

/// Rotary embedding of `x` `[b, h, t, d]` with tables `[t, d/2]`, with a backward.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let op = Rope {
        inverse: false,
        bthd: false,
    };
    x.contiguous()?.apply_op3(&cos.contiguous()?, &sin.contiguous()?, op)
}

/// Rotary embedding of `x` `[b, t, h, d]` (as the projections write it), with a backward.
pub fn rope_bthd(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let op = Rope {
        inverse: false,
        bthd: true,
    };
    x.contiguous()?.apply_op3(&cos.contiguous()?, &sin.contiguous()?, op)
}

// ---------------------------------------------------------------------------------------------
// Causal softmax of attention scores `[.., n_rep * t, total]`: row r is query position
// start + (r % t); keys after it get probability 0.

struct CausalSoftmax {
    scale: f32,
    t: usize,
    start: usize,
}

impl CausalSoftmax {
    fn visible(&self, row: usize) -> usize {
        self.start + row % self.t + 1
    }
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "s1-causal-softmax"
    }

    fn cpu_fwd(&self, ss: &CpuStorage, sl: &Layout) -> Result<(CpuStorage, Shape)> {
        let _span = super::op_profile::span(self.name());
        let s = slice(ss, sl, self.name())?;
        let total = sl.shape().dims()[sl.shape().rank() - 1];
        let rows_per_head = {
            let dims = sl.shape().dims();
            dims[dims.len() - 2]
        };
        let mut p = vec![0f32; s.len()];
        let chunk = rows_per_task(total) * total;
        p.par_chunks_mut(chunk)
            .zip(s.par_chunks(chunk))
            .enumerate()
            .for_each(|(ci, (pc, sc))| {
                let first = ci * (chunk / total);
                for (k, (pr, sr)) in pc.chunks_mut(total).zip(sc.chunks(total)).enumerate() {
                    let vis = self.visible((first + k) % rows_per_head).min(total);
                    let max = super::cpu_vmath::max(&sr[..vis]) * self.scale;
                    pr[..vis].copy_from_slice(&sr[..vis]);
                    let inv = 1.0 / super::cpu_vmath::exp_shift(&mut pr[..vis], self.scale, max);
                    pr[..vis].iter_mut().for_each(|o| *o *= inv);
                }
            });
        Ok((CpuStorage::F32(p), sl.shape().clone()))
    }

    cuda_fwd!(|self, (ss, sl)| {
        let p = super::cuda_train_ops::csm_fwd(ss, sl, self.scale, self.t, self.start)?;
        Ok((p, sl.shape().clone()))
    });

    fn bwd(&self, _s: &Tensor, p: &Tensor, dp: &Tensor) -> Result<Option<Tensor>> {
        let ds = p.apply_op2_no_bwd(&dp.contiguous()?, &SoftmaxBwd { scale: self.scale })?;
        Ok(Some(ds))
    }
}

/// ds = scale * p * (dp - sum(p * dp)) per row.
struct SoftmaxBwd {
    scale: f32,
}

impl CustomOp2 for SoftmaxBwd {
    fn name(&self) -> &'static str {
        "s1-softmax-bwd"
    }

    fn cpu_fwd(&self, ps: &CpuStorage, pl: &Layout, gs: &CpuStorage, gl: &Layout) -> Result<(CpuStorage, Shape)> {
        let _span = super::op_profile::span(self.name());
        let p = slice(ps, pl, self.name())?;
        let g = slice(gs, gl, self.name())?;
        let total = pl.shape().dims()[pl.shape().rank() - 1];
        let mut ds = vec![0f32; p.len()];
        let chunk = rows_per_task(total) * total;
        ds.par_chunks_mut(chunk)
            .zip(p.par_chunks(chunk))
            .zip(g.par_chunks(chunk))
            .for_each(|((dc, pc), gc)| {
                for ((dr, pr), gr) in dc.chunks_mut(total).zip(pc.chunks(total)).zip(gc.chunks(total)) {
                    let dot: f32 = pr.iter().zip(gr).map(|(a, b)| a * b).sum();
                    for ((o, &pv), &gv) in dr.iter_mut().zip(pr).zip(gr) {
                        *o = self.scale * pv * (gv - dot);
                    }
                }
            });
        Ok((CpuStorage::F32(ds), pl.shape().clone()))
    }

    cuda_fwd!(|self, (ps, pl), (gs, gl)| {
        let ds = super::cuda_train_ops::csm_bwd((ps, pl), (gs, gl), self.scale)?;
        Ok((ds, pl.shape().clone()))
    });
}

/// Softmax of `scale * scores` over the last axis under a causal mask: `scores` is
/// `[.., n_rep * t, start + t]` whose row r is query position `start + r % t`. With a backward.
pub fn causal_softmax(scores: &Tensor, scale: f32, t: usize, start: usize) -> Result<Tensor> {
    scores.contiguous()?.apply_op1(CausalSoftmax { scale, t, start })
}

// ---------------------------------------------------------------------------------------------
// SwiGLU: silu(g) * u.

struct SwiGlu;

impl CustomOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "s1-swiglu"
    }

    fn cpu_fwd(&self, gs: &CpuStorage, gl: &Layout, us: &CpuStorage, ul: &Layout) -> Result<(CpuStorage, Shape)> {
        let _span = super::op_profile::span(self.name());
        let g = slice(gs, gl, self.name())?;
        let u = slice(us, ul, self.name())?;
        if g.len() != u.len() {
            candle_core::bail!("s1-swiglu: gate and up differ in size");
        }
        let mut y = vec![0f32; g.len()];
        y.par_chunks_mut(16384)
            .zip(g.par_chunks(16384))
            .zip(u.par_chunks(16384))
            .for_each(|((yc, gc), uc)| {
                super::cpu_vmath::swiglu(gc, uc, yc);
            });
        Ok((CpuStorage::F32(y), gl.shape().clone()))
    }

    cuda_fwd!(|self, (gs, gl), (us, ul)| {
        Ok((
            super::cuda_train_ops::swiglu_fwd((gs, gl), (us, ul))?,
            gl.shape().clone(),
        ))
    });

    fn bwd(&self, g: &Tensor, u: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let packed = g.apply_op3_no_bwd(u, &dy.contiguous()?, &SwiGluBwd)?;
        let dg = packed.narrow(0, 0, 1)?.reshape(g.shape())?;
        let du = packed.narrow(0, 1, 1)?.reshape(u.shape())?;
        Ok((Some(dg), Some(du)))
    }
}

/// Returns `[2, n]`: dg then du.
struct SwiGluBwd;

impl CustomOp3 for SwiGluBwd {
    fn name(&self) -> &'static str {
        "s1-swiglu-bwd"
    }

    fn cpu_fwd(
        &self,
        gs: &CpuStorage,
        gl: &Layout,
        us: &CpuStorage,
        ul: &Layout,
        ds: &CpuStorage,
        dl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _span = super::op_profile::span(self.name());
        let g = slice(gs, gl, self.name())?;
        let u = slice(us, ul, self.name())?;
        let dy = slice(ds, dl, self.name())?;
        let n = g.len();
        let mut out = vec![0f32; 2 * n];
        let (dg, du) = out.split_at_mut(n);
        dg.par_chunks_mut(16384)
            .zip(du.par_chunks_mut(16384))
            .zip(g.par_chunks(16384).zip(u.par_chunks(16384)).zip(dy.par_chunks(16384)))
            .for_each(|((dgc, duc), ((gc, uc), yc))| super::cpu_vmath::swiglu_bwd(gc, uc, yc, dgc, duc));
        Ok((CpuStorage::F32(out), Shape::from((2, n))))
    }

    cuda_fwd!(|self, (gs, gl), (us, ul), (ds, dl)| {
        let n = gl.shape().elem_count();
        Ok((
            super::cuda_train_ops::swiglu_bwd((gs, gl), (us, ul), (ds, dl))?,
            Shape::from((2, n)),
        ))
    });
}

/// `silu(g) * u` elementwise (contiguous f32 on the CPU), with a backward.
pub fn swiglu(g: &Tensor, u: &Tensor) -> Result<Tensor> {
    g.contiguous()?.apply_op2(&u.contiguous()?, SwiGlu)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var, D};

    fn close(a: &Tensor, b: &Tensor, tol: f32) {
        let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(a.len(), b.len());
        let scale = b.iter().map(|v| v.abs()).fold(1e-6f32, f32::max);
        let err = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(err <= tol * scale, "max error {err} (scale {scale})");
    }

    fn rand(shape: &[usize], seed: u64) -> Tensor {
        let n: usize = shape.iter().product();
        let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
        let v: Vec<f32> = (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s % 20000) as f32 / 10000.0 - 1.0
            })
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// The fused op and the composed differentiable ops give the same values and gradients.
    fn check(
        inputs: &[Tensor],
        fused: impl Fn(&[Tensor]) -> Result<Tensor>,
        composed: impl Fn(&[Tensor]) -> Result<Tensor>,
    ) {
        let vars: Vec<Var> = inputs.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
        let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let probe = rand(fused(&ts).unwrap().dims(), 77);
        let yf = fused(&ts).unwrap();
        let yc = composed(&ts).unwrap();
        close(&yf, &yc, 1e-5);
        let gf = (yf * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let gc = (yc * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        for t in &ts {
            close(
                gf.get(t).expect("fused gradient"),
                gc.get(t).expect("composed gradient"),
                1e-4,
            );
        }
    }

    #[test]
    fn rms_norm_matches_composed_ops() {
        check(
            &[rand(&[3, 5, 48], 1), (rand(&[48], 2) + 1.0).unwrap()],
            |t| rms_norm(&t[0], &t[1], 1e-6),
            |t| {
                let var = t[0].sqr()?.mean_keepdim(D::Minus1)?;
                t[0].broadcast_div(&(var + 1e-6)?.sqrt()?)?.broadcast_mul(&t[1])
            },
        );
    }

    #[test]
    fn rope_matches_candle_rope_slow() {
        let cos = rand(&[7, 8], 3);
        let sin = rand(&[7, 8], 4);
        check(
            &[rand(&[2, 3, 7, 16], 5)],
            |t| rope(&t[0], &cos, &sin),
            |t| candle_nn::rotary_emb::rope_slow(&t[0], &cos, &sin),
        );
    }

    #[test]
    fn rope_bthd_matches_rope_on_the_transposed_layout() {
        let cos = rand(&[7, 8], 3);
        let sin = rand(&[7, 8], 4);
        check(
            &[rand(&[2, 7, 3, 16], 5)],
            |t| rope_bthd(&t[0], &cos, &sin),
            |t| candle_nn::rotary_emb::rope_slow(&t[0].transpose(1, 2)?.contiguous()?, &cos, &sin)?.transpose(1, 2),
        );
    }

    #[test]
    fn linear_matches_matmul_plus_bias() {
        check(
            &[rand(&[2, 5, 12], 10), rand(&[9, 12], 11), rand(&[9], 12)],
            |t| super::super::fused_linear::linear(&t[0], &t[1], Some(&t[2])),
            |t| t[0].broadcast_matmul(&t[1].t()?)?.broadcast_add(&t[2]),
        );
        check(
            &[rand(&[7, 12], 13), rand(&[9, 12], 14)],
            |t| super::super::fused_linear::linear(&t[0], &t[1], None),
            |t| t[0].matmul(&t[1].t()?),
        );
    }

    /// Causal GQA attention (4 query heads on 2 kv heads) over more rows than one causal block,
    /// both with kept and recomputed probabilities, against masked softmax attention.
    #[test]
    fn attention_matches_masked_softmax_attention() {
        let (b, t, h, kvh, d) = (2usize, 70usize, 4usize, 2usize, 8usize);
        let mask: Vec<f32> = (0..t)
            .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (t, t), &Device::Cpu).unwrap();
        let composed = |x: &[Tensor]| -> Result<Tensor> {
            let q = x[0].reshape((b, t, h, d))?.transpose(1, 2)?.contiguous()?;
            let rep = |y: &Tensor| -> Result<Tensor> {
                let y = y.reshape((b, t, kvh, d))?.transpose(1, 2)?; // [b, kvh, t, d]
                let y = y.unsqueeze(2)?.broadcast_as((b, kvh, h / kvh, t, d))?;
                y.reshape((b, h, t, d))
            };
            let (k, v) = (rep(&x[1])?, rep(&x[2])?);
            let s = (q.matmul(&k.t()?)? / (d as f64).sqrt())?.broadcast_add(&mask)?;
            let p = candle_nn::ops::softmax(&s, D::Minus1)?;
            p.matmul(&v)?.transpose(1, 2)?.reshape((b, t, h * d))
        };
        check(
            &[
                rand(&[b, t, h * d], 20),
                rand(&[b, t, kvh * d], 21),
                rand(&[b, t, kvh * d], 22),
            ],
            |x| super::super::fused_attention::causal_attention(&x[0], &x[1], &x[2], h, kvh, d),
            composed,
        );
    }

    #[test]
    fn causal_softmax_matches_masked_softmax() {
        // 2 query heads share a kv head (n_rep 2), t = 4 new positions after 3 cached ones.
        let (t, start, n_rep) = (4usize, 3usize, 2usize);
        let total = start + t;
        let mask: Vec<f32> = (0..n_rep * t)
            .flat_map(|r| (0..total).map(move |j| if j > start + r % t { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (n_rep * t, total), &Device::Cpu).unwrap();
        check(
            &[rand(&[2, 3, n_rep * t, total], 6)],
            |x| causal_softmax(&x[0], 0.5, t, start),
            |x| candle_nn::ops::softmax(&(&x[0] * 0.5)?.broadcast_add(&mask)?, D::Minus1),
        );
    }

    #[test]
    fn swiglu_matches_composed_ops() {
        check(
            &[rand(&[4, 33], 8), rand(&[4, 33], 9)],
            |t| swiglu(&t[0], &t[1]),
            |t| candle_nn::ops::silu(&t[0])? * &t[1],
        );
    }
}
