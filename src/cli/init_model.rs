use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::model::init::{init_model, InitSpec, TemplateChoice};
use crate::model::Arch;

#[derive(Debug, Args)]
pub struct InitModelArgs {
    /// Architecture
    #[arg(long, value_parser = ["qwen2", "qwen3", "llama"])]
    arch: String,
    #[arg(long)]
    hidden: usize,
    #[arg(long)]
    layers: usize,
    #[arg(long)]
    heads: usize,
    #[arg(long)]
    kv_heads: usize,
    #[arg(long)]
    intermediate: usize,
    /// Width of an attention head (qwen3 only; default hidden / heads)
    #[arg(long)]
    head_dim: Option<usize>,
    /// tokenizer.json to ship with the model (its tokenizer_config.json is used when beside it)
    #[arg(long)]
    tokenizer: PathBuf,
    /// Output folder
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Embedding rows (default: the tokenizer's size rounded up to 64)
    #[arg(long)]
    vocab: Option<usize>,
    /// Tie the output head to the embedding
    #[arg(long)]
    tie_embeddings: bool,
    #[arg(long, default_value_t = 32768)]
    max_position_embeddings: usize,
    #[arg(long, default_value_t = 1_000_000.0)]
    rope_theta: f64,
    /// keep (the tokenizer's own, else qwen2.5), qwen2.5, chatml, or a .jinja file
    #[arg(long, default_value = "keep")]
    chat_template: String,
}

pub fn run(a: InitModelArgs) -> anyhow::Result<()> {
    let arch = Arch::parse(&a.arch).context("unknown architecture")?;
    let template = match a.chat_template.as_str() {
        "keep" => TemplateChoice::Keep,
        "qwen2.5" => TemplateChoice::Qwen25,
        "chatml" => TemplateChoice::ChatMl,
        path => TemplateChoice::File(PathBuf::from(path)),
    };
    let spec = InitSpec {
        arch,
        hidden: a.hidden,
        layers: a.layers,
        heads: a.heads,
        kv_heads: a.kv_heads,
        intermediate: a.intermediate,
        vocab: a.vocab,
        tie_embeddings: a.tie_embeddings,
        max_position_embeddings: a.max_position_embeddings,
        rope_theta: a.rope_theta,
        seed: a.seed,
        head_dim: a.head_dim,
    };
    let cfg = init_model(&spec, &a.tokenizer, &template, &a.out)
        .with_context(|| format!("creating a model in {}", a.out.display()))?;
    println!(
        "wrote {} ({} {:.2}M parameters, vocab {})",
        a.out.display(),
        cfg.arch.model_type(),
        cfg.num_parameters() as f64 / 1e6,
        cfg.vocab_size
    );
    Ok(())
}
