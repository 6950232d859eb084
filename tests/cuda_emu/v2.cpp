// kernels/flash_attn_v2.cu (v2, not yet run on a GPU) in the CPU emulator, launched as
// src/model/kernels/cuda_flash_attention.rs launches it (its block shapes from the file's Cfg<D>,
// its shared memory by the same formulas; x.splits is the dK/dV split the launcher would pick, or
// any divisor of h / kvh the test asks for).
#include "cuda_emu.h"
#include "flash_emu.h"
#include "mma_bf16.cuh"

namespace v2 {
#include "flash_attn_v2.cu"
__attribute__((aligned(128))) unsigned char smem[emu::SMEM_MAX];
} // namespace v2

static unsigned blocks(int n, int per) { return unsigned((n + per - 1) / per); }

template <int D> static void forward(const FlashIo &x) {
    using C = v2::Cfg<D>;
    const size_t sm = (C::FWD_WARPS * 16 + 4 * C::FWD_BC) * D * 2;
    emu::launch("flash_v2_fwd", {blocks(x.t, C::FWD_WARPS * 16), unsigned(x.b * x.h), 1}, C::FWD_WARPS * 32, sm,
                v2::smem, [&] {
                    (D == 64 ? v2::flash_v2_fwd_d64 : v2::flash_v2_fwd_d128)(x.q, x.k, x.v, x.o, x.lse, x.t, x.h,
                                                                            x.kvh, x.scale);
                });
}

template <int D> static void backward(const FlashIo &x) {
    using C = v2::Cfg<D>;
    const size_t kv = (2 * C::KV_WARPS * 16 + 4 * C::KV_BT) * D * 2 + 4 * C::KV_BT * 4;
    const size_t dq = (2 * C::DQ_WARPS * 16 + 4 * C::DQ_BC) * D * 2;
    if ((x.h / x.kvh) % x.splits) emu::fail("splits %d does not divide %d query heads per kv head", x.splits, x.h / x.kvh);
    emu::launch("flash_v2_bwd_dkdv", {blocks(x.t, C::KV_WARPS * 16), unsigned(x.b * x.kvh * x.splits), 1},
                C::KV_WARPS * 32, kv, v2::smem, [&] {
                    (D == 64 ? v2::flash_v2_bwd_dkdv_d64 : v2::flash_v2_bwd_dkdv_d128)(
                        x.q, x.k, x.v, x.d_o, x.lse, x.dsum, x.dk, x.dv, x.t, x.h, x.kvh, x.scale, x.splits, x.part);
                });
    if (x.splits > 1) {
        const int nk = x.b * x.t * x.kvh * D;
        emu::launch("flash_v2_bwd_sum", {blocks(nk / 4, 256), 1, 1}, 256, 0, v2::smem,
                    [&] { v2::flash_v2_bwd_sum(x.part, x.dk, x.dv, nk, x.splits); });
    }
    emu::launch("flash_v2_bwd_dq", {blocks(x.t, C::DQ_WARPS * 16), unsigned(x.b * x.h), 1}, C::DQ_WARPS * 32, dq,
                v2::smem, [&] {
                    (D == 64 ? v2::flash_v2_bwd_dq_d64 : v2::flash_v2_bwd_dq_d128)(
                        x.q, x.k, x.v, x.d_o, x.lse, x.dsum, x.dq, x.t, x.h, x.kvh, x.scale);
                });
}

void v2_forward(const FlashIo &x) { x.d == 64 ? forward<64>(x) : forward<128>(x); }
void v2_backward(const FlashIo &x) { x.d == 64 ? backward<64>(x) : backward<128>(x); }
