//! `s1-studio curate map` (its options; the step itself runs through `curate::steps::run` like
//! every other) and `s1-studio curate coverage`: the coverage of each stored selection on the
//! pool's map, as a table, so s1's sampler and its ablations (random, diverse, longest) can be
//! compared.

use std::path::Path;

use clap::Args;

use crate::curate::steps::map::{coverage_table, MapOptions};
use crate::curate::steps::report::thousands;
use crate::workspace::Workspace;

#[derive(Debug, Args)]
pub struct MapArgs {
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
}

impl MapArgs {
    pub fn options(&self) -> MapOptions {
        MapOptions {
            seed: self.seed,
            dim: self.dim,
            relayout: self.relayout,
            reembed: self.reembed,
        }
    }
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
