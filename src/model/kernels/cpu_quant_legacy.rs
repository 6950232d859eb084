//! GGUF's 32-wide block formats for `cpu_gemv`: Q4_0, Q4_1, Q5_0, Q5_1 (4 or 5 unsigned bits
//! with a scale and an offset) and Q8_0 (signed bytes with a scale), in llama.cpp's layouts
//! (ggml-common.h). Each block meets one 8-bit activation block `x ≈ xd * xq` with
//! `xs = xd * Σxq`, so `Σ (d q + m) x = d xd Σ q xq + m xs`: one integer dot product per block.
#![allow(
    unsafe_op_in_unsafe_fn,
    reason = "the AVX2 kernels are unsafe throughout, under their fns' contract (features detected)"
)]

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use half::f16;

#[cfg(target_arch = "x86_64")]
use super::cpu_gemv::{f16_avx, hsum};
use super::cpu_gemv::{BlockQ81, QBlock};

/// Q4_0: 32 weights `d * (q - 8)`, q in 0..16, low nibbles first.
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct BlockQ40 {
    d: f16,
    qs: [u8; 16],
}
const _: () = assert!(std::mem::size_of::<BlockQ40>() == 18);

/// Q4_1: 32 weights `d * q + m`, q in 0..16, low nibbles first.
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct BlockQ41 {
    d: f16,
    m: f16,
    qs: [u8; 16],
}
const _: () = assert!(std::mem::size_of::<BlockQ41>() == 20);

/// Q5_0: 32 weights `d * (q - 16)`, q's low 4 bits as Q4_0 and bit 4 of weight i in bit i of
/// the little-endian `qh`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct BlockQ50 {
    d: f16,
    qh: [u8; 4],
    qs: [u8; 16],
}
const _: () = assert!(std::mem::size_of::<BlockQ50>() == 22);

/// Q5_1: 32 weights `d * q + m`, q as in Q5_0.
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct BlockQ51 {
    d: f16,
    m: f16,
    qh: [u8; 4],
    qs: [u8; 16],
}
const _: () = assert!(std::mem::size_of::<BlockQ51>() == 24);

/// Q8_0: 32 weights `d * q`, q in -128..128.
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct BlockQ80 {
    d: f16,
    qs: [i8; 32],
}
const _: () = assert!(std::mem::size_of::<BlockQ80>() == 34);

/// A 32-wide block of weights `d * q + m` with unsigned `q` (Q4_0 and Q5_0 have `m = -8d`,
/// `-16d`), which share one kernel.
trait Affine32: Copy {
    /// `(d, m)`.
    fn dm(&self) -> (f32, f32);
    /// `q` of weight `i` (0..32).
    fn q(&self, i: usize) -> u8;
    /// `(d, m)` through F16C.
    ///
    /// # Safety
    /// The CPU has AVX2 and F16C.
    #[cfg(target_arch = "x86_64")]
    unsafe fn dm_avx2(&self) -> (f32, f32);
    /// The 32 `q` as bytes, in weight order.
    ///
    /// # Safety
    /// The CPU has AVX2.
    #[cfg(target_arch = "x86_64")]
    unsafe fn q_avx2(&self) -> __m256i;
}

fn nibble(qs: &[u8; 16], i: usize) -> u8 {
    if i < 16 {
        qs[i] & 15
    } else {
        qs[i - 16] >> 4
    }
}

fn high_bit(qh: &[u8; 4], i: usize) -> u8 {
    ((u32::from_le_bytes(*qh) >> i) & 1) as u8
}

/// The 16 bytes of nibbles as 32 bytes: low nibbles, then high nibbles.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn unpack_nibbles(qs: &[u8; 16]) -> __m256i {
    let q = _mm_loadu_si128(qs.as_ptr() as *const __m128i);
    let mask = _mm_set1_epi8(15);
    let lo = _mm_and_si128(q, mask);
    let hi = _mm_and_si128(_mm_srli_epi16(q, 4), mask);
    _mm256_set_m128i(hi, lo)
}

/// Bit i of `qh` as 16 in byte i (the fifth bit of Q5's weights).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn unpack_high_bits(qh: &[u8; 4]) -> __m256i {
    // Byte i gets byte i/8 of qh, then keeps only bit i%8.
    let all = _mm256_set1_epi32(i32::from_le_bytes(*qh));
    let spread = _mm256_shuffle_epi8(
        all,
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0),
    );
    let bit = _mm256_set1_epi64x(0x8040201008040201u64 as i64);
    let set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    _mm256_and_si256(set, _mm256_set1_epi8(16))
}

impl Affine32 for BlockQ40 {
    fn dm(&self) -> (f32, f32) {
        let d = self.d.to_f32();
        (d, -8.0 * d)
    }
    fn q(&self, i: usize) -> u8 {
        nibble(&self.qs, i)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx2,f16c")]
    unsafe fn dm_avx2(&self) -> (f32, f32) {
        let d = f16_avx(self.d);
        (d, -8.0 * d)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn q_avx2(&self) -> __m256i {
        unpack_nibbles(&self.qs)
    }
}

impl Affine32 for BlockQ41 {
    fn dm(&self) -> (f32, f32) {
        (self.d.to_f32(), self.m.to_f32())
    }
    fn q(&self, i: usize) -> u8 {
        nibble(&self.qs, i)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx2,f16c")]
    unsafe fn dm_avx2(&self) -> (f32, f32) {
        // d and m as two f16 -> f32 in one conversion.
        let dm = _mm_cvtph_ps(_mm_cvtsi32_si128(std::ptr::read_unaligned(
            self as *const Self as *const i32,
        )));
        (_mm_cvtss_f32(dm), _mm_cvtss_f32(_mm_shuffle_ps(dm, dm, 1)))
    }
    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn q_avx2(&self) -> __m256i {
        unpack_nibbles(&self.qs)
    }
}

impl Affine32 for BlockQ50 {
    fn dm(&self) -> (f32, f32) {
        let d = self.d.to_f32();
        (d, -16.0 * d)
    }
    fn q(&self, i: usize) -> u8 {
        nibble(&self.qs, i) | high_bit(&self.qh, i) << 4
    }
    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx2,f16c")]
    unsafe fn dm_avx2(&self) -> (f32, f32) {
        let d = f16_avx(self.d);
        (d, -16.0 * d)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn q_avx2(&self) -> __m256i {
        _mm256_or_si256(unpack_nibbles(&self.qs), unpack_high_bits(&self.qh))
    }
}

impl Affine32 for BlockQ51 {
    fn dm(&self) -> (f32, f32) {
        (self.d.to_f32(), self.m.to_f32())
    }
    fn q(&self, i: usize) -> u8 {
        nibble(&self.qs, i) | high_bit(&self.qh, i) << 4
    }
    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx2,f16c")]
    unsafe fn dm_avx2(&self) -> (f32, f32) {
        (f16_avx(self.d), f16_avx(self.m))
    }
    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn q_avx2(&self) -> __m256i {
        _mm256_or_si256(unpack_nibbles(&self.qs), unpack_high_bits(&self.qh))
    }
}

fn affine_dequantize<T: Affine32>(b: &T, out: &mut Vec<f32>) {
    let (d, m) = b.dm();
    out.extend((0..32).map(|i| d * b.q(i) as f32 + m));
}

fn affine_dot<T: Affine32>(w: &[T], x: &[BlockQ81]) -> f32 {
    let mut s = 0f32;
    for (b, xb) in w.iter().zip(x) {
        let acc: i32 = (0..32).map(|i| b.q(i) as i32 * xb.qs[i] as i32).sum();
        let (d, m) = b.dm();
        s += d * xb.d * acc as f32 + m * xb.s;
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn affine_dot_avx2<T: Affine32>(w: &[T], x: &[BlockQ81]) -> f32 {
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_ps();
    let mut mins = 0f32;
    for (b, xb) in w.iter().zip(x) {
        _mm_prefetch::<_MM_HINT_T0>((b as *const T as *const i8).wrapping_add(PREFETCH));
        let (d, m) = b.dm_avx2();
        let xq = _mm256_loadu_si256(xb.qs.as_ptr() as *const __m256i);
        let p = _mm256_madd_epi16(_mm256_maddubs_epi16(b.q_avx2(), xq), ones);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * xb.d), _mm256_cvtepi32_ps(p), acc);
        mins += m * xb.s;
    }
    hsum(acc) + mins
}

/// How far ahead of the block being read the 4-row kernels prefetch each row, in bytes.
#[cfg(target_arch = "x86_64")]
pub(super) const PREFETCH: usize = 4096;

/// Four rows at once: each activation block is loaded once and the four accumulation chains
/// run independently.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn affine_dot4_avx2<T: Affine32>(w: [&[T]; 4], x: &[BlockQ81]) -> [f32; 4] {
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut mins = [0f32; 4];
    for (i, xb) in x.iter().enumerate() {
        let xq = _mm256_loadu_si256(xb.qs.as_ptr() as *const __m256i);
        for r in 0..4 {
            let b = &w[r][i];
            // A few hundred bytes ahead in each of the four streams (a prefetch never faults).
            _mm_prefetch::<_MM_HINT_T0>((b as *const T as *const i8).wrapping_add(PREFETCH));
            let (d, m) = b.dm_avx2();
            let p = _mm256_madd_epi16(_mm256_maddubs_epi16(b.q_avx2(), xq), ones);
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * xb.d), _mm256_cvtepi32_ps(p), acc[r]);
            mins[r] += m * xb.s;
        }
    }
    [0, 1, 2, 3].map(|r| hsum(acc[r]) + mins[r])
}

/// Four rows against two activation rows: each weight block unpacked once for both, the
/// arithmetic per (row, activation row) that of `affine_dot4_avx2`.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn affine_dot4x2_avx2<T: Affine32>(w: [&[T]; 4], x0: &[BlockQ81], x1: &[BlockQ81]) -> [[f32; 4]; 2] {
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_ps(); 4]; 2];
    let mut mins = [[0f32; 4]; 2];
    for (i, (xa, xb)) in x0.iter().zip(x1).enumerate() {
        let qa = _mm256_loadu_si256(xa.qs.as_ptr() as *const __m256i);
        let qb = _mm256_loadu_si256(xb.qs.as_ptr() as *const __m256i);
        for r in 0..4 {
            let b = &w[r][i];
            _mm_prefetch::<_MM_HINT_T0>((b as *const T as *const i8).wrapping_add(PREFETCH));
            let (d, m) = b.dm_avx2();
            let q = b.q_avx2();
            let pa = _mm256_madd_epi16(_mm256_maddubs_epi16(q, qa), ones);
            let pb = _mm256_madd_epi16(_mm256_maddubs_epi16(q, qb), ones);
            acc[0][r] = _mm256_fmadd_ps(_mm256_set1_ps(d * xa.d), _mm256_cvtepi32_ps(pa), acc[0][r]);
            acc[1][r] = _mm256_fmadd_ps(_mm256_set1_ps(d * xb.d), _mm256_cvtepi32_ps(pb), acc[1][r]);
            mins[0][r] += m * xa.s;
            mins[1][r] += m * xb.s;
        }
    }
    [0, 1].map(|k| [0, 1, 2, 3].map(|r| hsum(acc[k][r]) + mins[k][r]))
}

macro_rules! affine_block {
    ($t:ty, $bytes:expr) => {
        // SAFETY: a repr(C) struct of f16 and u8 arrays, its size asserted above.
        unsafe impl QBlock for $t {
            const BYTES: usize = $bytes;
            const WEIGHTS: usize = 32;
            fn dequantize(&self, out: &mut Vec<f32>) {
                affine_dequantize(self, out)
            }
            fn dot(w: &[Self], x: &[BlockQ81]) -> f32 {
                affine_dot(w, x)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma,f16c")]
            unsafe fn dot_avx2(w: &[Self], x: &[BlockQ81]) -> f32 {
                affine_dot_avx2(w, x)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma,f16c")]
            unsafe fn dot4_avx2(w: [&[Self]; 4], x: &[BlockQ81]) -> [f32; 4] {
                affine_dot4_avx2(w, x)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma,f16c")]
            unsafe fn dot4x2_avx2(w: [&[Self]; 4], x0: &[BlockQ81], x1: &[BlockQ81]) -> [[f32; 4]; 2] {
                affine_dot4x2_avx2(w, x0, x1)
            }
        }
    };
}
affine_block!(BlockQ40, 18);
affine_block!(BlockQ41, 20);
affine_block!(BlockQ50, 22);
affine_block!(BlockQ51, 24);

// SAFETY: a repr(C) struct of f16 and i8, its size asserted above.
unsafe impl QBlock for BlockQ80 {
    const BYTES: usize = 34;
    const WEIGHTS: usize = 32;
    fn dequantize(&self, out: &mut Vec<f32>) {
        let d = self.d.to_f32();
        out.extend(self.qs.iter().map(|&q| d * q as f32));
    }
    fn dot(w: &[Self], x: &[BlockQ81]) -> f32 {
        let mut s = 0f32;
        for (b, xb) in w.iter().zip(x) {
            let acc: i32 = b.qs.iter().zip(&xb.qs).map(|(&a, &c)| a as i32 * c as i32).sum();
            s += b.d.to_f32() * xb.d * acc as f32;
        }
        s
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot_avx2(w: &[Self], x: &[BlockQ81]) -> f32 {
        let ones = _mm256_set1_epi16(1);
        let mut acc = _mm256_setzero_ps();
        for (b, xb) in w.iter().zip(x) {
            _mm_prefetch::<_MM_HINT_T0>((b as *const Self as *const i8).wrapping_add(PREFETCH));
            let wq = _mm256_loadu_si256(b.qs.as_ptr() as *const __m256i);
            let xq = _mm256_loadu_si256(xb.qs.as_ptr() as *const __m256i);
            // maddubs multiplies unsigned by signed: move w's sign onto x.
            let p = _mm256_maddubs_epi16(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq));
            let p = _mm256_madd_epi16(p, ones);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_avx(b.d) * xb.d), _mm256_cvtepi32_ps(p), acc);
        }
        hsum(acc)
    }
}
