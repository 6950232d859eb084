//! Strided f32 matrix products on the CPU through the `gemm` crate (the kernels candle's CPU
//! matmul uses), for the fused training ops that read and write their operands in place, and the
//! slice access those ops share.

use candle_core::{CpuStorage, Layout, Result};

/// The f32 values of a contiguous CPU op argument; `op` names the op in the error.
pub fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{op}: expects a contiguous input"),
    }
}

/// A matrix view: base pointer, row stride and column stride, in elements.
#[derive(Clone, Copy)]
pub struct View {
    pub ptr: *const f32,
    pub rs: isize,
    pub cs: isize,
}

impl View {
    /// A row-major `[rows, cols]` block starting at `data`, rows `row_stride` apart.
    pub fn rows(data: &[f32], row_stride: usize) -> Self {
        Self {
            ptr: data.as_ptr(),
            rs: row_stride as isize,
            cs: 1,
        }
    }

    /// The transpose of a row-major block whose rows are `row_stride` apart.
    pub fn rows_t(data: &[f32], row_stride: usize) -> Self {
        Self {
            ptr: data.as_ptr(),
            rs: 1,
            cs: row_stride as isize,
        }
    }
}

/// How many threads a product may use.
pub fn threads() -> gemm::Parallelism {
    match rayon::current_num_threads() {
        0 | 1 => gemm::Parallelism::None,
        n => gemm::Parallelism::Rayon(n),
    }
}

/// `dst[m, n] = (accumulate ? dst : 0) + a[m, k] * b[k, n]`; `dst` row-major with rows
/// `dst_rs` apart.
///
/// # Safety
/// The views must address `m x k` and `k x n` valid elements, and `dst` `m x n` valid elements
/// that nothing else reads or writes during the call.
#[allow(clippy::too_many_arguments)]
#[allow(unsafe_op_in_unsafe_fn, reason = "unsafe throughout, under this fn's contract")]
pub unsafe fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    a: View,
    b: View,
    accumulate: bool,
    par: gemm::Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                std::ptr::write_bytes(dst.add(i * dst_rs), 0, n);
            }
        }
        return;
    }
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        accumulate,
        a.ptr,
        a.cs,
        a.rs,
        b.ptr,
        b.cs,
        b.rs,
        1.0,
        1.0,
        false,
        false,
        false,
        par,
    )
}

/// `dst[m, n] = (accumulate ? dst : 0) + a[m, k] b[k, n]` over row-major contiguous slices, on
/// all threads; an error if a slice is too short for its shape.
pub fn matmul_rows(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    a: &[f32],
    b: &[f32],
    accumulate: bool,
) -> Result<()> {
    if dst.len() < m * n || a.len() < m * k || b.len() < k * n {
        candle_core::bail!(
            "matrix product [{m}, {k}] x [{k}, {n}]: operands of {}, {} and {} values",
            a.len(),
            b.len(),
            dst.len()
        );
    }
    // SAFETY: the lengths were checked above, and `dst` is borrowed mutably (nothing else reads it).
    unsafe {
        matmul(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            n,
            View::rows(a, k),
            View::rows(b, n),
            accumulate,
            threads(),
        )
    };
    Ok(())
}

/// The transpose of row-major `src` `[rows, cols]`: `[cols, rows]`, in parallel strips of
/// columns, 8x8 blocks at a time with AVX where the CPU has it. The `gemm` kernels run 10-25%
/// faster on row-major operands than on transposed views, far more than the copy costs for the
/// training shapes.
pub fn transpose(src: &[f32], rows: usize, cols: usize) -> Result<Vec<f32>> {
    use rayon::prelude::*;
    const STRIP: usize = 64;
    if src.len() != rows * cols {
        candle_core::bail!("transpose: {} values are not {rows} x {cols}", src.len());
    }
    let mut dst: Vec<f32> = Vec::with_capacity(rows * cols);
    let out = SendPtr(dst.as_mut_ptr());
    let avx = avx();
    (0..cols.div_ceil(STRIP)).into_par_iter().for_each(|strip| {
        let (c0, c1) = (strip * STRIP, ((strip + 1) * STRIP).min(cols));
        for r0 in (0..rows).step_by(8) {
            let r1 = (r0 + 8).min(rows);
            let mut c = c0;
            while c < c1 {
                // SAFETY: strip `strip` alone writes dst rows c0..c1; every index is in bounds
                // (r < rows, c < cols), and the 8x8 block is taken only when it fits.
                unsafe {
                    if avx && r1 - r0 == 8 && c + 8 <= c1 {
                        #[cfg(target_arch = "x86_64")]
                        transpose8x8(
                            src.as_ptr().add(r0 * cols + c),
                            cols,
                            out.ptr().add(c * rows + r0),
                            rows,
                        );
                        c += 8;
                        continue;
                    }
                    for r in r0..r1 {
                        *out.ptr().add(c * rows + r) = *src.get_unchecked(r * cols + c);
                    }
                }
                c += 1;
            }
        }
    });
    // SAFETY: every element of dst was written above (each (c, r) pair exactly once).
    unsafe { dst.set_len(rows * cols) };
    Ok(dst)
}

/// Whether this CPU has AVX (std caches the answer).
fn avx() -> bool {
    #[cfg(target_arch = "x86_64")]
    return is_x86_feature_detected!("avx");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Transposes the 8x8 block at `src` (rows `ss` apart) into `dst` (rows `ds` apart).
///
/// # Safety
/// The CPU has AVX; both blocks are valid for 8 rows of 8 floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[allow(unsafe_op_in_unsafe_fn, reason = "unsafe throughout, under this fn's contract")]
unsafe fn transpose8x8(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
    use std::arch::x86_64::*;
    let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.add(i * ss)));
    let t = [
        _mm256_unpacklo_ps(r[0], r[1]),
        _mm256_unpackhi_ps(r[0], r[1]),
        _mm256_unpacklo_ps(r[2], r[3]),
        _mm256_unpackhi_ps(r[2], r[3]),
        _mm256_unpacklo_ps(r[4], r[5]),
        _mm256_unpackhi_ps(r[4], r[5]),
        _mm256_unpacklo_ps(r[6], r[7]),
        _mm256_unpackhi_ps(r[6], r[7]),
    ];
    let s = [
        _mm256_shuffle_ps::<0x44>(t[0], t[2]),
        _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
        _mm256_shuffle_ps::<0x44>(t[1], t[3]),
        _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
        _mm256_shuffle_ps::<0x44>(t[4], t[6]),
        _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
        _mm256_shuffle_ps::<0x44>(t[5], t[7]),
        _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
    ];
    for i in 0..4 {
        _mm256_storeu_ps(dst.add(i * ds), _mm256_permute2f128_ps::<0x20>(s[i], s[i + 4]));
        _mm256_storeu_ps(dst.add((i + 4) * ds), _mm256_permute2f128_ps::<0x31>(s[i], s[i + 4]));
    }
}

/// A pointer that may cross threads: each task writes a disjoint region through it.
#[derive(Clone, Copy)]
pub struct SendPtr(pub *mut f32);
// SAFETY: used only to hand disjoint output regions to parallel tasks.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The pointer (a method, so closures capture the whole `SendPtr`, not its field).
    pub fn ptr(self) -> *mut f32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_matches_indexing() {
        for (r, c) in [(1, 1), (3, 70), (65, 33), (128, 64), (16, 200), (1024, 72)] {
            let src: Vec<f32> = (0..r * c).map(|i| i as f32).collect();
            let t = transpose(&src, r, c).unwrap();
            for i in 0..r {
                for j in 0..c {
                    assert_eq!(t[j * r + i], src[i * c + j]);
                }
            }
        }
        assert!(transpose(&[1.0; 5], 2, 3).is_err());
    }

    #[test]
    fn strided_products_match_naive() {
        let (m, n, k) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..n * k).map(|i| (i % 5) as f32 - 1.5).collect(); // [n, k]
        let mut dst = vec![1.0f32; m * n];
        // dst += a * b^T
        unsafe {
            matmul(
                m,
                n,
                k,
                dst.as_mut_ptr(),
                n,
                View::rows(&a, k),
                View::rows_t(&b, k),
                true,
                gemm::Parallelism::None,
            )
        };
        for i in 0..m {
            for j in 0..n {
                let want: f32 = 1.0 + (0..k).map(|l| a[i * k + l] * b[j * k + l]).sum::<f32>();
                assert!((dst[i * n + j] - want).abs() < 1e-4);
            }
        }
    }
}
