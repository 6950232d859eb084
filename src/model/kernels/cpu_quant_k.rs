//! GGUF's K-quant formats for `cpu_gemv`: Q4_K, Q5_K and Q6_K, 256 weights per super-block in
//! llama.cpp's layouts (ggml-common.h). Q4_K/Q5_K hold 8 sub-blocks of 32 weights
//! `d * sc_j * q - dmin * m_j` with 6-bit `sc_j`, `m_j` packed in 12 bytes; Q6_K holds 16
//! sub-blocks of 16 weights `d * sc_j * (q - 32)` with int8 `sc_j`. A sub-block of 32 (or two
//! of 16) meets one 8-bit activation block `x ≈ xd * xq` (`xs = xd * Σxq`), so each is one
//! integer dot product scaled by `d * sc_j * xd`, the mins entering as `dmin * m_j * xs`.
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
#[cfg(target_arch = "x86_64")]
use super::cpu_quant_legacy::PREFETCH;

/// Q4_K: weight `32c + l` of chunk `c` (0..4) is the low nibble of `qs[32c + l]` in sub-block
/// `2c`, the high nibble in sub-block `2c + 1`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct BlockQ4K {
    d: f16,
    dmin: f16,
    scales: [u8; 12],
    qs: [u8; 128],
}
const _: () = assert!(std::mem::size_of::<BlockQ4K>() == 144);

/// Q5_K: Q4_K's nibbles plus a fifth bit: bit `j` of `qh[l]` for weight `l` of sub-block `j`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct BlockQ5K {
    d: f16,
    dmin: f16,
    scales: [u8; 12],
    qh: [u8; 32],
    qs: [u8; 128],
}
const _: () = assert!(std::mem::size_of::<BlockQ5K>() == 176);

/// Q6_K: two halves of 128 weights, each from 64 bytes of low nibbles (`ql`) and 32 bytes of
/// 2-bit high parts (`qh`); weight `32k + l` of a half (k in 0..4) takes nibble `k / 2` of
/// `ql[32 (k % 2) + l]` and bits `2k, 2k+1` of `qh[l]`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct BlockQ6K {
    ql: [u8; 128],
    qh: [u8; 64],
    scales: [i8; 16],
    d: f16,
}
const _: () = assert!(std::mem::size_of::<BlockQ6K>() == 210);

/// The 8 scales and 8 mins (6 bits each) packed in 12 bytes: bytes 0..4 hold scales 0..4 in
/// their low 6 bits, bytes 4..8 the mins 0..4; scales and mins 4..8 take their low 4 bits from
/// the nibbles of bytes 8..12 and their high 2 bits from the top bits of bytes 0..4 and 4..8.
fn scales_mins(s: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    for j in 0..4 {
        sc[j] = s[j] & 63;
        mn[j] = s[j + 4] & 63;
        sc[j + 4] = (s[j + 8] & 15) | (s[j] >> 6) << 4;
        mn[j + 4] = (s[j + 8] >> 4) | (s[j + 4] >> 6) << 4;
    }
    (sc, mn)
}

/// `q` of weight `l` (0..32) of sub-block `j` (0..8) of Q4_K/Q5_K's nibbles.
fn k_nibble(qs: &[u8; 128], j: usize, l: usize) -> u8 {
    let b = qs[32 * (j / 2) + l];
    if j.is_multiple_of(2) {
        b & 15
    } else {
        b >> 4
    }
}

/// `Σ_j d sc_j xd_j Σ q xq - dmin m_j xs_j` with `q(j, l)` the unsigned quant (portable).
fn dot_q45k(d: f32, dmin: f32, scales: &[u8; 12], x: &[BlockQ81], q: impl Fn(usize, usize) -> u8) -> f32 {
    let (sc, mn) = scales_mins(scales);
    let mut s = 0f32;
    for (j, xb) in x.iter().enumerate() {
        let acc: i32 = (0..32).map(|l| q(j, l) as i32 * xb.qs[l] as i32).sum();
        s += d * sc[j] as f32 * xb.d * acc as f32 - dmin * mn[j] as f32 * xb.s;
    }
    s
}

/// `Σ_j mn_j xs_j` over the 8 activation blocks of a super-block (the AVX2 kernels').
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn mins_dot(mn: &[u8; 8], x: &[BlockQ81]) -> f32 {
    let mut m = 0f32;
    for (j, xb) in x.iter().enumerate().take(8) {
        m += mn[j] as f32 * xb.s;
    }
    m
}

/// One 32-wide sub-block: `acc += scale * Σ q xq`, q unsigned bytes.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn sub_dot_u(q: __m256i, xb: &BlockQ81, scale: f32, acc: __m256) -> __m256 {
    let xq = _mm256_loadu_si256(xb.qs.as_ptr() as *const __m256i);
    let p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, xq), _mm256_set1_epi16(1));
    _mm256_fmadd_ps(_mm256_set1_ps(scale * xb.d), _mm256_cvtepi32_ps(p), acc)
}

// SAFETY: a repr(C) struct of f16 and u8 arrays, its size asserted above.
unsafe impl QBlock for BlockQ4K {
    const BYTES: usize = 144;
    const WEIGHTS: usize = 256;

    fn dequantize(&self, out: &mut Vec<f32>) {
        let (d, dmin) = (self.d.to_f32(), self.dmin.to_f32());
        let (sc, mn) = scales_mins(&self.scales);
        for j in 0..8 {
            let (a, b) = (d * sc[j] as f32, dmin * mn[j] as f32);
            out.extend((0..32).map(|l| a * k_nibble(&self.qs, j, l) as f32 - b));
        }
    }

    fn dot(w: &[Self], x: &[BlockQ81]) -> f32 {
        w.iter()
            .zip(x.chunks_exact(8))
            .map(|(b, xs)| {
                dot_q45k(b.d.to_f32(), b.dmin.to_f32(), &b.scales, xs, |j, l| {
                    k_nibble(&b.qs, j, l)
                })
            })
            .sum()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot_avx2(w: &[Self], x: &[BlockQ81]) -> f32 {
        let mask = _mm256_set1_epi8(15);
        let mut acc = _mm256_setzero_ps();
        let mut mins = 0f32;
        for (b, xs) in w.iter().zip(x.chunks_exact(8)) {
            // A 256-wide block is 144 to 210 bytes: one prefetch of each cache line ahead.
            for line in (0..Self::BYTES).step_by(64) {
                _mm_prefetch::<_MM_HINT_T0>((b as *const Self as *const i8).wrapping_add(PREFETCH + line));
            }
            let (d, dmin) = (f16_avx(b.d), f16_avx(b.dmin));
            let (sc, mn) = scales_mins(&b.scales);
            mins += dmin * mins_dot(&mn, xs);
            for c in 0..4 {
                let q = _mm256_loadu_si256(b.qs.as_ptr().add(32 * c) as *const __m256i);
                let lo = _mm256_and_si256(q, mask);
                let hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), mask);
                acc = sub_dot_u(lo, &xs[2 * c], d * sc[2 * c] as f32, acc);
                acc = sub_dot_u(hi, &xs[2 * c + 1], d * sc[2 * c + 1] as f32, acc);
            }
        }
        hsum(acc) - mins
    }
}

// SAFETY: a repr(C) struct of f16 and u8 arrays, its size asserted above.
unsafe impl QBlock for BlockQ5K {
    const BYTES: usize = 176;
    const WEIGHTS: usize = 256;

    fn dequantize(&self, out: &mut Vec<f32>) {
        let (d, dmin) = (self.d.to_f32(), self.dmin.to_f32());
        let (sc, mn) = scales_mins(&self.scales);
        for j in 0..8 {
            let (a, b) = (d * sc[j] as f32, dmin * mn[j] as f32);
            out.extend((0..32).map(|l| a * self.q(j, l) as f32 - b));
        }
    }

    fn dot(w: &[Self], x: &[BlockQ81]) -> f32 {
        w.iter()
            .zip(x.chunks_exact(8))
            .map(|(b, xs)| dot_q45k(b.d.to_f32(), b.dmin.to_f32(), &b.scales, xs, |j, l| b.q(j, l)))
            .sum()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot_avx2(w: &[Self], x: &[BlockQ81]) -> f32 {
        let mask = _mm256_set1_epi8(15);
        let bit4 = _mm256_set1_epi8(16);
        let mut acc = _mm256_setzero_ps();
        let mut mins = 0f32;
        for (b, xs) in w.iter().zip(x.chunks_exact(8)) {
            // A 256-wide block is 144 to 210 bytes: one prefetch of each cache line ahead.
            for line in (0..Self::BYTES).step_by(64) {
                _mm_prefetch::<_MM_HINT_T0>((b as *const Self as *const i8).wrapping_add(PREFETCH + line));
            }
            let (d, dmin) = (f16_avx(b.d), f16_avx(b.dmin));
            let (sc, mn) = scales_mins(&b.scales);
            mins += dmin * mins_dot(&mn, xs);
            // Chunk c uses bits 2c and 2c+1 of qh: shift right by 2 per chunk, then move bits 0
            // and 1 of each byte to bit 4 (16-bit shifts leak across bytes only into bits that
            // the masks drop).
            let mut h = _mm256_loadu_si256(b.qh.as_ptr() as *const __m256i);
            for c in 0..4 {
                let q = _mm256_loadu_si256(b.qs.as_ptr().add(32 * c) as *const __m256i);
                let lo = _mm256_or_si256(
                    _mm256_and_si256(q, mask),
                    _mm256_and_si256(_mm256_slli_epi16(h, 4), bit4),
                );
                let hi = _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(q, 4), mask),
                    _mm256_and_si256(_mm256_slli_epi16(h, 3), bit4),
                );
                acc = sub_dot_u(lo, &xs[2 * c], d * sc[2 * c] as f32, acc);
                acc = sub_dot_u(hi, &xs[2 * c + 1], d * sc[2 * c + 1] as f32, acc);
                h = _mm256_srli_epi16(h, 2);
            }
        }
        hsum(acc) - mins
    }
}

impl BlockQ5K {
    /// `q` (0..32) of weight `l` of sub-block `j`.
    fn q(&self, j: usize, l: usize) -> u8 {
        k_nibble(&self.qs, j, l) | ((self.qh[l] >> j) & 1) << 4
    }
}

impl BlockQ6K {
    /// `q` (0..64, stored with an offset of 32) of weight `i` (0..256).
    fn q(&self, i: usize) -> u8 {
        let (half, i) = (i / 128, i % 128);
        let (k, l) = (i / 32, i % 32);
        let ql = self.ql[64 * half + 32 * (k % 2) + l];
        let nib = if k < 2 { ql & 15 } else { ql >> 4 };
        nib | ((self.qh[32 * half + l] >> (2 * k)) & 3) << 4
    }
}

// SAFETY: a repr(C) struct of u8/i8 arrays and f16, its size asserted above.
unsafe impl QBlock for BlockQ6K {
    const BYTES: usize = 210;
    const WEIGHTS: usize = 256;

    fn dequantize(&self, out: &mut Vec<f32>) {
        let d = self.d.to_f32();
        out.extend((0..256).map(|i| d * self.scales[i / 16] as f32 * (self.q(i) as i32 - 32) as f32));
    }

    fn dot(w: &[Self], x: &[BlockQ81]) -> f32 {
        let mut s = 0f32;
        for (b, xs) in w.iter().zip(x.chunks_exact(8)) {
            let d = b.d.to_f32();
            for (j, xb) in xs.iter().enumerate() {
                // Two 16-wide sub-blocks, each with its scale.
                let mut acc = 0i32;
                for h in 0..2 {
                    let part: i32 = (0..16)
                        .map(|l| {
                            let i = 32 * j + 16 * h + l;
                            (b.q(i) as i32 - 32) * xb.qs[16 * h + l] as i32
                        })
                        .sum();
                    acc += b.scales[2 * j + h] as i32 * part;
                }
                s += d * xb.d * acc as f32;
            }
        }
        s
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot_avx2(w: &[Self], x: &[BlockQ81]) -> f32 {
        let mask = _mm256_set1_epi8(15);
        let high = _mm256_set1_epi8(0x30);
        let offset = _mm256_set1_epi8(32);
        let mut acc = _mm256_setzero_ps();
        for (b, xs) in w.iter().zip(x.chunks_exact(8)) {
            // A 256-wide block is 144 to 210 bytes: one prefetch of each cache line ahead.
            for line in (0..Self::BYTES).step_by(64) {
                _mm_prefetch::<_MM_HINT_T0>((b as *const Self as *const i8).wrapping_add(PREFETCH + line));
            }
            let d = f16_avx(b.d);
            for half in 0..2 {
                let ql0 = _mm256_loadu_si256(b.ql.as_ptr().add(64 * half) as *const __m256i);
                let ql1 = _mm256_loadu_si256(b.ql.as_ptr().add(64 * half + 32) as *const __m256i);
                let h = _mm256_loadu_si256(b.qh.as_ptr().add(32 * half) as *const __m256i);
                // The four 32-wide groups of the half: nibble | 2 high bits moved to bits 4, 5.
                let q = [
                    _mm256_or_si256(
                        _mm256_and_si256(ql0, mask),
                        _mm256_and_si256(_mm256_slli_epi16(h, 4), high),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(ql1, mask),
                        _mm256_and_si256(_mm256_slli_epi16(h, 2), high),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16(ql0, 4), mask),
                        _mm256_and_si256(h, high),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16(ql1, 4), mask),
                        _mm256_and_si256(_mm256_srli_epi16(h, 2), high),
                    ),
                ];
                for (k, q) in q.into_iter().enumerate() {
                    let g = 4 * half + k;
                    let xb = &xs[g];
                    let q = _mm256_sub_epi8(q, offset);
                    let xq = _mm256_loadu_si256(xb.qs.as_ptr() as *const __m256i);
                    // Signed times signed through maddubs: |q| times x with q's sign.
                    let p = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(xq, q));
                    // The two 16-wide halves, each times its scale.
                    let sc = _mm256_set_m128i(
                        _mm_set1_epi16(b.scales[2 * g + 1] as i16),
                        _mm_set1_epi16(b.scales[2 * g] as i16),
                    );
                    let p = _mm256_madd_epi16(p, sc);
                    acc = _mm256_fmadd_ps(_mm256_set1_ps(d * xb.d), _mm256_cvtepi32_ps(p), acc);
                }
            }
        }
        hsum(acc)
    }
}
