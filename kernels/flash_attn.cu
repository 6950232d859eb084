// Causal grouped-query attention for the training path on CUDA, in memory linear in the sequence
// (the FlashAttention-2 algorithm; src/model/kernels/cuda_flash_attention.rs launches these).
// bf16 in and out, f32 accumulation, tensor cores through `mma.sync.m16n8k16` (inline PTX, sm_80+).
//
// Layouts (what the projections write, no transposed copies): q and o [b, t, h * D], k and v
// [b, t, kvh * D]; query head hh reads kv head hh / (h / kvh); lse and dsum are f32 [b, h, t].
//
// - flash_fwd: one block of 4 warps per (64 query rows, batch * head); each warp owns 16 rows,
//   keeps its q fragments and its output accumulator in registers, streams 64-key tiles of k and v
//   through shared memory with an online softmax (row max and sum), and writes o and the row's
//   log-sum-exp.
// - flash_bwd_dot: dsum = rowsum(dO * O), one warp per row.
// - flash_bwd_dkdv: one block per (64 keys, batch * kv head); each warp owns 16 keys and
//   accumulates their dK and dV in registers over the query heads of the group and the 32-row query
//   tiles that see them, recomputing P from q, k and lse.
// - flash_bwd_dq: one block per (64 query rows, batch * head); each warp owns 16 rows and
//   accumulates dQ over 32-key tiles, recomputing P and dP. Computing dQ apart (instead of atomic
//   adds from the dK/dV kernel) costs two more tile products per tile, and keeps every output
//   written by one block: no atomics, no f32 dQ buffer, deterministic sums.
//
// Fragment layouts of mma.m16n8k16 (PTX ISA), lane = 4 * g + c (g = lane / 4, c = lane % 4):
//   A 16x16 row-major: a0 (g, 2c..2c+1), a1 (g+8, 2c..), a2 (g, 2c+8..), a3 (g+8, 2c+8..)
//   B 16x8 "col": b0 (k = 2c..2c+1, n = g), b1 (k = 2c+8..2c+9, n = g)
//   C 16x8 f32: c0, c1 (g, 2c and 2c+1), c2, c3 (g+8, 2c and 2c+1)
// Two C tiles side by side (columns 16j..16j+15) are exactly the A fragment of k-step j, which is
// how P feeds the next product without leaving registers.
#include <cuda_bf16.h>
#include <stdint.h>

#include "mma_bf16.cuh"

typedef __nv_bfloat16 bf16;

#define WARPS 4
#define THREADS (WARPS * 32)
// Query rows per block (16 per warp) in the forward and the dQ kernel; keys per block in dK/dV.
#define BR 64
// Keys per shared tile in the forward.
#define BC 64
// Query rows per shared tile in dK/dV, keys per shared tile in dQ.
#define BT 32
// Row padding of shared tiles (in bf16), against bank conflicts.
#define PAD 8

__device__ __forceinline__ uint32_t pack_b(bf16 lo, bf16 hi) {
    __nv_bfloat162 v;
    v.x = lo;
    v.y = hi;
    return *reinterpret_cast<uint32_t *>(&v);
}

// Two consecutive bf16 (4-byte aligned: every index used is even).
__device__ __forceinline__ uint32_t ld2(const bf16 *p) { return *reinterpret_cast<const uint32_t *>(p); }

// A fragment of rows r..r+15, columns k..k+15 of a row-major tile with rows `ld` apart.
__device__ __forceinline__ void frag_a(uint32_t a[4], const bf16 *x, int ld, int r, int k, int g, int c) {
    a[0] = ld2(x + (r + g) * ld + k + 2 * c);
    a[1] = ld2(x + (r + g + 8) * ld + k + 2 * c);
    a[2] = ld2(x + (r + g) * ld + k + 2 * c + 8);
    a[3] = ld2(x + (r + g + 8) * ld + k + 2 * c + 8);
}

// B fragment with B(k, n) = y[n][k] (y row-major, rows `ld` apart): k^T in q k^T, for example.
__device__ __forceinline__ void frag_bt(uint32_t &b0, uint32_t &b1, const bf16 *y, int ld, int n, int k, int g,
                                        int c) {
    b0 = ld2(y + (n + g) * ld + k + 2 * c);
    b1 = ld2(y + (n + g) * ld + k + 2 * c + 8);
}

// B fragment with B(k, n) = z[k][n] (z row-major, rows `ld` apart): v in p v, for example.
__device__ __forceinline__ void frag_b(uint32_t &b0, uint32_t &b1, const bf16 *z, int ld, int n, int k, int g,
                                       int c) {
    b0 = pack_b(z[(k + 2 * c) * ld + n + g], z[(k + 2 * c + 1) * ld + n + g]);
    b1 = pack_b(z[(k + 2 * c + 8) * ld + n + g], z[(k + 2 * c + 9) * ld + n + g]);
}

// Copies `rows` rows of D bf16 (global rows `rs` apart, from row r0; zeros past t) into a shared
// tile with rows D + PAD apart, 8 bf16 (16 bytes) per thread and step.
template <int D>
__device__ __forceinline__ void load_tile(bf16 *dst, const bf16 *src, size_t rs, int r0, int rows, int t) {
    constexpr int V = D / 8;
    for (int i = threadIdx.x; i < rows * V; i += THREADS) {
        const int r = i / V, col = (i % V) * 8;
        uint4 val = make_uint4(0, 0, 0, 0);
        if (r0 + r < t) val = *reinterpret_cast<const uint4 *>(src + (size_t)(r0 + r) * rs + col);
        *reinterpret_cast<uint4 *>(dst + r * (D + PAD) + col) = val;
    }
}

// Loads `n` f32 of a per-row statistic from row r0 (0 past t) into shared memory.
__device__ __forceinline__ void load_rows(float *dst, const float *src, int r0, int n, int t) {
    for (int i = threadIdx.x; i < n; i += THREADS) dst[i] = r0 + i < t ? src[r0 + i] : 0.f;
}

// ---- forward
template <int D>
__device__ void flash_fwd(const bf16 *q, const bf16 *k, const bf16 *v, bf16 *o, float *lse, int t, int h, int kvh,
                          float scale) {
    extern __shared__ __align__(16) unsigned char smem[];
    constexpr int LD = D + PAD;
    bf16 *ks = reinterpret_cast<bf16 *>(smem), *vs = ks + BC * LD;
    const int qb = gridDim.x - 1 - blockIdx.x; // the longest rows first
    const int bh = blockIdx.y, bi = bh / h, hh = bh % h, kg = hh / (h / kvh);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
    const size_t qrs = (size_t)h * D, krs = (size_t)kvh * D;
    const bf16 *qh = q + (size_t)bi * t * qrs + (size_t)hh * D;
    const bf16 *kh = k + (size_t)bi * t * krs + (size_t)kg * D, *vh = v + (size_t)bi * t * krs + (size_t)kg * D;
    const int r0 = qb * BR + warp * 16;
    const int rows[2] = {r0 + g, r0 + g + 8};
    uint32_t qf[D / 16][4];
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int row = rows[e & 1], col = kk * 16 + 2 * c + (e >> 1) * 8;
            qf[kk][e] = row < t ? ld2(qh + (size_t)row * qrs + col) : 0u;
        }
    float acc[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;
    float mx[2] = {-INFINITY, -INFINITY}, sum[2] = {0.f, 0.f};
    const int kend = min(t, (qb + 1) * BR);
    for (int c0 = 0; c0 < kend; c0 += BC) {
        __syncthreads();
        load_tile<D>(ks, kh, krs, c0, BC, t);
        load_tile<D>(vs, vh, krs, c0, BC, t);
        __syncthreads();
        float s[BC / 8][4];
#pragma unroll
        for (int n = 0; n < BC / 8; n++) {
            s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                uint32_t b0, b1;
                frag_bt(b0, b1, ks, LD, n * 8, kk * 16, g, c);
                mma16816(s[n], qf[kk], b0, b1);
            }
        }
#pragma unroll
        for (int ri = 0; ri < 2; ri++) {
            float m = -INFINITY;
#pragma unroll
            for (int n = 0; n < BC / 8; n++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const int col = c0 + n * 8 + 2 * c + e;
                    float x = s[n][ri * 2 + e] * scale;
                    if (col > rows[ri] || col >= t) x = -INFINITY;
                    s[n][ri * 2 + e] = x;
                    m = fmaxf(m, x);
                }
            m = fmaxf(m, __shfl_xor_sync(0xffffffff, m, 1));
            m = fmaxf(m, __shfl_xor_sync(0xffffffff, m, 2));
            const float mnew = fmaxf(mx[ri], m);
            // A row past t sees nothing: keep its sums finite (it is never written).
            const float base = mnew == -INFINITY ? 0.f : mnew;
            const float alpha = __expf(mx[ri] - base);
            float part = 0.f;
#pragma unroll
            for (int n = 0; n < BC / 8; n++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const float p = __expf(s[n][ri * 2 + e] - base);
                    s[n][ri * 2 + e] = p;
                    part += p;
                }
            part += __shfl_xor_sync(0xffffffff, part, 1);
            part += __shfl_xor_sync(0xffffffff, part, 2);
            sum[ri] = sum[ri] * alpha + part;
            mx[ri] = mnew;
#pragma unroll
            for (int n = 0; n < D / 8; n++) {
                acc[n][ri * 2] *= alpha;
                acc[n][ri * 2 + 1] *= alpha;
            }
        }
#pragma unroll
        for (int j = 0; j < BC / 16; j++) {
            uint32_t a[4];
            c_to_a(a, s[2 * j], s[2 * j + 1]);
#pragma unroll
            for (int n = 0; n < D / 8; n++) {
                uint32_t b0, b1;
                frag_b(b0, b1, vs, LD, n * 8, j * 16, g, c);
                mma16816(acc[n], a, b0, b1);
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
        for (int n = 0; n < D / 8; n++)
            *reinterpret_cast<uint32_t *>(orow + n * 8 + 2 * c) = pack_f(acc[n][ri * 2] * inv, acc[n][ri * 2 + 1] * inv);
        if (c == 0) lse[(size_t)bh * t + row] = mx[ri] + __logf(sum[ri]);
    }
}

// ---- dsum = rowsum(dO * O): one warp per (batch * head, row).
template <int D>
__device__ void flash_bwd_dot(const bf16 *o, const bf16 *d_o, float *dsum, int b, int t, int h) {
    const size_t w = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (w >= (size_t)b * h * t) return;
    const size_t bh = w / t, row = w % t, bi = bh / h, hh = bh % h;
    const size_t off = (bi * t + row) * h * D + hh * D;
    float s = 0.f;
    for (int i = lane; i < D; i += 32) s += __bfloat162float(o[off + i]) * __bfloat162float(d_o[off + i]);
    for (int x = 16; x > 0; x >>= 1) s += __shfl_xor_sync(0xffffffff, s, x);
    if (lane == 0) dsum[w] = s;
}

// ---- dK, dV. Out: dk and dv [b, t, kvh * D].
template <int D>
__device__ void flash_bwd_dkdv(const bf16 *q, const bf16 *k, const bf16 *v, const bf16 *d_o, const float *lse,
                               const float *dsum, bf16 *dk, bf16 *dv, int t, int h, int kvh, float scale) {
    extern __shared__ __align__(16) unsigned char smem[];
    constexpr int LD = D + PAD;
    bf16 *ks = reinterpret_cast<bf16 *>(smem), *vs = ks + BR * LD, *qs = vs + BR * LD, *dos = qs + BT * LD;
    float *ls = reinterpret_cast<float *>(dos + BT * LD), *ds_ = ls + BT;
    const int kb = blockIdx.x, bg = blockIdx.y, bi = bg / kvh, kg = bg % kvh, rep = h / kvh;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
    const size_t qrs = (size_t)h * D, krs = (size_t)kvh * D;
    const size_t koff = (size_t)bi * t * krs + (size_t)kg * D;
    const int c0 = kb * BR, kr = warp * 16; // the block's first key; the warp's first row in ks
    const int keys[2] = {c0 + kr + g, c0 + kr + g + 8};
    load_tile<D>(ks, k + koff, krs, c0, BR, t);
    load_tile<D>(vs, v + koff, krs, c0, BR, t);
    float dka[D / 8][4], dva[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) dka[n][e] = dva[n][e] = 0.f;
    for (int hh = kg * rep; hh < (kg + 1) * rep; hh++) {
        const size_t qoff = (size_t)bi * t * qrs + (size_t)hh * D, soff = ((size_t)bi * h + hh) * t;
        for (int r0 = c0; r0 < t; r0 += BT) {
            __syncthreads();
            load_tile<D>(qs, q + qoff, qrs, r0, BT, t);
            load_tile<D>(dos, d_o + qoff, qrs, r0, BT, t);
            load_rows(ls, lse + soff, r0, BT, t);
            load_rows(ds_, dsum + soff, r0, BT, t);
            __syncthreads();
            // S^T = K_w Q^T and dP^T = V_w dO^T: [16 keys, BT queries].
            float s[BT / 8][4], dp[BT / 8][4];
#pragma unroll
            for (int n = 0; n < BT / 8; n++) {
#pragma unroll
                for (int e = 0; e < 4; e++) s[n][e] = dp[n][e] = 0.f;
#pragma unroll
                for (int kk = 0; kk < D / 16; kk++) {
                    uint32_t a[4], b0, b1;
                    frag_a(a, ks, LD, kr, kk * 16, g, c);
                    frag_bt(b0, b1, qs, LD, n * 8, kk * 16, g, c);
                    mma16816(s[n], a, b0, b1);
                    frag_a(a, vs, LD, kr, kk * 16, g, c);
                    frag_bt(b0, b1, dos, LD, n * 8, kk * 16, g, c);
                    mma16816(dp[n], a, b0, b1);
                }
            }
            // P^T and dS^T = P^T (dP^T - D) scale, zero where the query does not see the key.
#pragma unroll
            for (int n = 0; n < BT / 8; n++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int qi = n * 8 + 2 * c + (e & 1), key = keys[e >> 1];
                    const bool seen = r0 + qi < t && key < t && key <= r0 + qi;
                    const float p = seen ? __expf(s[n][e] * scale - ls[qi]) : 0.f;
                    s[n][e] = p;
                    dp[n][e] = p * (dp[n][e] - ds_[qi]) * scale;
                }
            // dV_w += P^T dO, dK_w += dS^T Q (k = the BT queries).
#pragma unroll
            for (int j = 0; j < BT / 16; j++) {
                uint32_t ap[4], ad[4];
                c_to_a(ap, s[2 * j], s[2 * j + 1]);
                c_to_a(ad, dp[2 * j], dp[2 * j + 1]);
#pragma unroll
                for (int n = 0; n < D / 8; n++) {
                    uint32_t b0, b1;
                    frag_b(b0, b1, dos, LD, n * 8, j * 16, g, c);
                    mma16816(dva[n], ap, b0, b1);
                    frag_b(b0, b1, qs, LD, n * 8, j * 16, g, c);
                    mma16816(dka[n], ad, b0, b1);
                }
            }
        }
    }
#pragma unroll
    for (int ri = 0; ri < 2; ri++) {
        if (keys[ri] >= t) continue;
        const size_t off = koff + (size_t)keys[ri] * krs;
#pragma unroll
        for (int n = 0; n < D / 8; n++) {
            *reinterpret_cast<uint32_t *>(dk + off + n * 8 + 2 * c) = pack_f(dka[n][ri * 2], dka[n][ri * 2 + 1]);
            *reinterpret_cast<uint32_t *>(dv + off + n * 8 + 2 * c) = pack_f(dva[n][ri * 2], dva[n][ri * 2 + 1]);
        }
    }
}

// ---- dQ. Out: dq [b, t, h * D].
template <int D>
__device__ void flash_bwd_dq(const bf16 *q, const bf16 *k, const bf16 *v, const bf16 *d_o, const float *lse,
                             const float *dsum, bf16 *dq, int t, int h, int kvh, float scale) {
    extern __shared__ __align__(16) unsigned char smem[];
    constexpr int LD = D + PAD;
    bf16 *ks = reinterpret_cast<bf16 *>(smem), *vs = ks + BT * LD;
    const int qb = gridDim.x - 1 - blockIdx.x;
    const int bh = blockIdx.y, bi = bh / h, hh = bh % h, kg = hh / (h / kvh);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
    const size_t qrs = (size_t)h * D, krs = (size_t)kvh * D;
    const size_t qoff = (size_t)bi * t * qrs + (size_t)hh * D, koff = (size_t)bi * t * krs + (size_t)kg * D;
    const int r0 = qb * BR + warp * 16;
    const int rows[2] = {r0 + g, r0 + g + 8};
    uint32_t qf[D / 16][4], df[D / 16][4];
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int row = rows[e & 1], col = kk * 16 + 2 * c + (e >> 1) * 8;
            qf[kk][e] = row < t ? ld2(q + qoff + (size_t)row * qrs + col) : 0u;
            df[kk][e] = row < t ? ld2(d_o + qoff + (size_t)row * qrs + col) : 0u;
        }
    float lr[2], dr[2];
#pragma unroll
    for (int ri = 0; ri < 2; ri++) {
        lr[ri] = rows[ri] < t ? lse[(size_t)bh * t + rows[ri]] : 0.f;
        dr[ri] = rows[ri] < t ? dsum[(size_t)bh * t + rows[ri]] : 0.f;
    }
    float acc[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;
    const int kend = min(t, (qb + 1) * BR);
    for (int c0 = 0; c0 < kend; c0 += BT) {
        __syncthreads();
        load_tile<D>(ks, k + koff, krs, c0, BT, t);
        load_tile<D>(vs, v + koff, krs, c0, BT, t);
        __syncthreads();
        float s[BT / 8][4], dp[BT / 8][4];
#pragma unroll
        for (int n = 0; n < BT / 8; n++) {
#pragma unroll
            for (int e = 0; e < 4; e++) s[n][e] = dp[n][e] = 0.f;
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                uint32_t b0, b1;
                frag_bt(b0, b1, ks, LD, n * 8, kk * 16, g, c);
                mma16816(s[n], qf[kk], b0, b1);
                frag_bt(b0, b1, vs, LD, n * 8, kk * 16, g, c);
                mma16816(dp[n], df[kk], b0, b1);
            }
        }
#pragma unroll
        for (int n = 0; n < BT / 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int ri = e >> 1, key = c0 + n * 8 + 2 * c + (e & 1);
                const bool seen = rows[ri] < t && key <= rows[ri];
                const float p = seen ? __expf(s[n][e] * scale - lr[ri]) : 0.f;
                dp[n][e] = p * (dp[n][e] - dr[ri]) * scale;
            }
        // dQ_w += dS K (k = the BT keys).
#pragma unroll
        for (int j = 0; j < BT / 16; j++) {
            uint32_t a[4];
            c_to_a(a, dp[2 * j], dp[2 * j + 1]);
#pragma unroll
            for (int n = 0; n < D / 8; n++) {
                uint32_t b0, b1;
                frag_b(b0, b1, ks, LD, n * 8, j * 16, g, c);
                mma16816(acc[n], a, b0, b1);
            }
        }
    }
#pragma unroll
    for (int ri = 0; ri < 2; ri++) {
        if (rows[ri] >= t) continue;
        bf16 *dst = dq + qoff + (size_t)rows[ri] * qrs;
#pragma unroll
        for (int n = 0; n < D / 8; n++)
            *reinterpret_cast<uint32_t *>(dst + n * 8 + 2 * c) = pack_f(acc[n][ri * 2], acc[n][ri * 2 + 1]);
    }
}

#define FLASH_OPS(D)                                                                                                \
    extern "C" __global__ void __launch_bounds__(THREADS) flash_fwd_d##D(const bf16 *q, const bf16 *k,           \
                                                                          const bf16 *v, bf16 *o, float *lse, int t, \
                                                                          int h, int kvh, float scale) {             \
        flash_fwd<D>(q, k, v, o, lse, t, h, kvh, scale);                                                            \
    }                                                                                                               \
    extern "C" __global__ void flash_bwd_dot_d##D(const bf16 *o, const bf16 *d_o, float *dsum, int b, int t, int h) { \
        flash_bwd_dot<D>(o, d_o, dsum, b, t, h);                                                                    \
    }                                                                                                               \
    extern "C" __global__ void __launch_bounds__(THREADS)                                                           \
        flash_bwd_dkdv_d##D(const bf16 *q, const bf16 *k, const bf16 *v, const bf16 *d_o, const float *lse,         \
                            const float *dsum, bf16 *dk, bf16 *dv, int t, int h, int kvh, float scale) {            \
        flash_bwd_dkdv<D>(q, k, v, d_o, lse, dsum, dk, dv, t, h, kvh, scale);                                       \
    }                                                                                                               \
    extern "C" __global__ void __launch_bounds__(THREADS)                                                           \
        flash_bwd_dq_d##D(const bf16 *q, const bf16 *k, const bf16 *v, const bf16 *d_o, const float *lse,           \
                          const float *dsum, bf16 *dq, int t, int h, int kvh, float scale) {                        \
        flash_bwd_dq<D>(q, k, v, d_o, lse, dsum, dq, t, h, kvh, scale);                                             \
    }

FLASH_OPS(64)
FLASH_OPS(128)
