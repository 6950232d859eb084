//! `s1-studio serve`: the OpenAI-compatible server ([`crate::serve`]).

use std::path::PathBuf;

use clap::Args;

use crate::model::{parse_dtype, DeviceChoice, LoadOptions};
use crate::serve::engine::EngineOptions;
use crate::serve::ServeOptions;

#[derive(Args)]
pub struct ServeArgs {
    /// A Hugging Face model folder or a .gguf file
    #[arg(long)]
    model: PathBuf,
    /// cpu, cuda or cuda:N
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// auto (f32 on CPU, bf16 on CUDA), f32, bf16, f16
    #[arg(long, default_value = "auto")]
    dtype: String,
    /// The address to listen on; other than loopback only with --api-key
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The port (0: any free one; the one taken is printed)
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Clients must send `Authorization: Bearer <key>`. A key given here shows in the process
    /// list: prefer S1_API_KEY or --api-key-file
    #[arg(long, env = "S1_API_KEY", hide_env_values = true, conflicts_with = "api_key_file")]
    api_key: Option<String>,
    /// Read the API key from this file (its first line; the file should be readable by you only)
    #[arg(long)]
    api_key_file: Option<std::path::PathBuf>,
    /// Requests decoded together (continuous batching); more wait in the queue
    #[arg(long, default_value_t = 16)]
    parallel: usize,
    /// Requests that may wait for a slot; past it a request gets 503
    #[arg(long, default_value_t = 1024)]
    queue: usize,
    /// Context per request in tokens (prompt + output; default: the model's)
    #[arg(long)]
    ctx: Option<usize>,
    /// The most `max_tokens` a request may ask (also its default)
    #[arg(long, default_value_t = 4096)]
    max_tokens_limit: usize,
    /// The largest request body in bytes
    #[arg(long, default_value_t = 1 << 20)]
    body_limit: usize,
}

impl std::fmt::Debug for ServeArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeArgs")
            .field("model", &self.model)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// The key from --api-key-file: its first line, trimmed; an empty or unreadable file is an error
/// naming it.
fn key_from_file(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("--api-key-file {}: {e}", path.display()))?;
    let key = text.lines().next().unwrap_or_default().trim().to_string();
    if key.is_empty() {
        anyhow::bail!("--api-key-file {}: the file's first line is empty", path.display());
    }
    Ok(key)
}

pub fn run(a: ServeArgs) -> anyhow::Result<()> {
    let api_key = match &a.api_key_file {
        Some(p) => Some(key_from_file(p)?),
        None => a.api_key,
    };
    let opts = ServeOptions {
        engine: EngineOptions {
            model: a.model,
            load: LoadOptions {
                device: a.device.open()?,
                dtype: parse_dtype(&a.dtype)?,
                dequantize: false,
            },
            parallel: a.parallel.max(1),
            queue: a.queue.max(1),
            context: a.ctx,
            max_tokens_limit: a.max_tokens_limit.max(1),
        },
        host: a.host,
        port: a.port,
        api_key,
        body_limit: a.body_limit,
    };
    crate::serve::run(opts)
}
