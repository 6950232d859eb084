//! CPU kernels for decoding: `y = W x` for a few rows of `x` (batch-1 decode has one), over f32
//! weights or GGUF's quantized blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 in `cpu_quant_legacy`; Q4_K,
//! Q5_K, Q6_K in `cpu_quant_k`), several matrices sharing the same input in one parallel pass
//! (q/k/v, and gate/up). Decoding is bound by reading the weights once per token, so the kernels
//! stream each weight row once for all rows of `x`, split rows across threads, and use
//! AVX2/FMA/F16C when the CPU has them (with a portable path beside each).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::cpu_quant_k::{BlockQ4K, BlockQ5K, BlockQ6K};
use super::cpu_quant_legacy::{BlockQ40, BlockQ41, BlockQ50, BlockQ51, BlockQ80};

/// The block formats the CPU kernels read (llama.cpp's layouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QFormat {
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q4K,
    Q5K,
    Q6K,
}

/// One quantized block format: its bytes, its dequantization and its dot product with 8-bit
/// activation blocks (a block of `WEIGHTS` weights meets `WEIGHTS / 32` activation blocks).
///
/// # Safety
/// Implementors are `#[repr(C)]` structs of `u8`, `i8`, `f16` and arrays of them, without
/// padding, of exactly `BYTES` bytes: any bytes are a valid value (`parse` relies on it).
pub(super) unsafe trait QBlock: Copy {
    const BYTES: usize;
    const WEIGHTS: usize;

    /// The block stored in `c` (exactly `BYTES` bytes).
    fn parse(c: &[u8]) -> Self {
        debug_assert!(c.len() == Self::BYTES && std::mem::size_of::<Self>() == Self::BYTES);
        // SAFETY: `c` holds BYTES = size_of::<Self>() bytes and every bit pattern is a valid
        // Self (the trait's contract); the read is unaligned.
        unsafe { std::ptr::read_unaligned(c.as_ptr() as *const Self) }
    }

    /// Appends the block's weights as f32.
    fn dequantize(&self, out: &mut Vec<f32>);

    /// Portable `Σ w·x` over one row of blocks.
    fn dot(w: &[Self], x: &[BlockQ81]) -> f32;

    /// The same with AVX2.
    ///
    /// # Safety
    /// The CPU has AVX2, FMA and F16C.
    #[cfg(target_arch = "x86_64")]
    unsafe fn dot_avx2(w: &[Self], x: &[BlockQ81]) -> f32;

    /// Four rows against the same activations (formats with a real 4-row kernel override it).
    ///
    /// # Safety
    /// As `dot_avx2`.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot4_avx2(w: [&[Self]; 4], x: &[BlockQ81]) -> [f32; 4] {
        // SAFETY: this fn's contract is dot_avx2's.
        unsafe {
            [
                Self::dot_avx2(w[0], x),
                Self::dot_avx2(w[1], x),
                Self::dot_avx2(w[2], x),
                Self::dot_avx2(w[3], x),
            ]
        }
    }

    /// Four rows against two activation rows (formats that unpack their weights once for both
    /// override it); each result as `dot4_avx2` gives it.
    ///
    /// # Safety
    /// As `dot_avx2`.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot4x2_avx2(w: [&[Self]; 4], x0: &[BlockQ81], x1: &[BlockQ81]) -> [[f32; 4]; 2] {
        // SAFETY: this fn's contract is dot4_avx2's.
        unsafe { [Self::dot4_avx2(w, x0), Self::dot4_avx2(w, x1)] }
    }
}

/// Whether the AVX2 kernels may run (the detection is cached by std).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code, reason = "only tests ask off x86-64"))]
#[inline]
pub(super) fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The sum of the 8 lanes.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

/// An f16 as f32 through F16C (`half` converts in software unless built with F16C).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,f16c")]
pub(super) unsafe fn f16_avx(v: half::f16) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(v.to_bits() as i32)))
}

#[derive(Clone)]
enum Blocks {
    Q40(Vec<BlockQ40>),
    Q41(Vec<BlockQ41>),
    Q50(Vec<BlockQ50>),
    Q51(Vec<BlockQ51>),
    Q80(Vec<BlockQ80>),
    Q4K(Vec<BlockQ4K>),
    Q5K(Vec<BlockQ5K>),
    Q6K(Vec<BlockQ6K>),
}

/// Runs `$body` with `$bs` bound to the typed block vector, whatever the format.
macro_rules! with_blocks {
    ($blocks:expr, $bs:ident => $body:expr) => {
        match $blocks {
            Blocks::Q40($bs) => $body,
            Blocks::Q41($bs) => $body,
            Blocks::Q50($bs) => $body,
            Blocks::Q51($bs) => $body,
            Blocks::Q80($bs) => $body,
            Blocks::Q4K($bs) => $body,
            Blocks::Q5K($bs) => $body,
            Blocks::Q6K($bs) => $body,
        }
    };
}

/// A quantized matrix `[rows, cols]` in llama.cpp's block layout.
pub struct QMatrix {
    rows: usize,
    cols: usize,
    format: QFormat,
    blocks: Blocks,
}

fn parse_all<T: QBlock>(rows: usize, cols: usize, bytes: &[u8]) -> Option<Vec<T>> {
    if !cols.is_multiple_of(T::WEIGHTS) || bytes.len() != rows * (cols / T::WEIGHTS) * T::BYTES {
        return None;
    }
    Some(bytes.chunks_exact(T::BYTES).map(T::parse).collect())
}

/// `w[r..r+4]` against `x`: AVX2 when present, else the portable kernel.
fn rows4<T: QBlock>(bs: &[T], r: usize, x: &[BlockQ81]) -> [f32; 4] {
    let nb = x.len() * 32 / T::WEIGHTS;
    let rows = [0, 1, 2, 3].map(|i| &bs[(r + i) * nb..(r + i + 1) * nb]);
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2() {
            // SAFETY: the features were detected just above.
            return unsafe { T::dot4_avx2(rows, x) };
        }
    }
    rows.map(|w| T::dot(w, x))
}

/// `w[r..r+4]` against two activation rows.
fn rows4x2<T: QBlock>(bs: &[T], r: usize, x0: &[BlockQ81], x1: &[BlockQ81]) -> [[f32; 4]; 2] {
    let nb = x0.len() * 32 / T::WEIGHTS;
    let rows = [0, 1, 2, 3].map(|i| &bs[(r + i) * nb..(r + i + 1) * nb]);
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2() {
            // SAFETY: the features were detected just above.
            return unsafe { T::dot4x2_avx2(rows, x0, x1) };
        }
    }
    [rows.map(|w| T::dot(w, x0)), rows.map(|w| T::dot(w, x1))]
}

fn row1<T: QBlock>(bs: &[T], r: usize, x: &[BlockQ81]) -> f32 {
    let nb = x.len() * 32 / T::WEIGHTS;
    let w = &bs[r * nb..(r + 1) * nb];
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2() {
            // SAFETY: the features were detected just above.
            return unsafe { T::dot_avx2(w, x) };
        }
    }
    T::dot(w, x)
}

impl QMatrix {
    /// From the raw bytes of a GGUF tensor of shape `[rows, cols]`; `None` if they do not fit
    /// (a row that is not a whole number of blocks, or the wrong byte count).
    pub fn from_bytes(format: QFormat, rows: usize, cols: usize, bytes: &[u8]) -> Option<Self> {
        let blocks = match format {
            QFormat::Q4_0 => Blocks::Q40(parse_all(rows, cols, bytes)?),
            QFormat::Q4_1 => Blocks::Q41(parse_all(rows, cols, bytes)?),
            QFormat::Q5_0 => Blocks::Q50(parse_all(rows, cols, bytes)?),
            QFormat::Q5_1 => Blocks::Q51(parse_all(rows, cols, bytes)?),
            QFormat::Q8_0 => Blocks::Q80(parse_all(rows, cols, bytes)?),
            QFormat::Q4K => Blocks::Q4K(parse_all(rows, cols, bytes)?),
            QFormat::Q5K => Blocks::Q5K(parse_all(rows, cols, bytes)?),
            QFormat::Q6K => Blocks::Q6K(parse_all(rows, cols, bytes)?),
        };
        Some(Self {
            rows,
            cols,
            format,
            blocks,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn format(&self) -> QFormat {
        self.format
    }

    /// The weights as f32, row-major (for checks).
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.rows * self.cols);
        with_blocks!(&self.blocks, bs => bs.iter().for_each(|b| b.dequantize(&mut out)));
        out
    }

    /// Dot products of rows `r..r+4` with `x`.
    fn dot_rows4(&self, r: usize, x: &[BlockQ81]) -> [f32; 4] {
        with_blocks!(&self.blocks, bs => rows4(bs, r, x))
    }

    /// Dot products of rows `r..r+4` with two activation rows.
    fn dot_rows4x2(&self, r: usize, x0: &[BlockQ81], x1: &[BlockQ81]) -> [[f32; 4]; 2] {
        with_blocks!(&self.blocks, bs => rows4x2(bs, r, x0, x1))
    }

    fn dot_row(&self, r: usize, x: &[BlockQ81]) -> f32 {
        with_blocks!(&self.blocks, bs => row1(bs, r, x))
    }

    /// Row `r` against `x` through the portable kernel only (tests compare it with AVX2).
    #[cfg(test)]
    pub(super) fn dot_row_portable(&self, r: usize, x: &[BlockQ81]) -> f32 {
        fn one<T: QBlock>(bs: &[T], r: usize, x: &[BlockQ81]) -> f32 {
            let nb = x.len() * 32 / T::WEIGHTS;
            T::dot(&bs[r * nb..(r + 1) * nb], x)
        }
        with_blocks!(&self.blocks, bs => one(bs, r, x))
    }

    /// Rows `r..r+4` and row `r` through the dispatching kernels (AVX2 where present).
    #[cfg(test)]
    pub(super) fn dot_rows_dispatch(&self, r: usize, x: &[BlockQ81]) -> ([f32; 4], f32) {
        (self.dot_rows4(r, x), self.dot_row(r, x))
    }
}

/// One activation block quantized to 8 bits: `x ≈ d * q`, with `s = d * Σq`.
#[derive(Clone, Copy)]
pub(super) struct BlockQ81 {
    pub(super) d: f32,
    pub(super) s: f32,
    pub(super) qs: [i8; 32],
}

pub(super) fn quantize_q81(x: &[f32]) -> Vec<BlockQ81> {
    x.chunks_exact(32)
        .map(|c| {
            let amax = c.iter().fold(0f32, |a, v| a.max(v.abs()));
            let d = amax / 127.0;
            let inv = if d > 0.0 { 1.0 / d } else { 0.0 };
            let mut qs = [0i8; 32];
            let mut sum = 0i32;
            for (q, v) in qs.iter_mut().zip(c) {
                *q = (v * inv).round() as i8;
                sum += *q as i32;
            }
            // s = d * Σq, not Σx: the product is then exactly W times the quantized activation,
            // as in llama.cpp.
            BlockQ81 {
                d,
                s: d * sum as f32,
                qs,
            }
        })
        .collect()
}

/// A weight matrix the kernels read.
#[derive(Clone, Copy)]
pub enum KernelWeight<'a> {
    /// Row-major `[rows, cols]`.
    F32 {
        data: &'a [f32],
        rows: usize,
        cols: usize,
    },
    Quant(&'a QMatrix),
}

impl KernelWeight<'_> {
    pub fn rows(&self) -> usize {
        match self {
            Self::F32 { rows, .. } => *rows,
            Self::Quant(q) => q.rows,
        }
    }
    fn cols(&self) -> usize {
        match self {
            Self::F32 { cols, .. } => *cols,
            Self::Quant(q) => q.cols,
        }
    }
}

struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint elements of one output buffer, which outlives the parallel loop.
unsafe impl Sync for OutPtr {}
unsafe impl Send for OutPtr {}

/// `y_i = W_i x` for every matrix, with `x` holding `m` rows of `k` values. The output holds, per
/// matrix in order, an `[m, rows_i]` block.
pub fn gemv(x: &[f32], m: usize, mats: &[KernelWeight<'_>]) -> Vec<f32> {
    let k = x.len().checked_div(m).unwrap_or(0);
    debug_assert!(mats.iter().all(|w| w.cols() == k));
    let total: usize = mats.iter().map(|w| w.rows() * m).sum();
    let mut out = vec![0f32; total];
    let xq: Vec<Vec<BlockQ81>> = if mats.iter().any(|w| matches!(w, KernelWeight::Quant(_))) {
        x.chunks_exact(k).map(quantize_q81).collect()
    } else {
        Vec::new()
    };
    // Contiguous spans of rows, a few per thread: each thread streams long runs of memory, which
    // the hardware prefetcher follows (fine-grained interleaving halved the bandwidth).
    let pool = super::cpu_pool::SpinPool::global();
    let all_rows: usize = mats.iter().map(|w| w.rows()).sum();
    let parts = pool.threads().min(all_rows.div_ceil(256)).max(1);
    let per_part = all_rows.div_ceil(parts).next_multiple_of(4);
    let mut tasks: Vec<Vec<(usize, usize, usize, usize)>> = vec![Vec::new(); parts];
    let (mut offset, mut global) = (0, 0);
    for (i, w) in mats.iter().enumerate() {
        let rows = w.rows();
        let mut start = 0;
        while start < rows {
            let part = (global / per_part).min(parts - 1);
            let room = per_part * (part + 1) - global;
            let end = if part == parts - 1 {
                rows
            } else {
                (start + room).min(rows)
            };
            tasks[part].push((i, offset, start, end));
            global += end - start;
            start = end;
        }
        offset += rows * m;
    }
    let ptr = OutPtr(out.as_mut_ptr());
    let ptr = &ptr;
    let run = |&(i, offset, start, end): &(usize, usize, usize, usize)| {
        let w = mats[i];
        let rows = w.rows();
        let mut r = start;
        if let KernelWeight::Quant(q) = w {
            while r + 4 <= end {
                // Two activation rows per pass where the format unpacks its weights once for both.
                let mut j = 0;
                while j < m {
                    let (v, n) = if j + 1 < m {
                        (q.dot_rows4x2(r, &xq[j], &xq[j + 1]), 2)
                    } else {
                        ([q.dot_rows4(r, &xq[j]), [0.0; 4]], 1)
                    };
                    for (jj, v) in v.iter().take(n).enumerate() {
                        for (i, v) in v.iter().enumerate() {
                            // SAFETY: as below.
                            unsafe { *ptr.0.add(offset + (j + jj) * rows + r + i) = *v };
                        }
                    }
                    j += n;
                }
                r += 4;
            }
        }
        for r in r..end {
            for j in 0..m {
                let v = match w {
                    KernelWeight::F32 { data, cols, .. } => {
                        dot_f32(&data[r * cols..(r + 1) * cols], &x[j * k..(j + 1) * k])
                    }
                    KernelWeight::Quant(q) => q.dot_row(r, &xq[j]),
                };
                // SAFETY: (offset, j, r) is unique to this task's rows; in bounds by construction.
                unsafe { *ptr.0.add(offset + j * rows + r) = v };
            }
        }
    };
    pool.run(tasks.len(), &|i| tasks[i].iter().for_each(run));
    out
}
/// `Σ a·b` with AVX2 + FMA where present.
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the features were detected just above.
            return unsafe { dot_f32_avx2(a, b) };
        }
    }
    dot_f32_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_f32_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_f32_portable(a, b)
}

/// Sixteen independent accumulators: the compiler vectorizes this without reassociating.
#[inline(always)]
fn dot_f32_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..16 {
            acc[l] = x[l].mul_add(y[l], acc[l]);
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

#[cfg(test)]
#[path = "cpu_gemv_tests.rs"]
mod tests;
