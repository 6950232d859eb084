//! The device and dtype choices as the command line and the views spell them: one serialisable
//! [`DeviceChoice`] (`cpu`, `cuda`, `cuda:N`) that training, model loading, evaluation and
//! curation's local model carry, opened into a candle `Device` on the thread that uses it.

use anyhow::{bail, Context};
use candle_core::{DType, Device};

/// Where a model runs, as chosen (not yet opened). Serialised as its text (`"cpu"`, `"cuda:0"`),
/// so settings files and configs read the same as the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DeviceChoice {
    #[default]
    Cpu,
    /// The GPU with this ordinal.
    Cuda(usize),
}

impl DeviceChoice {
    /// `cpu`, `cuda` (GPU 0) or `cuda:N`; checks the spelling only, not that the GPU exists.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let s = s.trim();
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            s => match s.strip_prefix("cuda:") {
                Some(n) => n
                    .parse()
                    .map(Self::Cuda)
                    .map_err(|_| anyhow::anyhow!("device `{s}`: bad GPU ordinal `{n}`")),
                None => bail!("device `{s}`: expected cpu, cuda or cuda:N"),
            },
        }
    }

    pub fn is_cpu(self) -> bool {
        self == Self::Cpu
    }

    /// Opens the device (the CUDA context is created here, so call it on the thread that will
    /// use it rather than the UI thread).
    pub fn open(self) -> anyhow::Result<Device> {
        parse_device(&self.to_string())
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl std::str::FromStr for DeviceChoice {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Self::parse(s)
    }
}

impl TryFrom<String> for DeviceChoice {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).map_err(|e| e.to_string())
    }
}

impl From<DeviceChoice> for String {
    fn from(d: DeviceChoice) -> String {
        d.to_string()
    }
}

/// A device this build can use, as a picker lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceInfo {
    pub choice: DeviceChoice,
    /// "CPU" or the GPU's name.
    pub name: String,
    /// Free and total memory in bytes (GPUs only).
    pub memory: Option<(u64, u64)>,
}

impl DeviceInfo {
    /// "cpu" or "cuda:0 · NVIDIA H200 · 131.2 of 139.8 GiB free".
    pub fn label(&self) -> String {
        const GIB: f64 = (1u64 << 30) as f64;
        match (self.choice, self.memory) {
            (DeviceChoice::Cpu, _) => "cpu".into(),
            (c, Some((free, total))) => format!(
                "{c} · {} · {:.1} of {:.1} GiB free",
                self.name,
                free as f64 / GIB,
                total as f64 / GIB
            ),
            (c, None) => format!("{c} · {}", self.name),
        }
    }
}

/// The devices this build can use: the CPU, then each CUDA GPU (with its name and free memory)
/// when built with `--features cuda` and a driver is present. Queries the driver, so call it off
/// the UI thread (or once).
pub fn available_devices() -> Vec<DeviceInfo> {
    let mut out = vec![DeviceInfo {
        choice: DeviceChoice::Cpu,
        name: "CPU".into(),
        memory: None,
    }];
    out.extend(cuda_devices());
    out
}

#[cfg(feature = "cuda")]
fn cuda_devices() -> Vec<DeviceInfo> {
    use candle_core::cuda_backend::cudarc::driver::CudaContext;
    let n = CudaContext::device_count().unwrap_or(0).max(0) as usize;
    (0..n)
        .filter_map(|i| {
            let ctx = CudaContext::new(i).ok()?;
            let name = ctx.name().unwrap_or_else(|_| format!("GPU {i}"));
            let memory = ctx.mem_get_info().ok().map(|(f, t)| (f as u64, t as u64));
            Some(DeviceInfo {
                choice: DeviceChoice::Cuda(i),
                name,
                memory,
            })
        })
        .collect()
}

#[cfg(not(feature = "cuda"))]
fn cuda_devices() -> Vec<DeviceInfo> {
    Vec::new()
}

/// Free memory of an opened GPU in bytes (None: the CPU, or the driver did not say).
pub fn free_memory(dev: &Device) -> Option<u64> {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(d) = dev {
        return d
            .cuda_stream()
            .context()
            .mem_get_info()
            .ok()
            .map(|(free, _)| free as u64);
    }
    let _ = dev;
    None
}

/// `cpu`, `cuda` or `cuda:N`, opened.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_choice_reads_and_writes_as_the_command_line() {
        assert_eq!(DeviceChoice::parse("cpu").unwrap(), DeviceChoice::Cpu);
        assert_eq!(DeviceChoice::parse("cuda").unwrap(), DeviceChoice::Cuda(0));
        assert_eq!(DeviceChoice::parse(" cuda:3 ").unwrap(), DeviceChoice::Cuda(3));
        assert!(DeviceChoice::parse("cuda:x")
            .unwrap_err()
            .to_string()
            .contains("bad GPU ordinal"));
        assert!(DeviceChoice::parse("tpu")
            .unwrap_err()
            .to_string()
            .contains("expected cpu"));
        assert_eq!(serde_json::to_string(&DeviceChoice::Cuda(1)).unwrap(), "\"cuda:1\"");
        let back: DeviceChoice = serde_json::from_str("\"cuda\"").unwrap();
        assert_eq!(back, DeviceChoice::Cuda(0));
        assert!(serde_json::from_str::<DeviceChoice>("\"gpu\"").is_err());
        assert_eq!(available_devices()[0].choice, DeviceChoice::Cpu);
        if !cfg!(feature = "cuda") {
            assert!(DeviceChoice::Cuda(0)
                .open()
                .unwrap_err()
                .to_string()
                .contains("no CUDA support"));
        }
    }
}
