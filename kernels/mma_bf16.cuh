// Warp-level bf16 tensor-core helpers shared by kernels/flash_attn.cu (v1) and flash_attn_v2.cu:
// the m16n8k16 MMA (inline PTX, sm_80+), packing two floats into a bf16 pair, and turning two f32
// C tiles into the A fragment of the next product (P feeding P V without leaving registers).
// Included, not built on its own (build.rs builds kernels/*.cu).
#pragma once
#include <cuda_bf16.h>
#include <stdint.h>

#ifndef S1_CUDA_EMU // tests/cuda_emu/cuda_emu.h gives the CPU emulator's mma16816
__device__ __forceinline__ void mma16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
#endif

__device__ __forceinline__ uint32_t pack_f(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

// The A fragment of k-step j from C tiles 2j and 2j+1.
__device__ __forceinline__ void c_to_a(uint32_t a[4], const float c0[4], const float c1[4]) {
    a[0] = pack_f(c0[0], c0[1]);
    a[1] = pack_f(c0[2], c0[3]);
    a[2] = pack_f(c1[0], c1[1]);
    a[3] = pack_f(c1[2], c1[3]);
}
