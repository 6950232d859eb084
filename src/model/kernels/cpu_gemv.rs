//! CPU kernels for decoding: `y = W x` for a few rows of `x` (batch-1 decode has one), over f32
//! or Q4_1 weights, several matrices sharing the same input in one parallel pass (q/k/v, and
//! gate/up). Decoding is bound by reading the weights once per token, so the kernels stream each
//! weight row once for all rows of `x`, split rows across threads, and use AVX2/FMA when the CPU
//! has them (with a portable path beside it).

use half::f16;

/// Q4_1 block as llama.cpp stores it: 32 weights `d * q + m`, q in 0..16, low nibbles first.
#[repr(C)]
#[derive(Clone, Copy)]
struct BlockQ41 {
    d: f16,
    m: f16,
    qs: [u8; 16],
}
const _: () = assert!(std::mem::size_of::<BlockQ41>() == 20);

/// Q8_0 block as llama.cpp stores it: 32 weights `d * q`, q in -128..128.
#[repr(C)]
#[derive(Clone, Copy)]
struct BlockQ80 {
    d: f16,
    qs: [i8; 32],
}
const _: () = assert!(std::mem::size_of::<BlockQ80>() == 34);

/// The block formats the CPU kernels read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QFormat {
    Q4_1,
    Q8_0,
}

enum Blocks {
    Q41(Vec<BlockQ41>),
    Q80(Vec<BlockQ80>),
}

/// A quantized matrix `[rows, cols]` in llama.cpp's block layout.
pub struct QMatrix {
    rows: usize,
    cols: usize,
    blocks: Blocks,
}

impl QMatrix {
    /// From the raw bytes of a GGUF tensor of shape `[rows, cols]`; `None` if they do not fit.
    pub fn from_bytes(format: QFormat, rows: usize, cols: usize, bytes: &[u8]) -> Option<Self> {
        let size = match format {
            QFormat::Q4_1 => 20,
            QFormat::Q8_0 => 34,
        };
        if !cols.is_multiple_of(32) || bytes.len() != rows * cols / 32 * size {
            return None;
        }
        let chunks = bytes.chunks_exact(size);
        let blocks = match format {
            QFormat::Q4_1 => Blocks::Q41(
                chunks
                    .map(|c| BlockQ41 {
                        d: f16::from_le_bytes([c[0], c[1]]),
                        m: f16::from_le_bytes([c[2], c[3]]),
                        qs: c[4..20].try_into().unwrap_or([0; 16]),
                    })
                    .collect(),
            ),
            QFormat::Q8_0 => Blocks::Q80(
                chunks
                    .map(|c| {
                        let mut qs = [0i8; 32];
                        for (q, b) in qs.iter_mut().zip(&c[2..34]) {
                            *q = *b as i8;
                        }
                        BlockQ80 {
                            d: f16::from_le_bytes([c[0], c[1]]),
                            qs,
                        }
                    })
                    .collect(),
            ),
        };
        Some(Self { rows, cols, blocks })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The weights as f32, row-major (for checks).
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.rows * self.cols);
        match &self.blocks {
            Blocks::Q41(bs) => {
                for b in bs {
                    let (d, m) = (b.d.to_f32(), b.m.to_f32());
                    out.extend(b.qs.iter().map(|q| d * (q & 15) as f32 + m));
                    out.extend(b.qs.iter().map(|q| d * (q >> 4) as f32 + m));
                }
            }
            Blocks::Q80(bs) => {
                for b in bs {
                    out.extend(b.qs.iter().map(|&q| b.d.to_f32() * q as f32));
                }
            }
        }
        out
    }

    /// Dot products of rows `r..r+4` with `x`.
    fn dot_rows4(&self, r: usize, x: &[BlockQ81]) -> [f32; 4] {
        let nb = self.cols / 32;
        match &self.blocks {
            Blocks::Q41(bs) => {
                let rows = [
                    &bs[r * nb..(r + 1) * nb],
                    &bs[(r + 1) * nb..(r + 2) * nb],
                    &bs[(r + 2) * nb..(r + 3) * nb],
                    &bs[(r + 3) * nb..(r + 4) * nb],
                ];
                #[cfg(target_arch = "x86_64")]
                {
                    if std::arch::is_x86_feature_detected!("avx2")
                        && std::arch::is_x86_feature_detected!("fma")
                        && std::arch::is_x86_feature_detected!("f16c")
                    {
                        // SAFETY: the features were detected just above.
                        return unsafe { dot4_q41_avx2(rows, x) };
                    }
                }
                rows.map(|w| dot_q41_portable(w, x))
            }
            Blocks::Q80(_) => [0, 1, 2, 3].map(|i| self.dot_row(r + i, x)),
        }
    }

    fn dot_row(&self, r: usize, x: &[BlockQ81]) -> f32 {
        let nb = self.cols / 32;
        match &self.blocks {
            Blocks::Q41(bs) => dot_q41(&bs[r * nb..(r + 1) * nb], x),
            Blocks::Q80(bs) => dot_q80(&bs[r * nb..(r + 1) * nb], x),
        }
    }
}

/// One activation block quantized to 8 bits: `x ≈ d * q`, with `s = d * Σq`.
#[derive(Clone, Copy)]
struct BlockQ81 {
    d: f32,
    s: f32,
    qs: [i8; 32],
}

fn quantize_q81(x: &[f32]) -> Vec<BlockQ81> {
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
                for (j, xj) in xq.iter().enumerate() {
                    let v = q.dot_rows4(r, xj);
                    for (i, v) in v.into_iter().enumerate() {
                        // SAFETY: as below.
                        unsafe { *ptr.0.add(offset + j * rows + r + i) = v };
                    }
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
fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
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

fn dot_q41(w: &[BlockQ41], x: &[BlockQ81]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the features were detected just above.
            return unsafe { dot_q41_avx2(w, x) };
        }
    }
    dot_q41_portable(w, x)
}

fn dot_q41_portable(w: &[BlockQ41], x: &[BlockQ81]) -> f32 {
    let mut s = 0f32;
    for (b, xb) in w.iter().zip(x) {
        let mut acc = 0i32;
        for i in 0..16 {
            acc += (b.qs[i] & 15) as i32 * xb.qs[i] as i32 + (b.qs[i] >> 4) as i32 * xb.qs[i + 16] as i32;
        }
        s += b.d.to_f32() * xb.d * acc as f32 + b.m.to_f32() * xb.s;
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
#[allow(unsafe_op_in_unsafe_fn, reason = "unsafe throughout, under this fn's contract")]
unsafe fn dot_q41_avx2(w: &[BlockQ41], x: &[BlockQ81]) -> f32 {
    use std::arch::x86_64::*;
    let mask = _mm_set1_epi8(15);
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_ps();
    let mut mins = 0f32;
    for (b, xb) in w.iter().zip(x) {
        // d and m as two f16 -> f32.
        let dm = _mm_cvtph_ps(_mm_cvtsi32_si128(std::ptr::read_unaligned(
            b as *const BlockQ41 as *const i32,
        )));
        let d = _mm_cvtss_f32(dm);
        let m = _mm_cvtss_f32(_mm_shuffle_ps(dm, dm, 1));
        let q = _mm_loadu_si128(b.qs.as_ptr() as *const __m128i);
        let lo = _mm_and_si128(q, mask);
        let hi = _mm_and_si128(_mm_srli_epi16(q, 4), mask);
        let wq = _mm256_set_m128i(hi, lo);
        let xq = _mm256_loadu_si256(xb.qs.as_ptr() as *const __m256i);
        let p = _mm256_madd_epi16(_mm256_maddubs_epi16(wq, xq), ones);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * xb.d), _mm256_cvtepi32_ps(p), acc);
        mins += m * xb.s;
    }
    let s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s) + mins
}

/// Four rows at once: each activation block is loaded once and the four accumulation chains
/// run independently.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
#[allow(unsafe_op_in_unsafe_fn, reason = "unsafe throughout, under this fn's contract")]
unsafe fn dot4_q41_avx2(w: [&[BlockQ41]; 4], x: &[BlockQ81]) -> [f32; 4] {
    use std::arch::x86_64::*;
    let mask = _mm_set1_epi8(15);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut mins = _mm_setzero_ps();
    for (b, xb) in x.iter().enumerate() {
        let xq = _mm256_loadu_si256(xb.qs.as_ptr() as *const __m256i);
        let xd = _mm_set1_ps(xb.d);
        // d and m of the four rows' blocks: [d0 m0 d1 m1 d2 m2 d3 m3] as f16 -> f32.
        let dm = _mm_set_epi32(
            std::ptr::read_unaligned(&w[3][b] as *const BlockQ41 as *const i32),
            std::ptr::read_unaligned(&w[2][b] as *const BlockQ41 as *const i32),
            std::ptr::read_unaligned(&w[1][b] as *const BlockQ41 as *const i32),
            std::ptr::read_unaligned(&w[0][b] as *const BlockQ41 as *const i32),
        );
        let dm = _mm256_cvtph_ps(dm);
        let lo4 = _mm256_castps256_ps128(dm); // d0 m0 d1 m1
        let hi4 = _mm256_extractf128_ps(dm, 1); // d2 m2 d3 m3
        let ds = _mm_shuffle_ps(lo4, hi4, 0b10_00_10_00); // d0 d1 d2 d3
        let ms = _mm_shuffle_ps(lo4, hi4, 0b11_01_11_01); // m0 m1 m2 m3
        mins = _mm_fmadd_ps(ms, _mm_set1_ps(xb.s), mins);
        let scale = _mm_mul_ps(ds, xd);
        let sc: [f32; 4] = std::mem::transmute(scale);
        for i in 0..4 {
            let q = _mm_loadu_si128(w[i][b].qs.as_ptr() as *const __m128i);
            let lo = _mm_and_si128(q, mask);
            let hi = _mm_and_si128(_mm_srli_epi16(q, 4), mask);
            let p = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set_m128i(hi, lo), xq), ones);
            acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(sc[i]), _mm256_cvtepi32_ps(p), acc[i]);
        }
    }
    let mins: [f32; 4] = std::mem::transmute(mins);
    let mut out = [0f32; 4];
    for i in 0..4 {
        let a = acc[i];
        let s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        out[i] = _mm_cvtss_f32(s) + mins[i];
    }
    out
}

fn dot_q80(w: &[BlockQ80], x: &[BlockQ81]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the features were detected just above.
            return unsafe { dot_q80_avx2(w, x) };
        }
    }
    dot_q80_portable(w, x)
}

fn dot_q80_portable(w: &[BlockQ80], x: &[BlockQ81]) -> f32 {
    let mut s = 0f32;
    for (b, xb) in w.iter().zip(x) {
        let acc: i32 = b.qs.iter().zip(&xb.qs).map(|(&a, &c)| a as i32 * c as i32).sum();
        s += b.d.to_f32() * xb.d * acc as f32;
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
#[allow(unsafe_op_in_unsafe_fn, reason = "unsafe throughout, under this fn's contract")]
unsafe fn dot_q80_avx2(w: &[BlockQ80], x: &[BlockQ81]) -> f32 {
    use std::arch::x86_64::*;
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_ps();
    for (b, xb) in w.iter().zip(x) {
        let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(b.d.to_bits() as i32)));
        let wq = _mm256_loadu_si256(b.qs.as_ptr() as *const __m256i);
        let xq = _mm256_loadu_si256(xb.qs.as_ptr() as *const __m256i);
        // maddubs multiplies unsigned by signed: move w's sign onto x.
        let p = _mm256_maddubs_epi16(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq));
        let p = _mm256_madd_epi16(p, ones);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * xb.d), _mm256_cvtepi32_ps(p), acc);
    }
    let s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u32) -> Vec<f32> {
        (0..n as u32)
            .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) % 2000) as f32 / 1000.0 - 1.0)
            .collect()
    }

    fn naive(w: &[f32], rows: usize, x: &[f32], m: usize) -> Vec<f32> {
        let k = x.len() / m;
        let mut out = vec![0f32; rows * m];
        for j in 0..m {
            for r in 0..rows {
                out[j * rows + r] = (0..k).map(|c| w[r * k + c] as f64 * x[j * k + c] as f64).sum::<f64>() as f32;
            }
        }
        out
    }

    #[test]
    fn f32_kernel_matches_naive_over_several_matrices() {
        let (k, m) = (200, 3);
        let x = data(k * m, 1);
        let (a, b) = (data(130 * k, 2), data(7 * k, 3));
        let out = gemv(
            &x,
            m,
            &[
                KernelWeight::F32 {
                    data: &a,
                    rows: 130,
                    cols: k,
                },
                KernelWeight::F32 {
                    data: &b,
                    rows: 7,
                    cols: k,
                },
            ],
        );
        let want: Vec<f32> = naive(&a, 130, &x, m).into_iter().chain(naive(&b, 7, &x, m)).collect();
        for (g, w) in out.iter().zip(&want) {
            assert!((g - w).abs() < 1e-4, "{g} vs {w}");
        }
    }

    #[test]
    fn q41_kernel_matches_the_dequantized_product() {
        let (rows, k) = (96, 256);
        let mut bytes = Vec::new();
        for i in 0..rows * k / 32 {
            bytes.extend(f16::from_f32(0.01 + (i % 7) as f32 * 0.003).to_le_bytes());
            bytes.extend(f16::from_f32(-0.05 + (i % 5) as f32 * 0.01).to_le_bytes());
            bytes.extend((0..16).map(|j| ((i * 31 + j * 17) % 256) as u8));
        }
        let q = QMatrix::from_bytes(QFormat::Q4_1, rows, k, &bytes).unwrap();
        let w = q.dequantize();
        let x = data(k * 2, 9);
        let want = naive(&w, rows, &x, 2);
        let got = gemv(&x, 2, &[KernelWeight::Quant(&q)]);
        let scale = want.iter().fold(0f32, |a, v| a.max(v.abs()));
        let mut worst = 0f32;
        for (g, w) in got.iter().zip(&want) {
            worst = worst.max((g - w).abs() / scale);
        }
        // 8-bit activations: about 1% of the output scale at most.
        assert!(worst < 1e-2, "{worst}");
        // The portable path gives the same numbers as the SIMD one.
        let xq = quantize_q81(&x[..k]);
        let nb = k / 32;
        let Blocks::Q41(bs) = &q.blocks else { unreachable!() };
        for r in (0..rows).step_by(4) {
            let four = q.dot_rows4(r, &xq);
            for (i, v) in four.iter().enumerate() {
                let b = dot_q41_portable(&bs[(r + i) * nb..(r + i + 1) * nb], &xq);
                assert!((v - b).abs() <= 1e-4 * b.abs().max(1.0), "{v} vs {b}");
            }
        }
        for r in 0..rows {
            let a = dot_q41(&bs[r * nb..(r + 1) * nb], &xq);
            let b = dot_q41_portable(&bs[r * nb..(r + 1) * nb], &xq);
            assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{a} vs {b}");
        }
    }

    #[test]
    fn q80_kernel_matches_the_dequantized_product() {
        let (rows, k) = (70, 128);
        let mut bytes = Vec::new();
        for i in 0..rows * k / 32 {
            bytes.extend(f16::from_f32(0.002 + (i % 3) as f32 * 0.001).to_le_bytes());
            // The full range, -128 included.
            bytes.extend((0..32).map(|j| ((i * 37 + j * 11) % 256) as u8));
        }
        let q = QMatrix::from_bytes(QFormat::Q8_0, rows, k, &bytes).unwrap();
        let w = q.dequantize();
        let x = data(k, 4);
        let want = naive(&w, rows, &x, 1);
        let got = gemv(&x, 1, &[KernelWeight::Quant(&q)]);
        let scale = want.iter().fold(0f32, |a, v| a.max(v.abs()));
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() / scale < 1e-2, "{g} vs {w}");
        }
        let xq = quantize_q81(&x);
        let Blocks::Q80(bs) = &q.blocks else { unreachable!() };
        for r in 0..rows {
            let nb = k / 32;
            let (a, b) = (
                dot_q80(&bs[r * nb..(r + 1) * nb], &xq),
                dot_q80_portable(&bs[r * nb..(r + 1) * nb], &xq),
            );
            assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{a} vs {b}");
        }
    }
}
