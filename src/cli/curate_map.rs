//! `s1-studio curate map` (its options, `--use` to show another stored embedder's map and
//! `--list` to list them; the step itself runs through `curate::steps::run` like every other) and `s1-studio curate coverage`: the coverage of each stored selection on the
//! pool's map, as a table, so s1's sampler and its ablations (random, diverse, longest) can be
//! compared.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use crate::curate::map::model_embed::MAX_TOKENS;
use crate::curate::steps::map::{coverage_table, MapEmbedder, MapOptions};
use crate::curate::steps::map_embedders;
use crate::curate::steps::map_model::ModelEmbedder;
use crate::curate::steps::report::thousands;
use crate::workspace::Workspace;

/// Where the map's vectors come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmbedderKind {
    /// Hashed word n-gram TF-IDF with a random projection: no model, seconds for 100K questions
    Tfidf,
    /// The mean last hidden state of a local model (--model)
    Model,
}

#[derive(Debug, Args)]
pub struct MapArgs {
    /// Where the vectors come from
    #[arg(long, value_enum, default_value_t = EmbedderKind::Tfidf)]
    embedder: EmbedderKind,
    /// The model of `--embedder model` (Hugging Face folder or .gguf)
    #[arg(long)]
    model: Option<PathBuf>,
    /// cpu, cuda or cuda:N (--embedder model)
    #[arg(long, default_value = "cpu")]
    device: crate::model::DeviceChoice,
    /// auto, f32, bf16 or f16 (--embedder model)
    #[arg(long, default_value = "auto")]
    dtype: String,
    /// Tokens of a question the model reads; the rest is cut (--embedder model)
    #[arg(long, default_value_t = MAX_TOKENS)]
    max_tokens: usize,
    /// Questions per forward pass (--embedder model; a GGUF model on the CPU takes one at a
    /// time through its prefill kernels)
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Seeds the projection and the layout: the same seed gives the same map
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Dimensions of the hashed TF-IDF vectors (a multiple of 64)
    #[arg(long, default_value_t = 256)]
    dim: usize,
    /// Lay out again even when the stored layout is of the same questions and seed
    #[arg(long)]
    relayout: bool,
    /// Embed every question again, with the pool's document frequencies as they are now
    #[arg(long)]
    reembed: bool,
    /// Show the map of vectors already stored under this embedder name (see --list): nothing is
    /// embedded; its stored layout is kept whatever its seed, or computed (with --seed) when
    /// missing or not of all its vectors
    #[arg(long = "use", value_name = "EMBEDDER", conflicts_with_all = ["model", "reembed"])]
    use_stored: Option<String>,
    /// List the embedders with stored vectors (question counts, layouts, the one shown) and stop
    #[arg(long)]
    pub list: bool,
}

impl MapArgs {
    pub fn options(&self) -> anyhow::Result<MapOptions> {
        let embedder = match (self.embedder, &self.model) {
            _ if self.use_stored.is_some() => {
                if self.embedder == EmbedderKind::Model {
                    anyhow::bail!("--use shows stored vectors; it does not go with --embedder model");
                }
                MapEmbedder::Stored(self.use_stored.clone().unwrap_or_default())
            }
            (EmbedderKind::Tfidf, None) => MapEmbedder::Tfidf,
            (EmbedderKind::Tfidf, Some(_)) => anyhow::bail!("--model goes with --embedder model"),
            (EmbedderKind::Model, None) => anyhow::bail!("--embedder model needs --model PATH (a folder or .gguf)"),
            (EmbedderKind::Model, Some(path)) => MapEmbedder::Model(ModelEmbedder {
                dtype: crate::model::parse_dtype(&self.dtype)?,
                max_tokens: self.max_tokens,
                batch: self.batch.max(1),
                ..ModelEmbedder::new(path.clone(), self.device)
            }),
        };
        Ok(MapOptions {
            embedder,
            seed: self.seed,
            dim: self.dim,
            relayout: self.relayout,
            reembed: self.reembed,
        })
    }
}

/// `curate map --list`: the embedders with stored vectors.
pub fn list(dir: &Path) -> anyhow::Result<()> {
    let ws = Workspace::open_existing(dir)?;
    print!("{}", map_embedders::render(&map_embedders::list(&ws)?));
    Ok(())
}

/// Prints the coverage table of the workspace's stored selections.
pub fn coverage(dir: &Path) -> anyhow::Result<()> {
    let ws = Workspace::open_existing(dir)?;
    let (embedder, points, rows) = coverage_table(&ws)?;
    println!(
        "map of {} questions ({embedder}); cells: {}x{} over the map, of which the pool occupies some",
        thousands(points),
        crate::curate::map::coverage::COVERAGE_SIDE,
        crate::curate::map::coverage::COVERAGE_SIDE
    );
    if rows.is_empty() {
        println!("no selection stored yet; run `curate select --method s1|random|diverse|longest`");
        return Ok(());
    }
    println!(
        "{:<24} {:<8} {:>8} {:>14} {:>12}",
        "selection", "method", "on map", "cells covered", "mean dist"
    );
    for r in rows {
        let c = r.coverage;
        println!(
            "{:<24} {:<8} {:>8} {:>7}/{:<4} {:>3.0}% {:>12.3}",
            r.selection,
            r.method,
            thousands(c.selected),
            c.covered_cells,
            c.pool_cells,
            100.0 * c.cell_share(),
            c.mean_distance
        );
    }
    Ok(())
}
