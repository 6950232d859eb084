// CUDA kernels of the training path (src/model/kernels/cuda_train_ops.rs launches them): RMSNorm, the causal
// softmax of attention and SwiGLU, each with its backward, plus the fused AdamW update and the
// sum of squares for the gradient norm. Every reduction runs in f32 whatever the storage type.
// Built to PTX by build.rs with nvcc when the `cuda` feature is on.
#include <cuda_bf16.h>
#include <stdint.h>

typedef __nv_bfloat16 bf16;

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(bf16 v) { return __bfloat162float(v); }
template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ bf16 from_f<bf16>(float v) { return __float2bfloat16(v); }

// Sum (or max) over the block; every thread gets the result. blockDim.x is a multiple of 32.
__device__ float block_reduce(float v, bool is_max) {
    __shared__ float sh[32];
    for (int o = 16; o > 0; o >>= 1) {
        float u = __shfl_xor_sync(0xffffffff, v, o);
        v = is_max ? fmaxf(v, u) : v + u;
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < warps ? sh[lane] : (is_max ? -INFINITY : 0.f);
        for (int o = 16; o > 0; o >>= 1) {
            float u = __shfl_xor_sync(0xffffffff, v, o);
            v = is_max ? fmaxf(v, u) : v + u;
        }
        if (lane == 0) sh[0] = v;
    }
    __syncthreads();
    v = sh[0];
    __syncthreads();
    return v;
}

// ---- RMSNorm: y = x / sqrt(mean(x^2) + eps) * w; one block per row.
template <typename T>
__device__ void rms_fwd(const T *x, const T *w, T *y, int h, float eps) {
    const size_t row = blockIdx.x;
    x += row * h;
    y += row * h;
    float s = 0.f;
    for (int i = threadIdx.x; i < h; i += blockDim.x) {
        float v = to_f(x[i]);
        s += v * v;
    }
    const float r = rsqrtf(block_reduce(s, false) / h + eps);
    for (int i = threadIdx.x; i < h; i += blockDim.x) y[i] = from_f<T>(to_f(x[i]) * r * to_f(w[i]));
}

// Backward: dx of `rows_per_block` rows per block; dw accumulated per column in registers (at
// most RMS_COLS columns per thread), then one atomic add per column per block into dw32.
#define RMS_COLS 8
template <typename T>
__device__ void rms_bwd(const T *x, const T *w, const T *dy, T *dx, float *dw32, int rows, int h, float eps,
                        int rows_per_block) {
    float acc[RMS_COLS];
    for (int k = 0; k < RMS_COLS; k++) acc[k] = 0.f;
    const int r0 = blockIdx.x * rows_per_block;
    for (int row = r0; row < min(rows, r0 + rows_per_block); row++) {
        const T *xr = x + (size_t)row * h, *gr = dy + (size_t)row * h;
        T *dxr = dx + (size_t)row * h;
        float s = 0.f;
        for (int i = threadIdx.x; i < h; i += blockDim.x) {
            float v = to_f(xr[i]);
            s += v * v;
        }
        const float r = rsqrtf(block_reduce(s, false) / h + eps);
        float dot = 0.f;
        for (int i = threadIdx.x; i < h; i += blockDim.x) dot += to_f(gr[i]) * to_f(w[i]) * to_f(xr[i]) * r;
        const float mean = block_reduce(dot, false) / h;
        int k = 0;
        for (int i = threadIdx.x; i < h; i += blockDim.x, k++) {
            const float n = to_f(xr[i]) * r, g = to_f(gr[i]);
            dxr[i] = from_f<T>(r * (g * to_f(w[i]) - n * mean));
            acc[k] += g * n;
        }
    }
    int k = 0;
    for (int i = threadIdx.x; i < h; i += blockDim.x, k++) atomicAdd(&dw32[i], acc[k]);
}

// ---- Causal softmax of scale * scores over the last axis; row r of a head block of
// rows_per_head rows is query position start + (r % rows_per_head) % t, which sees keys
// 0..=that position. Masked probabilities are 0. One block per row.
template <typename T>
__device__ void csm_fwd(const T *s, T *p, int total, int rows_per_head, int t, int start, float scale) {
    const size_t row = blockIdx.x;
    const int vis = min(total, start + (int)((row % rows_per_head) % t) + 1);
    s += row * total;
    p += row * total;
    float m = -INFINITY;
    for (int i = threadIdx.x; i < vis; i += blockDim.x) m = fmaxf(m, to_f(s[i]) * scale);
    m = block_reduce(m, true);
    float sum = 0.f;
    for (int i = threadIdx.x; i < vis; i += blockDim.x) sum += __expf(to_f(s[i]) * scale - m);
    const float inv = 1.f / block_reduce(sum, false);
    for (int i = threadIdx.x; i < total; i += blockDim.x)
        p[i] = from_f<T>(i < vis ? __expf(to_f(s[i]) * scale - m) * inv : 0.f);
}

// ds = scale * p * (dp - sum(p * dp)) per row.
template <typename T>
__device__ void csm_bwd(const T *p, const T *dp, T *ds, int total, float scale) {
    const size_t row = blockIdx.x;
    p += row * total;
    dp += row * total;
    ds += row * total;
    float dot = 0.f;
    for (int i = threadIdx.x; i < total; i += blockDim.x) dot += to_f(p[i]) * to_f(dp[i]);
    dot = block_reduce(dot, false);
    for (int i = threadIdx.x; i < total; i += blockDim.x)
        ds[i] = from_f<T>(scale * to_f(p[i]) * (to_f(dp[i]) - dot));
}

// ---- SwiGLU: y = silu(g) * u; backward writes [dg | du].
template <typename T> __device__ void swiglu_fwd(const T *g, const T *u, T *y, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const float gv = to_f(g[i]);
        y[i] = from_f<T>(gv / (1.f + __expf(-gv)) * to_f(u[i]));
    }
}

template <typename T> __device__ void swiglu_bwd(const T *g, const T *u, const T *dy, T *out, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const float gv = to_f(g[i]), uv = to_f(u[i]), d = to_f(dy[i]);
        const float s = 1.f / (1.f + __expf(-gv));
        out[i] = from_f<T>(d * uv * s * (1.f + gv * (1.f - s)));
        out[n + i] = from_f<T>(d * gv * s);
    }
}

// ---- Cross-entropy of rows of logits: loss[r] = logsumexp(x[r]) - x[r][target[r]]; one block
// per row. The backward recomputes the row's max and sum: dx = g[r] * (softmax(x[r]) - onehot).
template <typename T>
__device__ void row_lse(const T *x, int v, float *max_out, float *sum_out) {
    float m = -INFINITY;
    for (int i = threadIdx.x; i < v; i += blockDim.x) m = fmaxf(m, to_f(x[i]));
    m = block_reduce(m, true);
    float s = 0.f;
    for (int i = threadIdx.x; i < v; i += blockDim.x) s += __expf(to_f(x[i]) - m);
    *max_out = m;
    *sum_out = block_reduce(s, false);
}

template <typename T> __device__ void ce_fwd(const T *x, const uint32_t *target, float *loss, int v) {
    const size_t row = blockIdx.x;
    x += row * v;
    float m, s;
    row_lse(x, v, &m, &s);
    if (threadIdx.x == 0) loss[row] = m + logf(s) - to_f(x[target[row]]);
}

template <typename T> __device__ void ce_bwd(const T *x, const uint32_t *target, const float *g, T *dx, int v) {
    const size_t row = blockIdx.x;
    x += row * v;
    dx += row * v;
    float m, s;
    row_lse(x, v, &m, &s);
    const float scale = g[row] / s;
    const uint32_t t = target[row];
    for (int i = threadIdx.x; i < v; i += blockDim.x)
        dx[i] = from_f<T>(__expf(to_f(x[i]) - m) * scale - (i == (int)t ? g[row] : 0.f));
}

// ---- Embedding rows: out[r] = table[ids[r]]; the backward adds each row's gradient into an
// f32 table with atomics (then converted), instead of a serial loop over the ids.
template <typename T> __device__ void emb_fwd(const uint32_t *ids, const T *table, T *out, size_t n, int h) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n * h; i += (size_t)gridDim.x * blockDim.x)
        out[i] = table[(size_t)ids[i / h] * h + i % h];
}

template <typename T> __device__ void emb_bwd(const uint32_t *ids, const T *g, float *dw32, size_t n, int h) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n * h; i += (size_t)gridDim.x * blockDim.x)
        atomicAdd(&dw32[(size_t)ids[i / h] * h + i % h], to_f(g[i]));
}

// ---- AdamW (PyTorch's formula) on f32 master weights `mw`, writing the weights `w` in their
// storage type too (w may alias mw when the weights are f32).
template <typename T>
__device__ void adamw(float *mw, T *w, const T *g, float *m, float *v, size_t n, float b1, float b2, float eps,
                      float decay, float step, float bc2_sqrt, float gs) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const float gi = to_f(g[i]) * gs;
        const float mi = b1 * m[i] + (1.f - b1) * gi;
        const float vi = b2 * v[i] + (1.f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        const float wi = mw[i] * decay - step * mi / (sqrtf(vi) / bc2_sqrt + eps);
        mw[i] = wi;
        w[i] = from_f<T>(wi);
    }
}

// Adds sum(g^2) into *out.
template <typename T> __device__ void sumsq(const T *g, size_t n, float *out) {
    float s = 0.f;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const float v = to_f(g[i]);
        s += v * v;
    }
    s = block_reduce(s, false);
    if (threadIdx.x == 0) atomicAdd(out, s);
}

// y[off + i] = x[i], converted.
template <typename T> __device__ void from_f32(const float *x, T *y, size_t n, size_t off) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[off + i] = from_f<T>(x[i]);
}

#define OPS(T, S)                                                                                              \
    extern "C" __global__ void rms_fwd_##S(const T *x, const T *w, T *y, int h, float eps) {                 \
        rms_fwd<T>(x, w, y, h, eps);                                                                           \
    }                                                                                                          \
    extern "C" __global__ void rms_bwd_##S(const T *x, const T *w, const T *dy, T *dx, float *dw32, int rows, \
                                           int h, float eps, int rows_per_block) {                            \
        rms_bwd<T>(x, w, dy, dx, dw32, rows, h, eps, rows_per_block);                                          \
    }                                                                                                          \
    extern "C" __global__ void csm_fwd_##S(const T *s, T *p, int total, int rows_per_head, int t, int start,  \
                                           float scale) {                                                      \
        csm_fwd<T>(s, p, total, rows_per_head, t, start, scale);                                               \
    }                                                                                                          \
    extern "C" __global__ void csm_bwd_##S(const T *p, const T *dp, T *ds, int total, float scale) {          \
        csm_bwd<T>(p, dp, ds, total, scale);                                                                   \
    }                                                                                                          \
    extern "C" __global__ void swiglu_fwd_##S(const T *g, const T *u, T *y, size_t n) { swiglu_fwd<T>(g, u, y, n); } \
    extern "C" __global__ void swiglu_bwd_##S(const T *g, const T *u, const T *dy, T *out, size_t n) {        \
        swiglu_bwd<T>(g, u, dy, out, n);                                                                       \
    }                                                                                                          \
    extern "C" __global__ void adamw_##S(float *mw, T *w, const T *g, float *m, float *v, size_t n, float b1, \
                                         float b2, float eps, float decay, float step, float bc2_sqrt,         \
                                         float gs) {                                                           \
        adamw<T>(mw, w, g, m, v, n, b1, b2, eps, decay, step, bc2_sqrt, gs);                                   \
    }                                                                                                          \
    extern "C" __global__ void ce_fwd_##S(const T *x, const uint32_t *target, float *loss, int v) {         \
        ce_fwd<T>(x, target, loss, v);                                                                         \
    }                                                                                                          \
    extern "C" __global__ void ce_bwd_##S(const T *x, const uint32_t *target, const float *g, T *dx, int v) { \
        ce_bwd<T>(x, target, g, dx, v);                                                                        \
    }                                                                                                          \
    extern "C" __global__ void emb_fwd_##S(const uint32_t *ids, const T *table, T *out, size_t n, int h) {   \
        emb_fwd<T>(ids, table, out, n, h);                                                                     \
    }                                                                                                          \
    extern "C" __global__ void emb_bwd_##S(const uint32_t *ids, const T *g, float *dw32, size_t n, int h) {    \
        emb_bwd<T>(ids, g, dw32, n, h);                                                                        \
    }                                                                                                          \
    extern "C" __global__ void sumsq_##S(const T *g, size_t n, float *out) { sumsq<T>(g, n, out); }             \
    extern "C" __global__ void from_f32_##S(const float *x, T *y, size_t n, size_t off) { from_f32<T>(x, y, n, off); }

OPS(float, f32)
OPS(bf16, bf16)
