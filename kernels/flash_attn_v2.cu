// Causal grouped-query attention for training on CUDA, second version: the same algorithm, layouts
// and launch contract as kernels/flash_attn.cu (v1; read its header first), rewritten for speed.
// src/model/kernels/cuda_flash_attention.rs launches either (S1_FLASH_KERNEL=v1|v2, default v1).
//
// What changed from v1, and why (v1 measured 5-7x slower than PyTorch's sdpa on an H200):
// - ldmatrix.x4 (and .trans for every B operand read along its rows: V in P V, dO in P^T dO, Q in
//   dS^T Q, K in dS K) replaces v1's scalar 32-bit shared loads: one instruction fills the four
//   registers of an A fragment or two B fragments, where v1 issued 4 loads (and 8 16-bit loads plus
//   packing for its transposed B fragments).
// - cp.async 16-byte global -> shared copies, double-buffered: the forward and dQ kernels load key
//   tile j + 1 (K and V), the dK/dV kernel query tile j + 1 (Q, dO, lse, dsum), while the warps
//   multiply tile j. One __syncthreads per tile (v1: two, with the loads in between). Rows past t
//   are zero-filled by the copy itself (src-size 0).
// - Shared tiles are unpadded with an XOR swizzle: the 16-byte chunk `ch` of row r lives at chunk
//   ch ^ (r & 7) (swz below), so the 8 rows one ldmatrix phase reads, and the 8 chunks one
//   quarter-warp of cp.async writes, fall in 8 different bank groups (v1 padded rows by 8 bf16).
// - 2^x (ex2.approx.ftz) on scores prescaled by scale * log2(e): one FFMA + MUFU.EX2 per
//   probability (v1's s * scale - m and __expf take a multiply more). The forward keeps the row max in log2 units; lse stays in v1's
//   natural-log units, so either version's backward reads either version's forward.
// - More work per block in the forward (Cfg below: 128 query rows with 8 warps; v1: 64 with 4),
//   64-query tiles in the dK/dV kernel and 64-key tiles in the dQ kernel at d = 64 (v1: 32). At
//   d = 128 the tiles are smaller (forward and dQ 32 keys, dK/dV 16 queries) so that the
//   accumulators fit in registers without spills. Masks are applied only in tiles that cross the
//   diagonal or t, and a warp skips tiles that lie wholly above the diagonal for its rows (it still
//   takes part in the copies and the barrier).
// - dK/dV over more blocks: v1's grid had t / 64 * b * kvh blocks (128 at t = 4096 with 2 kv
//   heads: one 4-warp block on most SMs of an H200, the first ones running 64 times longer than
//   the last), each looping over all rep query heads of its kv head. v2 splits those heads into
//   `splits` parts (the launcher picks a divisor of rep that gives enough blocks), whose f32
//   partial sums flash_v2_bwd_sum adds in a fixed order; splits = 1 writes dk and dv directly.
//   The only change to the launch contract: two more parameters (splits, part) and one kernel.
// - flash_bwd_dot (dsum) is v1's kernel, loaded from v1's module.
//
// Not yet run on a GPU (none was at hand when this was written; only v1 has run, on an H200):
// scripts/device-check.sh's `flash` section checks the results there against the CPU op, and
// `attention` the speed; the Cfg sizes were chosen from register and shared-memory counts
// (ptxas -v), not measured. What was checked without a GPU: the PTX builds for sm_80 and
// sm_90, ptxas reports no spills, tests/flash_v2_fragments.rs simulates the cp.async/swizzle
// addressing and the ldmatrix lane addressing below (the functions marked "mirrored") against the
// PTX ISA's fragment layouts, proving every MMA sees the intended sub-matrix, bank-conflict-free,
// scripts/check_flash_v2_tiling.py emulates each kernel's loops (tile ranges, skipped tiles,
// masks, zero fill, log2-domain softmax) in numpy against direct attention, and
// tests/flash_emulated.rs runs this file itself, compiled as C++ (S1_CUDA_EMU), in a CPU SIMT
// emulator (tests/cuda_emu: every thread a fiber, the PTX helpers below with the ISA's semantics,
// a shared-memory race checker, schedules that reorder threads and cp.async landings): forward and
// gradients match the CPU op at GQA 1/2/7, d 64/128, splits 1 and more, with the same bits under
// every schedule and no race found (every shared access goes through cp.async, ldmatrix or lds,
// which the emulator checks). What only a GPU can show: the speed and the tensor cores' rounding.
// Registers (ptxas -v, sm_90, CUDA 13.0; no spills): forward 152 (d 64) / 186 (d 128) at 256
// threads, one block per SM; dK/dV 213 / 254 and dQ 182 / 248 at 128 threads, two blocks per SM:
// 8 warps per SM everywhere, where v1's d = 64 forward runs 16. Tune Cfg on a GPU.
//
// Layouts: q and o [b, t, h * D], k and v [b, t, kvh * D] (bf16), lse and dsum [b, h, t] (f32).
// Fragment layouts of mma.m16n8k16 and the C -> A reuse of P: as in v1's header.
// ldmatrix.x4 (PTX ISA): lanes 8j..8j+7 give the row addresses of 8x8 matrix j (16 bytes each);
// lane 4g + c receives, in register j, elements 2c and 2c+1 of row g of matrix j, or with .trans
// elements (2c, g) and (2c+1, g), i.e. row g of its transpose.
#include <cuda_bf16.h>
#include <stdint.h>

#include "mma_bf16.cuh"

typedef __nv_bfloat16 bf16;

// Block shapes per head size: warps and keys per tile of the forward, warps and query rows per
// tile of dK/dV (each warp owns 16 keys), warps and keys per tile of dQ (each warp owns 16 query
// rows). cuda_flash_attention.rs repeats these numbers (threads, grid, shared memory).
template <int D> struct Cfg;
template <> struct Cfg<64> {
    static constexpr int FWD_WARPS = 8, FWD_BC = 64, KV_WARPS = 4, KV_BT = 64, DQ_WARPS = 4, DQ_BC = 64;
};
template <> struct Cfg<128> {
    static constexpr int FWD_WARPS = 8, FWD_BC = 32, KV_WARPS = 4, KV_BT = 16, DQ_WARPS = 4, DQ_BC = 32;
};

#define LOG2E 1.4426950408889634f
#define LN2 0.6931471805599453f

// ---- index maths (mirrored in tests/flash_v2_fragments.rs: keep the two identical)
// The offset, in bf16, of element (r, col) of a swizzled tile of D columns (col a multiple of 8).
template <int D> __device__ __forceinline__ int swz(int r, int col) { return r * D + ((((col >> 3) ^ (r & 7))) << 3); }
// ldmatrix.x4 row and column offsets of lane l for an A fragment (16x16 at (r, k): matrices
// (r, k), (r+8, k), (r, k+8), (r+8, k+8) = a0..a3) and for a .trans B pair (16 keys x 16 columns at
// (k, n): (k, n), (k+8, n), (k, n+8), (k+8, n+8) = b0, b1 of n-tile n, b0, b1 of n-tile n+8).
__device__ __forceinline__ int lm_row_a(int l) { return (l & 7) + (l & 8); }
__device__ __forceinline__ int lm_col_a(int l) { return (l >> 4) << 3; }
// The same for a B pair read along columns (B(k, n) = y[n][k], 16 rows n x 16 columns k at (n, k):
// (n, k), (n, k+8), (n+8, k), (n+8, k+8) = b0, b1 of n-tile n, b0, b1 of n-tile n+8).
__device__ __forceinline__ int lm_row_bt(int l) { return (l & 7) + ((l >> 4) << 3); }
__device__ __forceinline__ int lm_col_bt(int l) { return l & 8; }
// ---- end of the mirrored index maths

// The inline-PTX helpers. tests/cuda_emu/cuda_emu.h gives them the PTX ISA's semantics on the CPU
// (S1_CUDA_EMU: tests/flash_emulated.rs runs this file's kernels in that emulator).
#ifndef S1_CUDA_EMU
// 2^x (MUFU.EX2, denormals flushed: what exp2f is under --use_fast_math); ex2(-inf) = 0.
__device__ __forceinline__ float ex2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

__device__ __forceinline__ uint32_t smem_u32(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void ldsm_x4(uint32_t r[4], const bf16 *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_u32(p))
                 : "memory");
}

__device__ __forceinline__ void ldsm_x4_t(uint32_t r[4], const bf16 *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_u32(p))
                 : "memory");
}

// 16 bytes global -> shared, asynchronously; zeros instead when !valid (src-size 0 reads nothing).
__device__ __forceinline__ void cp16(void *dst, const void *src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src),
                 "r"(valid ? 16 : 0)
                 : "memory");
}

__device__ __forceinline__ void cp4(void *dst, const void *src, bool valid) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_u32(dst)), "l"(src), "r"(valid ? 4 : 0)
                 : "memory");
}

// A plain f32 load from shared memory (the emulator checks it for races like the copies).
__device__ __forceinline__ float lds(const float *p) { return *p; }

__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void cp_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }
#endif // S1_CUDA_EMU

// Starts copying `rows` rows of D bf16 (global rows `rs` apart, from row r0; zeros past t) into the
// swizzled tile `dst`, 16 bytes per thread and step (NT threads).
template <int D, int NT>
__device__ __forceinline__ void load_tile(bf16 *dst, const bf16 *src, size_t rs, int r0, int rows, int t) {
    constexpr int V = D / 8;
    for (int i = threadIdx.x; i < rows * V; i += NT) {
        const int r = i / V, ch = i % V;
        const bool ok = r0 + r < t;
        cp16(dst + swz<D>(r, ch * 8), ok ? src + (size_t)(r0 + r) * rs + ch * 8 : src, ok);
    }
}

// Starts copying `n` f32 of a per-row statistic from row r0 (zeros past t).
template <int NT> __device__ __forceinline__ void load_rows(float *dst, const float *src, int r0, int n, int t) {
    for (int i = threadIdx.x; i < n; i += NT) {
        const bool ok = r0 + i < t;
        cp4(dst + i, ok ? src + r0 + i : src, ok);
    }
}

// The A fragments of 16 rows from r (all D columns) of a swizzled tile.
template <int D> __device__ __forceinline__ void frags_a(uint32_t f[D / 16][4], const bf16 *tile, int r, int lane) {
    const int row = r + lm_row_a(lane);
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) ldsm_x4(f[kk], tile + swz<D>(row, kk * 16 + lm_col_a(lane)));
}

// ---- forward
template <int D> __device__ void fwd(const bf16 *q, const bf16 *k, const bf16 *v, bf16 *o, float *lse, int t, int h,
                                     int kvh, float scale) {
    constexpr int W = Cfg<D>::FWD_WARPS, NT = W * 32, BM = W * 16, BC = Cfg<D>::FWD_BC;
    extern __shared__ __align__(128) unsigned char smem[];
    bf16 *qs = reinterpret_cast<bf16 *>(smem), *ks = qs + BM * D, *vs = ks + 2 * BC * D; // ks, vs: 2 stages
    const int qb = gridDim.x - 1 - blockIdx.x; // the longest rows first
    const int bh = blockIdx.y, bi = bh / h, hh = bh % h, kg = hh / (h / kvh);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
    const size_t qrs = (size_t)h * D, krs = (size_t)kvh * D;
    const bf16 *qh = q + (size_t)bi * t * qrs + (size_t)hh * D;
    const bf16 *kh = k + (size_t)bi * t * krs + (size_t)kg * D, *vh = v + (size_t)bi * t * krs + (size_t)kg * D;
    const int rw = warp * 16, r0 = qb * BM + rw; // the warp's first row in the tile and in the sequence
    const int rows[2] = {r0 + g, r0 + g + 8};
    const float sl2 = scale * LOG2E;
    const int kend = min(t, (qb + 1) * BM), n = (kend + BC - 1) / BC;
    load_tile<D, NT>(qs, qh, qrs, qb * BM, BM, t);
    load_tile<D, NT>(ks, kh, krs, 0, BC, t);
    load_tile<D, NT>(vs, vh, krs, 0, BC, t);
    cp_commit();
    uint32_t qf[D / 16][4];
    float acc[D / 8][4];
#pragma unroll
    for (int j = 0; j < D / 8; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
    float mx[2] = {-INFINITY, -INFINITY}, sum[2] = {0.f, 0.f};
    for (int it = 0; it < n; it++) {
        cp_wait_all();
        __syncthreads(); // tile it is in shared memory, and every warp is done with tile it - 1
        if (it == 0) frags_a<D>(qf, qs, rw, lane);
        if (it + 1 < n) {
            const int st = (it + 1) & 1;
            load_tile<D, NT>(ks + st * BC * D, kh, krs, (it + 1) * BC, BC, t);
            load_tile<D, NT>(vs + st * BC * D, vh, krs, (it + 1) * BC, BC, t);
        }
        cp_commit();
        const int c0 = it * BC;
        if (c0 > r0 + 15) continue; // every key of the tile lies after the warp's rows
        const bf16 *kt = ks + (it & 1) * BC * D, *vt = vs + (it & 1) * BC * D;
        float s[BC / 8][4];
#pragma unroll
        for (int j = 0; j < BC / 8; j++) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++)
#pragma unroll
            for (int np = 0; np < BC / 16; np++) {
                uint32_t b[4];
                ldsm_x4(b, kt + swz<D>(np * 16 + lm_row_bt(lane), kk * 16 + lm_col_bt(lane)));
                mma16816(s[2 * np], qf[kk], b[0], b[1]);
                mma16816(s[2 * np + 1], qf[kk], b[2], b[3]);
            }
        if (c0 + BC - 1 > r0 || c0 + BC > t) {
#pragma unroll
            for (int j = 0; j < BC / 8; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int col = c0 + j * 8 + 2 * c + (e & 1);
                    if (col > rows[e >> 1] || col >= t) s[j][e] = -INFINITY;
                }
        }
#pragma unroll
        for (int ri = 0; ri < 2; ri++) {
            float m = -INFINITY;
#pragma unroll
            for (int j = 0; j < BC / 8; j++) m = fmaxf(m, fmaxf(s[j][ri * 2], s[j][ri * 2 + 1]));
            m = fmaxf(m, __shfl_xor_sync(0xffffffff, m, 1));
            m = fmaxf(m, __shfl_xor_sync(0xffffffff, m, 2));
            const float mnew = fmaxf(mx[ri], m * sl2); // log2 units
            // A row that has seen nothing yet (or lies past t) keeps finite sums.
            const float base = mnew == -INFINITY ? 0.f : mnew;
            const float alpha = ex2(mx[ri] - base);
            float part = 0.f;
#pragma unroll
            for (int j = 0; j < BC / 8; j++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const float p = ex2(fmaf(s[j][ri * 2 + e], sl2, -base));
                    s[j][ri * 2 + e] = p;
                    part += p;
                }
            part += __shfl_xor_sync(0xffffffff, part, 1);
            part += __shfl_xor_sync(0xffffffff, part, 2);
            sum[ri] = sum[ri] * alpha + part;
            mx[ri] = mnew;
#pragma unroll
            for (int j = 0; j < D / 8; j++) {
                acc[j][ri * 2] *= alpha;
                acc[j][ri * 2 + 1] *= alpha;
            }
        }
#pragma unroll
        for (int kj = 0; kj < BC / 16; kj++) {
            uint32_t a[4];
            c_to_a(a, s[2 * kj], s[2 * kj + 1]);
#pragma unroll
            for (int np = 0; np < D / 16; np++) {
                uint32_t b[4];
                ldsm_x4_t(b, vt + swz<D>(kj * 16 + lm_row_a(lane), np * 16 + lm_col_a(lane)));
                mma16816(acc[2 * np], a, b[0], b[1]);
                mma16816(acc[2 * np + 1], a, b[2], b[3]);
            }
        }
    }
#pragma unroll
    for (int ri = 0; ri < 2; ri++) {
        const int row = rows[ri];
        if (row >= t) continue;
        const float inv = 1.f / sum[ri];
        bf16 *orow = o + (size_t)bi * t * qrs + (size_t)row * qrs + (size_t)hh * D;
#pragma unroll
        for (int j = 0; j < D / 8; j++)
            *reinterpret_cast<uint32_t *>(orow + j * 8 + 2 * c) = pack_f(acc[j][ri * 2] * inv, acc[j][ri * 2 + 1] * inv);
        if (c == 0) lse[(size_t)bh * t + row] = mx[ri] * LN2 + __logf(sum[ri]);
    }
}

// ---- dK, dV. Out: dk and dv [b, t, kvh * D]. The block's keys stay in shared memory; the query
// tiles of its heads stream through two stages. Grid: (key blocks, b * kvh * splits): the rep query
// heads of a kv head are split into `splits` equal parts (a divisor of rep chosen by the launcher
// so that short sequences still fill the GPU: v1's grid had only t / 64 * b * kvh blocks). With
// one part the block writes dk and dv; with more, each part writes f32 partial sums to
// part[0 or 1 (dk, dv)][split][b, t, kvh * D] and flash_v2_bwd_sum adds them up (in a fixed order:
// deterministic, no atomics).
template <int D>
__device__ void bwd_dkdv(const bf16 *q, const bf16 *k, const bf16 *v, const bf16 *d_o, const float *lse,
                         const float *dsum, bf16 *dk, bf16 *dv, int t, int h, int kvh, float scale, int splits,
                         float *part) {
    constexpr int W = Cfg<D>::KV_WARPS, NT = W * 32, BK = W * 16, BT = Cfg<D>::KV_BT;
    extern __shared__ __align__(128) unsigned char smem[];
    bf16 *ks = reinterpret_cast<bf16 *>(smem), *vs = ks + BK * D, *qs = vs + BK * D, *dos = qs + 2 * BT * D;
    float *ls = reinterpret_cast<float *>(dos + 2 * BT * D), *dss = ls + 2 * BT;
    const int kb = blockIdx.x, sp = blockIdx.y % splits, bg = blockIdx.y / splits, bi = bg / kvh, kg = bg % kvh;
    const int hps = h / kvh / splits, h0 = kg * (h / kvh) + sp * hps; // the block's query heads
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
    const size_t qrs = (size_t)h * D, krs = (size_t)kvh * D;
    const size_t koff = (size_t)bi * t * krs + (size_t)kg * D;
    const int c0 = kb * BK, kr = warp * 16; // the block's first key; the warp's first row in ks
    const int keys[2] = {c0 + kr + g, c0 + kr + g + 8};
    const float sl2 = scale * LOG2E;
    // Query tiles from c0 (the first rows that see the block's keys) to t, for each head.
    const int nq = (t - c0 + BT - 1) / BT, n = hps * nq;
    auto issue = [&](int i) {
        const int st = i & 1, hq = h0 + i / nq, r0 = c0 + (i % nq) * BT;
        const size_t qoff = (size_t)bi * t * qrs + (size_t)hq * D, soff = ((size_t)bi * h + hq) * t;
        load_tile<D, NT>(qs + st * BT * D, q + qoff, qrs, r0, BT, t);
        load_tile<D, NT>(dos + st * BT * D, d_o + qoff, qrs, r0, BT, t);
        load_rows<NT>(ls + st * BT, lse + soff, r0, BT, t);
        load_rows<NT>(dss + st * BT, dsum + soff, r0, BT, t);
    };
    load_tile<D, NT>(ks, k + koff, krs, c0, BK, t);
    load_tile<D, NT>(vs, v + koff, krs, c0, BK, t);
    issue(0);
    cp_commit();
    float dka[D / 8][4], dva[D / 8][4];
#pragma unroll
    for (int j = 0; j < D / 8; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) dka[j][e] = dva[j][e] = 0.f;
    for (int it = 0; it < n; it++) {
        cp_wait_all();
        __syncthreads();
        if (it + 1 < n) issue(it + 1);
        cp_commit();
        const int r0 = c0 + (it % nq) * BT;
        if (r0 + BT - 1 < c0 + kr) continue; // every query of the tile lies before the warp's keys
        const int st = it & 1;
        const bf16 *qt = qs + st * BT * D, *dot = dos + st * BT * D;
        const float *lt = ls + st * BT, *dt = dss + st * BT;
        // S^T = K_w Q^T and dP^T = V_w dO^T: [16 keys, BT queries].
        float s[BT / 8][4], dp[BT / 8][4];
#pragma unroll
        for (int j = 0; j < BT / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) s[j][e] = dp[j][e] = 0.f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            uint32_t ak[4], av[4];
            ldsm_x4(ak, ks + swz<D>(kr + lm_row_a(lane), kk * 16 + lm_col_a(lane)));
            ldsm_x4(av, vs + swz<D>(kr + lm_row_a(lane), kk * 16 + lm_col_a(lane)));
#pragma unroll
            for (int np = 0; np < BT / 16; np++) {
                uint32_t b[4];
                const int off = swz<D>(np * 16 + lm_row_bt(lane), kk * 16 + lm_col_bt(lane));
                ldsm_x4(b, qt + off);
                mma16816(s[2 * np], ak, b[0], b[1]);
                mma16816(s[2 * np + 1], ak, b[2], b[3]);
                ldsm_x4(b, dot + off);
                mma16816(dp[2 * np], av, b[0], b[1]);
                mma16816(dp[2 * np + 1], av, b[2], b[3]);
            }
        }
        // P^T and dS^T = P^T (dP^T - dsum) scale; masked only where the tile crosses the diagonal
        // or t (rows past t are zero in q and dO, and keys past t are never written).
        const bool mask = r0 < c0 + kr + 15 || r0 + BT > t;
#pragma unroll
        for (int j = 0; j < BT / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int qi = j * 8 + 2 * c + (e & 1), key = keys[e >> 1];
                float p = ex2(fmaf(s[j][e], sl2, -lds(lt + qi) * LOG2E));
                if (mask && (r0 + qi >= t || key > r0 + qi)) p = 0.f;
                s[j][e] = p;
                dp[j][e] = p * (dp[j][e] - lds(dt + qi)) * scale;
            }
        // dV_w += P^T dO, dK_w += dS^T Q (k = the BT queries; B read along rows: .trans).
#pragma unroll
        for (int kj = 0; kj < BT / 16; kj++) {
            uint32_t ap[4], ad[4];
            c_to_a(ap, s[2 * kj], s[2 * kj + 1]);
            c_to_a(ad, dp[2 * kj], dp[2 * kj + 1]);
#pragma unroll
            for (int np = 0; np < D / 16; np++) {
                uint32_t b[4];
                const int off = swz<D>(kj * 16 + lm_row_a(lane), np * 16 + lm_col_a(lane));
                ldsm_x4_t(b, dot + off);
                mma16816(dva[2 * np], ap, b[0], b[1]);
                mma16816(dva[2 * np + 1], ap, b[2], b[3]);
                ldsm_x4_t(b, qt + off);
                mma16816(dka[2 * np], ad, b[0], b[1]);
                mma16816(dka[2 * np + 1], ad, b[2], b[3]);
            }
        }
    }
#pragma unroll
    for (int ri = 0; ri < 2; ri++) {
        if (keys[ri] >= t) continue;
        const size_t off = koff + (size_t)keys[ri] * krs;
        if (splits == 1) {
#pragma unroll
            for (int j = 0; j < D / 8; j++) {
                *reinterpret_cast<uint32_t *>(dk + off + j * 8 + 2 * c) = pack_f(dka[j][ri * 2], dka[j][ri * 2 + 1]);
                *reinterpret_cast<uint32_t *>(dv + off + j * 8 + 2 * c) = pack_f(dva[j][ri * 2], dva[j][ri * 2 + 1]);
            }
        } else {
            const size_t nel = (size_t)gridDim.y / splits / kvh * t * krs; // b * t * kvh * D
            float *pk = part + (size_t)sp * nel + off, *pv = part + (size_t)(splits + sp) * nel + off;
#pragma unroll
            for (int j = 0; j < D / 8; j++) {
                *reinterpret_cast<float2 *>(pk + j * 8 + 2 * c) = make_float2(dka[j][ri * 2], dka[j][ri * 2 + 1]);
                *reinterpret_cast<float2 *>(pv + j * 8 + 2 * c) = make_float2(dva[j][ri * 2], dva[j][ri * 2 + 1]);
            }
        }
    }
}

// ---- dk, dv = the sums over the splits of bwd_dkdv's partials (n = b * t * kvh * D values each,
// 4 per thread; n is a multiple of 64). Every partial is written: each key row below t belongs to one
// key block, whose split blocks all write it.
extern "C" __global__ void flash_v2_bwd_sum(const float *part, bf16 *dk, bf16 *dv, int n, int splits) {
    const size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * 4;
    if (i >= (size_t)n) return;
    float4 a = make_float4(0.f, 0.f, 0.f, 0.f), b = a;
    for (int s = 0; s < splits; s++) {
        const float4 x = *reinterpret_cast<const float4 *>(part + (size_t)s * n + i);
        const float4 y = *reinterpret_cast<const float4 *>(part + (size_t)(splits + s) * n + i);
        a.x += x.x, a.y += x.y, a.z += x.z, a.w += x.w;
        b.x += y.x, b.y += y.y, b.z += y.z, b.w += y.w;
    }
    *reinterpret_cast<uint2 *>(dk + i) = make_uint2(pack_f(a.x, a.y), pack_f(a.z, a.w));
    *reinterpret_cast<uint2 *>(dv + i) = make_uint2(pack_f(b.x, b.y), pack_f(b.z, b.w));
}

// ---- dQ. Out: dq [b, t, h * D]. The block's q and dO rows go to registers once; key tiles stream
// through two stages.
template <int D>
__device__ void bwd_dq(const bf16 *q, const bf16 *k, const bf16 *v, const bf16 *d_o, const float *lse,
                       const float *dsum, bf16 *dq, int t, int h, int kvh, float scale) {
    constexpr int W = Cfg<D>::DQ_WARPS, NT = W * 32, BM = W * 16, BC = Cfg<D>::DQ_BC;
    extern __shared__ __align__(128) unsigned char smem[];
    bf16 *qs = reinterpret_cast<bf16 *>(smem), *dos = qs + BM * D, *ks = dos + BM * D, *vs = ks + 2 * BC * D;
    const int qb = gridDim.x - 1 - blockIdx.x;
    const int bh = blockIdx.y, bi = bh / h, hh = bh % h, kg = hh / (h / kvh);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
    const size_t qrs = (size_t)h * D, krs = (size_t)kvh * D;
    const size_t qoff = (size_t)bi * t * qrs + (size_t)hh * D, koff = (size_t)bi * t * krs + (size_t)kg * D;
    const int rw = warp * 16, r0 = qb * BM + rw;
    const int rows[2] = {r0 + g, r0 + g + 8};
    const float sl2 = scale * LOG2E;
    float l2[2], dr[2]; // lse in log2 units, dsum
#pragma unroll
    for (int ri = 0; ri < 2; ri++) {
        l2[ri] = rows[ri] < t ? lse[(size_t)bh * t + rows[ri]] * LOG2E : 0.f;
        dr[ri] = rows[ri] < t ? dsum[(size_t)bh * t + rows[ri]] : 0.f;
    }
    const int kend = min(t, (qb + 1) * BM), n = (kend + BC - 1) / BC;
    load_tile<D, NT>(qs, q + qoff, qrs, qb * BM, BM, t);
    load_tile<D, NT>(dos, d_o + qoff, qrs, qb * BM, BM, t);
    load_tile<D, NT>(ks, k + koff, krs, 0, BC, t);
    load_tile<D, NT>(vs, v + koff, krs, 0, BC, t);
    cp_commit();
    uint32_t qf[D / 16][4], df[D / 16][4];
    float acc[D / 8][4];
#pragma unroll
    for (int j = 0; j < D / 8; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
    for (int it = 0; it < n; it++) {
        cp_wait_all();
        __syncthreads();
        if (it == 0) {
            frags_a<D>(qf, qs, rw, lane);
            frags_a<D>(df, dos, rw, lane);
        }
        if (it + 1 < n) {
            const int st = (it + 1) & 1;
            load_tile<D, NT>(ks + st * BC * D, k + koff, krs, (it + 1) * BC, BC, t);
            load_tile<D, NT>(vs + st * BC * D, v + koff, krs, (it + 1) * BC, BC, t);
        }
        cp_commit();
        const int c0 = it * BC;
        if (c0 > r0 + 15) continue;
        const bf16 *kt = ks + (it & 1) * BC * D, *vt = vs + (it & 1) * BC * D;
        float s[BC / 8][4], dp[BC / 8][4];
#pragma unroll
        for (int j = 0; j < BC / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) s[j][e] = dp[j][e] = 0.f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++)
#pragma unroll
            for (int np = 0; np < BC / 16; np++) {
                uint32_t b[4];
                const int off = swz<D>(np * 16 + lm_row_bt(lane), kk * 16 + lm_col_bt(lane));
                ldsm_x4(b, kt + off);
                mma16816(s[2 * np], qf[kk], b[0], b[1]);
                mma16816(s[2 * np + 1], qf[kk], b[2], b[3]);
                ldsm_x4(b, vt + off);
                mma16816(dp[2 * np], df[kk], b[0], b[1]);
                mma16816(dp[2 * np + 1], df[kk], b[2], b[3]);
            }
        const bool mask = c0 + BC - 1 > r0 || c0 + BC > t;
#pragma unroll
        for (int j = 0; j < BC / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int ri = e >> 1, key = c0 + j * 8 + 2 * c + (e & 1);
                float p = ex2(fmaf(s[j][e], sl2, -l2[ri]));
                if (mask && (rows[ri] >= t || key > rows[ri])) p = 0.f;
                dp[j][e] = p * (dp[j][e] - dr[ri]) * scale;
            }
        // dQ_w += dS K (k = the BC keys; K read along rows: .trans).
#pragma unroll
        for (int kj = 0; kj < BC / 16; kj++) {
            uint32_t a[4];
            c_to_a(a, dp[2 * kj], dp[2 * kj + 1]);
#pragma unroll
            for (int np = 0; np < D / 16; np++) {
                uint32_t b[4];
                ldsm_x4_t(b, kt + swz<D>(kj * 16 + lm_row_a(lane), np * 16 + lm_col_a(lane)));
                mma16816(acc[2 * np], a, b[0], b[1]);
                mma16816(acc[2 * np + 1], a, b[2], b[3]);
            }
        }
    }
#pragma unroll
    for (int ri = 0; ri < 2; ri++) {
        if (rows[ri] >= t) continue;
        bf16 *dst = dq + qoff + (size_t)rows[ri] * qrs;
#pragma unroll
        for (int j = 0; j < D / 8; j++)
            *reinterpret_cast<uint32_t *>(dst + j * 8 + 2 * c) = pack_f(acc[j][ri * 2], acc[j][ri * 2 + 1]);
    }
}

#define FLASH_V2_OPS(D)                                                                                            \
    extern "C" __global__ void __launch_bounds__(Cfg<D>::FWD_WARPS * 32, 1)                                           \
        flash_v2_fwd_d##D(const bf16 *q, const bf16 *k, const bf16 *v, bf16 *o, float *lse, int t, int h, int kvh,  \
                          float scale) {                                                                           \
        fwd<D>(q, k, v, o, lse, t, h, kvh, scale);                                                                 \
    }                                                                                                              \
    extern "C" __global__ void __launch_bounds__(Cfg<D>::KV_WARPS * 32)                                            \
        flash_v2_bwd_dkdv_d##D(const bf16 *q, const bf16 *k, const bf16 *v, const bf16 *d_o, const float *lse,      \
                               const float *dsum, bf16 *dk, bf16 *dv, int t, int h, int kvh, float scale,          \
                               int splits, float *part) {                                                         \
        bwd_dkdv<D>(q, k, v, d_o, lse, dsum, dk, dv, t, h, kvh, scale, splits, part);                              \
    }                                                                                                              \
    extern "C" __global__ void __launch_bounds__(Cfg<D>::DQ_WARPS * 32)                                            \
        flash_v2_bwd_dq_d##D(const bf16 *q, const bf16 *k, const bf16 *v, const bf16 *d_o, const float *lse,        \
                             const float *dsum, bf16 *dq, int t, int h, int kvh, float scale) {                    \
        bwd_dq<D>(q, k, v, d_o, lse, dsum, dq, t, h, kvh, scale);                                                  \
    }

FLASH_V2_OPS(64)
FLASH_V2_OPS(128)
