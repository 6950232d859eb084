//! What a downloaded model is, for the library's list: architecture, quantization (or the dtype
//! it was saved in), context length and parameter count, read with the model readers
//! (`config.json` through [`ModelConfig`], GGUF metadata through candle's reader). A model this
//! engine cannot load is still described as far as its files say, with the reason it cannot be
//! loaded.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::quantized::gguf_file;
use serde_json::Value;

use super::{HubError, Result};
use crate::model::ModelConfig;

/// A model's facts as the library shows them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ModelFacts {
    /// `llama`, `qwen2`, `qwen3`, or what the files name.
    pub architecture: Option<String>,
    /// GGUF: the tensor type holding most of the weights (`Q4_1`, `Q4_K`); a folder: its dtype.
    pub quantization: Option<String>,
    /// The context the model was trained for, in tokens.
    pub context_length: Option<usize>,
    pub parameters: Option<u64>,
    /// Why this engine cannot load the model, when it cannot.
    pub unsupported: Option<String>,
}

/// Describes a Hugging Face model folder or a GGUF file.
pub fn describe(path: &Path) -> Result<ModelFacts> {
    if path.is_dir() {
        describe_folder(path)
    } else {
        describe_gguf(path)
    }
}

fn describe_folder(dir: &Path) -> Result<ModelFacts> {
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| HubError::io(&cfg_path, e))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| HubError::io(&cfg_path, format!("not valid JSON: {e}")))?;
    let text_cfg = v.get("text_config").unwrap_or(&v);
    let mut facts = ModelFacts {
        architecture: text_cfg.get("model_type").and_then(Value::as_str).map(str::to_string),
        quantization: v
            .get("quantization_config")
            .and_then(|q| q.get("quant_method"))
            .and_then(Value::as_str)
            .or_else(|| v.get("dtype").and_then(Value::as_str))
            .or_else(|| v.get("torch_dtype").and_then(Value::as_str))
            .map(str::to_string),
        context_length: text_cfg
            .get("max_position_embeddings")
            .and_then(Value::as_u64)
            .map(|n| n as usize),
        ..Default::default()
    };
    match ModelConfig::from_hf_json(&cfg_path, &v) {
        Ok(cfg) => facts.parameters = Some(cfg.num_parameters() as u64),
        Err(e) => facts.unsupported = Some(e.to_string()),
    }
    Ok(facts)
}

fn describe_gguf(path: &Path) -> Result<ModelFacts> {
    let mut file = std::fs::File::open(path).map_err(|e| HubError::io(path, e))?;
    let content = gguf_file::Content::read(&mut file)
        .map_err(|e| HubError::io(path, format!("not a readable GGUF file: {e}")))?;
    let md = &content.metadata;
    let arch = md.get("general.architecture").and_then(|v| v.to_string().ok()).cloned();
    let ctx = arch
        .as_ref()
        .and_then(|a| md.get(&format!("{a}.context_length")))
        .and_then(|v| v.to_u64().ok())
        .map(|n| n as usize);
    // The type holding the most bytes names the quantization (norms stay f32 in every file).
    let mut bytes: BTreeMap<String, u64> = BTreeMap::new();
    let mut parameters = 0u64;
    for info in content.tensor_infos.values() {
        let n = info.shape.elem_count() as u64;
        parameters += n;
        let b = n / info.ggml_dtype.block_size() as u64 * info.ggml_dtype.type_size() as u64;
        *bytes.entry(ggml_name(info.ggml_dtype)).or_default() += b;
    }
    let quantization = bytes.into_iter().max_by_key(|(_, b)| *b).map(|(t, _)| t);
    let unsupported = ModelConfig::from_gguf(path, &content).err().map(|e| e.to_string());
    Ok(ModelFacts {
        architecture: arch,
        quantization,
        context_length: ctx,
        parameters: Some(parameters),
        unsupported,
    })
}

/// llama.cpp's name of a tensor type: `Q4_1`, `Q4_K`, `F16` (candle spells the K-quants `Q4K`).
fn ggml_name(t: candle_core::quantized::GgmlDType) -> String {
    let s = format!("{t:?}").to_uppercase();
    match s.strip_suffix('K') {
        Some(head) if !head.ends_with('_') => format!("{head}_K"),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_that_is_not_a_model_says_which_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = describe(dir.path()).unwrap_err().to_string();
        assert!(err.contains("config.json"), "{err}");
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"model_type": "mamba", "max_position_embeddings": 2048}"#,
        )
        .unwrap();
        let f = describe(dir.path()).unwrap();
        assert_eq!(f.architecture.as_deref(), Some("mamba"));
        assert_eq!(f.context_length, Some(2048));
        assert!(f.unsupported.is_some(), "{f:?}");
        let err = describe(&dir.path().join("config.json")).unwrap_err().to_string();
        assert!(err.contains("not a readable GGUF file"), "{err}");
    }

    #[test]
    fn ggml_names_as_llama_cpp_writes_them() {
        use candle_core::quantized::GgmlDType as G;
        assert_eq!(ggml_name(G::Q4_1), "Q4_1");
        assert_eq!(ggml_name(G::Q4K), "Q4_K");
        assert_eq!(ggml_name(G::F16), "F16");
    }
}
