//! Checkpoints in the Hugging Face layout (config.json, model.safetensors, the tokenizer files,
//! generation_config.json) that transformers and the engine load, plus the optimizer state and
//! the trainer state for `--resume`. Each is written into a temporary folder that is renamed into
//! place at the end, so a kill never leaves a half checkpoint under a checkpoint's name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;

/// Files copied from the base model folder into every checkpoint.
const COPIED: &[&str] = &[
    "tokenizer.json",
    "tokenizer_config.json",
    "generation_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "added_tokens.json",
];

/// Where the trainer stands, saved with each checkpoint.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainerState {
    /// Optimizer steps done.
    pub step: usize,
    pub total_steps: usize,
    pub epoch: f64,
    pub seed: u64,
    /// The examples and settings the run was started with (a resume must match).
    pub fingerprint: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
}

fn io(path: &Path, e: impl std::fmt::Display) -> CheckpointError {
    CheckpointError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// `out/checkpoint-<step>`.
pub fn checkpoint_dir(out: &Path, step: usize) -> PathBuf {
    out.join(format!("checkpoint-{step}"))
}

/// The config.json of `base` with the dtype set to float32 (the weights are saved in f32).
fn config_json(base: &Path) -> Result<serde_json::Value, CheckpointError> {
    let p = base.join("config.json");
    let text = std::fs::read_to_string(&p).map_err(|e| io(&p, e))?;
    let mut v: serde_json::Value = serde_json::from_str(&text).map_err(|e| io(&p, e))?;
    if let Some(o) = v.as_object_mut() {
        if o.contains_key("dtype") || !o.contains_key("torch_dtype") {
            o.insert("dtype".into(), "float32".into());
        }
        if o.contains_key("torch_dtype") {
            o.insert("torch_dtype".into(), "float32".into());
        }
    }
    Ok(v)
}

/// Writes a full model folder `dir` (atomically): `tensors` as model.safetensors (or another
/// file name for adapters), the base's config and tokenizer files, and `extra` files.
pub fn write_model_folder(
    dir: &Path,
    base: &Path,
    weights_file: &str,
    tensors: &HashMap<String, Tensor>,
    with_config: bool,
    extra: &[(&str, Vec<u8>)],
    extra_tensors: Option<(&str, &HashMap<String, Tensor>)>,
) -> Result<(), CheckpointError> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.partial"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    let st = tmp.join(weights_file);
    crate::model::weights::save_safetensors(tensors, &st).map_err(|e| io(&st, e))?;
    if let Some((file, t)) = extra_tensors {
        let p = tmp.join(file);
        crate::model::weights::save_safetensors(t, &p).map_err(|e| io(&p, e))?;
    }
    if with_config {
        let p = tmp.join("config.json");
        let text = serde_json::to_string_pretty(&config_json(base)?).map_err(|e| io(&p, e))?;
        std::fs::write(&p, text).map_err(|e| io(&p, e))?;
    }
    for f in COPIED {
        let src = base.join(f);
        if src.exists() {
            std::fs::copy(&src, tmp.join(f)).map_err(|e| io(&src, e))?;
        }
    }
    for (f, bytes) in extra {
        let p = tmp.join(f);
        std::fs::write(&p, bytes).map_err(|e| io(&p, e))?;
    }
    // Flush the files, then swap the folder in.
    for entry in std::fs::read_dir(&tmp).map_err(|e| io(&tmp, e))? {
        let path = entry.map_err(|e| io(&tmp, e))?.path();
        if let Ok(f) = std::fs::File::open(&path) {
            f.sync_all().map_err(|e| io(&path, e))?;
        }
    }
    if dir.exists() {
        let old = parent.join(format!(".{name}.old"));
        let _ = std::fs::remove_dir_all(&old);
        std::fs::rename(dir, &old).map_err(|e| io(dir, e))?;
        std::fs::rename(&tmp, dir).map_err(|e| io(dir, e))?;
        let _ = std::fs::remove_dir_all(&old);
    } else {
        std::fs::rename(&tmp, dir).map_err(|e| io(dir, e))?;
    }
    Ok(())
}

/// The newest complete checkpoint under `out` (highest step with a trainer_state.json).
pub fn latest_checkpoint(out: &Path) -> Option<(usize, PathBuf)> {
    let rd = std::fs::read_dir(out).ok()?;
    rd.filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let step: usize = name.strip_prefix("checkpoint-")?.parse().ok()?;
            let dir = e.path();
            dir.join("trainer_state.json").exists().then_some((step, dir))
        })
        .max_by_key(|(s, _)| *s)
}

/// Reads a checkpoint's trainer state.
pub fn read_state(dir: &Path) -> Result<TrainerState, CheckpointError> {
    let p = dir.join("trainer_state.json");
    let text = std::fs::read_to_string(&p).map_err(|e| io(&p, e))?;
    serde_json::from_str(&text).map_err(|e| io(&p, e))
}

/// Removes all but the newest `keep` checkpoints (0 keeps all).
pub fn prune(out: &Path, keep: usize) {
    if keep == 0 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(out) else { return };
    let mut all: Vec<(usize, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let step: usize = e
                .file_name()
                .to_string_lossy()
                .strip_prefix("checkpoint-")?
                .parse()
                .ok()?;
            Some((step, e.path()))
        })
        .collect();
    all.sort();
    let n = all.len();
    for (_, p) in all.into_iter().take(n.saturating_sub(keep)) {
        let _ = std::fs::remove_dir_all(p);
    }
}
