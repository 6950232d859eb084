// What tests/cuda_emu/main.cpp calls in the kernel files' translation units (v1.cpp, v2.cpp): one
// training attention's buffers, and the launches src/model/kernels/cuda_flash_attention.rs makes.
#pragma once
#include "cuda_bf16.h"

struct FlashIo {
    int b, t, h, kvh, d, splits;
    float scale;
    const __nv_bfloat16 *q, *k, *v, *d_o;
    __nv_bfloat16 *o;
    float *lse, *dsum;
    __nv_bfloat16 *dq, *dk, *dv;
    float *part; // v2's dK/dV partial sums, 2 * splits * b * t * kvh * d (splits > 1)
};

// kernels/flash_attn.cu: forward, dsum = rowsum(dO * O) (both versions use it), dK/dV and dQ.
void v1_forward(const FlashIo &x);
void v1_dot(const FlashIo &x);
void v1_backward(const FlashIo &x);
// kernels/flash_attn_v2.cu: forward; dK/dV (split over x.splits parts), their sum, and dQ.
void v2_forward(const FlashIo &x);
void v2_backward(const FlashIo &x);
