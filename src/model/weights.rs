//! Weight sources for the decoder: safetensors (single file or shards with an index) and GGUF.
//! Every tensor is checked against the shape the config asks for, and every error names the file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::safetensors::{Load, MmapedSafetensors};
use candle_core::{DType, Device, Tensor};

use super::error::{ModelError, Result};

/// A weight matrix `[out, in]`: dense, or quantized (GGUF) and multiplied without dequantizing.
#[derive(Clone)]
pub enum Weight {
    Dense(Tensor),
    Quantized(Arc<QMatMul>),
    /// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K or Q6_K on the CPU with f32 activations,
    /// multiplied by this project's kernels (`cpu_gemv`).
    CpuQuant(Arc<super::kernels::cpu_gemv::QMatrix>),
}

/// Writes `tensors` as safetensors with the `{"format": "pt"}` header metadata that PyTorch
/// writers put there: transformers (4.46, the version s1 pins) refuses files without it.
pub fn save_safetensors<S: AsRef<str> + Ord + std::fmt::Display>(
    tensors: &HashMap<S, Tensor>,
    path: &Path,
) -> Result<()> {
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(tensors.iter(), Some(meta), path).map_err(|e| ModelError::bad(path, e))
}

/// Where the decoder's tensors come from. Names are Hugging Face names (`model.layers.0.…`).
pub trait WeightLoader {
    /// A dense tensor of exactly `shape`, in the compute dtype, on the compute device.
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Tensor>;
    /// A linear layer's weight `[out, inp]`; quantized sources keep it quantized.
    fn matrix(&mut self, name: &str, out: usize, inp: usize) -> Result<Weight>;
    /// Whether the source holds a tensor of this name.
    fn contains(&self, name: &str) -> bool;
}

/// Safetensors weights of a Hugging Face folder, memory-mapped.
pub struct SafetensorsWeights {
    files: Vec<(PathBuf, MmapedSafetensors)>,
    routing: HashMap<String, usize>,
    folder: PathBuf,
    dtype: DType,
    device: Device,
}

impl SafetensorsWeights {
    /// Opens `model.safetensors`, or the shards listed in `model.safetensors.index.json`.
    pub fn open(folder: &Path, dtype: DType, device: &Device) -> Result<Self> {
        let single = folder.join("model.safetensors");
        let index = folder.join("model.safetensors.index.json");
        let paths: Vec<PathBuf> = if index.exists() {
            let text = std::fs::read_to_string(&index).map_err(|e| ModelError::bad(&index, e))?;
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| ModelError::bad(&index, format!("not valid JSON: {e}")))?;
            let map = v
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| ModelError::bad(&index, "no `weight_map` object"))?;
            let mut files: Vec<PathBuf> = Vec::new();
            for file in map.values() {
                let file = file
                    .as_str()
                    .ok_or_else(|| ModelError::bad(&index, "`weight_map` values must be file names"))?;
                let p = super::weight_checks::shard_path(&index, folder, file)?;
                if !files.contains(&p) {
                    files.push(p);
                }
            }
            files
        } else if single.exists() {
            vec![single]
        } else {
            return Err(ModelError::MissingFile {
                path: single,
                hint: " (nor model.safetensors.index.json for a sharded checkpoint)".into(),
            });
        };
        let mut files = Vec::with_capacity(paths.len());
        let mut routing = HashMap::new();
        for (i, p) in paths.into_iter().enumerate() {
            if !p.exists() {
                return Err(ModelError::MissingFile {
                    path: p,
                    hint: " (listed in model.safetensors.index.json)".into(),
                });
            }
            // SAFETY: the file is mapped read-only; a concurrent writer is outside what we support,
            // as in every safetensors loader.
            let st = unsafe { MmapedSafetensors::new(&p) }.map_err(|e| {
                ModelError::bad(
                    &p,
                    format!(
                        "not a readable safetensors file (truncated or corrupt?): {}",
                        root_message(&e)
                    ),
                )
            })?;
            for (name, _) in st.tensors() {
                routing.insert(name, i);
            }
            files.push((p, st));
        }
        Ok(Self {
            files,
            routing,
            folder: folder.to_path_buf(),
            dtype,
            device: device.clone(),
        })
    }

    /// Names and shapes of all tensors in the checkpoint (as the files declare them).
    pub fn shapes(&self) -> impl Iterator<Item = (String, Vec<usize>)> + '_ {
        self.files
            .iter()
            .flat_map(|(_, st)| st.tensors().into_iter().map(|(n, v)| (n, v.shape().to_vec())))
    }

    /// Names of all tensors in the checkpoint.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.routing.keys().map(String::as_str)
    }

    fn load(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let Some(&i) = self.routing.get(name) else {
            return Err(ModelError::MissingTensor {
                path: self.folder.clone(),
                name: name.into(),
            });
        };
        let (path, st) = &self.files[i];
        let view = st.get(name).map_err(|e| ModelError::bad(path, e))?;
        if view.shape() != shape {
            return Err(ModelError::TensorShape {
                path: path.clone(),
                name: name.into(),
                expected: shape.to_vec(),
                actual: view.shape().to_vec(),
            });
        }
        use safetensors::Dtype as S;
        if !matches!(view.dtype(), S::F32 | S::F16 | S::BF16 | S::F64) {
            return Err(ModelError::unsupported(
                path,
                format!(
                    "tensor `{name}` has dtype {:?}; only f32, f16 and bf16 weights load",
                    view.dtype()
                ),
            ));
        }
        let t = view
            .load(&Device::Cpu)
            .map_err(|e| ModelError::bad(path, format!("tensor `{name}`: {e}")))?;
        super::weight_checks::check_finite(path, name, &t)?;
        Ok(t.to_dtype(self.dtype)?.to_device(&self.device)?)
    }

    /// Bytes of all weight files together (for the config's plausibility check).
    pub fn total_bytes(&self) -> u64 {
        self.files
            .iter()
            .filter_map(|(p, _)| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }
}

/// The innermost message of a candle error, without its backtrace wrapper.
fn root_message(e: &candle_core::Error) -> String {
    match e {
        candle_core::Error::WithPath { inner, .. } => root_message(inner),
        candle_core::Error::WithBacktrace { inner, .. } => root_message(inner),
        candle_core::Error::Context { inner, .. } => root_message(inner),
        other => other.to_string(),
    }
}

impl WeightLoader for SafetensorsWeights {
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.load(name, shape)
    }

    fn matrix(&mut self, name: &str, out: usize, inp: usize) -> Result<Weight> {
        Ok(Weight::Dense(self.load(name, &[out, inp])?))
    }

    fn contains(&self, name: &str) -> bool {
        self.routing.contains_key(name)
    }
}

/// A GGUF file (llama.cpp's format): metadata, tokenizer and possibly quantized tensors.
pub struct GgufWeights {
    pub path: PathBuf,
    pub content: gguf_file::Content,
    file: std::fs::File,
    dtype: DType,
    device: Device,
    /// Dequantize every matrix to the compute dtype (full-precision reference runs).
    pub dequantize: bool,
}

/// Hugging Face tensor name -> llama.cpp tensor name.
pub fn gguf_name(hf: &str) -> Option<String> {
    let simple = match hf {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(s) = simple {
        return Some(s.to_string());
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    let (module, kind) = rest.rsplit_once('.')?;
    let short = match module {
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "self_attn.q_norm" => "attn_q_norm",
        "self_attn.k_norm" => "attn_k_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "ffn_norm",
        _ => return None,
    };
    Some(format!("blk.{layer}.{short}.{kind}"))
}

impl GgufWeights {
    pub fn open(path: &Path, dtype: DType, device: &Device) -> Result<Self> {
        let mut file = std::fs::File::open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ModelError::MissingFile {
                    path: path.to_path_buf(),
                    hint: String::new(),
                }
            } else {
                ModelError::bad(path, e)
            }
        })?;
        // Our own checks first: candle's reader trusts alignment and dimensions.
        super::gguf_check::check_gguf(path, &mut file)?;
        let content = gguf_file::Content::read(&mut file)
            .map_err(|e| ModelError::bad(path, format!("not a readable GGUF file: {}", root_message(&e))))?;
        Ok(Self {
            path: path.to_path_buf(),
            content,
            file,
            dtype,
            device: device.clone(),
            dequantize: false,
        })
    }

    fn qtensor(&mut self, hf: &str, shape: &[usize]) -> Result<QTensor> {
        let name = gguf_name(hf).ok_or_else(|| ModelError::MissingTensor {
            path: self.path.clone(),
            name: hf.into(),
        })?;
        let Some(info) = self.content.tensor_infos.get(&name) else {
            return Err(ModelError::MissingTensor {
                path: self.path.clone(),
                name,
            });
        };
        if info.shape.dims() != shape {
            return Err(ModelError::TensorShape {
                path: self.path.clone(),
                name,
                expected: shape.to_vec(),
                actual: info.shape.dims().to_vec(),
            });
        }
        self.content
            .tensor(&mut self.file, &name, &self.device)
            .map_err(|e| ModelError::bad(&self.path, format!("tensor `{name}`: {}", root_message(&e))))
    }

    /// A metadata value, by key.
    pub fn meta(&self, key: &str) -> Option<&gguf_file::Value> {
        self.content.metadata.get(key)
    }
}

impl WeightLoader for GgufWeights {
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let q = self.qtensor(name, shape)?;
        let t = q.dequantize(&self.device)?;
        super::weight_checks::check_finite(&self.path, name, &t)?;
        Ok(t.to_dtype(self.dtype)?)
    }

    fn matrix(&mut self, name: &str, out: usize, inp: usize) -> Result<Weight> {
        let q = self.qtensor(name, &[out, inp])?;
        if self.dequantize || matches!(q.dtype(), GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16) {
            let t = q.dequantize(&self.device)?;
            super::weight_checks::check_finite(&self.path, name, &t)?;
            return Ok(Weight::Dense(t.to_dtype(self.dtype)?));
        }
        super::weight_checks::check_finite_quantized(&self.path, name, &q)?;
        use super::kernels::cpu_gemv::{QFormat, QMatrix};
        let format = match q.dtype() {
            GgmlDType::Q4_0 => Some(QFormat::Q4_0),
            GgmlDType::Q4_1 => Some(QFormat::Q4_1),
            GgmlDType::Q5_0 => Some(QFormat::Q5_0),
            GgmlDType::Q5_1 => Some(QFormat::Q5_1),
            GgmlDType::Q8_0 => Some(QFormat::Q8_0),
            GgmlDType::Q4K => Some(QFormat::Q4K),
            GgmlDType::Q5K => Some(QFormat::Q5K),
            GgmlDType::Q6K => Some(QFormat::Q6K),
            // Q2_K, Q3_K, ...: candle's quantized product below (the decoder then skips the CPU
            // decode step, which needs every matrix in the kernels).
            _ => None,
        };
        if let (Some(format), true, DType::F32) = (format, self.device.is_cpu(), self.dtype) {
            let bytes = q.data()?;
            if let Some(m) = QMatrix::from_bytes(format, out, inp, &bytes) {
                return Ok(Weight::CpuQuant(Arc::new(m)));
            }
        }
        Ok(Weight::Quantized(Arc::new(QMatMul::from_qtensor(q)?)))
    }

    fn contains(&self, name: &str) -> bool {
        gguf_name(name).is_some_and(|n| self.content.tensor_infos.contains_key(&n))
    }
}

#[cfg(test)]
mod tests {
    use super::gguf_name;

    /// transformers 4.46 fails on safetensors without `format: pt` metadata ("'NoneType' object
    /// has no attribute 'get'"): the files this project writes carry it.
    #[test]
    fn saved_safetensors_say_they_are_pytorch_format() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.safetensors");
        let t = candle_core::Tensor::new(&[1f32, 2.0], &candle_core::Device::Cpu).unwrap();
        super::save_safetensors(&std::collections::HashMap::from([("w".to_string(), t)]), &p).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(
            meta.metadata()
                .as_ref()
                .and_then(|m| m.get("format"))
                .map(String::as_str),
            Some("pt")
        );
        let back = candle_core::safetensors::load(&p, &candle_core::Device::Cpu).unwrap();
        assert_eq!(back["w"].to_vec1::<f32>().unwrap(), vec![1.0, 2.0]);
    }

    #[test]
    fn maps_hf_names_to_gguf() {
        assert_eq!(
            gguf_name("model.layers.12.self_attn.q_proj.bias").unwrap(),
            "blk.12.attn_q.bias"
        );
        assert_eq!(
            gguf_name("model.layers.0.mlp.down_proj.weight").unwrap(),
            "blk.0.ffn_down.weight"
        );
        assert_eq!(gguf_name("lm_head.weight").unwrap(), "output.weight");
        // Qwen3's per-head norms, as llama.cpp's converter names them.
        assert_eq!(
            gguf_name("model.layers.3.self_attn.k_norm.weight").unwrap(),
            "blk.3.attn_k_norm.weight"
        );
        assert!(gguf_name("model.layers.0.foo.weight").is_none());
    }
}
