//! One micro-batch through the decoder's differentiable path: the loss and the gradient of every
//! trainable variable, with optional gradient checkpointing per layer (only the layer inputs
//! are kept; each layer is run again during the backward pass).

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, InplaceOp2, Layout, Result, Tensor, Var};
use rayon::prelude::*;

use super::data::MicroBatch;
use super::loss::head_cross_entropy_sum;
use crate::model::kernels::fused_block::GradSink;
use crate::model::kernels::op_profile;
use crate::model::Decoder;

/// A micro-batch's share of the step's loss: the sum over rows of `row_scales[r]` times the
/// sum of row `r`'s token losses (the loss weighting decides the scales, see
/// [`super::config::LossWeighting::row_scales`]); the gradients of that share are added into
/// `acc` (one slot per variable, `None` until the first gradient).
pub fn accumulate_micro_batch(
    dec: &Decoder,
    vars: &[Var],
    batch: &MicroBatch,
    row_scales: &[f64],
    checkpoint: bool,
    acc: &mut [Option<Tensor>],
) -> Result<f64> {
    if row_scales.len() != batch.rows {
        candle_core::bail!(
            "{} row scales for a micro-batch of {} rows",
            row_scales.len(),
            batch.rows
        );
    }
    if dec.device().is_cpu() && rayon::current_thread_index().is_none() {
        // On a worker thread of the pool, each parallel op wakes one thread instead of handing
        // the work over and waiting to be woken again (on few cores, the wake-ups were ~5% of a
        // step).
        return rayon::scope(|_| accumulate_micro_batch(dec, vars, batch, row_scales, checkpoint, acc));
    }
    let weights: Vec<f32> = row_scales
        .iter()
        .flat_map(|&s| std::iter::repeat_n(s as f32, batch.seq))
        .collect();
    let device = dec.device();
    let sink = GradSink::new();
    let ids = Tensor::from_slice(&batch.ids, (batch.rows, batch.seq), device)?;
    let (cos, sin) = dec.rope_tables(batch.seq)?;
    let h = dec.config().hidden_size;
    let head = |x: &Tensor| -> Result<Tensor> {
        let x = dec.final_norm(x)?.reshape((batch.rows * batch.seq, h))?;
        head_cross_entropy_sum(&x, dec.head_weight()?, &batch.targets, &weights, true)
    };
    if !checkpoint {
        let mut phases = Phases::new(device);
        let mut x = dec.embed(&ids)?;
        for i in 0..dec.num_layers() {
            x = dec.layer_forward_into(i, &x, (&cos, &sin), &sink)?;
        }
        phases.mark("layers forward")?;
        let sum = head(&x)?;
        let value = sum.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        phases.mark("head + loss forward")?;
        let mut grads = sum.backward()?;
        phases.mark("backward")?;
        add_grads(vars, &mut grads, &sink, acc)?;
        phases.mark("accumulate")?;
        phases.report();
        return Ok(value);
    }
    // Forward without keeping the graph: the input of every layer.
    let mut inputs = Vec::with_capacity(dec.num_layers() + 1);
    inputs.push(dec.embed(&ids)?.detach());
    for i in 0..dec.num_layers() {
        let y = dec.layer_forward_into(i, &inputs[i], (&cos, &sin), &sink)?.detach();
        inputs.push(y);
    }
    // The head on the last hidden state, then each layer again from the top.
    let top = Var::from_tensor(&inputs[dec.num_layers()])?;
    let sum = head(top.as_tensor())?;
    let value = sum.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    let mut grads = sum.backward()?;
    add_grads(vars, &mut grads, &sink, acc)?;
    let mut upstream = grads
        .get(top.as_tensor())
        .cloned()
        .ok_or_else(|| candle_core::Error::Msg("no gradient reached the last hidden state".into()))?;
    drop(grads);
    for i in (0..dec.num_layers()).rev() {
        let x = Var::from_tensor(&inputs[i])?;
        let y = dec.layer_forward_into(i, x.as_tensor(), (&cos, &sin), &sink)?;
        let mut grads = (y * &upstream)?.sum_all()?.backward()?;
        add_grads(vars, &mut grads, &sink, acc)?;
        upstream = grads
            .get(x.as_tensor())
            .cloned()
            .ok_or_else(|| candle_core::Error::Msg(format!("no gradient reached the input of layer {i}")))?;
    }
    let mut grads = (dec.embed(&ids)? * &upstream)?.sum_all()?.backward()?;
    add_grads(vars, &mut grads, &sink, acc)?;
    Ok(value)
}

/// With S1_PROFILE_STEP set, the time of each phase of a micro-batch (the device synchronised
/// at each mark) is printed to stderr, with the time of each fused CPU op within the phase:
/// where a step's time goes, on any device.
struct Phases<'a> {
    device: &'a candle_core::Device,
    on: bool,
    last: std::time::Instant,
    marks: Vec<(&'static str, f64, String)>,
}

impl<'a> Phases<'a> {
    fn new(device: &'a candle_core::Device) -> Self {
        let on = op_profile::enabled();
        op_profile::take();
        Self {
            device,
            on,
            last: std::time::Instant::now(),
            marks: Vec::new(),
        }
    }

    fn mark(&mut self, what: &'static str) -> Result<()> {
        if self.on {
            self.device.synchronize()?;
            let ops: Vec<String> = op_profile::take()
                .into_iter()
                .map(|(op, ms, n)| format!("{op} {ms:.1} ms/{n}"))
                .collect();
            self.marks
                .push((what, self.last.elapsed().as_secs_f64() * 1e3, ops.join(", ")));
            self.last = std::time::Instant::now();
        }
        Ok(())
    }

    fn report(&self) {
        if self.on {
            let parts: Vec<String> = self.marks.iter().map(|(w, ms, _)| format!("{w} {ms:.2} ms")).collect();
            eprintln!("micro-batch: {}", parts.join(", "));
            for (w, _, ops) in self.marks.iter().filter(|m| !m.2.is_empty()) {
                eprintln!("  {w}: {ops}");
            }
        }
    }
}

/// Moves each variable's gradient out of `grads` (or `sink`, where whole-block ops put theirs)
/// into its slot of `acc`, or adds it there.
pub fn add_grads(vars: &[Var], grads: &mut GradStore, sink: &GradSink, acc: &mut [Option<Tensor>]) -> Result<()> {
    for (v, slot) in vars.iter().zip(acc.iter_mut()) {
        let g = match grads.remove(v.as_tensor()) {
            Some(g) => g,
            None => match sink.take(v.as_tensor()) {
                Some(g) => Tensor::from_vec(g, v.shape(), v.device())?,
                None => continue,
            },
        };
        let g = &g;
        match slot {
            // The backward's fresh buffer becomes the accumulator (regions of it that other
            // gradients share are never written through another slot).
            None => *slot = Some(if g.is_contiguous() { g.clone() } else { g.contiguous()? }),
            Some(a) if a.device().is_cpu() && a.dtype() == DType::F32 => a.inplace_op2(&g.contiguous()?, &AddInto)?,
            Some(a) => *a = (&*a + g)?,
        }
    }
    Ok(())
}

/// `a += b` in place, in parallel.
struct AddInto;

impl InplaceOp2 for AddInto {
    fn name(&self) -> &'static str {
        "s1-add-into"
    }

    fn cpu_fwd(&self, a: &mut CpuStorage, al: &Layout, b: &CpuStorage, bl: &Layout) -> Result<()> {
        let Some((a0, a1)) = al.contiguous_offsets() else {
            candle_core::bail!("s1-add-into: expects contiguous tensors");
        };
        let CpuStorage::F32(a) = a else {
            candle_core::bail!("s1-add-into: expects f32");
        };
        let b = crate::model::kernels::cpu_gemm::f32_slice(b, bl, "s1-add-into")?;
        a[a0..a1]
            .par_chunks_mut(16384)
            .zip(b.par_chunks(16384))
            .for_each(|(x, y)| x.iter_mut().zip(y).for_each(|(x, y)| *x += y));
        Ok(())
    }
}
