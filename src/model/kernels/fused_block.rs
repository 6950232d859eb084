//! A whole decoder block (RMSNorm, grouped-query attention with rope, RMSNorm, SwiGLU MLP, both
//! residuals) as one op of the CPU f32 training path. It runs the same kernels as the per-op
//! path (fused_linear, fused_ops, fused_attention, cpu_vmath) over plain slices, and its backward
//! writes the block's weight gradients straight into a [`GradSink`]: candle's autograd sees one
//! node per block instead of ~25, so the backward no longer allocates a zeroed gradient and adds
//! into it for every input of every op (a tenth of a CPU step), and the gradients of q/k/v and
//! gate/up sum inside the products instead of in separate passes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Storage, Tensor, TensorId};

use super::cpu_gemm::f32_slice;
use super::cpu_vmath;
use super::fused_attention::{self as attention, Dims, Saved};
use super::fused_linear::{backward_rows, column_sums, forward_rows};
use super::fused_ops::{rms_norm_bwd_rows, rms_norm_rows, rope_in_place};
use super::op_profile::span;

/// Weight gradients that block ops computed during a backward, by the weight's tensor id (the
/// id of the `Var` the weight came from).
#[derive(Default)]
pub struct GradSink {
    grads: Mutex<HashMap<TensorId, Vec<f32>>>,
}

impl GradSink {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Adds `g` to the gradient of `id`.
    fn put(&self, id: TensorId, g: Vec<f32>) {
        let mut grads = self.grads.lock().unwrap_or_else(|e| e.into_inner());
        match grads.get_mut(&id) {
            Some(acc) => acc.iter_mut().zip(&g).for_each(|(a, b)| *a += b),
            None => {
                grads.insert(id, g);
            }
        }
    }

    /// Takes the gradient of `t`, if a backward put one.
    pub fn take(&self, t: &Tensor) -> Option<Vec<f32>> {
        self.grads.lock().unwrap_or_else(|e| e.into_inner()).remove(&t.id())
    }
}

/// The order of a block's linear layers in [`BlockParams::linears`].
const Q: usize = 0;
const K: usize = 1;
const V: usize = 2;
const O: usize = 3;
const GATE: usize = 4;
const UP: usize = 5;
const DOWN: usize = 6;

/// A block's parameters (dense f32 CPU tensors) and shape.
pub(crate) struct BlockParams {
    pub in_norm: Tensor,
    pub post_norm: Tensor,
    /// q, k, v, o, gate, up, down: weight `[out, in]` and optional bias.
    pub linears: [(Tensor, Option<Tensor>); 7],
    pub eps: f32,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

impl BlockParams {
    /// Every parameter tensor: the two norms, then each linear's weight and bias.
    fn tensors(&self) -> Vec<&Tensor> {
        let mut ts = vec![&self.in_norm, &self.post_norm];
        for (w, b) in &self.linears {
            ts.push(w);
            ts.extend(b.iter());
        }
        ts
    }

    /// Whether the op can run this block on `x`: f32 on the CPU throughout, every parameter a
    /// trainable variable (the sink is where their gradients go).
    pub fn applies(&self, x: &Tensor) -> bool {
        super::fused_ops::supported(x)
            && self
                .tensors()
                .iter()
                .all(|t| super::fused_ops::supported(t) && t.is_variable())
    }
}

/// Runs `f` with the f32 values of several CPU tensors (read-locked meanwhile).
fn with_slices<R>(ts: &[&Tensor], f: impl FnOnce(&[&[f32]]) -> Result<R>) -> Result<R> {
    let held: Vec<_> = ts.iter().map(|t| t.storage_and_layout()).collect();
    let slices = held
        .iter()
        .map(|(st, l)| match &**st {
            Storage::Cpu(c) => f32_slice(c, l, "s1-block"),
            _ => candle_core::bail!("s1-block: expects CPU tensors"),
        })
        .collect::<Result<Vec<&[f32]>>>()?;
    f(&slices)
}

/// The parameter slices by role.
struct W<'a> {
    in_norm: &'a [f32],
    post_norm: &'a [f32],
    w: [&'a [f32]; 7],
    b: [Option<&'a [f32]>; 7],
    cos: &'a [f32],
    sin: &'a [f32],
}

impl<'a> W<'a> {
    fn new(p: &BlockParams, s: &[&'a [f32]], cos: &'a [f32], sin: &'a [f32]) -> Self {
        let mut it = s.iter().copied();
        let mut next = || it.next().unwrap_or(&[]);
        let (in_norm, post_norm) = (next(), next());
        let mut w: [&[f32]; 7] = [&[]; 7];
        let mut b: [Option<&[f32]>; 7] = [None; 7];
        for (i, (_, bias)) in p.linears.iter().enumerate() {
            w[i] = next();
            if bias.is_some() {
                b[i] = Some(next());
            }
        }
        Self {
            in_norm,
            post_norm,
            w,
            b,
            cos,
            sin,
        }
    }

    fn lin(&self, i: usize, x: &[f32], inp: usize) -> Result<Vec<f32>> {
        let _span = span("block/linear");
        forward_rows(x, self.w[i], self.b[i], inp)
    }
}

/// The forward's activations that the backward reads (q and k after rope).
struct Stash {
    h1: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    saved: Saved,
    o: Vec<f32>,
    x1: Vec<f32>,
    h2: Vec<f32>,
    g: Vec<f32>,
    u: Vec<f32>,
    s: Vec<f32>,
}

/// The block's shape for an input of `rows = b * t` rows of `hidden`.
#[derive(Clone, Copy)]
struct Geometry {
    b: usize,
    t: usize,
    hidden: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    eps: f32,
}

impl Geometry {
    fn dims(&self) -> Dims {
        Dims::new(self.b, self.t, self.heads, self.kv_heads, self.head_dim)
    }
}

fn forward(x: &[f32], w: &W, geo: Geometry) -> Result<(Vec<f32>, Stash)> {
    let (hidden, d) = (geo.hidden, geo.head_dim);
    let mut h1 = vec![0f32; x.len()];
    rms_norm_rows(x, w.in_norm, geo.eps, &mut h1);
    let mut q = w.lin(Q, &h1, hidden)?;
    let mut k = w.lin(K, &h1, hidden)?;
    let v = w.lin(V, &h1, hidden)?;
    rope_in_place(&mut q, w.cos, w.sin, geo.t, geo.heads, d, false);
    rope_in_place(&mut k, w.cos, w.sin, geo.t, geo.kv_heads, d, false);
    let sp = span("block/attention");
    let (o, saved) = attention::forward(&q, &k, &v, geo.dims(), attention::tiled(geo.t));
    drop(sp);
    let mut x1 = w.lin(O, &o, geo.heads * d)?;
    x1.iter_mut().zip(x).for_each(|(a, b)| *a += b);
    let mut h2 = vec![0f32; x.len()];
    rms_norm_rows(&x1, w.post_norm, geo.eps, &mut h2);
    let g = w.lin(GATE, &h2, hidden)?;
    let u = w.lin(UP, &h2, hidden)?;
    let mut s = vec![0f32; g.len()];
    cpu_vmath::swiglu(&g, &u, &mut s);
    let mut y = w.lin(DOWN, &s, g.len() / (x.len() / hidden))?;
    y.iter_mut().zip(&x1).for_each(|(a, b)| *a += b);
    let stash = Stash {
        h1,
        q,
        k,
        v,
        saved,
        o,
        x1,
        h2,
        g,
        u,
        s,
    };
    Ok((y, stash))
}

/// [`backward_rows`], timed for S1_PROFILE_STEP.
fn lin_bwd(x: &[f32], w: &[f32], dy: &[f32], inp: usize, dx: &mut [f32], accumulate: bool) -> Result<Vec<f32>> {
    let _span = span("block/linear-bwd");
    backward_rows(x, w, dy, inp, dx, accumulate)
}

/// The gradients of the block: returns dx and puts every parameter's gradient into `sink`.
fn backward(
    x: &[f32],
    dy: &[f32],
    w: &W,
    st: Stash,
    geo: Geometry,
    p: &BlockParams,
    sink: &GradSink,
) -> Result<Vec<f32>> {
    let (hidden, d) = (geo.hidden, geo.head_dim);
    let inter = st.g.len() / (x.len() / hidden);
    let put_lin = |i: usize, dw: Vec<f32>, dout: &[f32], out: usize| {
        let (wt, bt) = &p.linears[i];
        sink.put(wt.id(), dw);
        if let Some(bt) = bt {
            sink.put(bt.id(), column_sums(dout, out));
        }
    };
    // MLP: y = x1 + down(swiglu(gate(h2), up(h2))).
    let mut ds = vec![0f32; st.s.len()];
    put_lin(DOWN, lin_bwd(&st.s, w.w[DOWN], dy, inter, &mut ds, false)?, dy, hidden);
    let (mut dg, mut du) = (vec![0f32; ds.len()], vec![0f32; ds.len()]);
    cpu_vmath::swiglu_bwd(&st.g, &st.u, &ds, &mut dg, &mut du);
    drop(ds);
    let mut dh2 = vec![0f32; x.len()];
    put_lin(
        GATE,
        lin_bwd(&st.h2, w.w[GATE], &dg, hidden, &mut dh2, false)?,
        &dg,
        inter,
    );
    put_lin(UP, lin_bwd(&st.h2, w.w[UP], &du, hidden, &mut dh2, true)?, &du, inter);
    drop((dg, du));
    let mut dx1 = dy.to_vec();
    let dnorm = rms_norm_bwd_rows(&st.x1, w.post_norm, &dh2, geo.eps, &mut dx1);
    sink.put(p.post_norm.id(), dnorm);
    // Attention: x1 = x + o_proj(attention(rope(q(h1)), rope(k(h1)), v(h1))).
    let (qd, kd) = (geo.heads * d, geo.kv_heads * d);
    let mut d_o = vec![0f32; st.o.len()];
    put_lin(O, lin_bwd(&st.o, w.w[O], &dx1, qd, &mut d_o, false)?, &dx1, hidden);
    let sp = span("block/attention-bwd");
    let mut dqkv = attention::backward(&st.q, &st.k, &st.v, &st.o, &d_o, st.saved, geo.dims());
    drop(sp);
    drop(d_o);
    let (dq, dkv) = dqkv.split_at_mut(st.q.len());
    let (dk, dv) = dkv.split_at_mut(st.k.len());
    rope_in_place(dq, w.cos, w.sin, geo.t, geo.heads, d, true);
    rope_in_place(dk, w.cos, w.sin, geo.t, geo.kv_heads, d, true);
    let mut dh1 = vec![0f32; x.len()];
    put_lin(Q, lin_bwd(&st.h1, w.w[Q], dq, hidden, &mut dh1, false)?, dq, qd);
    put_lin(K, lin_bwd(&st.h1, w.w[K], dk, hidden, &mut dh1, true)?, dk, kd);
    put_lin(V, lin_bwd(&st.h1, w.w[V], dv, hidden, &mut dh1, true)?, dv, kd);
    let mut dx = dx1;
    sink.put(p.in_norm.id(), rms_norm_bwd_rows(x, w.in_norm, &dh1, geo.eps, &mut dx));
    Ok(dx)
}

/// What the forward and the backward op share: the parameters, the rope tables and the sink.
struct Context {
    params: Arc<BlockParams>,
    cos: Tensor,
    sin: Tensor,
    sink: Arc<GradSink>,
}

impl Context {
    fn geometry(&self, l: &Layout) -> Result<Geometry> {
        let (b, t, hidden) = l.shape().dims3()?;
        let p = &self.params;
        Ok(Geometry {
            b,
            t,
            hidden,
            heads: p.heads,
            kv_heads: p.kv_heads,
            head_dim: p.head_dim,
            eps: p.eps,
        })
    }

    /// Runs `f` with the parameter slices.
    fn with_weights<R>(&self, f: impl FnOnce(&W) -> Result<R>) -> Result<R> {
        let mut ts = self.params.tensors();
        ts.push(&self.cos);
        ts.push(&self.sin);
        with_slices(&ts, |s| {
            let n = s.len();
            f(&W::new(&self.params, &s[..n - 2], s[n - 2], s[n - 1]))
        })
    }
}

/// The forward op; it keeps its activations for the backward.
struct BlockOp {
    ctx: Arc<Context>,
    stash: Mutex<Option<Stash>>,
}

impl CustomOp1 for BlockOp {
    fn name(&self) -> &'static str {
        "s1-block"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        let _span = super::op_profile::span(self.name());
        let x = f32_slice(xs, xl, self.name())?;
        let geo = self.ctx.geometry(xl)?;
        let (y, stash) = self.ctx.with_weights(|w| forward(x, w, geo))?;
        *self.stash.lock().unwrap_or_else(|e| e.into_inner()) = Some(stash);
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let bwd = BlockBwd {
            ctx: self.ctx.clone(),
            stash: Mutex::new(self.stash.lock().unwrap_or_else(|e| e.into_inner()).take()),
        };
        Ok(Some(x.apply_op2_no_bwd(&dy.contiguous()?, &bwd)?))
    }
}

/// The backward op: dx from x and dy, with the forward's activations when it still has them.
struct BlockBwd {
    ctx: Arc<Context>,
    stash: Mutex<Option<Stash>>,
}

impl CustomOp2 for BlockBwd {
    fn name(&self) -> &'static str {
        "s1-block-bwd"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, ds: &CpuStorage, dl: &Layout) -> Result<(CpuStorage, Shape)> {
        let _span = super::op_profile::span(self.name());
        let x = f32_slice(xs, xl, self.name())?;
        let dy = f32_slice(ds, dl, self.name())?;
        if dy.len() != x.len() {
            candle_core::bail!("s1-block-bwd: the upstream gradient does not match the input");
        }
        let geo = self.ctx.geometry(xl)?;
        let stash = self.stash.lock().unwrap_or_else(|e| e.into_inner()).take();
        let dx = self.ctx.with_weights(|w| {
            // Recomputed when the forward's activations are gone (a second backward).
            let st = match stash {
                Some(st) => st,
                None => forward(x, w, geo)?.1,
            };
            backward(x, dy, w, st, geo, &self.ctx.params, &self.ctx.sink)
        })?;
        Ok((CpuStorage::F32(dx), xl.shape().clone()))
    }
}

/// The block on `x` `[b, t, hidden]` (from position 0, causal) with rope tables `cos`, `sin`
/// `[t, head_dim / 2]`; its backward returns dx and puts the parameters' gradients in `sink`.
pub(crate) fn block(
    params: Arc<BlockParams>,
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    sink: &Arc<GradSink>,
) -> Result<Tensor> {
    let (_, t, hidden) = x.dims3()?;
    let half = params.head_dim / 2;
    if cos.dims2()? != (t, half) || sin.dims2()? != (t, half) {
        candle_core::bail!("s1-block: rope tables are not [{t}, {half}]");
    }
    if params.in_norm.elem_count() != hidden {
        candle_core::bail!(
            "s1-block: the input has {hidden} features, the block expects {}",
            params.in_norm.elem_count()
        );
    }
    let op = BlockOp {
        ctx: Arc::new(Context {
            params,
            cos: cos.contiguous()?,
            sin: sin.contiguous()?,
            sink: sink.clone(),
        }),
        stash: Mutex::new(None),
    };
    x.contiguous()?.apply_op1(op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn rand(shape: &[usize], seed: u64) -> Var {
        let n: usize = shape.iter().product();
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let v: Vec<f32> = (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.6
            })
            .collect();
        Var::from_tensor(&Tensor::from_vec(v, shape, &Device::Cpu).unwrap()).unwrap()
    }

    /// The block op against the same block composed from the per-op fused ops (each with its
    /// own backward through candle): the output, the input gradient and every parameter's
    /// gradient; then a second backward, which recomputes the activations, gives the same.
    #[test]
    fn matches_the_per_op_path() {
        let (b, t, hidden, heads, kvh, d, inter) = (2usize, 9usize, 16usize, 4usize, 2usize, 4usize, 24usize);
        let (qd, kd) = (heads * d, kvh * d);
        let shapes: [(usize, usize, bool); 7] = [
            (qd, hidden, true),
            (kd, hidden, true),
            (kd, hidden, true),
            (hidden, qd, false),
            (inter, hidden, false),
            (inter, hidden, true),
            (hidden, inter, false),
        ];
        let mut vars = vec![rand(&[hidden], 1), rand(&[hidden], 2)];
        let linears: Vec<(Var, Option<Var>)> = shapes
            .iter()
            .enumerate()
            .map(|(i, &(o, inp, bias))| (rand(&[o, inp], 10 + i as u64), bias.then(|| rand(&[o], 20 + i as u64))))
            .collect();
        for (w, bias) in &linears {
            vars.push(w.clone());
            vars.extend(bias.iter().cloned());
        }
        // Norm weights around 1.
        let in_norm = (vars[0].as_tensor() + 1.0).unwrap();
        let post_norm = (vars[1].as_tensor() + 1.0).unwrap();
        let in_var = Var::from_tensor(&in_norm).unwrap();
        let post_var = Var::from_tensor(&post_norm).unwrap();
        vars[0] = in_var.clone();
        vars[1] = post_var.clone();
        let lin = |i: usize| {
            (
                linears[i].0.as_tensor().clone(),
                linears[i].1.as_ref().map(|v| v.as_tensor().clone()),
            )
        };
        let params = Arc::new(BlockParams {
            in_norm: in_var.as_tensor().clone(),
            post_norm: post_var.as_tensor().clone(),
            linears: [lin(0), lin(1), lin(2), lin(3), lin(4), lin(5), lin(6)],
            eps: 1e-6,
            heads,
            kv_heads: kvh,
            head_dim: d,
        });
        let x = rand(&[b, t, hidden], 99);
        assert!(params.applies(x.as_tensor()));
        let half = d / 2;
        let ang: Vec<f32> = (0..t * half)
            .map(|i| (i / half) as f32 * 0.3 / (1 + i % half) as f32)
            .collect();
        let cos = Tensor::from_vec(ang.iter().map(|a| a.cos()).collect::<Vec<_>>(), (t, half), &Device::Cpu).unwrap();
        let sin = Tensor::from_vec(ang.iter().map(|a| a.sin()).collect::<Vec<_>>(), (t, half), &Device::Cpu).unwrap();
        let r = rand(&[b, t, hidden], 7);

        // Reference: the per-op path of decoder.rs.
        let reference = {
            use super::super::{fused_attention, fused_linear::linear, fused_ops};
            let l = |i: usize, x: &Tensor| {
                let (w, bias) = lin(i);
                linear(x, &w, bias.as_ref()).unwrap()
            };
            let xs = x.as_tensor();
            let h1 = fused_ops::rms_norm(xs, in_var.as_tensor(), 1e-6).unwrap();
            let q = fused_ops::rope_bthd(&l(0, &h1).reshape((b, t, heads, d)).unwrap(), &cos, &sin).unwrap();
            let k = fused_ops::rope_bthd(&l(1, &h1).reshape((b, t, kvh, d)).unwrap(), &cos, &sin).unwrap();
            let o = fused_attention::causal_attention(
                &q.reshape((b, t, qd)).unwrap(),
                &k.reshape((b, t, kd)).unwrap(),
                &l(2, &h1),
                heads,
                kvh,
                d,
            )
            .unwrap();
            let x1 = (xs + l(3, &o)).unwrap();
            let h2 = fused_ops::rms_norm(&x1, post_var.as_tensor(), 1e-6).unwrap();
            let s = fused_ops::swiglu(&l(4, &h2), &l(5, &h2)).unwrap();
            (x1 + l(6, &s)).unwrap()
        };
        let sink = GradSink::new();
        let ours = block(params, x.as_tensor(), &cos, &sin, &sink).unwrap();
        let close = |a: &Tensor, b: &Tensor, what: &str| {
            let (a, b) = (
                a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                b.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            );
            assert_eq!(a.len(), b.len(), "{what}");
            let scale = b.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert!((x - y).abs() <= 1e-5 * scale, "{what}[{i}]: {x} vs {y}");
            }
        };
        close(&ours, &reference, "output");
        let gr = (&reference * r.as_tensor())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let loss = (&ours * r.as_tensor()).unwrap().sum_all().unwrap();
        for pass in 0..2 {
            let go = loss.backward().unwrap();
            close(
                go.get(x.as_tensor()).unwrap(),
                gr.get(x.as_tensor()).unwrap(),
                &format!("dx (pass {pass})"),
            );
            for (i, v) in vars.iter().enumerate() {
                let g = sink
                    .take(v.as_tensor())
                    .unwrap_or_else(|| panic!("parameter {i}: no gradient (pass {pass})"));
                let g = Tensor::from_vec(g, v.shape(), &Device::Cpu).unwrap();
                close(
                    &g,
                    gr.get(v.as_tensor()).unwrap(),
                    &format!("parameter {i} (pass {pass})"),
                );
            }
        }
    }
}
