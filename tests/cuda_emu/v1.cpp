// kernels/flash_attn.cu (v1, checked on an H200) in the CPU emulator, launched as
// src/model/kernels/cuda_flash_attention.rs launches it. It runs here to show that the emulator
// reproduces a kernel that a GPU has verified.
#include "cuda_emu.h"
#include "flash_emu.h"
#include "mma_bf16.cuh"

namespace v1 {
#include "flash_attn.cu"
__attribute__((aligned(128))) unsigned char smem[emu::SMEM_MAX];
} // namespace v1

static unsigned blocks(int n, int per) { return unsigned((n + per - 1) / per); }

void v1_forward(const FlashIo &x) {
    const size_t sm = 2 * BC * (x.d + PAD) * 2;
    emu::launch("flash_fwd", {blocks(x.t, BR), unsigned(x.b * x.h), 1}, THREADS, sm, v1::smem, [&] {
        (x.d == 64 ? v1::flash_fwd_d64 : v1::flash_fwd_d128)(x.q, x.k, x.v, x.o, x.lse, x.t, x.h, x.kvh, x.scale);
    });
}

void v1_dot(const FlashIo &x) {
    emu::launch("flash_bwd_dot", {blocks(x.b * x.h * x.t, THREADS / 32), 1, 1}, THREADS, 0, v1::smem, [&] {
        (x.d == 64 ? v1::flash_bwd_dot_d64 : v1::flash_bwd_dot_d128)(x.o, x.d_o, x.dsum, x.b, x.t, x.h);
    });
}

void v1_backward(const FlashIo &x) {
    const size_t kv = (2 * BR + 2 * BT) * (x.d + PAD) * 2 + 2 * BT * 4, dq = 2 * BT * (x.d + PAD) * 2;
    emu::launch("flash_bwd_dkdv", {blocks(x.t, BR), unsigned(x.b * x.kvh), 1}, THREADS, kv, v1::smem, [&] {
        (x.d == 64 ? v1::flash_bwd_dkdv_d64 : v1::flash_bwd_dkdv_d128)(x.q, x.k, x.v, x.d_o, x.lse, x.dsum, x.dk,
                                                                        x.dv, x.t, x.h, x.kvh, x.scale);
    });
    emu::launch("flash_bwd_dq", {blocks(x.t, BR), unsigned(x.b * x.h), 1}, THREADS, dq, v1::smem, [&] {
        (x.d == 64 ? v1::flash_bwd_dq_d64 : v1::flash_bwd_dq_d128)(x.q, x.k, x.v, x.d_o, x.lse, x.dsum, x.dq, x.t,
                                                                    x.h, x.kvh, x.scale);
    });
}
