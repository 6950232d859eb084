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
