//! Causal grouped-query attention on the CPU in memory linear in the sequence (the
//! FlashAttention-2 algorithm over the f32 gemm kernels). The forward streams each block of
//! query rows over the key blocks it can see with an online softmax (running row max and sum),
//! and keeps only each row's log-sum-exp; the backward recomputes the probabilities of a block
//! from q, k and that log-sum-exp, with D = rowsum(dO * O) in place of the softmax's row dot
//! product. Nothing of size [t, t] exists at any time: a task holds two [`BQ`] x [`BK`] tiles.
//!
//! Same layouts as [`super::fused_attention`]: q `[b, t, h * d]`, k and v `[b, t, kvh * d]`,
//! query head `hh` reads kv head `hh / (h / kvh)`. The forward runs one task per (batch, head,
//! query block); the backward runs one task per (batch, kv head, key block) for dK and dV (summed
//! over the heads of the group inside the task, so without atomics) and one per (batch, head,
//! query block) for dQ, which recomputes the tiles a second time but keeps every output written
//! by one task (deterministic sums, no locks).

use rayon::prelude::*;

use super::cpu_gemm::{matmul, SendPtr, View};
use super::cpu_vmath;
use super::fused_attention::Dims;

/// Query rows per tile.
const BQ: usize = 64;
/// Keys per tile (a multiple of [`BQ`], so that a key block starts on a query block).
const BK: usize = 128;

/// A task's tiles: scores/probabilities and dP (`[BQ, BK]`, rows `BK` apart), the output
/// accumulator `[BQ, d]`, and each row's running max and sum.
struct Tiles {
    s: Vec<f32>,
    dp: Vec<f32>,
    acc: Vec<f32>,
    max: Vec<f32>,
    sum: Vec<f32>,
}

impl Tiles {
    fn new(d: usize) -> Self {
        Self {
            s: vec![0.0; BQ * BK],
            dp: vec![0.0; BQ * BK],
            acc: vec![0.0; BQ * d],
            max: vec![0.0; BQ],
            sum: vec![0.0; BQ],
        }
    }
}

/// How many keys of block `c0..c1` query row `row` sees (causal: keys `0..=row`).
fn visible(row: usize, c0: usize, c1: usize) -> usize {
    (row + 1).min(c1).saturating_sub(c0)
}

/// Head slices of batch `bi`: query/output head `hh` (rows `h * d` apart) and kv head `g`
/// (rows `kvh * d` apart), as offsets into the flat tensors.
fn q_off(dm: Dims, bi: usize, hh: usize) -> usize {
    (bi * dm.t * dm.h + hh) * dm.d
}

fn kv_off(dm: Dims, bi: usize, g: usize) -> usize {
    (bi * dm.t * dm.kvh + g) * dm.d
}

/// `s[0..m, 0..n] = a[r0..r0+m] b[c0..c0+n]^T` where `a` is a head of q or dO (rows `ars` apart)
/// and `b` a head of k or v (rows `brs` apart): the scores, or dP.
///
/// # Safety
/// `a` and `b` hold the rows addressed; `s` holds `m` rows of `BK`.
#[allow(clippy::too_many_arguments)]
unsafe fn tile_abt(m: usize, n: usize, d: usize, s: &mut [f32], a: &[f32], ars: usize, b: &[f32], brs: usize) {
    debug_assert!(s.len() >= m * BK && a.len() >= (m - 1) * ars + d && b.len() >= (n - 1) * brs + d);
    // SAFETY: bounds as stated in this fn's contract (checked in debug builds).
    unsafe {
        matmul(
            m,
            n,
            d,
            s.as_mut_ptr(),
            BK,
            View::rows(a, ars),
            View::rows_t(b, brs),
            false,
            gemm::Parallelism::None,
        )
    }
}

/// The attention output `[b, t, h * d]` and each row's log-sum-exp of its scaled scores
/// `[b, h, t]`. The slices must match `dm` (the callers check).
pub(crate) fn forward(q: &[f32], k: &[f32], v: &[f32], dm: Dims) -> (Vec<f32>, Vec<f32>) {
    let Dims {
        b, t, h, kvh, d, scale, ..
    } = dm;
    let rep = h / kvh;
    let nqb = t.div_ceil(BQ);
    let mut o = vec![0f32; q.len()];
    let mut lse = vec![0f32; b * h * t];
    let (optr, lptr) = (SendPtr(o.as_mut_ptr()), SendPtr(lse.as_mut_ptr()));
    // The last query blocks see the most keys: hand them out first.
    (0..b * h * nqb).into_par_iter().for_each_init(
        || Tiles::new(d),
        |tl, task| {
            let (bh, qb) = (task / nqb, nqb - 1 - task % nqb);
            let (bi, hh) = (bh / h, bh % h);
            let (r0, r1) = (qb * BQ, ((qb + 1) * BQ).min(t));
            let m = r1 - r0;
            let qh = &q[q_off(dm, bi, hh) + r0 * h * d..];
            let (kg, vg) = (&k[kv_off(dm, bi, hh / rep)..], &v[kv_off(dm, bi, hh / rep)..]);
            tl.max[..m].fill(f32::NEG_INFINITY);
            tl.sum[..m].fill(0.0);
            tl.acc[..m * d].fill(0.0);
            for c0 in (0..r1).step_by(BK) {
                let c1 = (c0 + BK).min(r1);
                let n = c1 - c0;
                // SAFETY: rows r0..r1 of head hh and c0..c1 of head g lie in their tensors.
                unsafe { tile_abt(m, n, d, &mut tl.s, qh, h * d, &kg[c0 * kvh * d..], kvh * d) };
                for i in 0..m {
                    let row = &mut tl.s[i * BK..i * BK + n];
                    let vis = visible(r0 + i, c0, c1);
                    let (seen, hidden) = row.split_at_mut(vis);
                    hidden.fill(0.0);
                    if vis == 0 {
                        continue;
                    }
                    let new_max = tl.max[i].max(cpu_vmath::max(seen) * scale);
                    let sum = cpu_vmath::exp_shift(seen, scale, new_max);
                    // exp(-inf) = 0 on a row's first block, where acc and sum are still 0.
                    let alpha = (tl.max[i] - new_max).exp();
                    tl.sum[i] = tl.sum[i] * alpha + sum;
                    tl.max[i] = new_max;
                    if alpha != 1.0 {
                        tl.acc[i * d..(i + 1) * d].iter_mut().for_each(|x| *x *= alpha);
                    }
                }
                // SAFETY: acc holds m rows of d; v rows c0..c1 of head g are in bounds.
                unsafe {
                    matmul(
                        m,
                        d,
                        n,
                        tl.acc.as_mut_ptr(),
                        d,
                        View::rows(&tl.s, BK),
                        View::rows(&vg[c0 * kvh * d..], kvh * d),
                        true,
                        gemm::Parallelism::None,
                    )
                };
            }
            for i in 0..m {
                let inv = 1.0 / tl.sum[i];
                // SAFETY: task (bi, hh, qb) alone writes these rows of o and entries of lse.
                unsafe {
                    let dst = optr.ptr().add(q_off(dm, bi, hh) + (r0 + i) * h * d);
                    for (j, &a) in tl.acc[i * d..(i + 1) * d].iter().enumerate() {
                        *dst.add(j) = a * inv;
                    }
                    *lptr.ptr().add(bh * t + r0 + i) = tl.max[i] + tl.sum[i].ln();
                }
            }
        },
    );
    (o, lse)
}

/// Recomputes the probabilities of a tile in place (`p = exp(scale * s - lse)` where visible,
/// 0 elsewhere) for query rows `r0..r0 + m` and keys `c0..c1`, then turns `dp` into
/// dS = scale * P * (dP - D) (where `drow` holds D of the rows).
#[allow(clippy::too_many_arguments)]
fn probs_and_ds(tl: &mut Tiles, m: usize, r0: usize, c0: usize, c1: usize, scale: f32, lse: &[f32], drow: &[f32]) {
    let n = c1 - c0;
    for i in 0..m {
        let vis = visible(r0 + i, c0, c1);
        let p = &mut tl.s[i * BK..i * BK + n];
        let ds = &mut tl.dp[i * BK..i * BK + n];
        let (seen, hidden) = p.split_at_mut(vis);
        hidden.fill(0.0);
        ds[vis..].fill(0.0);
        if vis == 0 {
            continue;
        }
        cpu_vmath::exp_shift(seen, scale, lse[r0 + i]);
        let di = drow[r0 + i];
        for (x, &pv) in ds[..vis].iter_mut().zip(seen.iter()) {
            *x = scale * pv * (*x - di);
        }
    }
}

/// dq, dk and dv packed in one buffer (`[b, t, h * d]`, then two `[b, t, kvh * d]`), given the
/// forward's output `o`, its log-sum-exp `lse` and the upstream `d_o`.
pub(crate) fn backward(q: &[f32], k: &[f32], v: &[f32], o: &[f32], d_o: &[f32], lse: &[f32], dm: Dims) -> Vec<f32> {
    let Dims {
        b, t, h, kvh, d, scale, ..
    } = dm;
    let rep = h / kvh;
    let (nq, nk) = (q.len(), k.len());
    // D = rowsum(dO * O) per (batch, head, row), [b, h, t].
    let mut dsum = vec![0f32; b * h * t];
    dsum.par_chunks_mut(t).enumerate().for_each(|(bh, dst)| {
        let off = q_off(dm, bh / h, bh % h);
        for (i, x) in dst.iter_mut().enumerate() {
            let r = off + i * h * d;
            *x = o[r..r + d].iter().zip(&d_o[r..r + d]).map(|(a, b)| a * b).sum();
        }
    });
    let mut out = vec![0f32; nq + 2 * nk];
    let base = SendPtr(out.as_mut_ptr());
    let nkb = t.div_ceil(BK);
    let nqb = t.div_ceil(BQ);
    // dK, dV: one task per (batch, kv head, key block), over the query rows that see the block
    // in each head of the group. The first key blocks see the most rows: they go first.
    (0..b * kvh * nkb).into_par_iter().for_each_init(
        || Tiles::new(d),
        |tl, task| {
            let (bg, kb) = (task / nkb, task % nkb);
            let (bi, g) = (bg / kvh, bg % kvh);
            let (c0, c1) = (kb * BK, ((kb + 1) * BK).min(t));
            let n = c1 - c0;
            let (kg, vg) = (
                &k[kv_off(dm, bi, g) + c0 * kvh * d..],
                &v[kv_off(dm, bi, g) + c0 * kvh * d..],
            );
            for hh in g * rep..(g + 1) * rep {
                let (qh, doh) = (&q[q_off(dm, bi, hh)..], &d_o[q_off(dm, bi, hh)..]);
                let (lse_h, d_h) = (&lse[(bi * h + hh) * t..], &dsum[(bi * h + hh) * t..]);
                for r0 in (c0..t).step_by(BQ) {
                    let m = (r0 + BQ).min(t) - r0;
                    let (qr, dor) = (&qh[r0 * h * d..], &doh[r0 * h * d..]);
                    // SAFETY: every view stays inside its head of its [b, t, heads * d] tensor;
                    // this task alone writes rows c0..c1 of dk and dv of kv head g in batch bi.
                    unsafe {
                        tile_abt(m, n, d, &mut tl.s, qr, h * d, kg, kvh * d);
                        tile_abt(m, n, d, &mut tl.dp, dor, h * d, vg, kvh * d);
                        probs_and_ds(tl, m, r0, c0, c1, scale, lse_h, d_h);
                        let dk = base.ptr().add(nq + kv_off(dm, bi, g) + c0 * kvh * d);
                        let dv = base.ptr().add(nq + nk + kv_off(dm, bi, g) + c0 * kvh * d);
                        // dV += P^T dO, dK += dS^T Q.
                        matmul(
                            n,
                            d,
                            m,
                            dv,
                            kvh * d,
                            View::rows_t(&tl.s, BK),
                            View::rows(dor, h * d),
                            true,
                            gemm::Parallelism::None,
                        );
                        matmul(
                            n,
                            d,
                            m,
                            dk,
                            kvh * d,
                            View::rows_t(&tl.dp, BK),
                            View::rows(qr, h * d),
                            true,
                            gemm::Parallelism::None,
                        );
                    }
                }
            }
        },
    );
    // dQ: one task per (batch, head, query block), over the key blocks it sees.
    (0..b * h * nqb).into_par_iter().for_each_init(
        || Tiles::new(d),
        |tl, task| {
            let (bh, qb) = (task / nqb, nqb - 1 - task % nqb);
            let (bi, hh) = (bh / h, bh % h);
            let (r0, r1) = (qb * BQ, ((qb + 1) * BQ).min(t));
            let m = r1 - r0;
            let off = q_off(dm, bi, hh) + r0 * h * d;
            let (qr, dor) = (&q[off..], &d_o[off..]);
            let (kg, vg) = (&k[kv_off(dm, bi, hh / rep)..], &v[kv_off(dm, bi, hh / rep)..]);
            let (lse_h, d_h) = (&lse[bh * t..], &dsum[bh * t..]);
            for c0 in (0..r1).step_by(BK) {
                let c1 = (c0 + BK).min(r1);
                let n = c1 - c0;
                // SAFETY: as above; this task alone writes rows r0..r1 of dq of head hh.
                unsafe {
                    tile_abt(m, n, d, &mut tl.s, qr, h * d, &kg[c0 * kvh * d..], kvh * d);
                    tile_abt(m, n, d, &mut tl.dp, dor, h * d, &vg[c0 * kvh * d..], kvh * d);
                    probs_and_ds(tl, m, r0, c0, c1, scale, lse_h, d_h);
                    // dQ += dS K.
                    matmul(
                        m,
                        d,
                        n,
                        base.ptr().add(off),
                        h * d,
                        View::rows(&tl.dp, BK),
                        View::rows(&kg[c0 * kvh * d..], kvh * d),
                        true,
                        gemm::Parallelism::None,
                    );
                }
            }
        },
    );
    out
}
