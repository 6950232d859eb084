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
                let p = folder.join(file);
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
        Ok(t.to_dtype(self.dtype)?.to_device(&self.device)?)
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

/// Checks the magic and the counts of a GGUF header before the full parse, so that a file that is
/// not GGUF fails with a clear message instead of a huge allocation.
fn check_gguf_header(path: &Path, file: &mut std::fs::File) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata().map_err(|e| ModelError::bad(path, e))?.len();
    let mut head = [0u8; 24];
    file.read_exact(&mut head)
        .map_err(|_| ModelError::bad(path, format!("not a GGUF file: only {len} bytes")))?;
    if &head[0..4] != b"GGUF" {
        return Err(ModelError::bad(
            path,
            "not a GGUF file: it does not start with the magic `GGUF`",
        ));
    }
    let version = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if !(2..=3).contains(&version) {
        return Err(ModelError::unsupported(
            path,
            format!("GGUF version {version} (supported: 2, 3)"),
        ));
    }
    let tensors = u64::from_le_bytes(head[8..16].try_into().unwrap_or_default());
    let kvs = u64::from_le_bytes(head[16..24].try_into().unwrap_or_default());
    if tensors > len / 8 || kvs > len / 8 {
        return Err(ModelError::bad(
            path,
            format!("corrupt GGUF header: {tensors} tensors and {kvs} metadata entries in a {len}-byte file"),
        ));
    }
    file.seek(SeekFrom::Start(0)).map_err(|e| ModelError::bad(path, e))?;
    Ok(())
}

/// llama.cpp's name of a GGML type id (those candle does not read, for error messages).
fn ggml_type_name(ty: u32) -> &'static str {
    match ty {
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        34 => "TQ1_0",
        35 => "TQ2_0",
        39 => "MXFP4",
        _ => "unknown",
    }
}

/// Walks a GGUF header to the first tensor whose type candle does not know: its name and type
/// id. `None` when the header does not parse or every type is known.
fn first_unknown_type(file: &mut std::fs::File) -> Option<(String, u32)> {
    use std::io::{BufReader, Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(0)).ok()?;
    let mut r = BufReader::new(file);
    fn u32_(r: &mut impl Read) -> Option<u32> {
        let mut b = [0u8; 4];
        r.read_exact(&mut b).ok()?;
        Some(u32::from_le_bytes(b))
    }
    fn u64_(r: &mut impl Read) -> Option<u64> {
        let mut b = [0u8; 8];
        r.read_exact(&mut b).ok()?;
        Some(u64::from_le_bytes(b))
    }
    fn string(r: &mut impl Read) -> Option<String> {
        let n = u64_(r)?;
        if n > 1 << 24 {
            return None;
        }
        let mut b = vec![0u8; n as usize];
        r.read_exact(&mut b).ok()?;
        Some(String::from_utf8_lossy(&b).into_owned())
    }
    fn skip_value(r: &mut (impl Read + Seek), ty: u32) -> Option<()> {
        let fixed = match ty {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            10..=12 => 8,
            8 => return string(r).map(|_| ()),
            9 => {
                let (inner, n) = (u32_(r)?, u64_(r)?);
                for _ in 0..n {
                    skip_value(r, inner)?;
                }
                return Some(());
            }
            _ => return None,
        };
        r.seek_relative(fixed).ok()
    }
    let _magic_version = u64_(&mut r)?;
    let (tensors, kvs) = (u64_(&mut r)?, u64_(&mut r)?);
    for _ in 0..kvs {
        string(&mut r)?;
        let ty = u32_(&mut r)?;
        skip_value(&mut r, ty)?;
    }
    for _ in 0..tensors {
        let name = string(&mut r)?;
        let dims = u32_(&mut r)?;
        if dims > 8 {
            return None;
        }
        for _ in 0..dims {
            u64_(&mut r)?;
        }
        let ty = u32_(&mut r)?;
        u64_(&mut r)?;
        if !matches!(ty, 0..=3 | 6..=15 | 30) {
            return Some((name, ty));
        }
    }
    None
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
        check_gguf_header(path, &mut file)?;
        let content = match gguf_file::Content::read(&mut file) {
            Ok(c) => c,
            Err(e) => {
                // candle refuses the whole file at a tensor type it lacks (IQ4_XS, ...): name
                // the tensor and the type.
                if let Some((name, ty)) = first_unknown_type(&mut file) {
                    return Err(ModelError::unsupported(
                        path,
                        format!(
                            "tensor `{name}` has GGML type {} ({ty}), which this engine cannot read \
                             (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K to Q6_K; \
                             a Q4_K_M or Q8_0 file of the model loads)",
                            ggml_type_name(ty)
                        ),
                    ));
                }
                return Err(ModelError::bad(
                    path,
                    format!("not a readable GGUF file: {}", root_message(&e)),
                ));
            }
        };
        let file_len = file.metadata().map_err(|e| ModelError::bad(path, e))?.len();
        for (name, info) in &content.tensor_infos {
            let bytes = info.shape.elem_count() / info.ggml_dtype.block_size() * info.ggml_dtype.type_size();
            let end = content.tensor_data_offset + info.offset + bytes as u64;
            if end > file_len {
                return Err(ModelError::bad(
                    path,
                    format!("truncated: tensor `{name}` ends at byte {end} but the file has {file_len} bytes"),
                ));
            }
        }
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
        Ok(q.dequantize(&self.device)?.to_dtype(self.dtype)?)
    }

    fn matrix(&mut self, name: &str, out: usize, inp: usize) -> Result<Weight> {
        let q = self.qtensor(name, &[out, inp])?;
        if self.dequantize || matches!(q.dtype(), GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16) {
            return Ok(Weight::Dense(q.dequantize(&self.device)?.to_dtype(self.dtype)?));
        }
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
