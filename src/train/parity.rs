//! The trainer's gradients against a reference written by transformers
//! (`scripts/make_parity_fixtures.py`: a model folder plus grads.safetensors holding a batch, its
//! loss and the gradient of every parameter; `scripts/make_loss_weighting_fixture.py`:
//! weighting.safetensors, a batch of rows of different lengths with the loss and gradients under
//! each [`LossWeighting`]). Used by tests/train_grads.rs on the CPU and by `s1-studio bench grads`
//! to check a CUDA build (f32 or bf16) on the device it runs on.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::config::LossWeighting;
use super::data::{MicroBatch, IGNORE};
use super::step::accumulate_micro_batch;
use crate::model::weights::SafetensorsWeights;
use crate::model::{Decoder, ModelConfig};

/// How one run's loss and gradients compare with the reference.
#[derive(Debug, Clone)]
pub struct ParityReport {
    pub loss: f64,
    pub expected_loss: f64,
    /// `||g - g_ref|| / ||g_ref||` per parameter, in the model's order.
    pub relative: Vec<(String, f32)>,
    /// Reference gradients of parameters that the model did not train, and trained parameters
    /// that received no gradient.
    pub missing: Vec<String>,
}

impl ParityReport {
    /// The largest relative error and its parameter.
    pub fn worst(&self) -> (f32, &str) {
        self.relative
            .iter()
            .fold((0f32, ""), |w, (n, r)| if *r > w.0 || r.is_nan() { (*r, n) } else { w })
    }
}

/// The options of one parity run.
#[derive(Debug, Clone, Copy)]
pub struct ParityRun {
    /// The fused CPU ops (else candle's composed ops; other devices always compose).
    pub fused: bool,
    pub checkpoint: bool,
    /// Each row as its own micro-batch, gradients accumulated.
    pub split: bool,
}

/// A fixture's `input_ids` and transformers-style `labels` (-100: no loss) as a micro-batch
/// whose target at position p is the label of token p + 1.
pub fn labelled_batch(exp: &HashMap<String, Tensor>) -> candle_core::Result<MicroBatch> {
    let get = |k: &str| {
        exp.get(k)
            .ok_or_else(|| candle_core::Error::Msg(format!("the reference lacks `{k}`")))
    };
    let ids = get("input_ids")?.to_dtype(DType::U32)?;
    let labels = get("labels")?.to_dtype(DType::I64)?.to_vec2::<i64>()?;
    let (rows, seq) = ids.dims2()?;
    let mut targets = vec![IGNORE; rows * seq];
    for r in 0..rows {
        for p in 0..seq - 1 {
            if labels[r][p + 1] >= 0 {
                targets[r * seq + p] = labels[r][p + 1] as u32;
            }
        }
    }
    Ok(MicroBatch {
        rows,
        seq,
        loss_tokens: targets.iter().filter(|&&t| t != IGNORE).count(),
        ids: ids.flatten_all()?.to_vec1::<u32>()?,
        targets,
    })
}

/// Row `r` of a micro-batch alone.
fn row(b: &MicroBatch, r: usize) -> MicroBatch {
    let s = b.seq;
    let targets = b.targets[r * s..(r + 1) * s].to_vec();
    MicroBatch {
        rows: 1,
        seq: s,
        ids: b.ids[r * s..(r + 1) * s].to_vec(),
        loss_tokens: targets.iter().filter(|&&t| t != IGNORE).count(),
        targets,
    }
}

/// Loads the fixture folder `dir` on `device` in `dtype`, computes the loss and gradients of
/// its batch and compares them with its grads.safetensors (in f32): transformers' loss, the
/// mean over the batch's tokens, which is [`LossWeighting::Token`].
pub fn gradient_parity(dir: &Path, device: &Device, dtype: DType, run: ParityRun) -> candle_core::Result<ParityReport> {
    compare(
        dir,
        device,
        dtype,
        run,
        "grads.safetensors",
        LossWeighting::Token,
        "loss",
        "grad.",
    )
}

/// As [`gradient_parity`] for weighting.safetensors and one loss weighting: its batch under
/// `weighting`, against `loss.<name>` and `grad.<name>.<parameter>` (name: example or token).
pub fn weighting_parity(
    dir: &Path,
    device: &Device,
    dtype: DType,
    run: ParityRun,
    weighting: LossWeighting,
) -> candle_core::Result<ParityReport> {
    let name = weighting.name();
    compare(
        dir,
        device,
        dtype,
        run,
        "weighting.safetensors",
        weighting,
        &format!("loss.{name}"),
        &format!("grad.{name}."),
    )
}

#[allow(clippy::too_many_arguments)]
fn compare(
    dir: &Path,
    device: &Device,
    dtype: DType,
    run: ParityRun,
    file: &str,
    weighting: LossWeighting,
    loss_key: &str,
    grad_prefix: &str,
) -> candle_core::Result<ParityReport> {
    let cfg =
        ModelConfig::from_hf_file(&dir.join("config.json")).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    let mut w = SafetensorsWeights::open(dir, dtype, device).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    let mut dec = Decoder::load(&cfg, &mut w, dtype, device).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    let exp = candle_core::safetensors::load(dir.join(file), &Device::Cpu)?;
    let named = dec
        .make_trainable()
        .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    if !run.fused {
        dec.set_fused_training_ops(false);
    }
    let vars: Vec<_> = named.iter().map(|(_, v)| v.clone()).collect();
    let b = labelled_batch(&exp)?;
    let mut acc = vec![None; vars.len()];
    let tokens: Vec<usize> = (0..b.rows).map(|r| b.row_loss_tokens(r)).collect();
    let scales = weighting.row_scales(&tokens);
    let mut loss = 0.0;
    if run.split {
        for r in 0..b.rows {
            loss += accumulate_micro_batch(&dec, &vars, &row(&b, r), &scales[r..r + 1], run.checkpoint, &mut acc)?;
        }
    } else {
        loss = accumulate_micro_batch(&dec, &vars, &b, &scales, run.checkpoint, &mut acc)?;
    }
    let expected_loss = exp
        .get(loss_key)
        .ok_or_else(|| candle_core::Error::Msg(format!("{file} lacks `{loss_key}`")))?
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?[0];
    let mut relative = Vec::new();
    let mut missing = Vec::new();
    for ((name, _), g) in named.iter().zip(&acc) {
        let (Some(g), Some(e)) = (g, exp.get(&format!("{grad_prefix}{name}"))) else {
            missing.push(name.clone());
            continue;
        };
        if g.dims() != e.dims() {
            candle_core::bail!("{name}: gradient shape {:?}, reference {:?}", g.dims(), e.dims());
        }
        let g = g.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
        let norm = |t: &Tensor| -> candle_core::Result<f32> { t.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>() };
        relative.push((name.clone(), norm(&(&g - e)?)? / norm(e)?.max(1e-12)));
    }
    let trained: std::collections::HashSet<String> = named.iter().map(|(n, _)| format!("{grad_prefix}{n}")).collect();
    missing.extend(
        exp.keys()
            .filter(|k| k.starts_with(grad_prefix) && !trained.contains(*k))
            .map(|k| k.trim_start_matches(grad_prefix).to_string()),
    );
    Ok(ParityReport {
        loss,
        expected_loss,
        relative,
        missing,
    })
}
