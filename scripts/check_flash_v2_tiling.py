"""Emulates kernels/flash_attn_v2.cu's blocking on the CPU (numpy, float64) and compares it with
direct causal GQA attention: the forward (o, lse) and the gradients (dq, dk, dv).

It follows each kernel's loops warp by warp as written in the .cu: the block shapes (parsed from
its Cfg<D>), the key/query tile ranges, the flattened (head, query tile) loop of dK/dV and its split
over query heads into partial sums, the tiles a warp skips, where masks apply, the zero-filled rows
past t, the log2-domain online softmax and lse in natural-log units. It does not model bf16 rounding, the fragment layouts (tests/
flash_v2_fragments.rs does) or the pipelining (a GPU run must). dK/dV is checked with every split of
the query heads (the launcher's `splits`). Exits non-zero on a mismatch.

    python3 scripts/check_flash_v2_tiling.py
"""

import math
import re
import sys
from pathlib import Path

import numpy as np

LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453
SRC = (Path(__file__).resolve().parent.parent / "kernels" / "flash_attn_v2.cu").read_text()


def cfg(d):
    body = SRC.split(f"template <> struct Cfg<{d}> {{", 1)[1].split("};", 1)[0]
    return {k: int(v) for k, v in re.findall(r"(\w+) = (\d+)", body)}


def padded(x, r0, n, t):
    """Rows r0..r0+n of x, zeros past t (the cp.async zero fill)."""
    out = np.zeros((n,) + x.shape[1:])
    hi = min(t, r0 + n)
    if hi > r0:
        out[: hi - r0] = x[r0:hi]
    return out


def forward(q, k, v, rep, scale, c):
    """q [h, t, d], k and v [kvh, t, d] -> o [h, t, d], lse [h, t]."""
    h, t, d = q.shape
    bm, bc = c["FWD_WARPS"] * 16, c["FWD_BC"]
    sl2 = scale * LOG2E
    o, lse = np.full((h, t, d), np.nan), np.full((h, t), np.nan)
    for hh in range(h):
        kh, vh = k[hh // rep], v[hh // rep]
        for qb in range((t + bm - 1) // bm):
            kend = min(t, (qb + 1) * bm)
            n = (kend + bc - 1) // bc
            for w in range(c["FWD_WARPS"]):
                r0 = qb * bm + w * 16
                rows = np.arange(r0, r0 + 16)
                qf = padded(q[hh], r0, 16, t)
                acc, mx, sm = np.zeros((16, d)), np.full(16, -np.inf), np.zeros(16)
                for it in range(n):
                    c0 = it * bc
                    if c0 > r0 + 15:
                        continue
                    s = qf @ padded(kh, c0, bc, t).T
                    if c0 + bc - 1 > r0 or c0 + bc > t:
                        cols = np.arange(c0, c0 + bc)
                        s[(cols[None, :] > rows[:, None]) | (cols[None, :] >= t)] = -np.inf
                    m = s.max(axis=1)
                    mnew = np.maximum(mx, m * sl2)
                    base = np.where(mnew == -np.inf, 0.0, mnew)
                    alpha = np.exp2(mx - base)
                    p = np.exp2(s * sl2 - base[:, None])
                    sm = sm * alpha + p.sum(axis=1)
                    mx = mnew
                    acc = acc * alpha[:, None] + p @ padded(vh, c0, bc, t)
                for i, row in enumerate(rows):
                    if row < t:
                        o[hh, row] = acc[i] / sm[i]
                        lse[hh, row] = mx[i] * LN2 + math.log(sm[i])
    return o, lse


def bwd_dkdv(q, k, v, do, lse, dsum, rep, scale, c, splits):
    """dk, dv; with splits > 1 the f32 partials of each split, summed in order (flash_v2_bwd_sum)."""
    h, t, d = q.shape
    kvh = k.shape[0]
    bk, bt = c["KV_WARPS"] * 16, c["KV_BT"]
    hps = rep // splits
    sl2 = scale * LOG2E
    part = np.full((2, splits) + k.shape, np.nan)
    for kg, sp in ((kg, sp) for kg in range(kvh) for sp in range(splits)):
        h0 = kg * rep + sp * hps
        for kb in range((t + bk - 1) // bk):
            c0 = kb * bk
            nq = (t - c0 + bt - 1) // bt
            for w in range(c["KV_WARPS"]):
                kr = w * 16
                keys = np.arange(c0 + kr, c0 + kr + 16)
                kw, vw = padded(k[kg], c0 + kr, 16, t), padded(v[kg], c0 + kr, 16, t)
                dka, dva = np.zeros((16, d)), np.zeros((16, d))
                for it in range(hps * nq):
                    hq, r0 = h0 + it // nq, c0 + (it % nq) * bt
                    if r0 + bt - 1 < c0 + kr:
                        continue
                    qt, dot = padded(q[hq], r0, bt, t), padded(do[hq], r0, bt, t)
                    lt, dt = padded(lse[hq], r0, bt, t), padded(dsum[hq], r0, bt, t)
                    s, dp = kw @ qt.T, vw @ dot.T  # [16 keys, bt queries]
                    p = np.exp2(s * sl2 - lt[None, :] * LOG2E)
                    if r0 < c0 + kr + 15 or r0 + bt > t:
                        qi = np.arange(r0, r0 + bt)
                        p[(qi[None, :] >= t) | (keys[:, None] > qi[None, :])] = 0.0
                    ds = p * (dp - dt[None, :]) * scale
                    dva += p @ dot
                    dka += ds @ qt
                for i, key in enumerate(keys):
                    if key < t:
                        part[0, sp, kg, key], part[1, sp, kg, key] = dka[i], dva[i]
    return part[0].sum(axis=0), part[1].sum(axis=0)


def bwd_dq(q, k, v, do, lse, dsum, rep, scale, c):
    h, t, d = q.shape
    bm, bc = c["DQ_WARPS"] * 16, c["DQ_BC"]
    sl2 = scale * LOG2E
    dq = np.full(q.shape, np.nan)
    for hh in range(h):
        kh, vh = k[hh // rep], v[hh // rep]
        for qb in range((t + bm - 1) // bm):
            kend = min(t, (qb + 1) * bm)
            n = (kend + bc - 1) // bc
            for w in range(c["DQ_WARPS"]):
                r0 = qb * bm + w * 16
                rows = np.arange(r0, r0 + 16)
                qf, df = padded(q[hh], r0, 16, t), padded(do[hh], r0, 16, t)
                l2 = np.where(rows < t, padded(lse[hh], r0, 16, t) * LOG2E, 0.0)
                dr = np.where(rows < t, padded(dsum[hh], r0, 16, t), 0.0)
                acc = np.zeros((16, d))
                for it in range(n):
                    c0 = it * bc
                    if c0 > r0 + 15:
                        continue
                    kt, vt = padded(kh, c0, bc, t), padded(vh, c0, bc, t)
                    s, dp = qf @ kt.T, df @ vt.T
                    p = np.exp2(s * sl2 - l2[:, None])
                    if c0 + bc - 1 > r0 or c0 + bc > t:
                        keys = np.arange(c0, c0 + bc)
                        p[(rows[:, None] >= t) | (keys[None, :] > rows[:, None])] = 0.0
                    acc += (p * (dp - dr[:, None]) * scale) @ kt
                for i, row in enumerate(rows):
                    if row < t:
                        dq[hh, row] = acc[i]
    return dq


def reference(q, k, v, do, rep, scale):
    h, t, d = q.shape
    ke, ve = np.repeat(k, rep, axis=0), np.repeat(v, rep, axis=0)
    s = np.einsum("htd,hsd->hts", q, ke) * scale
    s[:, np.triu(np.ones((t, t), bool), 1)] = -np.inf
    m = s.max(axis=2, keepdims=True)
    e = np.exp(s - m)
    p = e / e.sum(axis=2, keepdims=True)
    lse = (m + np.log(e.sum(axis=2, keepdims=True)))[..., 0]
    o = p @ ve
    dp = do @ ve.transpose(0, 2, 1)
    ds = p * (dp - (do * o).sum(axis=2, keepdims=True)) * scale
    dq = ds @ ke
    dk = (ds.transpose(0, 2, 1) @ q).reshape(-1, rep, t, d).sum(axis=1)
    dv = (p.transpose(0, 2, 1) @ do).reshape(-1, rep, t, d).sum(axis=1)
    return o, lse, dq, dk, dv


def main():
    rng = np.random.default_rng(0)
    worst = 0.0
    for d in (64, 128):
        c = cfg(d)
        for t, h, kvh in ((1, 2, 2), (17, 4, 2), (64, 7, 1), (100, 2, 1), (200, 4, 2), (300, 2, 2)):
            rep, scale = h // kvh, 1.0 / math.sqrt(d)
            q, do = rng.standard_normal((h, t, d)), rng.standard_normal((h, t, d))
            k, v = rng.standard_normal((kvh, t, d)), rng.standard_normal((kvh, t, d))
            o, lse = forward(q, k, v, rep, scale, c)
            dsum = (do * o).sum(axis=2)
            dq = bwd_dq(q, k, v, do, lse, dsum, rep, scale, c)
            want = reference(q, k, v, do, rep, scale)
            # Every split of the query heads the launcher may pick (the divisors of rep).
            for splits in (s for s in range(1, rep + 1) if rep % s == 0):
                dk, dv = bwd_dkdv(q, k, v, do, lse, dsum, rep, scale, c, splits)
                got = (o, lse, dq, dk, dv)
                errs = [np.abs(a - b).max() / max(1.0, np.abs(b).max()) for a, b in zip(got, want)]
                worst = max(worst, max(errs)) if all(np.isfinite(errs)) else math.inf
                print(f"d {d:3} t {t:3} h {h} kvh {kvh} splits {splits}: o {errs[0]:.1e} lse {errs[1]:.1e} "
                      f"dq {errs[2]:.1e} dk {errs[3]:.1e} dv {errs[4]:.1e}")
    ok = worst < 1e-9
    print("ok" if ok else f"FAILED: worst relative error {worst:.1e}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
