// A SIMT emulator that runs the CUDA kernels of kernels/ on the CPU, for tests/flash_emulated.rs:
// kernels that no GPU was at hand to run (kernels/flash_attn_v2.cu) are compiled from their own
// source as C++ (with -DS1_CUDA_EMU, which leaves out their inline-PTX helpers; this header gives
// those helpers' PTX ISA semantics instead) and run block by block.
//
// Each CUDA thread of a block is a fiber (ucontext) on one OS thread, switched cooperatively at
// every __syncthreads and every warp-wide instruction (mma.sync, ldmatrix, shfl.sync), so a block's
// threads interleave as they may on a GPU. What it checks beyond the results:
// - shared-memory races on the accesses it sees (cp.async writes, ldmatrix and lds reads): a byte
//   read by one thread while another's copy to it may still be in flight, or between the copy
//   landing and the next __syncthreads; a copy issued over bytes another thread read in the same
//   barrier phase; a thread reading its own copy before cp.async.wait_group; a read of never-written
//   bytes. Plain C++ loads and stores of shared memory are not seen, only their results (v1 uses
//   them; every shared access of v2 goes through the checked helpers);
// - divergence: __syncthreads not reached by every thread, warp-wide instructions not reached by
//   all 32 lanes at the same call (kind, source line and count; reported as a deadlock or a
//   mismatch);
// - bounds: cp.async sources inside the buffers the driver registered, shared accesses inside the
//   launch's dynamic shared memory, alignment of copies (both ends) and ldmatrix rows;
// - schedules (Policy): blocks and threads in index order, reversed, or shuffled; copies landing at
//   cp.async.wait_group, at once, or either by coin. A race the checks do not see shows as results
//   that differ between schedules (tests/flash_emulated.rs compares them bit for bit).
// Shared memory starts each block filled with 0xff bytes (bf16 NaN), so a read of bytes nothing
// wrote poisons the results.
//
// Numerics: mma.m16n8k16 multiplies bf16 exactly and adds in f32 in k order (a tensor core's
// order and rounding differ in the last bits); ex2.approx is exp2f with denormals flushed; __expf
// and __logf are expf and logf. The tests' tolerances are the GPU check's (scripts/device-check.sh).
#pragma once
#include <math.h>
#include <stdint.h>
#include <ucontext.h>

#include <algorithm>
#include <array>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

#include "cuda_bf16.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)

using std::max;
using std::min;

struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
};
struct __attribute__((aligned(8))) float2 {
    float x, y;
};
struct __attribute__((aligned(16))) float4 {
    float x, y, z, w;
};
struct __attribute__((aligned(8))) uint2 {
    unsigned x, y;
};
struct __attribute__((aligned(16))) uint4 {
    unsigned x, y, z, w;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }

// The running fiber's indices (set by the scheduler before it resumes a thread).
inline uint3 threadIdx, blockIdx;
inline dim3 gridDim, blockDim;

namespace emu {

[[noreturn]] inline void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::fputs("cuda-emu: ", stderr);
    std::vfprintf(stderr, fmt, ap);
    std::fputc('\n', stderr);
    va_end(ap);
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(3); // not exit(): this may run on a fiber's stack, which static destructors free

}

// How the scheduler interleaves a block's threads and when asynchronous copies land.
struct Policy {
    int order = 0; // 0: threads resumed in index order, 1: reversed, 2: shuffled at every pass
    int land = 0;  // cp.async lands 0: at cp.async.wait_group, 1: when issued, 2: either, by coin
    uint64_t seed = 1;
};

constexpr size_t SMEM_MAX = 227 * 1024; // the most one block may opt into on an H100/H200
constexpr size_t STACK = 256 * 1024;
constexpr uint32_t NONE = 0xffffffffu, MANY = 0xfffffffeu, OPEN = 0xffffffffu;

// One cp.async in flight: the bytes it read and where they go.
struct Copy {
    unsigned char *dst;
    unsigned char data[16];
    int n;
    bool landed;
    bool committed; // by cp.async.commit_group: only committed copies are waited for
};

// Switching fibers: on x86-64 a minimal switch of the callee-saved registers and the stack
// pointer (swapcontext also saves the signal mask, a system call per switch, and the kernels switch
// at every warp-wide instruction); elsewhere ucontext.
#if defined(__x86_64__)
extern "C" void s1_emu_switch(void **save_sp, void *new_sp);
// (defined in main.cpp)

struct Context {
    void *sp = nullptr;
};
#else
struct Context {
    ucontext_t uc;
};
#endif

struct Thread {
    Context ctx;
    std::vector<char> stack;
    bool done = false;
    std::vector<Copy> pending;
};

// Per byte of shared memory: the last writer and the barrier phases its write may land in
// (w_hi OPEN while in flight), and the last reader in its phase (MANY: more than one thread).
struct Shadow {
    uint32_t writer = NONE, w_lo = 0, w_hi = 0, reader = NONE, r_epoch = NONE;
};

// A warp-wide instruction as one lane reaches it: how many it executed before, which kind, and the
// source line of the kernel's call (lanes at different calls of the same kind have diverged).
struct WarpOp {
    uint64_t count;
    int kind, line;
    bool operator!=(const WarpOp &o) const { return count != o.count || kind != o.kind || line != o.line; }
};

struct Region {
    const unsigned char *p;
    size_t n;
};

struct State {
    Policy pol;
    std::mt19937_64 rng;
    std::vector<Thread> th;
    Context sched;
    std::function<void()> body;
    unsigned nt = 0, cur = 0, exited = 0;
    unsigned char *smem = nullptr;
    size_t smem_bytes = 0;
    std::vector<Shadow> shadow;
    uint32_t epoch = 0; // barrier phases completed in this block
    unsigned bar_arrived = 0;
    uint64_t bar_gen = 0;
    std::vector<unsigned> warp_arrived;
    std::vector<uint64_t> warp_gen;
    std::vector<WarpOp> warp_op;
    std::vector<uint64_t> lane_ops; // warp-wide instructions each thread has executed
    std::vector<std::array<unsigned char, 32>> slot; // per thread: what it brings to a warp instruction
    uint64_t events = 0;
    std::vector<Region> inputs;
    const char *kernel = "";
    // Counts, for the driver's report.
    uint64_t mmas = 0, ldsms = 0, copies = 0, barriers = 0, blocks = 0;
};
inline State S;

inline void switch_to(Context &save, Context &to) {
#if defined(__x86_64__)
    s1_emu_switch(&save.sp, to.sp);
#else
    swapcontext(&save.uc, &to.uc);
#endif
}

inline void yield() { switch_to(S.th[S.cur].ctx, S.sched); }

inline const char *where() {
    static char buf[160];
    std::snprintf(buf, sizeof buf, "%s, block (%u, %u), thread %u (warp %u, lane %u)", S.kernel, blockIdx.x, blockIdx.y,
                  S.cur, S.cur / 32, S.cur % 32);
    return buf;
}

// Registers a buffer cp.async may read from.
inline void input(const void *p, size_t n) { S.inputs.push_back({static_cast<const unsigned char *>(p), n}); }

inline void syncthreads() {
    if (S.exited) fail("%s: __syncthreads after %u thread(s) of the block exited", where(), S.exited);
    S.events++;
    const uint64_t g = S.bar_gen;
    if (++S.bar_arrived == S.nt) {
        S.bar_arrived = 0;
        S.bar_gen++;
        S.epoch++;
        S.barriers++;
    } else {
        while (S.bar_gen == g) yield();
    }
}

// Every lane of the running thread's warp arrives at the same warp-wide instruction: the same kind,
// called from the same line, as the same count of warp-wide instructions.
inline void warp_sync(int kind, int line, const char *name) {
    const unsigned w = S.cur / 32;
    const WarpOp me{S.lane_ops[S.cur], kind, line};
    if (S.warp_arrived[w] == 0) {
        S.warp_op[w] = me;
    } else if (S.warp_op[w] != me) {
        const WarpOp &o = S.warp_op[w];
        fail("%s: at %s (line %d, its warp-wide instruction %llu) while other lanes of the warp are at kind %d, "
             "line %d, instruction %llu (divergence)",
             where(), name, line, (unsigned long long)me.count, o.kind, o.line, (unsigned long long)o.count);
    }
    S.events++;
    const uint64_t g = S.warp_gen[w];
    if (++S.warp_arrived[w] == 32) {
        S.warp_arrived[w] = 0;
        S.warp_gen[w]++;
    } else {
        while (S.warp_gen[w] == g) yield();
    }
}

inline size_t smem_offset(const void *p, size_t n, size_t align, const char *what) {
    const auto *a = static_cast<const unsigned char *>(p);
    if (a < S.smem || a + n > S.smem + S.smem_bytes)
        fail("%s: %s at byte %td of shared memory, outside the launch's %zu bytes", where(), what, a - S.smem,
             S.smem_bytes);
    const size_t off = static_cast<size_t>(a - S.smem);
    if (off % align) fail("%s: %s at byte %zu of shared memory, not %zu-byte aligned", where(), what, off, align);
    return off;
}

inline void note_read(size_t off, size_t n, const char *what) {
    for (size_t i = off; i < off + n; i++) {
        Shadow &s = S.shadow[i];
        if (s.writer == NONE)
            fail("%s: %s reads byte %zu of shared memory, which nothing wrote in this block", where(), what, i);
        if (s.writer == S.cur && s.w_hi == OPEN)
            fail("%s: %s reads byte %zu of shared memory before its own cp.async to it was waited for", where(),
                 what, i);
        if (s.writer != S.cur && (s.w_hi == OPEN || s.w_hi >= S.epoch))
            fail("%s: %s reads byte %zu of shared memory that thread %u's cp.async (issued in barrier phase %u) "
                 "may still be writing: no __syncthreads after its cp.async.wait_group (race)",
                 where(), what, i, s.writer, s.w_lo);
        if (s.r_epoch != S.epoch || s.reader == NONE) {
            s.reader = S.cur;
            s.r_epoch = S.epoch;
        } else if (s.reader != S.cur) {
            s.reader = MANY;
        }
    }
}

inline void note_write(size_t off, size_t n) {
    for (size_t i = off; i < off + n; i++) {
        Shadow &s = S.shadow[i];
        if (s.r_epoch == S.epoch && s.reader != NONE && s.reader != S.cur)
            fail("%s: cp.async overwrites byte %zu of shared memory that %s read in the same barrier phase %u "
                 "(race)",
                 where(), i, s.reader == MANY ? "other threads" : "another thread", S.epoch);
        if (s.writer != NONE && s.writer != S.cur && (s.w_hi == OPEN || s.w_hi >= S.epoch))
            fail("%s: cp.async to byte %zu of shared memory while thread %u's write to it is in the same phase "
                 "(race)",
                 where(), i, s.writer);
        if (s.writer == S.cur && s.w_hi == OPEN)
            fail("%s: a second cp.async to byte %zu of shared memory before the first was waited for", where(), i);
        s.writer = S.cur;
        s.w_lo = S.epoch;
        s.w_hi = OPEN;
    }
}

inline void land(Copy &c) {
    if (!c.landed) std::memcpy(c.dst, c.data, c.n);
    c.landed = true;
}

inline void cp_async(void *dst, const void *src, bool valid, int n) {
    const size_t off = smem_offset(dst, n, n, "cp.async destination");
    Copy c{static_cast<unsigned char *>(dst), {}, n, false, false};
    if (valid) {
        const auto *s = static_cast<const unsigned char *>(src);
        if (reinterpret_cast<uintptr_t>(s) % n) fail("%s: cp.async of %d bytes from an unaligned source", where(), n);
        bool inside = false;
        for (const Region &r : S.inputs) inside |= s >= r.p && s + n <= r.p + r.n;
        if (!inside) fail("%s: cp.async reads %d bytes outside every input buffer", where(), n);
        std::memcpy(c.data, s, n);
    }
    note_write(off, n);
    S.copies++;
    const bool now = S.pol.land == 1 || (S.pol.land == 2 && (S.rng() & 1));
    if (now) land(c);
    S.th[S.cur].pending.push_back(c);
}

// cp.async.commit_group: this thread's copies issued so far form a group.
inline void commit() {
    for (Copy &c : S.th[S.cur].pending) c.committed = true;
}

// cp.async.wait_group 0: every committed group of this thread has landed (copies issued after the
// last commit are not waited for).
inline void wait_all() {
    std::vector<Copy> &p = S.th[S.cur].pending;
    for (Copy &c : p) {
        if (!c.committed) continue;
        land(c);
        const size_t off = static_cast<size_t>(c.dst - S.smem);
        for (int i = 0; i < c.n; i++) S.shadow[off + i].w_hi = S.epoch;
    }
    p.erase(std::remove_if(p.begin(), p.end(), [](const Copy &c) { return c.committed; }), p.end());
}

inline void trampoline() {
    S.body();
    Thread &me = S.th[S.cur];
    if (!me.pending.empty()) fail("%s: exits with a cp.async never waited for", where());
    me.done = true;
    S.exited++;
    S.events++;
#if defined(__x86_64__)
    switch_to(me.ctx, S.sched); // never resumed
    fail("a finished thread was resumed");
#endif
}

// A fresh context that runs trampoline() on `stack`.
inline void start(Thread &t) {
#if defined(__x86_64__)
    // s1_emu_switch pops six registers and returns into trampoline, which then sees the stack as
    // a call leaves it (16-byte aligned below a return address it never uses).
    auto top = reinterpret_cast<uintptr_t>(t.stack.data() + t.stack.size()) & ~uintptr_t(15);
    auto *sp = reinterpret_cast<void **>(top);
    *--sp = nullptr;                                   // trampoline's return address
    *--sp = reinterpret_cast<void *>(&trampoline);     // where s1_emu_switch returns
    for (int i = 0; i < 6; i++) *--sp = nullptr;       // rbp, rbx, r12-r15
    t.ctx.sp = sp;
#else
    getcontext(&t.ctx.uc);
    t.ctx.uc.uc_stack.ss_sp = t.stack.data();
    t.ctx.uc.uc_stack.ss_size = t.stack.size();
    t.ctx.uc.uc_link = &S.sched.uc;
    makecontext(&t.ctx.uc, trampoline, 0);
#endif
}

// Runs `kernel` over `grid` blocks of `threads` threads with `smem_bytes` of dynamic shared
// memory at `smem` (the kernel file's `extern __shared__` array).
inline void launch(const char *name, dim3 grid, unsigned threads, size_t smem_bytes, unsigned char *smem,
                   const std::function<void()> &kernel) {
    if (threads == 0 || threads % 32 || threads > 1024) fail("%s: %u threads per block", name, threads);
    if (smem_bytes > SMEM_MAX) fail("%s: %zu bytes of shared memory per block (an SM has %zu)", name, smem_bytes, SMEM_MAX);
    S.kernel = name;
    S.body = kernel;
    S.nt = threads;
    S.smem = smem;
    S.smem_bytes = smem_bytes;
    S.th.resize(threads);
    S.slot.resize(threads);
    gridDim = grid;
    blockDim = {threads, 1, 1};
    std::vector<unsigned> order(threads);
    // Blocks one at a time, in the schedule's order too.
    std::vector<std::pair<unsigned, unsigned>> grid_order;
    for (unsigned by = 0; by < grid.y; by++)
        for (unsigned bx = 0; bx < grid.x; bx++) grid_order.push_back({bx, by});
    if (S.pol.order == 1) std::reverse(grid_order.begin(), grid_order.end());
    if (S.pol.order == 2) std::shuffle(grid_order.begin(), grid_order.end(), S.rng);
    for (const auto &[bx, by] : grid_order) {
        blockIdx = {bx, by, 0};
        std::memset(smem, 0xff, smem_bytes);
        S.shadow.assign(smem_bytes, Shadow{});
        S.epoch = 0;
        S.bar_arrived = 0;
        S.exited = 0;
        S.warp_arrived.assign(threads / 32, 0);
        S.warp_gen.assign(threads / 32, 0);
        S.warp_op.assign(threads / 32, WarpOp{0, 0, 0});
        S.lane_ops.assign(threads, 0);
        for (unsigned i = 0; i < threads; i++) {
            Thread &t = S.th[i];
            t.done = false;
            t.pending.clear();
            t.stack.resize(STACK);
            start(t);
            order[i] = i;
        }
        if (S.pol.order == 1) std::reverse(order.begin(), order.end());
        unsigned alive = threads;
        while (alive) {
            if (S.pol.order == 2) std::shuffle(order.begin(), order.end(), S.rng);
            const uint64_t before = S.events;
            for (unsigned i : order) {
                if (S.th[i].done) continue;
                S.cur = i;
                threadIdx = {i, 0, 0};
                switch_to(S.sched, S.th[i].ctx);
                if (S.th[i].done) alive--;
            }
            if (alive && S.events == before)
                fail("%s, block (%u, %u): deadlock: the threads wait at different barriers (a __syncthreads or "
                     "warp-wide instruction that not all reach)",
                     name, bx, by);
        }
        S.blocks++;
    }
}

// The 16 bits of bf16 element `i` of a 32-byte slot.
inline uint16_t half_of(const std::array<unsigned char, 32> &s, int i) {
    uint16_t h;
    std::memcpy(&h, s.data() + 2 * i, 2);
    return h;
}

} // namespace emu

inline void __syncthreads() { emu::syncthreads(); }

template <typename T> inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int line = __builtin_LINE()) {
    static_assert(sizeof(T) <= 32, "shfl of a large type");
    if (mask != 0xffffffffu) emu::fail("%s: __shfl_xor_sync with a partial mask", emu::where());
    auto &mine = emu::S.slot[emu::S.cur];
    std::memcpy(mine.data(), &v, sizeof(T));
    emu::warp_sync(4, line, "shfl.sync.bfly");
    const unsigned base = emu::S.cur & ~31u, lane = emu::S.cur & 31u;
    T out;
    std::memcpy(&out, emu::S.slot[base + (lane ^ unsigned(lane_mask & 31))].data(), sizeof(T));
    emu::warp_sync(104, line, "shfl.sync.bfly (leaving)");
    emu::S.lane_ops[emu::S.cur]++;
    return out;
}

inline uint32_t __cvta_generic_to_shared(const void *p) {
    return static_cast<uint32_t>(emu::smem_offset(p, 1, 1, "a shared address"));
}

// ---- The inline-PTX helpers of kernels/*.cu and mma_bf16.cuh, with the PTX ISA's semantics.

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 (c += a b); fragment layouts, lane 4g + c:
// A a0 (g, 2c..2c+1), a1 (g+8, ..), a2 (g, 2c+8..), a3 (g+8, 2c+8..); B b0 (k 2c..2c+1, n g), b1
// (k 2c+8..2c+9, n g); C c0, c1 (g, 2c..2c+1), c2, c3 (g+8, 2c..2c+1).
inline void mma16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1, int line = __builtin_LINE()) {
    using namespace emu;
    auto &mine = S.slot[S.cur];
    const uint32_t regs[6] = {a[0], a[1], a[2], a[3], b0, b1};
    std::memcpy(mine.data(), regs, sizeof regs);
    warp_sync(1, line, "mma.sync");
    const unsigned base = S.cur & ~31u, lane = S.cur & 31u, g = lane / 4, cc = lane % 4;
    auto reg = [&](unsigned l, int r) {
        uint32_t v;
        std::memcpy(&v, S.slot[base + l].data() + 4 * r, 4);
        return v;
    };
    auto A = [&](unsigned row, unsigned k) {
        const uint32_t v = reg(4 * (row & 7) + ((k & 7) >> 1), int((row >> 3) + 2 * (k >> 3)));
        return __bfloat162float({uint16_t((k & 1) ? v >> 16 : v & 0xffff)});
    };
    auto B = [&](unsigned k, unsigned n) {
        const uint32_t v = reg(4 * n + ((k & 7) >> 1), 4 + int(k >> 3));
        return __bfloat162float({uint16_t((k & 1) ? v >> 16 : v & 0xffff)});
    };
    float d[4];
    for (int e = 0; e < 4; e++) {
        const unsigned row = g + 8 * (e >> 1), col = 2 * cc + (e & 1);
        float s = c[e];
        for (unsigned k = 0; k < 16; k++) s += A(row, k) * B(k, col);
        d[e] = s;
    }
    warp_sync(101, line, "mma.sync (leaving)");
    S.lane_ops[S.cur]++;
    for (int e = 0; e < 4; e++) c[e] = d[e];
    S.mmas++;
}

// ldmatrix.sync.aligned.m8n8.x4(.trans).shared.b16: lanes 8j..8j+7 give the rows of matrix j;
// lane 4g + c gets in register j elements (g, 2c), (g, 2c+1) of matrix j, with .trans (2c, g),
// (2c+1, g).
inline void ldsm(uint32_t r[4], const __nv_bfloat16 *p, bool trans, int line) {
    using namespace emu;
    const char *name = trans ? "ldmatrix.x4.trans" : "ldmatrix.x4";
    const size_t off = smem_offset(p, 16, 16, name);
    note_read(off, 16, name);
    std::memcpy(S.slot[S.cur].data(), S.smem + off, 16);
    warp_sync(trans ? 3 : 2, line, name);
    const unsigned base = S.cur & ~31u, lane = S.cur & 31u, g = lane / 4, c = lane % 4;
    uint32_t out[4];
    for (unsigned j = 0; j < 4; j++) {
        uint16_t lo, hi;
        if (trans) {
            lo = half_of(S.slot[base + 8 * j + 2 * c], int(g));
            hi = half_of(S.slot[base + 8 * j + 2 * c + 1], int(g));
        } else {
            lo = half_of(S.slot[base + 8 * j + g], int(2 * c));
            hi = half_of(S.slot[base + 8 * j + g], int(2 * c + 1));
        }
        out[j] = uint32_t(lo) | (uint32_t(hi) << 16);
    }
    warp_sync(trans ? 103 : 102, line, "ldmatrix (leaving)");
    S.lane_ops[S.cur]++;
    for (int j = 0; j < 4; j++) r[j] = out[j];
    S.ldsms++;
}
inline void ldsm_x4(uint32_t r[4], const __nv_bfloat16 *p, int line = __builtin_LINE()) { ldsm(r, p, false, line); }
inline void ldsm_x4_t(uint32_t r[4], const __nv_bfloat16 *p, int line = __builtin_LINE()) { ldsm(r, p, true, line); }

// ex2.approx.ftz.f32: 2^x, denormal results flushed to zero.
inline float ex2(float x) {
    const float y = exp2f(x);
    return fabsf(y) < 1.17549435e-38f ? 0.f : y;
}
inline uint32_t smem_u32(const void *p) { return __cvta_generic_to_shared(p); }
inline void cp16(void *dst, const void *src, bool valid) { emu::cp_async(dst, src, valid, 16); }
inline void cp4(void *dst, const void *src, bool valid) { emu::cp_async(dst, src, valid, 4); }
inline void cp_commit() { emu::commit(); }

// A plain shared f32 load, checked like ldmatrix's reads.
inline float lds(const float *p) {
    const size_t off = emu::smem_offset(p, 4, 4, "ld.shared.f32");
    emu::note_read(off, 4, "ld.shared.f32");
    float v;
    std::memcpy(&v, p, 4);
    return v;
}
inline void cp_wait_all() { emu::wait_all(); }
