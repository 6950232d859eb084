//! The training path's linear layer on the CPU: `y = x W^T (+ b)` as one gemm call on row-major
//! operands (W transposed first, see cpu_gemm::transpose), the bias folded into the product's output,
//! and a backward that computes dx, dW and db in one op.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_gemm::{f32_slice as slice, matmul_rows, transpose};

/// The shape `[rows, out]` of a linear layer's output for `x` rows of `inp` and `w` `[out, inp]`,
/// or an error naming the sizes that do not fit.
fn dims(x: &[f32], w: &[f32], inp: usize) -> Result<(usize, usize)> {
    if inp == 0 || !x.len().is_multiple_of(inp) || !w.len().is_multiple_of(inp) {
        candle_core::bail!(
            "s1-linear: {} inputs and {} weights are not rows of {inp}",
            x.len(),
            w.len()
        );
    }
    Ok((x.len() / inp, w.len() / inp))
}

/// `x W^T (+ b)`: `x` rows of `inp`, `w` `[out, inp]`; returns `[rows, out]`.
pub(crate) fn forward_rows(x: &[f32], w: &[f32], b: Option<&[f32]>, inp: usize) -> Result<Vec<f32>> {
    let (rows, out) = dims(x, w, inp)?;
    let mut y = vec![0f32; rows * out];
    if let Some(b) = b {
        if b.len() != out {
            candle_core::bail!("s1-linear: a bias of {} for {out} outputs", b.len());
        }
        y.par_chunks_mut(out * 64)
            .for_each(|c| c.chunks_mut(out).for_each(|r| r.copy_from_slice(b)));
    }
    matmul_rows(rows, out, inp, &mut y, x, &transpose(w, out, inp)?, b.is_some())?;
    Ok(y)
}

/// The backward of [`forward_rows`] given `dy` `[rows, out]`: writes (or with `accumulate`
/// adds) `dy W` into `dx` `[rows, inp]` and returns dW `[out, inp]`.
pub(crate) fn backward_rows(
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    inp: usize,
    dx: &mut [f32],
    accumulate: bool,
) -> Result<Vec<f32>> {
    let (rows, out) = dims(x, w, inp)?;
    if dy.len() != rows * out || dx.len() != rows * inp {
        candle_core::bail!(
            "s1-linear backward: dy of {} and dx of {} for [{rows}, {out}] <- [{rows}, {inp}]",
            dy.len(),
            dx.len()
        );
    }
    matmul_rows(rows, inp, out, dx, dy, w, accumulate)?;
    let mut dw = vec![0f32; out * inp];
    matmul_rows(out, inp, rows, &mut dw, &transpose(dy, rows, out)?, x, false)?;
    Ok(dw)
}

/// Column sums of `dy` `[rows, out]` (a bias gradient), in a fixed order (deterministic).
pub(crate) fn column_sums(dy: &[f32], out: usize) -> Vec<f32> {
    let parts: Vec<Vec<f32>> = dy
        .par_chunks(out * 256)
        .map(|c| {
            let mut s = vec![0f32; out];
            for r in c.chunks(out) {
                s.iter_mut().zip(r).for_each(|(a, b)| *a += b);
            }
            s
        })
        .collect();
    let mut db = vec![0f32; out];
    for p in parts {
        db.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
    }
    db
}

fn forward(x: &[f32], w: &[f32], b: Option<&[f32]>, inp: usize, out_dims: &[usize]) -> Result<(CpuStorage, Shape)> {
    let y = forward_rows(x, w, b, inp)?;
    let mut dims = out_dims.to_vec();
    match dims.last_mut() {
        Some(d) => *d = w.len() / inp,
        None => candle_core::bail!("s1-linear: expects an input of rank 1 or more"),
    }
    Ok((CpuStorage::F32(y), Shape::from(dims)))
}

struct Linear;
struct LinearBias;

impl CustomOp2 for Linear {
    fn name(&self) -> &'static str {
        "s1-linear"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, ws: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        let _span = super::op_profile::span(self.name());
        let inp = wl.shape().dims2()?.1;
        forward(
            slice(xs, xl, self.name())?,
            slice(ws, wl, self.name())?,
            None,
            inp,
            xl.shape().dims(),
        )
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = backward(x, w, dy, false)?;
        Ok((Some(dx), Some(dw)))
    }
}

impl CustomOp3 for LinearBias {
    fn name(&self) -> &'static str {
        "s1-linear-bias"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _span = super::op_profile::span(self.name());
        let inp = wl.shape().dims2()?.1;
        let b = slice(bs, bl, self.name())?;
        forward(
            slice(xs, xl, self.name())?,
            slice(ws, wl, self.name())?,
            Some(b),
            inp,
            xl.shape().dims(),
        )
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, db) = backward(x, w, dy, true)?;
        Ok((Some(dx), Some(dw), db))
    }
}

fn backward(x: &Tensor, w: &Tensor, dy: &Tensor, bias: bool) -> Result<(Tensor, Tensor, Option<Tensor>)> {
    let (out, inp) = w.dims2()?;
    let rows = x.elem_count() / inp;
    let packed = x.apply_op3_no_bwd(w, &dy.contiguous()?, &LinearBwd { bias })?;
    let dx = packed.narrow(0, 0, rows * inp)?.reshape(x.shape())?;
    let dw = packed.narrow(0, rows * inp, out * inp)?.reshape((out, inp))?;
    let db = if bias {
        Some(packed.narrow(0, rows * inp + out * inp, out)?)
    } else {
        None
    };
    Ok((dx, dw, db))
}

/// Returns dx, dW (and db) packed one after the other in a flat tensor.
struct LinearBwd {
    bias: bool,
}

impl CustomOp3 for LinearBwd {
    fn name(&self) -> &'static str {
        "s1-linear-bwd"
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
        let (out, inp) = wl.shape().dims2()?;
        let rows = x.len() / inp;
        let mut buf = Vec::with_capacity(rows * inp + out * inp + if self.bias { out } else { 0 });
        buf.resize(rows * inp, 0f32);
        let dw = backward_rows(x, w, dy, inp, &mut buf, false)?;
        buf.extend_from_slice(&dw);
        if self.bias {
            buf.extend_from_slice(&column_sums(dy, out));
        }
        let n = buf.len();
        Ok((CpuStorage::F32(buf), Shape::from(n)))
    }
}

/// `x W^T + b` over the last axis of `x` (contiguous f32 on the CPU), with a backward to all.
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let x = x.contiguous()?;
    match b {
        Some(b) => x.apply_op3(&w.contiguous()?, &b.contiguous()?, LinearBias),
        None => x.apply_op2(&w.contiguous()?, Linear),
    }
}
