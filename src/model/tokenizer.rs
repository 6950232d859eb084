//! The text tokenizer: a Hugging Face `tokenizer.json` (with `tokenizer_config.json` and
//! `generation_config.json` beside it), or a byte-level BPE or SentencePiece vocabulary rebuilt
//! from GGUF metadata so that a lone `.gguf` file chats.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use super::error::{ModelError, Result};

/// Special tokens the engine needs, resolved to ids.
#[derive(Debug, Clone, Default)]
pub struct SpecialTokens {
    pub bos: Option<String>,
    pub eos: Option<String>,
    pub pad: Option<String>,
    /// Every id that ends a turn: `eos_token`, generation_config's `eos_token_id`s.
    pub eos_ids: Vec<u32>,
    /// Whether the BOS token is prepended to prompts that the template does not start with it.
    pub add_bos: bool,
}

/// A tokenizer plus what the engine needs to know about its special tokens.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    pub special: SpecialTokens,
    /// The highest id the tokenizer knows; logits above it are never sampled.
    pub max_token_id: u32,
    /// The longest vocabulary entry, in characters (bounds the text a token can cover).
    max_token_chars: usize,
}

/// Reads `tokenizer.json` through a JSON value first: the tokenizers crate panics (`expect`) on
/// some malformed JSON inside its decoder section (found by the `tokenizer` fuzz target), so the
/// syntax is checked here and only a well-formed value reaches it.
fn read_tokenizer_json(path: &Path) -> Result<Tokenizer> {
    let bytes = std::fs::read(path).map_err(|e| ModelError::bad(path, e))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| ModelError::bad(path, format!("not valid JSON: {e}")))?;
    check_json_merges(&v["model"]).map_err(|e| ModelError::bad(path, e))?;
    serde_json::from_value(v).map_err(|e| ModelError::bad(path, format!("not a readable tokenizer: {e}")))
}

/// The tokenizers crate (0.23) builds each BPE merge `a b` into a buffer as long as the longest
/// vocabulary entry, and panics (slice out of range) where `a` and `b` joined are longer than
/// that, or where `b` is shorter than the continuing-subword prefix it strips (found by the
/// `tokenizer` fuzz target). Such a merge can never name a vocabulary entry, so it is an error
/// here, named, before the crate sees it.
fn check_merges<'a>(
    merges: impl Iterator<Item = (&'a str, &'a str)>,
    longest: usize,
    prefix_len: usize,
) -> std::result::Result<(), String> {
    for (i, (a, b)) in merges.enumerate() {
        if b.len() < prefix_len {
            return Err(format!(
                "merge {i} (`{a}` `{b}`): `{b}` is shorter than the continuing-subword prefix ({prefix_len} bytes)"
            ));
        }
        if a.len() + b.len() - prefix_len > longest {
            return Err(format!(
                "merge {i} (`{a}` `{b}`) joins into a token longer than any in the vocabulary ({longest} bytes)"
            ));
        }
    }
    Ok(())
}

/// `check_merges` on a tokenizer.json's `model` section (merges written as "a b" or ["a", "b"]).
fn check_json_merges(model: &Value) -> std::result::Result<(), String> {
    let (Some(vocab), Some(merges)) = (model["vocab"].as_object(), model["merges"].as_array()) else {
        return Ok(());
    };
    let longest = vocab.keys().map(|k| k.len()).max().unwrap_or(0);
    let prefix_len = model["continuing_subword_prefix"].as_str().map_or(0, str::len);
    let pairs = merges.iter().filter_map(|m| match m {
        Value::String(s) => s.split_once(' '),
        Value::Array(ab) if ab.len() == 2 => ab[0].as_str().zip(ab[1].as_str()),
        _ => None,
    });
    check_merges(pairs, longest, prefix_len).map_err(|e| format!("model: {e}"))
}

/// The content of an added-token entry, which config files write as a string or an object.
fn token_content(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(|c| c.as_str()).map(str::to_string),
        _ => None,
    }
}

impl TextTokenizer {
    fn wrap(inner: Tokenizer, mut special: SpecialTokens) -> Self {
        let vocab = inner.get_vocab(true);
        let max_token_id = vocab.values().copied().max().unwrap_or(0);
        let max_token_chars = vocab.keys().map(|t| t.chars().count()).max().unwrap_or(1).max(1);
        if let Some(id) = special.eos.as_deref().and_then(|e| inner.token_to_id(e)) {
            if !special.eos_ids.contains(&id) {
                special.eos_ids.insert(0, id);
            }
        }
        Self {
            inner,
            special,
            max_token_id,
            max_token_chars,
        }
    }

    /// The most characters of text that `tokens` tokens can cover: text past it cannot fit
    /// in `tokens` and need not be encoded (a vocabulary entry covers at most
    /// `max_token_chars` characters of input; doubled for normalisers and byte fallbacks).
    pub fn chars_for_tokens(&self, tokens: usize) -> usize {
        tokens
            .saturating_add(16)
            .saturating_mul(self.max_token_chars)
            .saturating_mul(2)
    }

    /// Loads `tokenizer.json` from a model folder, with `tokenizer_config.json` (special tokens)
    /// and `generation_config.json` (eos ids) when present.
    pub fn from_hf_folder(folder: &Path) -> Result<(Self, Option<String>)> {
        let tok_path = folder.join("tokenizer.json");
        if !tok_path.exists() {
            return Err(ModelError::MissingFile {
                path: tok_path,
                hint: " (the model folder needs its tokenizer)".into(),
            });
        }
        let inner = read_tokenizer_json(&tok_path)?;
        let mut special = SpecialTokens::default();
        let mut template = None;
        let cfg_path = folder.join("tokenizer_config.json");
        if cfg_path.exists() {
            let cfg = read_json(&cfg_path)?;
            special.bos = token_content(cfg.get("bos_token"));
            special.eos = token_content(cfg.get("eos_token"));
            special.pad = token_content(cfg.get("pad_token"));
            special.add_bos = cfg.get("add_bos_token").and_then(|v| v.as_bool()).unwrap_or(false);
            template = match cfg.get("chat_template") {
                Some(Value::String(s)) => Some(s.clone()),
                // Several named templates: take "default".
                Some(Value::Array(list)) => list
                    .iter()
                    .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                    .or_else(|| list.first())
                    .and_then(|t| t.get("template"))
                    .and_then(|t| t.as_str())
                    .map(str::to_string),
                _ => None,
            };
        }
        let jinja = folder.join("chat_template.jinja");
        if template.is_none() && jinja.exists() {
            template = Some(std::fs::read_to_string(&jinja).map_err(|e| ModelError::bad(&jinja, e))?);
        }
        let gen_path = folder.join("generation_config.json");
        if gen_path.exists() {
            let gen = read_json(&gen_path)?;
            special.eos_ids = super::config::token_ids(gen.get("eos_token_id"));
        }
        Ok((Self::wrap(inner, special), template))
    }

    /// Rebuilds the tokenizer stored in GGUF metadata (`tokenizer.ggml.*`): byte-level BPE
    /// (`gpt2`: Qwen, Llama 3, SmolLM, DeepSeek distills) or SentencePiece (`llama`: Llama 2,
    /// Mistral v0.1, Phi-3).
    pub fn from_gguf(path: &Path, meta: &HashMap<String, candle_core::quantized::gguf_file::Value>) -> Result<Self> {
        use candle_core::quantized::gguf_file::Value as G;
        let get = |k: &str| meta.get(k);
        let model = get("tokenizer.ggml.model")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if model != "gpt2" && model != "llama" {
            return Err(ModelError::unsupported(
                path,
                format!(
                    "GGUF tokenizer model `{model}` (metadata `tokenizer.ggml.model`): supported are `gpt2` \
                     (byte-level BPE) and `llama` (SentencePiece)"
                ),
            ));
        }
        let strings = |k: &str| -> Result<Vec<String>> {
            let list = get(k)
                .and_then(|v| v.to_vec().ok())
                .ok_or_else(|| ModelError::bad(path, format!("metadata `{k}` is missing")))?;
            list.iter()
                .map(|v| {
                    v.to_string()
                        .cloned()
                        .map_err(|_| ModelError::bad(path, format!("`{k}` holds a non-string")))
                })
                .collect()
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let types: Vec<i64> = match get("tokenizer.ggml.token_type").and_then(|v| v.to_vec().ok()) {
            Some(list) => list
                .iter()
                .map(|v| match v {
                    G::I32(x) => *x as i64,
                    G::U32(x) => *x as i64,
                    G::I8(x) => *x as i64,
                    G::U8(x) => *x as i64,
                    _ => 1,
                })
                .collect(),
            None => vec![1; tokens.len()],
        };
        let mut inner = if model == "llama" {
            let scores: Vec<f32> = get("tokenizer.ggml.scores")
                .and_then(|v| v.to_vec().ok())
                .ok_or_else(|| ModelError::bad(path, "metadata `tokenizer.ggml.scores` is missing"))?
                .iter()
                .map(|v| v.to_f32().unwrap_or(0.0))
                .collect();
            let add_space_prefix = get("tokenizer.ggml.add_space_prefix")
                .and_then(|v| v.to_bool().ok())
                .unwrap_or(true);
            super::tokenizer_spm::spm_tokenizer(path, &tokens, &scores, &types, add_space_prefix)?
        } else {
            let merges: Vec<(String, String)> = strings("tokenizer.ggml.merges")?
                .into_iter()
                .map(|m| match m.split_once(' ') {
                    Some((a, b)) => Ok((a.to_string(), b.to_string())),
                    None => Err(ModelError::bad(path, format!("merge `{m}` is not two tokens"))),
                })
                .collect::<Result<_>>()?;
            let longest = tokens.iter().map(|t| t.len()).max().unwrap_or(0);
            check_merges(merges.iter().map(|(a, b)| (a.as_str(), b.as_str())), longest, 0)
                .map_err(|e| ModelError::bad(path, format!("metadata `tokenizer.ggml.merges`: {e}")))?;
            let vocab: tokenizers::models::bpe::Vocab =
                tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
            let pre = get("tokenizer.ggml.pre")
                .and_then(|v| v.to_string().ok())
                .cloned()
                .unwrap_or_default();
            let bpe = BPE::builder()
                .vocab_and_merges(vocab, merges)
                // llama.cpp takes a pre-tokenized word that is itself a token whole for Llama 3's
                // vocabulary (its `ignore_merges`, as Llama 3's tokenizer.json says): " Việt" is
                // one token there, not the three its merges would give.
                .ignore_merges(ignores_merges(&pre))
                .build()
                .map_err(|e| ModelError::bad(path, format!("GGUF tokenizer: {e}")))?;
            let mut inner = Tokenizer::new(bpe);
            inner.with_pre_tokenizer(Some(pre_tokenizer(&pre).map_err(|e| ModelError::bad(path, e))?));
            inner.with_decoder(Some(ByteLevel::default()));
            inner
        };
        // Control (3) and user-defined (4) tokens are matched whole, before BPE.
        let added: Vec<AddedToken> = tokens
            .iter()
            .zip(types.iter())
            .filter(|(_, &t)| t == 3 || t == 4)
            .map(|(tok, &t)| AddedToken::from(tok.clone(), t == 3))
            .collect();
        inner
            .add_special_tokens(added)
            .map_err(|e| ModelError::bad(path, format!("GGUF tokenizer: {e}")))?;
        let id = |k: &str| get(k).and_then(|v| v.to_u32().ok());
        let name = |i: Option<u32>| i.and_then(|i| tokens.get(i as usize).cloned());
        let eos_id = id("tokenizer.ggml.eos_token_id");
        let special = SpecialTokens {
            bos: name(id("tokenizer.ggml.bos_token_id")),
            eos: name(eos_id),
            pad: name(id("tokenizer.ggml.padding_token_id")),
            eos_ids: eos_id.into_iter().collect(),
            add_bos: get("tokenizer.ggml.add_bos_token")
                .and_then(|v| v.to_bool().ok())
                .unwrap_or(false),
        };
        Ok(Self::wrap(inner, special))
    }

    /// Encodes text; special-token strings in it (`<|im_start|>`) become their ids.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Encodes a prompt: [`encode`](Self::encode) with the BOS token first when the tokenizer
    /// asks for one (a GGUF's `tokenizer.ggml.add_bos_token`, a folder's `add_bos_token`), as
    /// the engine and an endpoint's token-id prompts both need it.
    pub fn encode_with_bos(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = self.encode(text)?;
        if self.special.add_bos {
            if let Some(bos) = self.special.bos.as_deref().and_then(|b| self.token_to_id(b)) {
                if ids.first() != Some(&bos) {
                    ids.insert(0, bos);
                }
            }
        }
        Ok(ids)
    }

    /// Decodes ids, special tokens included.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, false)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }
}

/// Whether llama.cpp's BPE for this `tokenizer.ggml.pre` keeps whole words found in the
/// vocabulary (llama-vocab.cpp sets `ignore_merges` for these).
fn ignores_merges(pre: &str) -> bool {
    matches!(pre, "llama-bpe" | "llama3" | "llama-v3")
}

/// The pre-tokenizer llama.cpp names by `tokenizer.ggml.pre`.
fn pre_tokenizer(pre: &str) -> std::result::Result<PreTokenizerWrapper, String> {
    const QWEN2: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    const LLAMA3: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    let split = |re: &str| -> std::result::Result<PreTokenizerWrapper, String> {
        let s = Split::new(SplitPattern::Regex(re.into()), SplitDelimiterBehavior::Isolated, false)
            .map_err(|e| e.to_string())?;
        Ok(PreTokenizerWrapper::Sequence(Sequence::new(vec![
            s.into(),
            ByteLevel::new(false, false, false).into(),
        ])))
    };
    match pre {
        "qwen2" | "deepseek-r1-qwen" => split(QWEN2),
        "llama-bpe" | "llama3" | "llama-v3" | "smaug-bpe" => split(LLAMA3),
        // SmolLM and StarCoder: digits one by one, then GPT-2's byte-level regex.
        "smollm" | "starcoder" | "refact" => Ok(PreTokenizerWrapper::Sequence(Sequence::new(vec![
            Digits::new(true).into(),
            ByteLevel::new(false, false, true).into(),
        ]))),
        _ => Ok(ByteLevel::new(false, false, true).into()),
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::bad(path, e))?;
    serde_json::from_str(&text).map_err(|e| ModelError::bad(path, format!("not valid JSON: {e}")))
}
