//! Causal grouped-query attention for the training path, forward and backward in one op each.
//! It reads q `[b, t, h * d]`, k and v `[b, t, kvh * d]` where the projections wrote them (no
//! transposed copies) and writes `[b, t, h * d]` for the output projection. On the CPU, from
//! [`DEFAULT_TILED_FROM`] tokens on it runs the tiled path of [`super::flash_attention`] (memory
//! linear in t); on shorter sequences the materialising path here, which skips the key blocks
//! that the causal mask hides and keeps the probabilities for the backward while they fit in
//! memory (else recomputes them). On CUDA (bf16, head size 64 or 128) it runs the kernels of
//! kernels/flash_attn.cu.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_gemm::{f32_slice as slice, matmul, SendPtr, View};

/// Query rows per causal block: a block of rows sees keys up to its last row only.
const BLOCK: usize = 64;
/// Keep the probabilities for the backward up to this many floats (256 MB).
const KEEP_PROBS: usize = 64 << 20;

#[derive(Clone, Copy)]
pub(crate) struct Dims {
    pub(crate) b: usize,
    pub(crate) t: usize,
    pub(crate) h: usize,
    pub(crate) kvh: usize,
    pub(crate) d: usize,
    pub(crate) scale: f32,
}

impl Dims {
    /// Batch `b`, sequence `t`, `h` query heads sharing `kvh` key/value heads of size `d`.
    pub(crate) fn new(b: usize, t: usize, h: usize, kvh: usize, d: usize) -> Self {
        Self {
            b,
            t,
            h,
            kvh,
            d,
            scale: 1.0 / (d as f32).sqrt(),
        }
    }

    fn rep(&self) -> usize {
        self.h / self.kvh
    }
}

/// Rows `r0..r1` (columns `0..r1`, the keys they can see) of `a_h b_g^T` into `dst` `[t, t]`:
/// `a` is a query-head slice (rows `h * d` apart), `b` a kv-head slice (rows `kvh * d` apart).
/// The scores (q k^T) in the forward and dP (dO v^T) in the backward.
fn visible_block(dm: Dims, r0: usize, r1: usize, a: &[f32], b: &[f32], dst: &mut [f32]) {
    let Dims { t, h, kvh, d, .. } = dm;
    debug_assert!(dst.len() >= r1 * t && a.len() >= (r1 - 1) * h * d + d && b.len() >= (r1 - 1) * kvh * d + d);
    // SAFETY: the callers pass whole head slices of [b, t, heads * d] tensors and a [t, t] buffer,
    // which bound every row read and written (checked above in debug builds).
    unsafe {
        matmul(
            r1 - r0,
            r1,
            d,
            dst[r0 * t..].as_mut_ptr(),
            t,
            View::rows(&a[r0 * h * d..], h * d),
            View::rows_t(b, kvh * d),
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Scores and causal softmax of head `hh` of batch `bi` into `p` `[t, t]` (row i valid in
/// columns 0..=i, zero after).
fn probs_head(q: &[f32], k: &[f32], dm: Dims, bi: usize, hh: usize, p: &mut [f32]) {
    let Dims {
        t, h, kvh, d, scale, ..
    } = dm;
    let g = hh / dm.rep();
    let qh = &q[(bi * t * h + hh) * d..];
    let kg = &k[(bi * t * kvh + g) * d..];
    for r0 in (0..t).step_by(BLOCK) {
        let r1 = (r0 + BLOCK).min(t);
        visible_block(dm, r0, r1, qh, kg, p);
        for i in r0..r1 {
            let row = &mut p[i * t..(i + 1) * t];
            let (vis, hidden) = row.split_at_mut(i + 1);
            let max = super::cpu_vmath::max(vis) * scale;
            let inv = 1.0 / super::cpu_vmath::exp_shift(vis, scale, max);
            vis.iter_mut().for_each(|v| *v *= inv);
            hidden.iter_mut().for_each(|v| *v = 0.0);
        }
    }
}

/// The attention output `[b, t, h * d]`, and the probabilities `[b, h, t, t]` when they fit in
/// [`KEEP_PROBS`] (for the backward). The slices must match `dm` (the callers check).
pub(crate) fn forward_materialised(q: &[f32], k: &[f32], v: &[f32], dm: Dims) -> (Vec<f32>, Option<Vec<f32>>) {
    let Dims { b, t, h, kvh, d, .. } = dm;
    let keep = b * h * t * t <= KEEP_PROBS;
    let mut o = vec![0f32; q.len()];
    let mut all_p = if keep { vec![0f32; b * h * t * t] } else { Vec::new() };
    let optr = SendPtr(o.as_mut_ptr());
    let work = |bi: usize, hh: usize, p: &mut [f32]| {
        probs_head(q, k, dm, bi, hh, p);
        let g = hh / dm.rep();
        let vg = &v[(bi * t * kvh + g) * d..];
        for r0 in (0..t).step_by(BLOCK) {
            let r1 = (r0 + BLOCK).min(t);
            // SAFETY: task (bi, hh) alone writes rows of head hh of batch bi in o.
            unsafe {
                matmul(
                    r1 - r0,
                    d,
                    r1,
                    optr.ptr().add(((bi * t + r0) * h + hh) * d),
                    h * d,
                    View::rows(&p[r0 * t..], t),
                    View::rows(vg, kvh * d),
                    false,
                    gemm::Parallelism::None,
                );
            }
        }
    };
    if keep {
        all_p
            .par_chunks_mut(t * t)
            .enumerate()
            .for_each(|(i, p)| work(i / h, i % h, p));
        (o, Some(all_p))
    } else {
        (0..b * h)
            .into_par_iter()
            .for_each_init(|| vec![0f32; t * t], |p, i| work(i / h, i % h, p));
        (o, None)
    }
}

/// From this sequence length on, [`causal_attention`] and the block op take the tiled path of
/// [`super::flash_attention`] (memory linear in t); below it the materialising path, which is
/// faster on short rows (measured by `s1-studio bench attention`). A setting, not a constant,
/// so that the benchmark and the tests can force either path.
static TILED_FROM: AtomicUsize = AtomicUsize::new(DEFAULT_TILED_FROM);

/// [`TILED_FROM`]'s default: `s1-studio bench attention` on 2 cores (8 heads, 4 kv heads of 64,
/// forward + backward) timed the materialising path 16 ms / 32 ms / 76 ms / 1,026 ms against
/// the tiled 27 ms / 35 ms / 71 ms / 627 ms at t = 256 / 512 / 1,024 / 4,096: even at 512,
/// faster from 1,024.
pub const DEFAULT_TILED_FROM: usize = 512;

/// Sets the sequence length from which the training attention takes the tiled path (0: always,
/// `usize::MAX`: never), for the whole process.
pub fn set_tiled_from(t: usize) {
    TILED_FROM.store(t, Ordering::Relaxed);
}

/// Whether a sequence of `t` takes the tiled path.
pub(crate) fn tiled(t: usize) -> bool {
    t >= TILED_FROM.load(Ordering::Relaxed)
}

/// Which implementation [`causal_attention_on`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionPath {
    /// The tiled path from the length set by [`set_tiled_from`], else the materialising one.
    Auto,
    /// Scores and probabilities in `[t, t]` buffers per head.
    Materialised,
    /// The tiled, online-softmax path (memory linear in t).
    Tiled,
}

/// What the forward keeps for the backward.
pub(crate) enum Saved {
    /// The probabilities `[b, h, t, t]` (short sequences, within [`KEEP_PROBS`]).
    Probs(Vec<f32>),
    /// Nothing: the materialising backward recomputes the probabilities head by head.
    Recompute,
    /// Each row's log-sum-exp `[b, h, t]` (the tiled path).
    Lse(Vec<f32>),
    /// The same on the GPU (kernels/flash_attn.cu).
    #[cfg(feature = "cuda")]
    CudaLse(candle_core::cuda_backend::cudarc::driver::CudaSlice<f32>),
}

/// Whether the CUDA kernels of kernels/flash_attn.cu run the training attention of `x`'s
/// device and dtype at head size `d` (bf16 on CUDA, d 64 or 128; S1_NO_FLASH_ATTENTION=1 turns
/// them off, for comparisons).
pub fn cuda_applies(x: &Tensor, d: usize) -> bool {
    #[cfg(feature = "cuda")]
    {
        use std::sync::OnceLock;
        static OFF: OnceLock<bool> = OnceLock::new();
        x.device().is_cuda()
            && super::cuda_flash_attention::supported(x.dtype(), d)
            && !*OFF.get_or_init(|| std::env::var_os("S1_NO_FLASH_ATTENTION").is_some())
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (x, d);
        false
    }
}

/// The attention output `[b, t, h * d]` and what the backward needs, by the path that is faster
/// at this length (see [`tiled`]), or the tiled one if `tiled_path`.
pub(crate) fn forward(q: &[f32], k: &[f32], v: &[f32], dm: Dims, tiled_path: bool) -> (Vec<f32>, Saved) {
    if tiled_path {
        let (o, lse) = super::flash_attention::forward(q, k, v, dm);
        return (o, Saved::Lse(lse));
    }
    let (o, probs) = forward_materialised(q, k, v, dm);
    (o, probs.map_or(Saved::Recompute, Saved::Probs))
}

/// dq, dk and dv packed (see [`backward_materialised`]) from the forward's output `o`, what it
/// saved, and the upstream `d_o`.
pub(crate) fn backward(q: &[f32], k: &[f32], v: &[f32], o: &[f32], d_o: &[f32], saved: Saved, dm: Dims) -> Vec<f32> {
    match saved {
        Saved::Lse(lse) => super::flash_attention::backward(q, k, v, o, d_o, &lse, dm),
        Saved::Probs(p) => backward_materialised(q, k, v, d_o, Some(&p), dm),
        Saved::Recompute => backward_materialised(q, k, v, d_o, None, dm),
        // Saved by a CUDA forward: not reached on the CPU; recompute the statistics here.
        #[cfg(feature = "cuda")]
        Saved::CudaLse(_) => {
            let lse = super::flash_attention::forward(q, k, v, dm).1;
            super::flash_attention::backward(q, k, v, o, d_o, &lse, dm)
        }
    }
}

struct Attention {
    dm: Dims,
    tiled: bool,
    /// What the forward saved for the backward.
    saved: Mutex<Option<Saved>>,
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "s1-attention"
    }

    fn cpu_fwd(
        &self,
        qs: &CpuStorage,
        ql: &Layout,
        ks: &CpuStorage,
        kl: &Layout,
        vs: &CpuStorage,
        vl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _span = super::op_profile::span(self.name());
        let (q, k, v) = (
            slice(qs, ql, self.name())?,
            slice(ks, kl, self.name())?,
            slice(vs, vl, self.name())?,
        );
        let Dims { b, t, h, kvh, d, .. } = self.dm;
        if q.len() != b * t * h * d || k.len() != b * t * kvh * d || v.len() != k.len() {
            candle_core::bail!("s1-attention: q, k, v do not match [{b}, {t}, heads * {d}]");
        }
        let (o, saved) = forward(q, k, v, self.dm, self.tiled);
        *self.saved.lock().unwrap_or_else(|e| e.into_inner()) = Some(saved);
        Ok((CpuStorage::F32(o), ql.shape().clone()))
    }

    cuda_fwd!(|self, (qs, ql), (ks, kl), (vs, vl)| {
        use candle_core::backend::BackendStorage;
        if !super::cuda_flash_attention::supported(qs.dtype(), self.dm.d) {
            candle_core::bail!(
                "s1-attention: the CUDA kernels take bf16 with head size 64 or 128, not {:?} with {}",
                qs.dtype(),
                self.dm.d
            );
        }
        let (o, lse) = super::cuda_flash_attention::forward(&qs.device, (qs, ql), (ks, kl), (vs, vl), self.dm)?;
        *self.saved.lock().unwrap_or_else(|e| e.into_inner()) = Some(Saved::CudaLse(lse));
        Ok((o, ql.shape().clone()))
    });

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        o: &Tensor,
        d_o: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let saved = self.saved.lock().unwrap_or_else(|e| e.into_inner()).take();
        let bwd = AttentionBwd {
            dm: self.dm,
            tiled: self.tiled,
            saved: Mutex::new(saved),
            o: o.contiguous()?,
            d_o: d_o.contiguous()?,
        };
        let packed = q.apply_op3_no_bwd(k, v, &bwd)?;
        let (nq, nk) = (q.elem_count(), k.elem_count());
        Ok((
            Some(packed.narrow(0, 0, nq)?.reshape(q.shape())?),
            Some(packed.narrow(0, nq, nk)?.reshape(k.shape())?),
            Some(packed.narrow(0, nq + nk, nk)?.reshape(v.shape())?),
        ))
    }
}

/// dq, dk and dv packed in one buffer (`[b, t, h * d]`, then two `[b, t, kvh * d]`), given the
/// upstream `d_o` and the forward's probabilities if it kept them (else they are recomputed).
pub(crate) fn backward_materialised(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    d_o: &[f32],
    probs: Option<&[f32]>,
    dm: Dims,
) -> Vec<f32> {
    let Dims { b, t, h, kvh, d, scale } = dm;
    let rep = dm.rep();
    let (nq, nk) = (q.len(), k.len());
    let mut out = vec![0f32; nq + 2 * nk];
    let base = SendPtr(out.as_mut_ptr());
    // One task per (batch, kv head): it owns dk and dv of that head and dq of its query heads.
    (0..b * kvh).into_par_iter().for_each_init(
        || (vec![0f32; t * t], vec![0f32; t * t]),
        |(pbuf, dp), task| {
            let (bi, g) = (task / kvh, task % kvh);
            let kg = &k[(bi * t * kvh + g) * d..];
            let vg = &v[(bi * t * kvh + g) * d..];
            for r in 0..rep {
                let hh = g * rep + r;
                let p: &[f32] = match probs {
                    Some(all) => &all[(bi * h + hh) * t * t..(bi * h + hh + 1) * t * t],
                    None => {
                        probs_head(q, k, dm, bi, hh, pbuf);
                        pbuf
                    }
                };
                let qh = &q[(bi * t * h + hh) * d..];
                let doh = &d_o[(bi * t * h + hh) * d..];
                // SAFETY: this task alone writes dq rows of head hh and dk/dv of head g in
                // batch bi; every view stays inside its [b, t, heads * d] tensor.
                unsafe {
                    let dq = base.ptr().add((bi * t * h + hh) * d);
                    let dk = base.ptr().add(nq + (bi * t * kvh + g) * d);
                    let dv = base.ptr().add(nq + nk + (bi * t * kvh + g) * d);
                    // dV_g += P^T dO_h (rows of P up to t, keys 0..t)
                    matmul(
                        t,
                        d,
                        t,
                        dv,
                        kvh * d,
                        View::rows_t(p, t),
                        View::rows(doh, h * d),
                        r > 0,
                        gemm::Parallelism::None,
                    );
                    for r0 in (0..t).step_by(BLOCK) {
                        let r1 = (r0 + BLOCK).min(t);
                        // dP = dO_h V_g^T on the visible block.
                        visible_block(dm, r0, r1, doh, vg, dp);
                        // dS = scale * P * (dP - rowsum(P * dP)), in place in dp.
                        for i in r0..r1 {
                            let pr = &p[i * t..i * t + i + 1];
                            let dr = &mut dp[i * t..(i + 1) * t];
                            let dot: f32 = pr.iter().zip(dr.iter()).map(|(a, b)| a * b).sum();
                            for (x, &pv) in dr[..=i].iter_mut().zip(pr) {
                                *x = scale * pv * (*x - dot);
                            }
                            dr[i + 1..r1].iter_mut().for_each(|x| *x = 0.0);
                        }
                        // dQ_h rows = dS K_g.
                        matmul(
                            r1 - r0,
                            d,
                            r1,
                            dq.add(r0 * h * d),
                            h * d,
                            View::rows(&dp[r0 * t..], t),
                            View::rows(kg, kvh * d),
                            false,
                            gemm::Parallelism::None,
                        );
                        // dK_g[0..r1] += dS^T Q_h rows.
                        matmul(
                            r1,
                            d,
                            r1 - r0,
                            dk,
                            kvh * d,
                            View::rows_t(&dp[r0 * t..], t),
                            View::rows(&qh[r0 * h * d..], h * d),
                            true,
                            gemm::Parallelism::None,
                        );
                    }
                }
            }
        },
    );
    out
}

/// The backward; returns dq, dk, dv packed in a flat tensor.
struct AttentionBwd {
    dm: Dims,
    tiled: bool,
    /// What the forward saved (taken by the first backward; a second one recomputes).
    saved: Mutex<Option<Saved>>,
    o: Tensor,
    d_o: Tensor,
}

impl CustomOp3 for AttentionBwd {
    fn name(&self) -> &'static str {
        "s1-attention-bwd"
    }

    fn cpu_fwd(
        &self,
        qs: &CpuStorage,
        ql: &Layout,
        ks: &CpuStorage,
        kl: &Layout,
        vs: &CpuStorage,
        vl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _span = super::op_profile::span(self.name());
        let (q, k, v) = (
            slice(qs, ql, self.name())?,
            slice(ks, kl, self.name())?,
            slice(vs, vl, self.name())?,
        );
        let (st, dl) = self.d_o.storage_and_layout();
        let (ost, ol) = self.o.storage_and_layout();
        let (candle_core::Storage::Cpu(ds), candle_core::Storage::Cpu(os)) = (&*st, &*ost) else {
            candle_core::bail!("s1-attention-bwd: expects CPU tensors")
        };
        let (d_o, o) = (slice(ds, dl, self.name())?, slice(os, ol, self.name())?);
        let saved = match self.saved.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(s) => s,
            None if self.tiled => Saved::Lse(super::flash_attention::forward(q, k, v, self.dm).1),
            None => Saved::Recompute,
        };
        let out = backward(q, k, v, o, d_o, saved, self.dm);
        let n = out.len();
        Ok((CpuStorage::F32(out), Shape::from(n)))
    }

    cuda_fwd!(|self, (qs, ql), (ks, kl), (vs, vl)| {
        let (st, dl) = self.d_o.storage_and_layout();
        let (ost, ol) = self.o.storage_and_layout();
        let (candle_core::Storage::Cuda(ds), candle_core::Storage::Cuda(os)) = (&*st, &*ost) else {
            candle_core::bail!("s1-attention-bwd: expects CUDA tensors")
        };
        let dev = &qs.device;
        let lse = match self.saved.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(Saved::CudaLse(l)) => l,
            _ => super::cuda_flash_attention::forward(dev, (qs, ql), (ks, kl), (vs, vl), self.dm)?.1,
        };
        let out = super::cuda_flash_attention::backward(
            dev,
            (qs, ql),
            (ks, kl),
            (vs, vl),
            (os, ol),
            (ds, dl),
            &lse,
            self.dm,
        )?;
        let Dims { b, t, h, kvh, d, .. } = self.dm;
        Ok((out, Shape::from(b * t * (h + 2 * kvh) * d)))
    });
}

/// Causal attention from position 0: q `[b, t, h * d]`, k and v `[b, t, kvh * d]` (f32 on the
/// CPU, or where [`cuda_applies`] on CUDA) -> `[b, t, h * d]`, with a backward to q, k and v; on
/// the CPU, the path that is faster at this length.
pub fn causal_attention(q: &Tensor, k: &Tensor, v: &Tensor, h: usize, kvh: usize, d: usize) -> Result<Tensor> {
    causal_attention_on(AttentionPath::Auto, q, k, v, h, kvh, d)
}

/// [`causal_attention`] by the given path.
pub fn causal_attention_on(
    path: AttentionPath,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    h: usize,
    kvh: usize,
    d: usize,
) -> Result<Tensor> {
    let (b, t) = (q.dim(0)?, q.dim(1)?);
    if h == 0 || kvh == 0 || d == 0 || !h.is_multiple_of(kvh) {
        candle_core::bail!("s1-attention: {h} heads cannot share {kvh} kv heads of size {d}");
    }
    let dm = Dims::new(b, t, h, kvh, d);
    let tiled = match path {
        AttentionPath::Auto => tiled(t),
        AttentionPath::Materialised => false,
        AttentionPath::Tiled => true,
    };
    q.contiguous()?.apply_op3(
        &k.contiguous()?,
        &v.contiguous()?,
        Attention {
            dm,
            tiled,
            saved: Mutex::new(None),
        },
    )
}
