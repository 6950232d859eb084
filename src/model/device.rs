//! The device and dtype choices as the command line and the views spell them.

use anyhow::{bail, Context};
use candle_core::{DType, Device};

/// `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(s: &str) -> anyhow::Result<Device> {
    match s {
        "cpu" => Ok(Device::Cpu),
        s if s == "cuda" || s.starts_with("cuda:") => {
            let ordinal = match s.strip_prefix("cuda:") {
                Some(n) => n.parse().with_context(|| format!("device `{s}`: bad GPU ordinal"))?,
                None => 0,
            };
            if !cfg!(feature = "cuda") {
                bail!("device `{s}`: this build has no CUDA support (build with `--features cuda`)");
            }
            let dev = Device::new_cuda(ordinal).with_context(|| format!("device `{s}`: CUDA is not available"))?;
            #[cfg(feature = "cuda")]
            if let Device::Cuda(d) = &dev {
                // candle runs every op of a device on its one stream, so the per-tensor events
                // that cudarc records for multi-stream use are pure overhead (one or more driver
                // calls per kernel argument).
                // SAFETY: no tensor of this process is used on another stream.
                unsafe { d.disable_event_tracking() };
                keep_pool_memory(d);
            }
            Ok(dev)
        }
        other => bail!("device `{other}`: expected cpu, cuda or cuda:N"),
    }
}

/// candle allocates through the stream-ordered allocator (cuMemAllocAsync), whose default pool
/// returns its memory to the driver at every synchronisation (release threshold 0): a training
/// step, which reads its loss back, then maps its gigabytes of activations afresh each time.
/// Keeping the pool's memory (as PyTorch's caching allocator does) removes that cost.
#[cfg(feature = "cuda")]
fn keep_pool_memory(d: &candle_core::CudaDevice) {
    use candle_core::cuda_backend::cudarc::driver::sys;
    let dev = d.cuda_stream().context().cu_device();
    // SAFETY: plain driver calls on a valid device handle; a failure leaves the default.
    unsafe {
        let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
        if sys::cuDeviceGetDefaultMemPool(&mut pool, dev) == sys::CUresult::CUDA_SUCCESS {
            let mut threshold = u64::MAX;
            let _ = sys::cuMemPoolSetAttribute(
                pool,
                sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                &mut threshold as *mut u64 as *mut std::ffi::c_void,
            );
        }
    }
}

/// `f32`, `bf16`, `f16`, or `auto` (None).
pub fn parse_dtype(s: &str) -> anyhow::Result<Option<DType>> {
    Ok(match s {
        "auto" => None,
        "f32" => Some(DType::F32),
        "bf16" => Some(DType::BF16),
        "f16" => Some(DType::F16),
        other => bail!("dtype `{other}`: expected auto, f32, bf16 or f16"),
    })
}
