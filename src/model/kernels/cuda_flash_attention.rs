//! Launchers of kernels/flash_attn.cu (v1) and kernels/flash_attn_v2.cu (v2), built to PTX by
//! build.rs: the CUDA side of the training attention op of fused_attention.rs, in memory linear in
//! the sequence. bf16 storage, head sizes 64 and 128 (the kernels are compiled for those two); other
//! shapes take the composed path. Both versions share the kernels' parameters and layouts; they
//! differ in names, block shapes and shared memory ([`Plan`]). [`super::flash_kernel`] picks one.

use candle_core::cuda_backend::cudarc::driver::sys::CUfunction_attribute_enum;
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaDevice, CudaStorage, WrapErr};
use candle_core::{DType, Layout, Result};
use half::bf16;

use super::flash_kernel::FlashKernel;
use super::fused_attention::Dims;

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/flash_attn.ptx"));
const MODULE: &str = "s1_flash_attn";
const PTX_V2: &str = include_str!(concat!(env!("OUT_DIR"), "/flash_attn_v2.ptx"));
const MODULE_V2: &str = "s1_flash_attn_v2";
/// Threads per block (4 warps), query rows per block, and the shared tiles' sizes, as in
/// kernels/flash_attn.cu.
const THREADS: u32 = 128;
const BR: usize = 64;
const BC: usize = 64;
const BT: usize = 32;
const PAD: usize = 8;

/// One kernel's launch shape: rows (queries, or keys for dK/dV) per block, threads per block, and
/// bytes of dynamic shared memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Block {
    rows: usize,
    threads: u32,
    smem: usize,
}

/// Where one version's kernels live and how each is launched.
#[derive(Debug, Clone, Copy)]
struct Plan {
    module: &'static str,
    ptx: &'static str,
    /// The kernels' names are `{prefix}fwd_d{d}`, `{prefix}bwd_dkdv_d{d}`, `{prefix}bwd_dq_d{d}`.
    prefix: &'static str,
    /// Whether the dK/dV kernel splits a kv head's query heads over blocks (v2: it takes `splits`
    /// and a partial-sum buffer, which `flash_v2_bwd_sum` adds up).
    split_heads: bool,
    fwd: Block,
    dkdv: Block,
    dq: Block,
}

/// The launch plan of `kernel` at head size `d` (64 or 128). v2's shapes come from
/// [`super::flash_kernel::v2_cfg`] (`Cfg<D>` of kernels/flash_attn_v2.cu; a unit test compares the
/// two): its tiles are d bf16 wide, unpadded, and the streamed ones have two stages.
fn plan(kernel: FlashKernel, d: usize) -> Plan {
    match kernel {
        FlashKernel::V1 => Plan {
            module: MODULE,
            ptx: PTX,
            prefix: "flash_",
            split_heads: false,
            fwd: Block {
                rows: BR,
                threads: THREADS,
                smem: 2 * BC * (d + PAD) * 2,
            },
            dkdv: Block {
                rows: BR,
                threads: THREADS,
                smem: (2 * BR + 2 * BT) * (d + PAD) * 2 + 2 * BT * 4,
            },
            dq: Block {
                rows: BR,
                threads: THREADS,
                smem: 2 * BT * (d + PAD) * 2,
            },
        },
        FlashKernel::V2 => {
            let c = super::flash_kernel::v2_cfg(d);
            let (fw, fbc, kw, kbt, qw, qbc) = (c.fwd_warps, c.fwd_bc, c.kv_warps, c.kv_bt, c.dq_warps, c.dq_bc);
            Plan {
                module: MODULE_V2,
                ptx: PTX_V2,
                prefix: "flash_v2_",
                split_heads: true,
                fwd: Block {
                    rows: fw * 16,
                    threads: fw as u32 * 32,
                    smem: (fw * 16 + 4 * fbc) * d * 2,
                },
                dkdv: Block {
                    rows: kw * 16,
                    threads: kw as u32 * 32,
                    smem: (2 * kw * 16 + 4 * kbt) * d * 2 + 4 * kbt * 4,
                },
                dq: Block {
                    rows: qw * 16,
                    threads: qw as u32 * 32,
                    smem: (2 * qw * 16 + 4 * qbc) * d * 2,
                },
            }
        }
    }
}

/// The kernels [`super::flash_kernel::current`] picks.
fn current_plan(d: usize) -> Result<Plan> {
    let kernel = super::flash_kernel::current().map_err(candle_core::Error::Msg)?;
    Ok(plan(kernel, d))
}

/// Whether the kernels take this storage type and head size.
pub fn supported(dtype: DType, d: usize) -> bool {
    dtype == DType::BF16 && matches!(d, 64 | 128)
}

/// The contiguous bf16 view of an argument, 16-byte aligned (the kernels load 8 values at a time).
fn view<'a>(s: &'a CudaStorage, l: &Layout, what: &str) -> Result<CudaView<'a, bf16>> {
    let Some((a, b)) = l.contiguous_offsets() else {
        candle_core::bail!("s1-attention (CUDA): {what} is not contiguous");
    };
    if a % 8 != 0 {
        candle_core::bail!("s1-attention (CUDA): {what} starts at element {a}, not a multiple of 8");
    }
    Ok(s.as_cuda_slice::<bf16>()?.slice(a..b))
}

/// Launches `name` from `module` (PTX text `ptx`) with `threads` per block and `smem` bytes of
/// dynamic shared memory (raising the kernel's limit above the default 48 KiB where needed),
/// pushing `args` in order. Sound only when the arguments match the kernel's parameters in
/// kernels/flash_attn.cu (v2's kernels take the same ones) in order, types and buffer sizes: each
/// call lists them in the kernel's order beside the allocations.
macro_rules! launch {
    ($dev:expr, ($module:expr, $ptx:expr), $name:expr, $grid:expr, $threads:expr, $smem:expr, [$($arg:expr),+ $(,)?]) => {{
        let f = $dev.get_or_load_custom_func(&$name, $module, $ptx)?;
        let smem: usize = $smem;
        if smem > 48 << 10 {
            f.set_attribute(
                CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                smem as i32,
            )
            .w()?;
        }
        let config = LaunchConfig {
            grid_dim: $grid,
            block_dim: ($threads, 1, 1),
            shared_mem_bytes: smem as u32,
        };
        let mut b = f.builder();
        $(b.arg($arg);)+
        // SAFETY: the caller's arguments match the kernel's signature (see the macro's doc).
        unsafe { b.launch(config) }.w()
    }};
}

/// Integer kernel arguments (the kernels index with int; t * heads * d stays far below 2^31).
fn int(x: usize, what: &str) -> Result<i32> {
    i32::try_from(x).map_err(|_| candle_core::Error::Msg(format!("s1-attention (CUDA): {what} {x} exceeds i32")))
}

/// The output `[b, t, h * d]` and each row's log-sum-exp `[b, h, t]`.
pub(crate) fn forward(
    dev: &CudaDevice,
    q: (&CudaStorage, &Layout),
    k: (&CudaStorage, &Layout),
    v: (&CudaStorage, &Layout),
    dm: Dims,
) -> Result<(CudaStorage, CudaSlice<f32>)> {
    let Dims {
        b, t, h, kvh, d, scale, ..
    } = dm;
    let p = current_plan(d)?;
    let (qv, kv, vv) = (view(q.0, q.1, "q")?, view(k.0, k.1, "k")?, view(v.0, v.1, "v")?);
    // SAFETY: the kernel writes every row of o and every entry of lse.
    let o = unsafe { dev.alloc::<bf16>(b * t * h * d)? };
    let lse = unsafe { dev.alloc::<f32>(b * h * t)? };
    let (ti, hi, ki) = (int(t, "t")?, int(h, "heads")?, int(kvh, "kv heads")?);
    let grid = (
        int(t.div_ceil(p.fwd.rows), "blocks")? as u32,
        int(b * h, "b * heads")? as u32,
        1,
    );
    launch!(
        dev,
        (p.module, p.ptx),
        format!("{}fwd_d{d}", p.prefix),
        grid,
        p.fwd.threads,
        p.fwd.smem,
        [&qv, &kv, &vv, &o, &lse, &ti, &hi, &ki, &scale]
    )?;
    Ok((CudaStorage::wrap_cuda_slice(o, dev.clone()), lse))
}

/// dq, dk and dv packed in one bf16 buffer (`[b, t, h * d]`, then two `[b, t, kvh * d]`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    dev: &CudaDevice,
    q: (&CudaStorage, &Layout),
    k: (&CudaStorage, &Layout),
    v: (&CudaStorage, &Layout),
    o: (&CudaStorage, &Layout),
    d_o: (&CudaStorage, &Layout),
    lse: &CudaSlice<f32>,
    dm: Dims,
) -> Result<CudaStorage> {
    let Dims {
        b, t, h, kvh, d, scale, ..
    } = dm;
    let p = current_plan(d)?;
    let (qv, kv, vv) = (view(q.0, q.1, "q")?, view(k.0, k.1, "k")?, view(v.0, v.1, "v")?);
    let (ov, dov) = (view(o.0, o.1, "o")?, view(d_o.0, d_o.1, "dO")?);
    let (nq, nk) = (b * t * h * d, b * t * kvh * d);
    let (bi, ti, hi, ki) = (int(b, "batch")?, int(t, "t")?, int(h, "heads")?, int(kvh, "kv heads")?);
    // SAFETY: the dot kernel writes every row's entry.
    let dsum = unsafe { dev.alloc::<f32>(b * h * t)? };
    let rows = b * h * t;
    // Both versions use v1's dot kernel (one warp per row).
    launch!(
        dev,
        (MODULE, PTX),
        format!("flash_bwd_dot_d{d}"),
        (int(rows.div_ceil(THREADS as usize / 32), "rows")? as u32, 1, 1),
        THREADS,
        0,
        [&ov, &dov, &dsum, &bi, &ti, &hi]
    )?;
    // SAFETY: the dq kernel writes every row of dq, the dk/dv kernel every row of dk and dv.
    let mut out = unsafe { dev.alloc::<bf16>(nq + 2 * nk)? };
    {
        let (mut dq, mut rest) = out.split_at_mut(nq);
        let (mut dk, mut dv) = rest.split_at_mut(nk);
        let kblocks = t.div_ceil(p.dkdv.rows);
        if p.split_heads {
            let splits = super::flash_kernel::dkdv_splits(h / kvh, kblocks * b * kvh);
            // SAFETY: with splits > 1 the dK/dV kernel writes every partial sum of every row
            // (2 * splits * nk values); with one it does not touch the buffer.
            let part = unsafe { dev.alloc::<f32>(if splits > 1 { 2 * splits * nk } else { 1 })? };
            let si = int(splits, "splits")?;
            launch!(
                dev,
                (p.module, p.ptx),
                format!("{}bwd_dkdv_d{d}", p.prefix),
                (
                    int(kblocks, "blocks")? as u32,
                    int(b * kvh * splits, "b * kv heads * splits")? as u32,
                    1
                ),
                p.dkdv.threads,
                p.dkdv.smem,
                [&qv, &kv, &vv, &dov, lse, &dsum, &mut dk, &mut dv, &ti, &hi, &ki, &scale, &si, &part]
            )?;
            if splits > 1 {
                let ni = int(nk, "b * t * kv heads * d")?;
                launch!(
                    dev,
                    (p.module, p.ptx),
                    "flash_v2_bwd_sum",
                    (int((nk / 4).div_ceil(256), "sum blocks")? as u32, 1, 1),
                    256,
                    0,
                    [&part, &mut dk, &mut dv, &ni, &si]
                )?;
            }
        } else {
            launch!(
                dev,
                (p.module, p.ptx),
                format!("{}bwd_dkdv_d{d}", p.prefix),
                (int(kblocks, "blocks")? as u32, int(b * kvh, "b * kv heads")? as u32, 1),
                p.dkdv.threads,
                p.dkdv.smem,
                [&qv, &kv, &vv, &dov, lse, &dsum, &mut dk, &mut dv, &ti, &hi, &ki, &scale]
            )?;
        }
        launch!(
            dev,
            (p.module, p.ptx),
            format!("{}bwd_dq_d{d}", p.prefix),
            (
                int(t.div_ceil(p.dq.rows), "blocks")? as u32,
                int(b * h, "b * heads")? as u32,
                1
            ),
            p.dq.threads,
            p.dq.smem,
            [&qv, &kv, &vv, &dov, lse, &dsum, &mut dq, &ti, &hi, &ki, &scale]
        )?;
    }
    Ok(CudaStorage::wrap_cuda_slice(out, dev.clone()))
}
