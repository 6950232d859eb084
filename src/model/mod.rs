//! Models: configuration, weights (safetensors, GGUF), the Llama-family decoder, tokenizer and
//! chat template, KV cache, LoRA, and the loader that puts them together. The compute below the
//! model (CPU matrix kernels, the training ops with their own backward, the CUDA launchers) is
//! in [`kernels`].

pub mod chat_template;
pub mod config;
mod config_check;
pub mod decoder;
mod decoder_batch_step;
pub mod decoder_cpu_prefill;
pub mod decoder_cpu_step;
pub mod device;
pub mod error;
pub mod gguf_check;
pub mod init;
pub mod kernels;
pub mod kv_cache;
mod linear;
pub mod lora;
mod params;
mod qk_norm;
pub mod thinking;
pub mod tokenizer;
mod tokenizer_spm;
mod weight_checks;
pub mod weights;

pub use config::{Arch, ModelConfig};
pub use decoder::{Decoder, Logits};
pub use device::{available_devices, parse_device, parse_dtype, DeviceChoice, DeviceInfo};
pub use error::ModelError;
pub use kv_cache::KvCache;
pub mod loader;

pub use chat_template::{ChatMessage, ChatTemplate};
pub use loader::{
    load_model, load_model_with_adapter, load_model_with_progress, load_text_side, LoadOptions, LoadProgress,
    LoadedModel, ModelFormat,
};
pub use thinking::{ThinkingKind, ThinkingStyle};
pub use tokenizer::TextTokenizer;

/// The index of the largest logit (the first of equals; NaN never wins): greedy decoding.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &v) in logits.iter().enumerate() {
        if v > best_v {
            best_v = v;
            best = i;
        }
    }
    best as u32
}
