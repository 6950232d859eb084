//! Checks on weight files that a hostile model folder could otherwise slip past: shard paths
//! that leave the model folder, and NaN or infinite weights (which load fine and then make the
//! model emit token 0 forever).

use std::path::{Component, Path, PathBuf};

use candle_core::{DType, Tensor};

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
