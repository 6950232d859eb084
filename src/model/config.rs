//! `ModelConfig`: the shape of a Llama-family decoder, read from a Hugging Face `config.json`
//! (as written by transformers 4.x and 5.x) or from GGUF metadata.

use std::path::Path;

use serde_json::{json, Value};

use super::error::{ModelError, Result};

/// The architectures the decoder implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// Qwen2 / Qwen2.5: bias on the q, k, v projections.
    Qwen2,
    /// Llama, SmolLM2 and friends.
    Llama,
    /// Qwen3 (dense): RMSNorm over each head of q and k before the rotary embedding, no
    /// attention bias, `head_dim` apart from hidden_size / num_attention_heads.
    Qwen3,
}

impl Arch {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "qwen2" => Some(Self::Qwen2),
            "llama" => Some(Self::Llama),
            "qwen3" => Some(Self::Qwen3),
            _ => None,
        }
    }

    pub fn model_type(self) -> &'static str {
        match self {
            Self::Qwen2 => "qwen2",
            Self::Llama => "llama",
            Self::Qwen3 => "qwen3",
        }
    }

    pub fn hf_class(self) -> &'static str {
        match self {
            Self::Qwen2 => "Qwen2ForCausalLM",
            Self::Llama => "LlamaForCausalLM",
            Self::Qwen3 => "Qwen3ForCausalLM",
        }
    }

    /// Per-head RMSNorm on q and k (`self_attn.q_norm`, `self_attn.k_norm`, `head_dim` wide).
    pub fn qk_norm(self) -> bool {
        self == Self::Qwen3
    }
}

/// Llama 3 style frequency scaling of the rotary embedding (`rope_type: "llama3"`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Llama3RopeScaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: usize,
}

/// Everything the decoder needs to know about a model's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub arch: Arch,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: Option<Llama3RopeScaling>,
    /// Per-frequency divisors of the rotary angles (`head_dim / 2` of them): llama.cpp's
    /// `rope_freqs.weight`, which its converter writes in place of Llama 3.1's `rope_scaling`.
    pub rope_freq_factors: Option<Vec<f32>>,
    /// GGUF files of the llama architecture store q/k rows permuted for interleaved rotary pairs.
    pub rope_interleaved: bool,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// Bias on the q, k and v projections (Qwen2; Llama's `attention_bias` also covers o).
    pub qkv_bias: bool,
    pub o_bias: bool,
    pub mlp_bias: bool,
    /// The dtype the checkpoint was saved in (`torch_dtype` or `dtype`), when given.
    pub saved_dtype: Option<String>,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
}

fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

fn usize_field(path: &Path, v: &Value, key: &str) -> Result<usize> {
    match field(v, key) {
        Some(x) => x
            .as_u64()
            .map(|x| x as usize)
            .ok_or_else(|| ModelError::bad(path, format!("`{key}` must be a non-negative integer, got {x}"))),
        None => Err(ModelError::bad(path, format!("`{key}` is missing"))),
    }
}

fn opt_usize(path: &Path, v: &Value, key: &str) -> Result<Option<usize>> {
    if field(v, key).is_some() {
        usize_field(path, v, key).map(Some)
    } else {
        Ok(None)
    }
}

fn f64_or(path: &Path, v: &Value, key: &str, default: f64) -> Result<f64> {
    match field(v, key) {
        Some(x) => x
            .as_f64()
            .ok_or_else(|| ModelError::bad(path, format!("`{key}` must be a number, got {x}"))),
        None => Ok(default),
    }
}

fn bool_or(path: &Path, v: &Value, key: &str, default: bool) -> Result<bool> {
    match field(v, key) {
        Some(x) => x
            .as_bool()
            .ok_or_else(|| ModelError::bad(path, format!("`{key}` must be true or false, got {x}"))),
        None => Ok(default),
    }
}

/// `eos_token_id` may be one id or a list of ids.
pub(crate) fn token_ids(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_u64()).map(|x| x as u32).collect(),
        _ => Vec::new(),
    }
}

impl ModelConfig {
    /// Reads `config.json`; `path` names the file in every error.
    pub fn from_hf_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ModelError::MissingFile {
                    path: path.to_path_buf(),
                    hint: " (a Hugging Face model folder needs config.json beside its weights)".into(),
                }
            } else {
                ModelError::bad(path, e)
            }
        })?;
        let v: Value =
            serde_json::from_str(&text).map_err(|e| ModelError::bad(path, format!("not valid JSON: {e}")))?;
        Self::from_hf_json(path, &v)
    }

    /// Parses a config.json value.
    pub fn from_hf_json(path: &Path, v: &Value) -> Result<Self> {
        let model_type = field(v, "model_type").and_then(|x| x.as_str()).unwrap_or("");
        if model_type.ends_with("_moe") || field(v, "num_experts").is_some() {
            return Err(ModelError::unsupported(
                path,
                format!(
                    "model_type `{model_type}` is a mixture of experts; only dense models are supported (qwen2, qwen3, llama)"
                ),
            ));
        }
        let arch = Arch::parse(model_type).ok_or_else(|| {
            let archs = field(v, "architectures").map(|a| a.to_string()).unwrap_or_default();
            ModelError::unsupported(
                path,
                format!(
                    "model_type `{model_type}` {archs} is not supported; supported: qwen2 (Qwen2, Qwen2.5), qwen3 (dense Qwen3), llama (Llama, SmolLM2)"
                ),
            )
        })?;
        if let Some(act) = field(v, "hidden_act").and_then(|x| x.as_str()) {
            if act != "silu" {
                return Err(ModelError::unsupported(path, format!("hidden_act `{act}` (only silu)")));
            }
        }
        if bool_or(path, v, "use_sliding_window", false)? {
            return Err(ModelError::unsupported(path, "use_sliding_window = true"));
        }
        let hidden_size = usize_field(path, v, "hidden_size")?;
        let num_heads = usize_field(path, v, "num_attention_heads")?;
        let num_kv_heads = opt_usize(path, v, "num_key_value_heads")?.unwrap_or(num_heads);
        if num_heads == 0 || num_kv_heads == 0 || num_heads % num_kv_heads != 0 {
            return Err(ModelError::bad(
                path,
                format!("num_attention_heads {num_heads} is not a multiple of num_key_value_heads {num_kv_heads}"),
            ));
        }
        let head_dim = match opt_usize(path, v, "head_dim")? {
            Some(d) => d,
            None => {
                if hidden_size % num_heads != 0 {
                    return Err(ModelError::bad(
                        path,
                        "hidden_size is not a multiple of num_attention_heads",
                    ));
                }
                hidden_size / num_heads
            }
        };
        if head_dim % 2 != 0 {
            return Err(ModelError::bad(
                path,
                format!("head_dim {head_dim} must be even for rotary embeddings"),
            ));
        }
        // transformers 5.x moved rope_theta (and rope_scaling) into rope_parameters.
        let rope_params = field(v, "rope_parameters");
        let rope_theta = match rope_params.and_then(|p| field(p, "rope_theta")) {
            Some(x) => x
                .as_f64()
                .ok_or_else(|| ModelError::bad(path, "`rope_parameters.rope_theta` must be a number"))?,
            None => f64_or(path, v, "rope_theta", 10_000.0)?,
        };
        let scaling = field(v, "rope_scaling").or(rope_params);
        let rope_scaling = match scaling {
            None => None,
            Some(s) => {
                let kind = field(s, "rope_type")
                    .or_else(|| field(s, "type"))
                    .and_then(|x| x.as_str());
                match kind {
                    None | Some("default") => None,
                    Some("llama3") => Some(Llama3RopeScaling {
                        factor: f64_or(path, s, "factor", 8.0)?,
                        low_freq_factor: f64_or(path, s, "low_freq_factor", 1.0)?,
                        high_freq_factor: f64_or(path, s, "high_freq_factor", 4.0)?,
                        original_max_position_embeddings: opt_usize(path, s, "original_max_position_embeddings")?
                            .unwrap_or(8192),
                    }),
                    Some(other) => {
                        return Err(ModelError::unsupported(
                            path,
                            format!("rope scaling `{other}` (supported: default, llama3)"),
                        ))
                    }
                }
            }
        };
        let attention_bias = bool_or(path, v, "attention_bias", false)?;
        let (qkv_bias, o_bias) = match arch {
            Arch::Qwen2 => (true, false),
            Arch::Llama | Arch::Qwen3 => (attention_bias, attention_bias),
        };
        let saved_dtype = field(v, "dtype")
            .or_else(|| field(v, "torch_dtype"))
            .and_then(|x| x.as_str())
            .map(str::to_string);
        Self {
            arch,
            vocab_size: usize_field(path, v, "vocab_size")?,
            hidden_size,
            intermediate_size: usize_field(path, v, "intermediate_size")?,
            num_layers: usize_field(path, v, "num_hidden_layers")?,
            num_heads,
            num_kv_heads,
            head_dim,
            rms_norm_eps: f64_or(path, v, "rms_norm_eps", 1e-6)?,
            rope_theta,
            rope_scaling,
            rope_freq_factors: None,
            rope_interleaved: false,
            max_position_embeddings: opt_usize(path, v, "max_position_embeddings")?.unwrap_or(4096),
            tie_word_embeddings: bool_or(path, v, "tie_word_embeddings", false)?,
            qkv_bias,
            o_bias,
            mlp_bias: bool_or(path, v, "mlp_bias", false)?,
            saved_dtype,
            bos_token_id: field(v, "bos_token_id").and_then(|x| x.as_u64()).map(|x| x as u32),
            eos_token_ids: token_ids(field(v, "eos_token_id")),
        }
        .validated(path)
    }

    /// A config.json that transformers (4.x and 5.x), vLLM and llama.cpp's converter read.
    pub fn to_hf_json(&self) -> Value {
        let mut v = json!({
            "architectures": [self.arch.hf_class()],
            "model_type": self.arch.model_type(),
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "torch_dtype": self.saved_dtype.clone().unwrap_or_else(|| "float32".into()),
            "initializer_range": 0.02,
            "use_cache": true,
        });
        if let Some(b) = self.bos_token_id {
            v["bos_token_id"] = json!(b);
        }
        match self.eos_token_ids.as_slice() {
            [] => {}
            [one] => v["eos_token_id"] = json!(one),
            many => v["eos_token_id"] = json!(many),
        }
        match self.arch {
            Arch::Qwen2 => {
                v["use_sliding_window"] = json!(false);
                v["max_window_layers"] = json!(self.num_layers);
            }
            Arch::Llama => {
                v["attention_bias"] = json!(self.qkv_bias);
                v["mlp_bias"] = json!(self.mlp_bias);
            }
            Arch::Qwen3 => {
                v["attention_bias"] = json!(self.qkv_bias);
                v["use_sliding_window"] = json!(false);
                v["max_window_layers"] = json!(self.num_layers);
            }
        }
        v
    }

    /// Number of parameters (weights and biases).
    pub fn num_parameters(&self) -> usize {
        self.checked_num_parameters().unwrap_or(usize::MAX)
    }

    /// Number of parameters, `None` when it does not fit a `usize` (a hostile config).
    pub fn checked_num_parameters(&self) -> Option<usize> {
        let (h, i, d) = (self.hidden_size, self.intermediate_size, self.head_dim);
        let q = self.num_heads.checked_mul(d)?;
        let kv = self.num_kv_heads.checked_mul(d)?;
        let mut attn = h
            .checked_mul(q)?
            .checked_add(h.checked_mul(kv)?.checked_mul(2)?)?
            .checked_add(q.checked_mul(h)?)?;
        // Biases and norms, at most.
        for extra in [q, kv, kv, h, d, d] {
            attn = attn.checked_add(extra)?;
        }
        let mlp = h
            .checked_mul(i)?
            .checked_mul(3)?
            .checked_add(i.checked_mul(2)?)?
            .checked_add(h)?;
        let layer = attn.checked_add(mlp)?.checked_add(h.checked_mul(2)?)?;
        let embed = self.vocab_size.checked_mul(h)?;
        let head = if self.tie_word_embeddings { 0 } else { embed };
        embed
            .checked_add(head)?
            .checked_add(self.num_layers.checked_mul(layer)?)?
            .checked_add(h)?;
        Some(self.exact_num_parameters())
    }

    fn exact_num_parameters(&self) -> usize {
        let (h, i, d) = (self.hidden_size, self.intermediate_size, self.head_dim);
        let q = self.num_heads * d;
        let kv = self.num_kv_heads * d;
        let mut attn = h * q + 2 * h * kv + q * h;
        if self.qkv_bias {
            attn += q + 2 * kv;
        }
        if self.o_bias {
            attn += h;
        }
        let mut mlp = 3 * h * i;
        if self.mlp_bias {
            mlp += 2 * i + h;
        }
        if self.arch.qk_norm() {
            attn += 2 * d;
        }
        let layer = attn + mlp + 2 * h;
        let embed = self.vocab_size * h;
        let head = if self.tie_word_embeddings { 0 } else { embed };
        embed + head + self.num_layers * layer + h
    }
}

impl ModelConfig {
    /// Reads the shape of a llama, qwen2 or qwen3 model from GGUF metadata.
    pub fn from_gguf(path: &Path, content: &candle_core::quantized::gguf_file::Content) -> Result<Self> {
        let md = &content.metadata;
        let arch_name = md
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        let arch = Arch::parse(&arch_name).ok_or_else(|| {
            ModelError::unsupported(
                path,
                format!("GGUF architecture `{arch_name}`; supported: llama, qwen2, qwen3"),
            )
        })?;
        let key = |k: &str| format!("{arch_name}.{k}");
        let num = |k: &str| -> Result<usize> {
            md.get(&key(k))
                .and_then(|v| v.to_u64().ok())
                .map(|x| x as usize)
                .ok_or_else(|| ModelError::bad(path, format!("metadata `{}` is missing", key(k))))
        };
        let opt_num = |k: &str| md.get(&key(k)).and_then(|v| v.to_u64().ok()).map(|x| x as usize);
        let opt_f = |k: &str| md.get(&key(k)).and_then(|v| v.to_f32().ok()).map(f64::from);
        let hidden_size = num("embedding_length")?;
        let num_heads = num("attention.head_count")?;
        let num_kv_heads = opt_num("attention.head_count_kv").unwrap_or(num_heads);
        if num_heads == 0 || num_kv_heads == 0 || num_heads % num_kv_heads != 0 {
            return Err(ModelError::bad(
                path,
                format!("{num_heads} heads are not a multiple of {num_kv_heads} kv heads"),
            ));
        }
        let head_dim = opt_num("attention.key_length")
            .or_else(|| opt_num("rope.dimension_count"))
            .unwrap_or(hidden_size / num_heads);
        let embed = content
            .tensor_infos
            .get("token_embd.weight")
            .ok_or_else(|| ModelError::MissingTensor {
                path: path.to_path_buf(),
                name: "token_embd.weight".into(),
            })?;
        let vocab_size = *embed
            .shape
            .dims()
            .first()
            .ok_or_else(|| ModelError::bad(path, "tensor `token_embd.weight` has no dimensions"))?;
        let has = |n: &str| content.tensor_infos.contains_key(n);
        let rope_freq_factors = if has("rope_freqs.weight") {
            Some(rope_freq_factors(path, content, head_dim)?)
        } else {
            None
        };
        Self {
            arch,
            vocab_size,
            hidden_size,
            intermediate_size: num("feed_forward_length")?,
            num_layers: num("block_count")?,
            num_heads,
            num_kv_heads,
            head_dim,
            rms_norm_eps: opt_f("attention.layer_norm_rms_epsilon").unwrap_or(1e-6),
            rope_theta: opt_f("rope.freq_base").unwrap_or(10_000.0),
            rope_scaling: None,
            rope_freq_factors,
            // llama.cpp's converter permutes llama q/k rows for interleaved rotary pairs; qwen2
            // and qwen3 keep the Hugging Face (NeoX) layout.
            rope_interleaved: arch == Arch::Llama,
            max_position_embeddings: opt_num("context_length").unwrap_or(4096),
            tie_word_embeddings: !has("output.weight"),
            qkv_bias: has("blk.0.attn_q.bias"),
            o_bias: has("blk.0.attn_output.bias"),
            mlp_bias: false,
            saved_dtype: None,
            bos_token_id: md.get("tokenizer.ggml.bos_token_id").and_then(|v| v.to_u32().ok()),
            eos_token_ids: md
                .get("tokenizer.ggml.eos_token_id")
                .and_then(|v| v.to_u32().ok())
                .into_iter()
                .collect(),
        }
        .validated(path)
    }
}

/// llama.cpp's `rope_freqs.weight` (Llama 3.1+): `head_dim / 2` positive f32 divisors of the
/// rotary frequencies, read from the file.
fn rope_freq_factors(
    path: &Path,
    content: &candle_core::quantized::gguf_file::Content,
    head_dim: usize,
) -> Result<Vec<f32>> {
    let name = "rope_freqs.weight";
    let mut file = std::fs::File::open(path).map_err(|e| ModelError::bad(path, e))?;
    let factors = content
        .tensor(&mut file, name, &candle_core::Device::Cpu)
        .and_then(|t| t.dequantize(&candle_core::Device::Cpu))
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| ModelError::bad(path, format!("tensor `{name}`: {e}")))?;
    if factors.len() != head_dim / 2 || factors.iter().any(|f| !(f.is_finite() && *f > 0.0)) {
        return Err(ModelError::bad(
            path,
            format!(
                "tensor `{name}`: expected {} positive factors (head_dim / 2), found {} ({:?}...)",
                head_dim / 2,
                factors.len(),
                &factors[..factors.len().min(4)]
            ),
        ));
    }
    Ok(factors)
}

impl ModelConfig {
    /// The 29.4M-parameter Qwen2 the benchmarks and the memory estimate's tests use (8 layers,
    /// hidden 512, 8 heads sharing 4 key/value heads, vocabulary 8192, tied embeddings).
    pub fn bench_29m() -> Self {
        ModelConfig {
            arch: Arch::Qwen2,
            vocab_size: 8192,
            hidden_size: 512,
            intermediate_size: 1536,
            num_layers: 8,
            num_heads: 8,
            num_kv_heads: 4,
            head_dim: 64,
            rms_norm_eps: 1e-6,
            rope_theta: 1e6,
            rope_scaling: None,
            rope_freq_factors: None,
            rope_interleaved: false,
            max_position_embeddings: 4096,
            tie_word_embeddings: true,
            qkv_bias: true,
            o_bias: false,
            mlp_bias: false,
            saved_dtype: Some("float32".into()),
            bos_token_id: None,
            eos_token_ids: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qwen_json() -> Value {
        json!({
            "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 8192,
            "hidden_size": 512, "intermediate_size": 1536, "num_hidden_layers": 8,
            "num_attention_heads": 8, "num_key_value_heads": 4, "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
            "eos_token_id": 151645, "max_position_embeddings": 32768
        })
    }

    #[test]
    fn reads_transformers_4_and_5_layouts() {
        let p = Path::new("config.json");
        let v4 = qwen_json();
        let c4 = ModelConfig::from_hf_json(p, &v4).unwrap();
        let mut v5 = qwen_json();
        let o = v5.as_object_mut().unwrap();
        o.remove("rope_theta");
        o.remove("torch_dtype");
        o.insert(
            "rope_parameters".into(),
            json!({"rope_theta": 1000000.0, "rope_type": "default"}),
        );
        o.insert("dtype".into(), json!("bfloat16"));
        let c5 = ModelConfig::from_hf_json(p, &v5).unwrap();
        assert_eq!(c4, c5);
        assert_eq!(c4.rope_theta, 1e6);
        assert_eq!(c4.head_dim, 64);
        assert!(c4.qkv_bias && !c4.o_bias);
        assert_eq!(c4.saved_dtype.as_deref(), Some("bfloat16"));
        // The 29.4M-parameter benchmark config of the engine issue.
        assert_eq!(c4.num_parameters(), 29_377_024);
    }

    #[test]
    fn rejects_unknown_architecture_by_name() {
        let mut v = qwen_json();
        v["model_type"] = json!("mamba");
        let err = ModelConfig::from_hf_json(Path::new("/m/config.json"), &v)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/m/config.json") && err.contains("mamba"), "{err}");
    }

    fn qwen3_json() -> Value {
        json!({
            "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "vocab_size": 256,
            "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32,
            "attention_bias": false, "use_sliding_window": false, "sliding_window": 4096,
            "tie_word_embeddings": true, "rope_theta": 1000000.0, "torch_dtype": "bfloat16"
        })
    }

    #[test]
    fn reads_qwen3_with_its_own_head_dim_and_no_bias() {
        let c = ModelConfig::from_hf_json(Path::new("c"), &qwen3_json()).unwrap();
        assert_eq!(c.arch, Arch::Qwen3);
        assert_eq!(c.head_dim, 32);
        assert!(!c.qkv_bias && !c.o_bias && c.arch.qk_norm());
        let back = ModelConfig::from_hf_json(Path::new("c"), &c.to_hf_json()).unwrap();
        assert_eq!(c, back);
    }

    #[test]
    fn refuses_mixture_of_experts_by_file_and_field() {
        let mut v = qwen3_json();
        v["model_type"] = json!("qwen3_moe");
        v["architectures"] = json!(["Qwen3MoeForCausalLM"]);
        v["num_experts"] = json!(8);
        let err = ModelConfig::from_hf_json(Path::new("/m/config.json"), &v)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/m/config.json") && err.contains("model_type") && err.contains("qwen3_moe"),
            "{err}"
        );
    }

    #[test]
    fn round_trips_through_json() {
        let c = ModelConfig::from_hf_json(Path::new("c"), &qwen_json()).unwrap();
        let back = ModelConfig::from_hf_json(Path::new("c"), &c.to_hf_json()).unwrap();
        assert_eq!(c, back);
    }
}
