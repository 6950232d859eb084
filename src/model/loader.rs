//! Loading a whole model: a Hugging Face folder or a `.gguf` file -> decoder, tokenizer, template.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};

use super::chat_template::{ChatTemplate, CHATML_TEMPLATE};
use super::config::ModelConfig;
use super::decoder::Decoder;
use super::error::{ModelError, Result};
use super::thinking::ThinkingStyle;
use super::tokenizer::TextTokenizer;
use super::weights::{GgufWeights, SafetensorsWeights};

/// The file layout a model came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    HfFolder,
    Gguf,
}

/// A model ready to generate: decoder, tokenizer and chat template.
pub struct LoadedModel {
    pub decoder: Decoder,
    pub tokenizer: TextTokenizer,
    pub template: ChatTemplate,
    /// True when the model shipped no chat template and plain ChatML stands in.
    pub template_is_fallback: bool,
    /// How the model thinks, detected once at load from its template and tokenizer.
    pub thinking: ThinkingStyle,
    pub path: PathBuf,
    pub format: ModelFormat,
}

/// How to load: where to compute and in which dtype (`None`: f32 on CPU, bf16 on CUDA).
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub device: Device,
    pub dtype: Option<DType>,
    /// GGUF only: dequantize the weights instead of multiplying them quantized.
    pub dequantize: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            dtype: None,
            dequantize: false,
        }
    }
}

impl LoadOptions {
    fn dtype(&self) -> DType {
        self.dtype
            .unwrap_or(if self.device.is_cpu() { DType::F32 } else { DType::BF16 })
    }
}

/// How far a load has come: a fraction in 0..=1 and what is happening.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadProgress {
    pub fraction: f32,
    pub stage: String,
}

/// Loads a Hugging Face model folder or a GGUF file.
pub fn load_model(path: &Path, opts: &LoadOptions) -> Result<LoadedModel> {
    load_model_with_progress(path, opts, &mut |_| {})
}

/// As [`load_model`], reporting progress as the layers load.
pub fn load_model_with_progress(
    path: &Path,
    opts: &LoadOptions,
    progress: &mut dyn FnMut(LoadProgress),
) -> Result<LoadedModel> {
    if !path.exists() {
        return Err(ModelError::MissingFile {
            path: path.to_path_buf(),
            hint: " (give a Hugging Face model folder or a .gguf file)".into(),
        });
    }
    progress(LoadProgress {
        fraction: 0.0,
        stage: "reading configuration and tokenizer".into(),
    });
    let mut layers = |done: usize, total: usize| {
        progress(LoadProgress {
            fraction: 0.05 + 0.95 * done as f32 / total.max(1) as f32,
            stage: format!("loading layer {done} of {total}"),
        })
    };
    if path.is_dir() && path.join("adapter_config.json").exists() && !path.join("config.json").exists() {
        load_adapter_folder(path, opts, &mut layers)
    } else if path.is_dir() {
        load_hf_folder(path, opts, &mut layers)
    } else {
        load_gguf(path, opts, &mut layers)
    }
}

/// A model's text side without its weights: tokenizer, chat template (or the ChatML fallback)
/// and thinking style. Budget forcing over an endpoint renders prompts and counts tokens with
/// it, as s1's lm-eval runs do with their `tokenizer=` argument. A GGUF file's header and
/// metadata are read, not its tensors.
pub fn load_text_side(path: &Path) -> Result<(TextTokenizer, ChatTemplate, ThinkingStyle)> {
    if !path.exists() {
        return Err(ModelError::MissingFile {
            path: path.to_path_buf(),
            hint: " (give the model's Hugging Face folder or .gguf file for its tokenizer and template)".into(),
        });
    }
    let (tokenizer, source) = if path.is_dir() {
        TextTokenizer::from_hf_folder(path)?
    } else {
        let mut file =
            std::fs::File::open(path).map_err(|e| ModelError::Tokenizer(format!("{}: {e}", path.display())))?;
        let content = candle_core::quantized::gguf_file::Content::read(&mut file)
            .map_err(|e| ModelError::Tokenizer(format!("{}: not a GGUF file ({e})", path.display())))?;
        let tokenizer = TextTokenizer::from_gguf(path, &content.metadata)?;
        let source = content
            .metadata
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .cloned();
        (tokenizer, source)
    };
    let (template, _) = template_or_fallback(source, &tokenizer)?;
    let thinking = ThinkingStyle::detect(&template, &tokenizer);
    Ok((tokenizer, template, thinking))
}

fn check_vocab(path: &Path, tokenizer: &TextTokenizer, cfg: &ModelConfig) -> Result<()> {
    let needed = tokenizer.max_token_id as usize + 1;
    if needed > cfg.vocab_size {
        return Err(ModelError::VocabMismatch {
            path: path.to_path_buf(),
            tokenizer: needed,
            embedding: cfg.vocab_size,
        });
    }
    Ok(())
}

fn template_or_fallback(source: Option<String>, tok: &TextTokenizer) -> Result<(ChatTemplate, bool)> {
    let (bos, eos) = (tok.special.bos.as_deref(), tok.special.eos.as_deref());
    Ok(match source {
        Some(s) => (ChatTemplate::new(&s, bos, eos)?, false),
        None => (ChatTemplate::new(CHATML_TEMPLATE, bos, eos)?, true),
    })
}

fn load_hf_folder(folder: &Path, opts: &LoadOptions, layers: &mut dyn FnMut(usize, usize)) -> Result<LoadedModel> {
    let mut cfg = ModelConfig::from_hf_file(&folder.join("config.json"))?;
    let (mut tokenizer, template) = TextTokenizer::from_hf_folder(folder)?;
    check_vocab(&folder.join("tokenizer.json"), &tokenizer, &cfg)?;
    for id in &cfg.eos_token_ids {
        if !tokenizer.special.eos_ids.contains(id) {
            tokenizer.special.eos_ids.push(*id);
        }
    }
    cfg.eos_token_ids = tokenizer.special.eos_ids.clone();
    cfg.check_token_ids(&folder.join("config.json"))?;
    let dtype = opts.dtype();
    let mut weights = SafetensorsWeights::open(folder, dtype, &opts.device)?;
    cfg.check_against_bytes(&folder.join("config.json"), weights.total_bytes())?;
    let decoder = Decoder::load_with_progress(&cfg, &mut weights, dtype, &opts.device, layers)?;
    let (template, template_is_fallback) = template_or_fallback(template, &tokenizer)?;
    let thinking = ThinkingStyle::detect(&template, &tokenizer);
    Ok(LoadedModel {
        decoder,
        tokenizer,
        template,
        template_is_fallback,
        thinking,
        path: folder.to_path_buf(),
        format: ModelFormat::HfFolder,
    })
}

/// Where an adapter's base model is: `base_model_name_or_path`, relative to the adapter folder
/// when it is a relative path that exists there.
pub fn adapter_base(adapter: &Path) -> Result<std::path::PathBuf> {
    let cfg = super::lora::LoraConfig::read(adapter)?;
    let conf = adapter.join("adapter_config.json");
    let Some(base) = cfg.base_model_name_or_path.filter(|b| !b.is_empty()) else {
        return Err(ModelError::bad(
            &conf,
            "no base_model_name_or_path: give the base model folder",
        ));
    };
    let rel = adapter.join(&base);
    let p = if rel.join("config.json").exists() {
        rel
    } else {
        base.clone().into()
    };
    if !p.join("config.json").exists() {
        return Err(ModelError::MissingFile {
            path: p,
            hint: format!(
                " (the base model named in {}; it must be a local Hugging Face folder)",
                conf.display()
            ),
        });
    }
    Ok(p)
}

/// A peft LoRA adapter folder: its base model, with the adapter merged into the weights.
fn load_adapter_folder(dir: &Path, opts: &LoadOptions, layers: &mut dyn FnMut(usize, usize)) -> Result<LoadedModel> {
    let base = adapter_base(dir)?;
    let mut m = load_hf_folder(&base, opts, layers)?;
    m.decoder.load_lora(dir)?;
    m.decoder.merge_lora()?;
    m.path = dir.to_path_buf();
    Ok(m)
}

/// A base model with a peft adapter merged in (the adapter's own base path is not consulted).
pub fn load_model_with_adapter(base: &Path, adapter: &Path, opts: &LoadOptions) -> Result<LoadedModel> {
    let mut m = load_hf_folder(base, opts, &mut |_, _| {})?;
    m.decoder.load_lora(adapter)?;
    m.decoder.merge_lora()?;
    Ok(m)
}

fn load_gguf(path: &Path, opts: &LoadOptions, layers: &mut dyn FnMut(usize, usize)) -> Result<LoadedModel> {
    let dtype = opts.dtype();
    let mut weights = GgufWeights::open(path, dtype, &opts.device)?;
    weights.dequantize = opts.dequantize;
    let cfg = ModelConfig::from_gguf(path, &weights.content)?;
    let tokenizer = TextTokenizer::from_gguf(path, &weights.content.metadata)?;
    check_vocab(path, &tokenizer, &cfg)?;
    cfg.check_token_ids(path)?;
    cfg.check_against_bytes(
        path,
        std::fs::metadata(path).map_err(|e| ModelError::bad(path, e))?.len(),
    )?;
    let template = weights
        .meta("tokenizer.chat_template")
        .and_then(|v| v.to_string().ok())
        .cloned();
    let decoder = Decoder::load_with_progress(&cfg, &mut weights, dtype, &opts.device, layers)?;
    let (template, template_is_fallback) = template_or_fallback(template, &tokenizer)?;
    let thinking = ThinkingStyle::detect(&template, &tokenizer);
    Ok(LoadedModel {
        decoder,
        tokenizer,
        template,
        template_is_fallback,
        thinking,
        path: path.to_path_buf(),
        format: ModelFormat::Gguf,
    })
}
