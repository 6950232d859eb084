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
            Device::new_cuda(ordinal).with_context(|| format!("device `{s}`: CUDA is not available"))
        }
        other => bail!("device `{other}`: expected cpu, cuda or cuda:N"),
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
