//! Launchers of kernels/train_ops.cu (built to PTX by build.rs): the CUDA side of the fused
//! training ops of fused_ops.rs (RMSNorm, causal softmax, SwiGLU and their backwards, in f32 or
//! bf16 storage with f32 arithmetic), the fused AdamW update and the gradient sum of squares.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, DeviceRepr, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaDType, CudaDevice, CudaStorage, WrapErr};
use candle_core::{DType, Layout, Result, Storage, Tensor, WithDType};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/train_ops.ptx"));
const MODULE: &str = "s1_train_ops";

/// The storage types the kernels take.
pub fn supported(dtype: DType) -> bool {
    matches!(dtype, DType::F32 | DType::BF16)
}

/// Threads per block for rows of `n` elements.
fn threads(n: usize) -> u32 {
    match n {
        0..=127 => 32,
        128..=511 => 128,
        512..=2047 => 256,
        _ => 512,
    }
}

/// Blocks for a grid-stride loop over `n` elements.
fn grid(n: usize) -> u32 {
    n.div_ceil(256).clamp(1, 16384) as u32
}

fn cfg(blocks: u32, threads: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (threads, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn suffix(dtype: DType) -> Result<&'static str> {
    match dtype {
        DType::F32 => Ok("f32"),
        DType::BF16 => Ok("bf16"),
        d => candle_core::bail!("s1 CUDA training ops: unsupported dtype {d:?}"),
    }
}

/// The contiguous view of a storage argument.
fn view<'a, T: CudaDType>(s: &'a CudaStorage, l: &Layout, op: &str) -> Result<CudaView<'a, T>> {
    let Some((a, b)) = l.contiguous_offsets() else {
        candle_core::bail!("{op}: expects contiguous tensors");
    };
    Ok(s.as_cuda_slice::<T>()?.slice(a..b))
}

/// Launches the kernel `name` for storage type `dtype` (`{name}_f32` or `{name}_bf16` in the
/// PTX) on `dev` with `config`, pushing `args` in order. Sound only when `args` match the
/// kernel's parameters in kernels/train_ops.cu (order, types, and buffers as long as the kernel
/// indexes): each call lists them in the kernel's order, beside the allocations.
macro_rules! launch {
    ($dev:expr, $name:literal, $dtype:expr, $config:expr, [$($arg:expr),+ $(,)?]) => {{
        let config = $config;
        let f = $dev.get_or_load_custom_func(&format!(concat!($name, "_{}"), suffix($dtype)?), MODULE, PTX)?;
        let mut b = f.builder();
        $(b.arg($arg);)+
        // SAFETY: the caller's arguments match the kernel's signature (see the macro's doc).
        unsafe { b.launch(config) }.w()
    }};
}

macro_rules! by_dtype {
    ($dtype:expr, $f:ident($($arg:expr),*)) => {
        match $dtype {
            DType::F32 => $f::<f32>($($arg),*),
            DType::BF16 => $f::<half::bf16>($($arg),*),
            d => candle_core::bail!("s1 CUDA training ops: unsupported dtype {d:?}"),
        }
    };
}

fn launch_rms_fwd<T: CudaDType + DeviceRepr + WithDType>(
    x: &CudaStorage,
    xl: &Layout,
    w: &CudaStorage,
    wl: &Layout,
    eps: f32,
) -> Result<CudaStorage> {
    let dev = &x.device;
    let (xv, wv) = (view::<T>(x, xl, "rms_norm")?, view::<T>(w, wl, "rms_norm")?);
    let h = wl.shape().elem_count();
    let n = xl.shape().elem_count();
    // SAFETY: every element is written by the kernel.
    let y = unsafe { dev.alloc::<T>(n)? };
    let hi = h as i32;
    launch!(
        dev,
        "rms_fwd",
        T::DTYPE,
        cfg((n / h) as u32, threads(h)),
        [&xv, &wv, &y, &hi, &eps]
    )?;
    Ok(CudaStorage::wrap_cuda_slice(y, dev.clone()))
}

/// RMSNorm forward: `x` rows of `w.len()`.
pub fn rms_fwd(x: &CudaStorage, xl: &Layout, w: &CudaStorage, wl: &Layout, eps: f32) -> Result<CudaStorage> {
    by_dtype!(x.dtype(), launch_rms_fwd(x, xl, w, wl, eps))
}

fn launch_rms_bwd<T: CudaDType + DeviceRepr + WithDType>(
    x: (&CudaStorage, &Layout),
    w: (&CudaStorage, &Layout),
    dy: (&CudaStorage, &Layout),
    eps: f32,
) -> Result<CudaStorage> {
    let dev = &x.0.device;
    let xv = view::<T>(x.0, x.1, "rms_norm_bwd")?;
    let wv = view::<T>(w.0, w.1, "rms_norm_bwd")?;
    let gv = view::<T>(dy.0, dy.1, "rms_norm_bwd")?;
    let h = w.1.shape().elem_count();
    let n = x.1.shape().elem_count();
    let rows = n / h;
    // Each thread holds at most 8 columns of dw (kernels/train_ops.cu RMS_COLS).
    let t = threads(h).max((h.div_ceil(8).div_ceil(32) * 32) as u32);
    if t > 1024 {
        candle_core::bail!("rms_norm_bwd: hidden size {h} is above the CUDA kernel's 8192");
    }
    // SAFETY: the kernels write every element: dx rows, then the dw row.
    let out = unsafe { dev.alloc::<T>(n + h)? };
    let dw32 = dev.alloc_zeros::<f32>(h)?;
    let rows_per_block = 16usize;
    let (ri, hi, rpb) = (rows as i32, h as i32, rows_per_block as i32);
    launch!(
        dev,
        "rms_bwd",
        T::DTYPE,
        cfg(rows.div_ceil(rows_per_block) as u32, t),
        [&xv, &wv, &gv, &out, &dw32, &ri, &hi, &eps, &rpb]
    )?;
    let (hn, off) = (h, n);
    launch!(dev, "from_f32", T::DTYPE, cfg(grid(h), 256), [&dw32, &out, &hn, &off])?;
    Ok(CudaStorage::wrap_cuda_slice(out, dev.clone()))
}

/// RMSNorm backward: `[rows + 1, h]`, the rows of dx then dw.
pub fn rms_bwd(
    x: (&CudaStorage, &Layout),
    w: (&CudaStorage, &Layout),
    dy: (&CudaStorage, &Layout),
    eps: f32,
) -> Result<CudaStorage> {
    by_dtype!(x.0.dtype(), launch_rms_bwd(x, w, dy, eps))
}

fn launch_csm_fwd<T: CudaDType + DeviceRepr + WithDType>(
    s: &CudaStorage,
    sl: &Layout,
    scale: f32,
    t: usize,
    start: usize,
) -> Result<CudaStorage> {
    let dev = &s.device;
    let sv = view::<T>(s, sl, "causal_softmax")?;
    let dims = sl.shape().dims();
    let total = dims[dims.len() - 1];
    let rows_per_head = dims[dims.len() - 2];
    let n = sl.shape().elem_count();
    // SAFETY: every element is written by the kernel.
    let p = unsafe { dev.alloc::<T>(n)? };
    let (ti, rph, tt, st) = (total as i32, rows_per_head as i32, t as i32, start as i32);
    launch!(
        dev,
        "csm_fwd",
        T::DTYPE,
        cfg((n / total) as u32, threads(total)),
        [&sv, &p, &ti, &rph, &tt, &st, &scale]
    )?;
    Ok(CudaStorage::wrap_cuda_slice(p, dev.clone()))
}

/// Causal softmax of `scale * s` (see fused_ops::causal_softmax).
pub fn csm_fwd(s: &CudaStorage, sl: &Layout, scale: f32, t: usize, start: usize) -> Result<CudaStorage> {
    by_dtype!(s.dtype(), launch_csm_fwd(s, sl, scale, t, start))
}

fn launch_csm_bwd<T: CudaDType + DeviceRepr + WithDType>(
    p: (&CudaStorage, &Layout),
    dp: (&CudaStorage, &Layout),
    scale: f32,
) -> Result<CudaStorage> {
    let dev = &p.0.device;
    let pv = view::<T>(p.0, p.1, "softmax_bwd")?;
    let gv = view::<T>(dp.0, dp.1, "softmax_bwd")?;
    let dims = p.1.shape().dims();
    let total = dims[dims.len() - 1];
    let n = p.1.shape().elem_count();
    // SAFETY: every element is written by the kernel.
    let ds = unsafe { dev.alloc::<T>(n)? };
    let ti = total as i32;
    launch!(
        dev,
        "csm_bwd",
        T::DTYPE,
        cfg((n / total) as u32, threads(total)),
        [&pv, &gv, &ds, &ti, &scale]
    )?;
    Ok(CudaStorage::wrap_cuda_slice(ds, dev.clone()))
}

/// ds = scale * p * (dp - sum(p * dp)) per row.
pub fn csm_bwd(p: (&CudaStorage, &Layout), dp: (&CudaStorage, &Layout), scale: f32) -> Result<CudaStorage> {
    by_dtype!(p.0.dtype(), launch_csm_bwd(p, dp, scale))
}

fn launch_swiglu_fwd<T: CudaDType + DeviceRepr + WithDType>(
    g: (&CudaStorage, &Layout),
    u: (&CudaStorage, &Layout),
) -> Result<CudaStorage> {
    let dev = &g.0.device;
    let gv = view::<T>(g.0, g.1, "swiglu")?;
    let uv = view::<T>(u.0, u.1, "swiglu")?;
    let n = g.1.shape().elem_count();
    // SAFETY: every element is written by the kernel.
    let y = unsafe { dev.alloc::<T>(n)? };
    launch!(dev, "swiglu_fwd", T::DTYPE, cfg(grid(n), 256), [&gv, &uv, &y, &n])?;
    Ok(CudaStorage::wrap_cuda_slice(y, dev.clone()))
}

/// `silu(g) * u`.
pub fn swiglu_fwd(g: (&CudaStorage, &Layout), u: (&CudaStorage, &Layout)) -> Result<CudaStorage> {
    by_dtype!(g.0.dtype(), launch_swiglu_fwd(g, u))
}

fn launch_swiglu_bwd<T: CudaDType + DeviceRepr + WithDType>(
    g: (&CudaStorage, &Layout),
    u: (&CudaStorage, &Layout),
    dy: (&CudaStorage, &Layout),
) -> Result<CudaStorage> {
    let dev = &g.0.device;
    let gv = view::<T>(g.0, g.1, "swiglu_bwd")?;
    let uv = view::<T>(u.0, u.1, "swiglu_bwd")?;
    let yv = view::<T>(dy.0, dy.1, "swiglu_bwd")?;
    let n = g.1.shape().elem_count();
    // SAFETY: every element is written by the kernel.
    let out = unsafe { dev.alloc::<T>(2 * n)? };
    launch!(
        dev,
        "swiglu_bwd",
        T::DTYPE,
        cfg(grid(n), 256),
        [&gv, &uv, &yv, &out, &n]
    )?;
    Ok(CudaStorage::wrap_cuda_slice(out, dev.clone()))
}

/// `[2, n]`: dg then du.
pub fn swiglu_bwd(
    g: (&CudaStorage, &Layout),
    u: (&CudaStorage, &Layout),
    dy: (&CudaStorage, &Layout),
) -> Result<CudaStorage> {
    by_dtype!(g.0.dtype(), launch_swiglu_bwd(g, u, dy))
}

/// The CUDA storage of a tensor (read guard) and its layout.
fn cuda_of(t: &Tensor) -> Result<(candle_core::StorageRef<'_>, &Layout)> {
    let (s, l) = t.storage_and_layout();
    if !matches!(&*s, Storage::Cuda(_)) {
        candle_core::bail!("expected a CUDA tensor");
    }
    Ok((s, l))
}

fn as_cuda(s: &Storage) -> &CudaStorage {
    match s {
        Storage::Cuda(c) => c,
        _ => unreachable!("checked by cuda_of"),
    }
}

/// AdamW hyperparameters of one update, as the kernel takes them.
#[derive(Debug, Clone, Copy)]
pub struct AdamWArgs {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// 1 - lr * weight_decay
    pub decay: f32,
    /// lr / (1 - beta1^t)
    pub step: f32,
    /// sqrt(1 - beta2^t)
    pub bc2_sqrt: f32,
    /// The clipping factor applied to the gradient.
    pub grad_scale: f32,
}

fn launch_adamw<T: CudaDType + DeviceRepr + WithDType>(
    w: &Tensor,
    g: &Tensor,
    m: &Tensor,
    v: &Tensor,
    master: Option<&Tensor>,
    a: AdamWArgs,
) -> Result<()> {
    let (ws, wl) = cuda_of(w)?;
    let (gs, gl) = cuda_of(g)?;
    let (ms, ml) = cuda_of(m)?;
    let (vs, vl) = cuda_of(v)?;
    let (ws, gs, msc, vsc) = (as_cuda(&ws), as_cuda(&gs), as_cuda(&ms), as_cuda(&vs));
    let wv = view::<T>(ws, wl, "adamw")?;
    let gv = view::<T>(gs, gl, "adamw")?;
    let mv = view::<f32>(msc, ml, "adamw")?;
    let vv = view::<f32>(vsc, vl, "adamw")?;
    let n = wl.shape().elem_count();
    if gl.shape().elem_count() != n || ml.shape().elem_count() != n || vl.shape().elem_count() != n {
        candle_core::bail!("adamw: weight, gradient and state differ in size");
    }
    let dev = &ws.device;
    let f = dev.get_or_load_custom_func(&format!("adamw_{}", suffix(T::DTYPE)?), MODULE, PTX)?;
    // The kernel writes the weights, moments and master through these views: nothing else
    // touches them during the update (one stream).
    let master_guard = match master {
        Some(t) => Some(cuda_of(t)?),
        None => None,
    };
    let master_view = match &master_guard {
        Some((s, l)) => {
            if l.shape().elem_count() != n {
                candle_core::bail!("adamw: master weights differ in size");
            }
            Some(view::<f32>(as_cuda(s), l, "adamw")?)
        }
        None if T::DTYPE != DType::F32 => candle_core::bail!("adamw: {:?} weights need f32 master weights", T::DTYPE),
        None => None,
    };
    let mut b = f.builder();
    match &master_view {
        Some(mw) => b.arg(mw),
        None => b.arg(&wv),
    };
    b.arg(&wv).arg(&gv).arg(&mv).arg(&vv).arg(&n);
    b.arg(&a.beta1)
        .arg(&a.beta2)
        .arg(&a.eps)
        .arg(&a.decay)
        .arg(&a.step)
        .arg(&a.bc2_sqrt)
        .arg(&a.grad_scale);
    // SAFETY: arguments match the kernel's signature.
    unsafe { b.launch(cfg(grid(n), 256)) }.w()?;
    Ok(())
}

/// One fused AdamW update of `w` (f32, or bf16 with f32 `master`) with gradient `g` (the
/// weights' dtype) and f32 moments `m`, `v`, all contiguous on one CUDA device.
pub fn adamw(w: &Tensor, g: &Tensor, m: &Tensor, v: &Tensor, master: Option<&Tensor>, a: AdamWArgs) -> Result<()> {
    by_dtype!(w.dtype(), launch_adamw(w, g, m, v, master, a))
}

fn launch_sumsq<T: CudaDType + DeviceRepr + WithDType>(g: &Tensor, acc: &CudaSlice<f32>) -> Result<()> {
    let (gs, gl) = cuda_of(g)?;
    let gs = as_cuda(&gs);
    let gv = view::<T>(gs, gl, "sumsq")?;
    let n = gl.shape().elem_count();
    launch!(
        gs.device,
        "sumsq",
        T::DTYPE,
        cfg(grid(n).min(1024), 256),
        [&gv, &n, acc]
    )?;
    Ok(())
}

/// The sum of squares of every tensor in `grads` (contiguous, on `dev`), read back once.
pub fn sum_of_squares(dev: &CudaDevice, grads: &[Tensor]) -> Result<f64> {
    let acc = dev.alloc_zeros::<f32>(1)?;
    for g in grads {
        let g = g.contiguous()?;
        by_dtype!(g.dtype(), launch_sumsq(&g, &acc))?;
    }
    let v = dev.cuda_stream().clone_dtoh(&acc).w()?;
    Ok(v[0] as f64)
}

fn launch_ce_fwd<T: CudaDType + DeviceRepr + WithDType>(
    x: (&CudaStorage, &Layout),
    t: (&CudaStorage, &Layout),
) -> Result<CudaStorage> {
    let dev = &x.0.device;
    let xv = view::<T>(x.0, x.1, "cross_entropy")?;
    let tv = view::<u32>(t.0, t.1, "cross_entropy")?;
    let (rows, v) = x.1.shape().dims2()?;
    // SAFETY: every element is written by the kernel.
    let loss = unsafe { dev.alloc::<f32>(rows)? };
    let vi = v as i32;
    launch!(dev, "ce_fwd", T::DTYPE, cfg(rows as u32, 1024), [&xv, &tv, &loss, &vi])?;
    Ok(CudaStorage::wrap_cuda_slice(loss, dev.clone()))
}

/// Per-row cross-entropy of logits `x` `[rows, vocab]` against u32 `targets`: f32 `[rows]`.
pub fn ce_fwd(x: (&CudaStorage, &Layout), targets: (&CudaStorage, &Layout)) -> Result<CudaStorage> {
    by_dtype!(x.0.dtype(), launch_ce_fwd(x, targets))
}

fn launch_ce_bwd<T: CudaDType + DeviceRepr + WithDType>(
    x: (&CudaStorage, &Layout),
    t: (&CudaStorage, &Layout),
    g: (&CudaStorage, &Layout),
) -> Result<CudaStorage> {
    let dev = &x.0.device;
    let xv = view::<T>(x.0, x.1, "cross_entropy_bwd")?;
    let tv = view::<u32>(t.0, t.1, "cross_entropy_bwd")?;
    let gv = view::<f32>(g.0, g.1, "cross_entropy_bwd")?;
    let (rows, v) = x.1.shape().dims2()?;
    // SAFETY: every element is written by the kernel.
    let dx = unsafe { dev.alloc::<T>(rows * v)? };
    let vi = v as i32;
    launch!(
        dev,
        "ce_bwd",
        T::DTYPE,
        cfg(rows as u32, 1024),
        [&xv, &tv, &gv, &dx, &vi]
    )?;
    Ok(CudaStorage::wrap_cuda_slice(dx, dev.clone()))
}

/// The gradient of [`ce_fwd`] for per-row upstream gradients `g` (f32): `g (softmax - onehot)`.
pub fn ce_bwd(
    x: (&CudaStorage, &Layout),
    targets: (&CudaStorage, &Layout),
    g: (&CudaStorage, &Layout),
) -> Result<CudaStorage> {
    by_dtype!(x.0.dtype(), launch_ce_bwd(x, targets, g))
}

fn launch_emb_fwd<T: CudaDType + DeviceRepr + WithDType>(
    table: (&CudaStorage, &Layout),
    ids: (&CudaStorage, &Layout),
) -> Result<CudaStorage> {
    let dev = &table.0.device;
    let wv = view::<T>(table.0, table.1, "embedding")?;
    let iv = view::<u32>(ids.0, ids.1, "embedding")?;
    let (_, h) = table.1.shape().dims2()?;
    let n = ids.1.shape().elem_count();
    // SAFETY: every element is written by the kernel.
    let out = unsafe { dev.alloc::<T>(n * h)? };
    let hi = h as i32;
    launch!(
        dev,
        "emb_fwd",
        T::DTYPE,
        cfg(grid(n * h), 256),
        [&iv, &wv, &out, &n, &hi]
    )?;
    Ok(CudaStorage::wrap_cuda_slice(out, dev.clone()))
}

/// Rows `ids` (u32) of `table` `[vocab, h]`: `[n, h]`.
pub fn emb_fwd(table: (&CudaStorage, &Layout), ids: (&CudaStorage, &Layout)) -> Result<CudaStorage> {
    by_dtype!(table.0.dtype(), launch_emb_fwd(table, ids))
}

fn launch_emb_bwd<T: CudaDType + DeviceRepr + WithDType>(
    vocab: usize,
    ids: (&CudaStorage, &Layout),
    g: (&CudaStorage, &Layout),
) -> Result<CudaStorage> {
    let dev = &g.0.device;
    let iv = view::<u32>(ids.0, ids.1, "embedding_bwd")?;
    let gv = view::<T>(g.0, g.1, "embedding_bwd")?;
    let (n, h) = g.1.shape().dims2()?;
    let dw32 = dev.alloc_zeros::<f32>(vocab * h)?;
    let hi = h as i32;
    launch!(
        dev,
        "emb_bwd",
        T::DTYPE,
        cfg(grid(n * h), 256),
        [&iv, &gv, &dw32, &n, &hi]
    )?;
    // SAFETY: every element is written by the conversion.
    let out = unsafe { dev.alloc::<T>(vocab * h)? };
    let (len, off) = (vocab * h, 0usize);
    launch!(
        dev,
        "from_f32",
        T::DTYPE,
        cfg(grid(len), 256),
        [&dw32, &out, &len, &off]
    )?;
    Ok(CudaStorage::wrap_cuda_slice(out, dev.clone()))
}

/// The table gradient of [`emb_fwd`]: `[vocab, h]`, each id's rows of `g` `[n, h]` summed (f32).
pub fn emb_bwd(vocab: usize, ids: (&CudaStorage, &Layout), g: (&CudaStorage, &Layout)) -> Result<CudaStorage> {
    by_dtype!(g.0.dtype(), launch_emb_bwd(vocab, ids, g))
}
