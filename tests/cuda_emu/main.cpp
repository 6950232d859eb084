// The emulator's driver for tests/flash_emulated.rs.
//
//   emu run IN OUT   reads a case (shape, kernel version, dK/dV splits, schedule; q, k, v and dO as
//                    bf16), runs the forward, dsum and backward kernels as the CUDA launcher does,
//                    and writes o, lse, dq, dk and dv as f32 to OUT
//   emu selftest     checks the emulator's own instructions against direct products
//   emu race-raw | race-war | race-own | uncommitted | diverge | diverge-warp | unwritten
//                    small kernels with one deliberate bug each, which the emulator must refuse
//                    (exit status 3, the reason on stderr)
//
// Every buffer has guard bytes on both sides (checked after each launch) and every output starts
// as NaN, so a kernel that writes out of bounds or leaves an output unwritten fails.
#include <unistd.h>

#include <string>

#include "cuda_emu.h"
#include "flash_emu.h"

#if defined(__x86_64__)
// The fiber switch cuda_emu.h declares: saves the callee-saved registers on the old stack, stores
// its pointer, and pops the same from the new one.
asm(R"(
    .text
    .globl s1_emu_switch
    .type s1_emu_switch, @function
s1_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size s1_emu_switch, .-s1_emu_switch
    .section .note.GNU-stack,"",@progbits
    .text
)");
#endif

namespace {

constexpr size_t GUARD = 256;
// 0x7f bytes read as 3.4e38 in f32 and 3.4e38 in bf16: an out-of-bounds read shows in the results.
constexpr unsigned char GUARD_BYTE = 0x7f;

struct Buf {
    std::vector<unsigned char> raw;
    unsigned char *p = nullptr;
    size_t n = 0;
    const char *name = "";
};

std::vector<Buf *> all;

void make(Buf &b, size_t bytes, const char *name, unsigned char fill) {
    b.name = name;
    b.n = bytes;
    b.raw.assign(bytes + 3 * GUARD, GUARD_BYTE);
    auto addr = reinterpret_cast<uintptr_t>(b.raw.data()) + GUARD;
    addr = (addr + GUARD - 1) / GUARD * GUARD;
    b.p = reinterpret_cast<unsigned char *>(addr);
    std::memset(b.p, fill, bytes);
    emu::input(b.p, bytes);
    all.push_back(&b);
}

void check_guards(const char *after) {
    for (const Buf *b : all) {
        const unsigned char *lo = b->raw.data(), *end = b->raw.data() + b->raw.size();
        for (const unsigned char *x = lo; x < end; x++) {
            if (x >= b->p && x < b->p + b->n) continue;
            if (*x != GUARD_BYTE)
                emu::fail("%s wrote outside the buffer %s (byte %td from its start)", after, b->name, x - b->p);
        }
    }
}

template <typename T> T *as(Buf &b) { return reinterpret_cast<T *>(b.p); }

void read_exact(FILE *f, void *p, size_t n, const char *what) {
    if (std::fread(p, 1, n, f) != n) emu::fail("the input ends inside %s", what);
}

void write_f32(FILE *f, const float *x, size_t n) {
    if (std::fwrite(x, 4, n, f) != n) emu::fail("cannot write the output");
}

void write_bf16(FILE *f, const __nv_bfloat16 *x, size_t n) {
    std::vector<float> y(n);
    for (size_t i = 0; i < n; i++) y[i] = __bfloat162float(x[i]);
    write_f32(f, y.data(), n);
}

int run(const char *in_path, const char *out_path) {
    FILE *f = std::fopen(in_path, "rb");
    if (!f) emu::fail("cannot open %s", in_path);
    char magic[8];
    read_exact(f, magic, 8, "the magic");
    if (std::memcmp(magic, "S1EMU001", 8)) emu::fail("%s is not an emulator case (magic)", in_path);
    int32_t hd[9];
    read_exact(f, hd, sizeof hd, "the header");
    uint64_t seed;
    read_exact(f, &seed, 8, "the seed");
    const int version = hd[0];
    FlashIo x{};
    x.b = hd[1], x.t = hd[2], x.h = hd[3], x.kvh = hd[4], x.d = hd[5], x.splits = hd[6];
    emu::S.pol.order = hd[7];
    emu::S.pol.land = hd[8];
    emu::S.pol.seed = seed;
    emu::S.rng.seed(seed);
    if (version != 1 && version != 2) emu::fail("kernel version %d (1 or 2)", version);
    if (x.b < 1 || x.t < 1 || x.h < 1 || x.kvh < 1 || x.h % x.kvh || (x.d != 64 && x.d != 128) || x.splits < 1)
        emu::fail("shape b %d t %d h %d kvh %d d %d splits %d", x.b, x.t, x.h, x.kvh, x.d, x.splits);
    x.scale = 1.f / std::sqrt(float(x.d));
    const size_t nq = size_t(x.b) * x.t * x.h * x.d, nk = size_t(x.b) * x.t * x.kvh * x.d,
                 ns = size_t(x.b) * x.h * x.t;
    static Buf q, k, v, d_o, o, lse, dsum, dq, dk, dv, part;
    make(q, nq * 2, "q", 0);
    make(k, nk * 2, "k", 0);
    make(v, nk * 2, "v", 0);
    make(d_o, nq * 2, "dO", 0);
    read_exact(f, q.p, q.n, "q");
    read_exact(f, k.p, k.n, "k");
    read_exact(f, v.p, v.n, "v");
    read_exact(f, d_o.p, d_o.n, "dO");
    std::fclose(f);
    // 0xff bytes: NaN as bf16 and as f32.
    make(o, nq * 2, "o", 0xff);
    make(lse, ns * 4, "lse", 0xff);
    make(dsum, ns * 4, "dsum", 0xff);
    make(dq, nq * 2, "dq", 0xff);
    make(dk, nk * 2, "dk", 0xff);
    make(dv, nk * 2, "dv", 0xff);
    make(part, x.splits > 1 ? 2 * size_t(x.splits) * nk * 4 : 4, "dK/dV partial sums", 0xff);
    x.q = as<__nv_bfloat16>(q), x.k = as<__nv_bfloat16>(k), x.v = as<__nv_bfloat16>(v);
    x.d_o = as<__nv_bfloat16>(d_o), x.o = as<__nv_bfloat16>(o), x.lse = as<float>(lse);
    x.dsum = as<float>(dsum), x.dq = as<__nv_bfloat16>(dq), x.dk = as<__nv_bfloat16>(dk);
    x.dv = as<__nv_bfloat16>(dv), x.part = as<float>(part);
    (version == 1 ? v1_forward : v2_forward)(x);
    check_guards("the forward");
    v1_dot(x);
    check_guards("the dsum kernel");
    (version == 1 ? v1_backward : v2_backward)(x);
    check_guards("the backward");
    FILE *out = std::fopen(out_path, "wb");
    if (!out) emu::fail("cannot create %s", out_path);
    write_bf16(out, x.o, nq);
    write_f32(out, x.lse, ns);
    write_bf16(out, x.dq, nq);
    write_bf16(out, x.dk, nk);
    write_bf16(out, x.dv, nk);
    std::fclose(out);
    const auto &s = emu::S;
    std::printf("blocks %llu, barriers %llu, mma %llu, ldmatrix %llu, cp.async %llu\n", (unsigned long long)s.blocks,
                (unsigned long long)s.barriers, (unsigned long long)s.mmas, (unsigned long long)s.ldsms,
                (unsigned long long)s.copies);
    return 0;
}

// ---- the emulator's own checks

alignas(128) unsigned char sm[4096];
Buf src;

__nv_bfloat16 bf(float x) { return __float2bfloat16_rn(x); }
float fl(__nv_bfloat16 x) { return __bfloat162float(x); }

// A (16x16, row-major at sm) times B (16x16, k x n, stored as n rows of k at sm + 512 bytes), read
// by ldmatrix (A plain, B as a .x4 pair of n-tiles from its rows), and again with B stored k rows
// of n (.trans); both against the direct product.
int selftest() {
    make(src, 2 * 16 * 16 * 3, "selftest input", 0);
    auto *a = as<__nv_bfloat16>(src), *bt = a + 256, *bk = a + 512;
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> u(-8, 8);
    float A[16][16], B[16][16];
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            A[i][j] = u(rng) / 4.f, B[i][j] = u(rng) / 4.f; // B[k][n]
            a[i * 16 + j] = bf(A[i][j]);
        }
    for (int kk = 0; kk < 16; kk++)
        for (int n = 0; n < 16; n++) bt[n * 16 + kk] = bf(B[kk][n]), bk[kk * 16 + n] = bf(B[kk][n]);
    float got[2][16][16];
    emu::launch("selftest", {1, 1, 1}, 32, 3 * 512, sm, [&] {
        const int lane = threadIdx.x, g = lane / 4, c = lane % 4;
        auto *s = reinterpret_cast<__nv_bfloat16 *>(sm);
        for (int i = lane; i < 3 * 32; i += 32) cp16(s + 8 * i, a + 8 * i, true);
        cp_commit();
        cp_wait_all();
        __syncthreads();
        uint32_t fa[4], b1[4], b2[4];
        // A: rows (l & 7) + (l & 8), columns (l >> 4) * 8 (the kernels' lm_row_a, lm_col_a).
        ldsm_x4(fa, s + ((lane & 7) + (lane & 8)) * 16 + (lane >> 4) * 8);
        // B from n rows of k: rows n = (l & 7) + (l >> 4) * 8, columns k = l & 8 (lm_row_bt, lm_col_bt).
        ldsm_x4(b1, s + 256 + ((lane & 7) + (lane >> 4) * 8) * 16 + (lane & 8));
        // B from k rows of n, transposed: rows k = (l & 7) + (l & 8), columns n = (l >> 4) * 8.
        ldsm_x4_t(b2, s + 512 + ((lane & 7) + (lane & 8)) * 16 + (lane >> 4) * 8);
        for (int way = 0; way < 2; way++) {
            const uint32_t *b = way ? b2 : b1;
            for (int nt = 0; nt < 2; nt++) {
                float acc[4] = {0, 0, 0, 0};
                mma16816(acc, fa, b[2 * nt], b[2 * nt + 1]);
                for (int e = 0; e < 4; e++) got[way][g + 8 * (e >> 1)][nt * 8 + 2 * c + (e & 1)] = acc[e];
            }
        }
        float m = float(lane), r = __shfl_xor_sync(0xffffffffu, m, 5);
        if (r != float(lane ^ 5)) emu::fail("shfl.bfly: lane %d got %g", lane, r);
    });
    for (int way = 0; way < 2; way++)
        for (int i = 0; i < 16; i++)
            for (int n = 0; n < 16; n++) {
                float want = 0;
                for (int kk = 0; kk < 16; kk++) want += A[i][kk] * B[kk][n];
                if (got[way][i][n] != want)
                    emu::fail("selftest: (%d, %d) of A B is %g, not %g (%s)", i, n, got[way][i][n], want,
                              way ? "ldmatrix.trans" : "ldmatrix");
            }
    if (fl(bf(1.00390625f)) != 1.f || fl(bf(1.01171875f)) != 1.015625f) emu::fail("selftest: bf16 rounding");
    std::printf("selftest ok\n");
    return 0;
}

// Kernels with one bug each.
int buggy(const std::string &what) {
    make(src, 4096, "input", 0);
    auto *s = reinterpret_cast<__nv_bfloat16 *>(sm);
    const auto *g = as<__nv_bfloat16>(src);
    if (what == "race-raw") emu::S.pol.order = 1; // threads resumed from the last
    emu::launch(what.c_str(), {1, 1, 1}, 64, 2048, sm, [&] {
        const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
        uint32_t r[4];
        if (what == "race-raw") {
            // Warp 1 copies and waits, warp 0 reads the bytes with no __syncthreads between (the
            // schedule runs warp 1 first: see below).
            cp16(s + 8 * tid, g + 8 * tid, true);
            cp_commit();
            cp_wait_all();
            __syncthreads();
            if (warp == 1) cp16(s + 8 * lane, g, true);
            cp_commit();
            cp_wait_all();
            // Warp 0 waits for its own lanes here, so warp 1 (resumed first) has copied by then.
            if (warp == 0 && __shfl_xor_sync(0xffffffffu, lane, 1) >= 0) ldsm_x4(r, s + 8 * lane);
        } else if (what == "race-war") {
            // Warp 0 reads a tile that warp 1 overwrites in the same barrier phase.
            cp16(s + 8 * tid, g + 8 * tid, true);
            cp_commit();
            cp_wait_all();
            __syncthreads();
            if (warp == 0) ldsm_x4(r, s + 8 * (lane + 32));
            // Warp 1 waits for its own lanes first, so warp 0 has read by then.
            if (warp == 1 && __shfl_xor_sync(0xffffffffu, lane, 1) >= 0) cp16(s + 8 * tid, g, true);
            cp_commit();
            cp_wait_all();
        } else if (what == "race-own") {
            // A thread reads its own copy before waiting for it.
            cp16(s + 8 * tid, g + 8 * tid, true);
            if (warp == 0) ldsm_x4(r, s + 8 * lane);
            cp_commit();
            cp_wait_all();
        } else if (what == "uncommitted") {
            // The copy is never committed, so cp.async.wait_group does not wait for it.
            cp16(s + 8 * tid, g + 8 * tid, true);
            cp_wait_all();
            __syncthreads();
            if (warp == 0) ldsm_x4(r, s + 8 * (lane + 32));
            __syncthreads();
            cp_commit();
            cp_wait_all();
        } else if (what == "diverge-warp") {
            // Half a warp at one mma.sync, half at another.
            float c[4] = {0, 0, 0, 0};
            const uint32_t a[4] = {0, 0, 0, 0};
            if (lane < 16)
                mma16816(c, a, 0, 0);
            else
                mma16816(c, a, 0, 0);
        } else if (what == "diverge") {
            // Half the block skips a barrier.
            if (tid < 48) __syncthreads();
        } else if (what == "unwritten") {
            // Reads shared memory nothing wrote.
            ldsm_x4(r, s + 8 * lane);
        } else {
            emu::fail("no buggy kernel %s", what.c_str());
        }
    });
    std::printf("%s: not detected\n", what.c_str());
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    alarm(900); // a kernel that spins without reaching a sync point ends here, not in a hung test
    const std::string cmd = argc > 1 ? argv[1] : "";
    if (cmd == "run" && argc == 4) return run(argv[2], argv[3]);
    if (cmd == "selftest") return selftest();
    if (cmd.rfind("race-", 0) == 0 || cmd.rfind("diverge", 0) == 0 || cmd == "uncommitted" || cmd == "unwritten")
        return buggy(cmd);
    std::fprintf(stderr,
                 "usage: emu run IN OUT | selftest | race-raw | race-war | race-own | uncommitted | diverge | "
                 "diverge-warp | unwritten\n");
    return 2;
}
