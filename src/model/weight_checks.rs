//! Checks on weight files that a hostile model folder could otherwise slip past: shard paths
//! that leave the model folder, and NaN or infinite weights (which load fine and then make the
//! model emit token 0 forever), in dense and in quantized tensors.

use std::path::{Component, Path, PathBuf};

use candle_core::quantized::{GgmlDType, QStorage, QTensor};
use candle_core::{DType, Device, Tensor};

use super::error::{ModelError, Result};

/// How many evenly spaced elements of each tensor are checked for NaN/Inf at load.
pub const FINITE_SAMPLE: usize = 4096;

/// The shard `name` of `model.safetensors.index.json`, resolved inside `folder`: a relative
/// path without `..`, which after following symlinks still lies inside the folder.
pub fn shard_path(index: &Path, folder: &Path, name: &str) -> Result<PathBuf> {
    let rel = Path::new(name);
    let plain = !name.is_empty()
        && rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !plain {
        return Err(ModelError::bad(
            index,
            format!("`weight_map` names the file `{name}`, which is not a plain file name inside the model folder"),
        ));
    }
    let p = folder.join(rel);
    if let (Ok(real), Ok(root)) = (p.canonicalize(), folder.canonicalize()) {
        if !real.starts_with(&root) {
            return Err(ModelError::bad(
                index,
                format!(
                    "`weight_map` file `{name}` resolves to {}, outside the model folder",
                    real.display()
                ),
            ));
        }
    }
    Ok(p)
}

/// Fails when a sample of `t` (up to [`FINITE_SAMPLE`] evenly spaced elements) holds a NaN or an
/// infinity, naming the file and the tensor.
pub fn check_finite(path: &Path, name: &str, t: &Tensor) -> Result<()> {
    let n = t.elem_count();
    if n == 0 || !t.dtype().is_float() {
        return Ok(());
    }
    let flat = t.flatten_all()?;
    let step = n.div_ceil(FINITE_SAMPLE).max(1);
    let sample = if step == 1 {
        flat
    } else {
        let idx: Vec<u32> = (0..n).step_by(step).map(|i| i as u32).collect();
        let idx = Tensor::new(idx.as_slice(), t.device())?;
        flat.index_select(&idx, 0)?
    };
    let values = sample.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
        return Err(ModelError::bad(
            path,
            format!("tensor `{name}` holds {bad} values: the weights are corrupt"),
        ));
    }
    Ok(())
}

/// How many evenly spaced blocks of a quantized tensor are dequantized and checked at load.
pub const QUANT_BLOCK_SAMPLE: usize = 64;

/// Fails when a sample of the quantized tensor `q`'s blocks (up to [`QUANT_BLOCK_SAMPLE`],
/// dequantized on the CPU: NaN or infinite scales make NaN weights) holds a NaN or an infinity,
/// naming the file and the tensor. Dense dtypes are checked by [`check_finite`] instead.
pub fn check_finite_quantized(path: &Path, name: &str, q: &QTensor) -> Result<()> {
    let dtype = q.dtype();
    if matches!(dtype, GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16) {
        return Ok(());
    }
    let (bsize, tsize) = (dtype.block_size(), dtype.type_size());
    let bytes = q.data()?;
    let blocks = bytes.len() / tsize;
    if blocks == 0 {
        return Ok(());
    }
    // Evenly spaced, the first and the last block included.
    let k = blocks.min(QUANT_BLOCK_SAMPLE);
    let mut sample = Vec::with_capacity(k * tsize);
    for i in 0..k {
        let b = if k == 1 { 0 } else { i * (blocks - 1) / (k - 1) };
        sample.extend_from_slice(&bytes[b * tsize..(b + 1) * tsize]);
    }
    let n = sample.len() / tsize * bsize;
    let storage = QStorage::from_data(std::borrow::Cow::Owned(sample), &Device::Cpu, dtype)?;
    let t = QTensor::new(storage, (n,))?.dequantize(&Device::Cpu)?;
    check_finite(path, name, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Q8_0 tensor whose one block has a NaN scale is refused, naming the tensor; the same
    /// tensor with finite scales passes.
    #[test]
    fn a_nan_scale_in_a_quantized_tensor_is_found() {
        let values: Vec<f32> = (0..32 * 256).map(|i| (i % 17) as f32 / 17.0 - 0.5).collect();
        let t = Tensor::new(values.as_slice(), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&t, GgmlDType::Q8_0).unwrap();
        let p = Path::new("m.gguf");
        check_finite_quantized(p, "blk.0.ffn_up.weight", &q).unwrap();
        for block in [0usize, 255] {
            let mut bytes = q.data().unwrap().into_owned();
            // A Q8_0 block: an f16 scale, then 32 signed bytes.
            let nan = half::f16::NAN.to_le_bytes();
            bytes[block * 34..block * 34 + 2].copy_from_slice(&nan);
            let storage = QStorage::from_data(std::borrow::Cow::Owned(bytes), &Device::Cpu, GgmlDType::Q8_0).unwrap();
            let bad = QTensor::new(storage, (32 * 256,)).unwrap();
            let e = check_finite_quantized(p, "blk.0.ffn_up.weight", &bad)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("m.gguf") && e.contains("blk.0.ffn_up.weight") && e.contains("NaN"),
                "{e}"
            );
        }
    }
}
