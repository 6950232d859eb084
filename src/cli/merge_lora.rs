//! `s1-studio merge-lora`: folds a peft LoRA adapter into its base model and writes a full
//! Hugging Face folder (config.json, model.safetensors, tokenizer files).

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::model::loader::adapter_base;
use crate::model::{load_model_with_adapter, LoadOptions};

#[derive(Debug, Args)]
pub struct MergeLoraArgs {
    /// The adapter folder (adapter_config.json + adapter_model.safetensors)
    #[arg(long)]
    adapter: PathBuf,
    /// The base model folder (default: the adapter's base_model_name_or_path)
    #[arg(long)]
    base: Option<PathBuf>,
    /// Where to write the merged model
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: MergeLoraArgs) -> anyhow::Result<()> {
    let base = match a.base {
        Some(b) => b,
        None => adapter_base(&a.adapter)?,
    };
    let opts = LoadOptions {
        dtype: Some(candle_core::DType::F32),
        ..Default::default()
    };
    let mut m = load_model_with_adapter(&base, &a.adapter, &opts)?;
    let params: HashMap<String, candle_core::Tensor> = m.decoder.parameters()?.into_iter().collect();
    crate::train::checkpoint::write_model_folder(&a.out, &base, "model.safetensors", &params, true, &[], None)
        .with_context(|| format!("writing {}", a.out.display()))?;
    println!(
        "merged {} into {}: {}",
        a.adapter.display(),
        base.display(),
        a.out.display()
    );
    Ok(())
}
