//! `init-model`: a randomly initialised Hugging Face model folder (weights ~ N(0, 0.02), norms 1,
//! biases 0, as transformers initialises), for tests and for training from scratch.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

use super::chat_template::{CHATML_TEMPLATE, QWEN25_TEMPLATE};
use super::config::{Arch, ModelConfig};
use super::error::{ModelError, Result};

/// The shape of the model to create.
#[derive(Debug, Clone)]
pub struct InitSpec {
    pub arch: Arch,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub intermediate: usize,
    /// Embedding rows; `None`: the tokenizer's size rounded up to a multiple of 64.
    pub vocab: Option<usize>,
    pub tie_embeddings: bool,
    pub max_position_embeddings: usize,
    pub rope_theta: f64,
    pub seed: u64,
    /// Width of an attention head; `None`: hidden / heads. Qwen3 sets it apart.
    pub head_dim: Option<usize>,
}

/// Which chat template the new folder's tokenizer_config.json carries.
#[derive(Debug, Clone)]
pub enum TemplateChoice {
    /// The one in the tokenizer_config.json beside the tokenizer, else Qwen2.5's.
    Keep,
    Qwen25,
    ChatMl,
    File(PathBuf),
}

impl InitSpec {
    fn config(&self, vocab: usize, eos: Vec<u32>) -> Result<ModelConfig> {
        let p = Path::new("init-model");
        if self.heads == 0 || self.kv_heads == 0 || !self.heads.is_multiple_of(self.kv_heads) {
            return Err(ModelError::bad(
                p,
                format!(
                    "--heads {} must be a multiple of --kv-heads {}",
                    self.heads, self.kv_heads
                ),
            ));
        }
        let head_dim = match self.head_dim {
            Some(d) if d == 0 || !d.is_multiple_of(2) => {
                return Err(ModelError::bad(p, format!("--head-dim {d} must be even and above 0")))
            }
            Some(_) if !self.arch.qk_norm() => {
                return Err(ModelError::bad(
                    p,
                    format!(
                        "--head-dim is for qwen3; {} uses hidden / heads",
                        self.arch.model_type()
                    ),
                ))
            }
            Some(d) => d,
            None => {
                if !self.hidden.is_multiple_of(self.heads) || !(self.hidden / self.heads).is_multiple_of(2) {
                    return Err(ModelError::bad(
                        p,
                        format!(
                            "--hidden {} must split into {} heads of even size",
                            self.hidden, self.heads
                        ),
                    ));
                }
                self.hidden / self.heads
            }
        };
        Ok(ModelConfig {
            arch: self.arch,
            vocab_size: vocab,
            hidden_size: self.hidden,
            intermediate_size: self.intermediate,
            num_layers: self.layers,
            num_heads: self.heads,
            num_kv_heads: self.kv_heads,
            head_dim,
            rms_norm_eps: 1e-6,
            rope_theta: self.rope_theta,
            rope_scaling: None,
            rope_freq_factors: None,
            rope_interleaved: false,
            max_position_embeddings: self.max_position_embeddings,
            tie_word_embeddings: self.tie_embeddings,
            qkv_bias: self.arch == Arch::Qwen2,
            o_bias: false,
            mlp_bias: false,
            saved_dtype: Some("float32".into()),
            bos_token_id: None,
            eos_token_ids: eos,
        })
    }
}

/// Random tensors for every weight of `cfg`, by Hugging Face name.
pub fn random_weights(cfg: &ModelConfig, seed: u64) -> Result<HashMap<String, Tensor>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let normal = Normal::new(0.0f32, 0.02).map_err(|e| ModelError::bad("init-model", e))?;
    let mut out = HashMap::new();
    let mut randn = |shape: &[usize]| -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| normal.sample(&mut rng)).collect();
        Ok(Tensor::from_vec(v, shape, &Device::Cpu)?)
    };
    let ones = |n: usize| Tensor::ones(n, DType::F32, &Device::Cpu);
    let zeros = |n: usize| Tensor::zeros(n, DType::F32, &Device::Cpu);
    let (h, i, d) = (cfg.hidden_size, cfg.intermediate_size, cfg.head_dim);
    let (q, kv) = (cfg.num_heads * d, cfg.num_kv_heads * d);
    out.insert("model.embed_tokens.weight".to_string(), randn(&[cfg.vocab_size, h])?);
    for l in 0..cfg.num_layers {
        let p = format!("model.layers.{l}");
        for (name, o, inp) in [("q_proj", q, h), ("k_proj", kv, h), ("v_proj", kv, h), ("o_proj", h, q)] {
            out.insert(format!("{p}.self_attn.{name}.weight"), randn(&[o, inp])?);
            if cfg.qkv_bias && name != "o_proj" {
                out.insert(format!("{p}.self_attn.{name}.bias"), zeros(o)?);
            }
        }
        for (name, o, inp) in [("gate_proj", i, h), ("up_proj", i, h), ("down_proj", h, i)] {
            out.insert(format!("{p}.mlp.{name}.weight"), randn(&[o, inp])?);
        }
        if cfg.arch.qk_norm() {
            out.insert(format!("{p}.self_attn.q_norm.weight"), ones(d)?);
            out.insert(format!("{p}.self_attn.k_norm.weight"), ones(d)?);
        }
        out.insert(format!("{p}.input_layernorm.weight"), ones(h)?);
        out.insert(format!("{p}.post_attention_layernorm.weight"), ones(h)?);
    }
    out.insert("model.norm.weight".into(), ones(h)?);
    if !cfg.tie_word_embeddings {
        out.insert("lm_head.weight".into(), randn(&[cfg.vocab_size, h])?);
    }
    Ok(out)
}

/// Writes config.json and model.safetensors (no tokenizer): enough for the decoder alone.
pub fn write_weights(cfg: &ModelConfig, seed: u64, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| ModelError::bad(out, e))?;
    let cfg_path = out.join("config.json");
    let text = serde_json::to_string_pretty(&cfg.to_hf_json()).map_err(|e| ModelError::bad(&cfg_path, e))?;
    std::fs::write(&cfg_path, text).map_err(|e| ModelError::bad(&cfg_path, e))?;
    let weights = random_weights(cfg, seed)?;
    let st = out.join("model.safetensors");
    super::weights::save_safetensors(&weights, &st)?;
    Ok(())
}

/// Creates a complete model folder: config, random weights, tokenizer files, generation config.
pub fn init_model(spec: &InitSpec, tokenizer: &Path, template: &TemplateChoice, out: &Path) -> Result<ModelConfig> {
    let tok = tokenizers::Tokenizer::from_file(tokenizer)
        .map_err(|e| ModelError::bad(tokenizer, format!("not a readable tokenizer.json: {e}")))?;
    let max_id = tok.get_vocab(true).values().copied().max().unwrap_or(0) as usize;
    let vocab = match spec.vocab {
        Some(v) if v <= max_id => {
            return Err(ModelError::VocabMismatch {
                path: tokenizer.to_path_buf(),
                tokenizer: max_id + 1,
                embedding: v,
            })
        }
        Some(v) => v,
        None => (max_id + 1).div_ceil(64) * 64,
    };
    // tokenizer_config.json: the one beside the tokenizer, else a minimal one.
    let beside = tokenizer.with_file_name("tokenizer_config.json");
    let mut tcfg: serde_json::Value = if beside.exists() {
        let text = std::fs::read_to_string(&beside).map_err(|e| ModelError::bad(&beside, e))?;
        serde_json::from_str(&text).map_err(|e| ModelError::bad(&beside, format!("not valid JSON: {e}")))?
    } else {
        serde_json::json!({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "add_bos_token": false})
    };
    let chat_template = match template {
        TemplateChoice::Keep => tcfg
            .get("chat_template")
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| QWEN25_TEMPLATE.to_string()),
        TemplateChoice::Qwen25 => QWEN25_TEMPLATE.to_string(),
        TemplateChoice::ChatMl => CHATML_TEMPLATE.to_string(),
        TemplateChoice::File(p) => std::fs::read_to_string(p).map_err(|e| ModelError::bad(p, e))?,
    };
    tcfg["chat_template"] = serde_json::Value::String(chat_template);
    let eos_name = tcfg
        .get("eos_token")
        .and_then(|e| e.as_str())
        .unwrap_or("<|im_end|>")
        .to_string();
    let eos: Vec<u32> = tok.token_to_id(&eos_name).into_iter().collect();
    let cfg = spec.config(vocab, eos.clone())?;
    write_weights(&cfg, spec.seed, out)?;
    let dst = out.join("tokenizer.json");
    std::fs::copy(tokenizer, &dst).map_err(|e| ModelError::bad(&dst, e))?;
    let write_json = |name: &str, v: &serde_json::Value| -> Result<()> {
        let p = out.join(name);
        let text = serde_json::to_string_pretty(v).map_err(|e| ModelError::bad(&p, e))?;
        std::fs::write(&p, text).map_err(|e| ModelError::bad(&p, e))
    };
    write_json("tokenizer_config.json", &tcfg)?;
    write_json(
        "generation_config.json",
        &serde_json::json!({"eos_token_id": eos, "do_sample": false}),
    )?;
    Ok(cfg)
}
