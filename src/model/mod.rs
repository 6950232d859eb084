//! Models: configuration, weights (safetensors, GGUF), the Llama-family decoder, tokenizer and
//! chat template, and the loader that puts them together.

pub mod chat_template;
pub mod config;
pub mod cpu_decode;
pub mod cpu_gemv;
pub mod cpu_pool;
#[cfg(feature = "cuda")]
pub mod cuda_ops;
pub mod decoder;
pub mod device;
pub mod error;
pub mod gemm;
pub mod grad_attention;
pub mod grad_block;
pub mod grad_linear;
pub mod grad_ops;
pub mod init;
pub mod kv_cache;
pub mod lora;
pub mod op_profile;
mod params;
pub mod tokenizer;
pub mod vmath;
pub mod weights;

pub use config::{Arch, ModelConfig};
pub use decoder::{Decoder, Logits};
pub use device::{available_devices, parse_device, parse_dtype, DeviceChoice, DeviceInfo};
pub use error::ModelError;
pub use kv_cache::KvCache;
pub mod loader;

pub use chat_template::{ChatMessage, ChatTemplate};
pub use loader::{
    load_model, load_model_with_adapter, load_model_with_progress, LoadOptions, LoadProgress, LoadedModel, ModelFormat,
};
pub use tokenizer::TextTokenizer;
