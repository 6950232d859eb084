//! `s1-studio bench grads`: the loss and every parameter's gradient on a device and precision
//! against the transformers reference of a parity fixture (tests/fixtures/parity/*), so a CUDA
//! build can be checked where it runs; where a fixture has weighting.safetensors
//! (scripts/make_loss_weighting_fixture.py), both loss weightings too. Fails when an error is
//! above the tolerance.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use crate::train::config::{LossWeighting, TrainDtype};
use crate::train::parity::{gradient_parity, weighting_parity, ParityRun};

#[derive(Debug, Args)]
pub struct GradsArgs {
    /// Fixture folders (model + grads.safetensors from scripts/make_parity_fixtures.py)
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "tests/fixtures/parity/qwen2,tests/fixtures/parity/llama"
    )]
    fixture: Vec<PathBuf>,
    /// cpu or cuda[:N]
    #[arg(long, default_value = "cpu")]
    device: String,
    #[arg(long, value_enum, default_value = "f32")]
    dtype: TrainDtype,
    /// Largest relative gradient error accepted (default 1e-4 in f32, 1e-1 in bf16: an f32 reference, bf16 keeps 8 mantissa bits)
    #[arg(long)]
    tolerance: Option<f64>,
}

pub fn run(a: GradsArgs) -> anyhow::Result<()> {
    let dev = crate::model::parse_device(&a.device)?;
    let dtype = a.dtype.dtype();
    let tol = a
        .tolerance
        .unwrap_or(if a.dtype == TrainDtype::F32 { 1e-4 } else { 1e-1 }) as f32;
    let mut failed = Vec::new();
    println!(
        "{:<34} {:>12} {:>12} {:>8} {:>10}  worst parameter",
        "fixture / path", "loss", "reference", "params", "worst rel"
    );
    for dir in &a.fixture {
        let mut references = vec![None];
        if dir.join("weighting.safetensors").exists() {
            references.extend([Some(LossWeighting::Example), Some(LossWeighting::Token)]);
        }
        for (weighting, (checkpoint, split)) in references
            .into_iter()
            .flat_map(|w| [(false, false), (true, false), (false, true)].map(|c| (w, c)))
        {
            let run = ParityRun {
                fused: true,
                checkpoint,
                split,
            };
            let r = match weighting {
                None => gradient_parity(dir, &dev, dtype, run),
                Some(w) => weighting_parity(dir, &dev, dtype, run, w),
            }
            .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
            let (worst, at) = r.worst();
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let label = format!(
                "{name}{}{}{}",
                weighting.map_or(String::new(), |w| format!(" {}-weighted", w.name())),
                if checkpoint { " checkpointed" } else { "" },
                if split { " accumulated" } else { "" }
            );
            println!(
                "{label:<34} {:>12.6} {:>12.6} {:>8} {:>10.2e}  {at}",
                r.loss,
                r.expected_loss,
                r.relative.len(),
                worst
            );
            let loss_rel = ((r.loss - r.expected_loss) / r.expected_loss).abs() as f32;
            let bad = |e: f32| e.is_nan() || e > tol;
            if bad(worst) || bad(loss_rel) || !r.missing.is_empty() {
                failed.push(format!(
                    "{label}: worst gradient error {worst:.2e} ({at}), loss error {loss_rel:.2e}, without gradient {:?}",
                    r.missing
                ));
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "gradients differ from the reference beyond {tol:e}:\n{}",
            failed.join("\n")
        );
    }
    println!(
        "all gradients within {tol:e} of the reference ({}, {:?})",
        a.device, a.dtype
    );
    Ok(())
}
