//! AdamW as PyTorch computes it (decoupled weight decay, bias-corrected moments), the
//! warmup-then-cosine schedule of transformers' `get_cosine_schedule_with_warmup`, and
//! gradient-norm clipping. f32 master weights and state; on the CPU one fused parallel pass per
//! tensor, elsewhere candle ops.

use std::cell::RefCell;
use std::collections::HashMap;

use candle_core::{CpuStorage, DType, InplaceOp2, Layout, Result, Tensor, Var};
use rayon::prelude::*;

/// AdamW hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWParams {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Whether norm weights get weight decay too. s1's: yes, since transformers 4.46.1's Trainer
    /// exempts only parameters named `bias` and those of `nn.LayerNorm` modules, and Qwen2's
    /// and Llama's RMSNorm is not one; newer transformers exempt norms (false).
    #[serde(default = "yes")]
    pub decay_norms: bool,
}

fn yes() -> bool {
    true
}

impl Default for AdamWParams {
    /// s1's train/sft.sh: beta1 0.9, beta2 0.95, weight decay 1e-4 on every weight but the
    /// biases (norm weights included, as transformers 4.46.1 does), eps as PyTorch's default.
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 1e-4,
            decay_norms: true,
        }
    }
}

/// Learning rate at optimizer step `step` (0-based) of `total`: linear warmup over
/// `ceil(warmup_ratio * total)` steps, then cosine decay to 0, as transformers'
/// `get_cosine_schedule_with_warmup` (the lr of the first step is 0 when there is a warmup).
pub fn lr_at(step: usize, total: usize, peak: f64, warmup_ratio: f64) -> f64 {
    let warmup = (warmup_ratio * total as f64).ceil() as usize;
    if step < warmup {
        return peak * step as f64 / warmup.max(1) as f64;
    }
    let progress = (step - warmup) as f64 / (total.saturating_sub(warmup)).max(1) as f64;
    peak * (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0)
}

/// Whether a parameter gets weight decay: as transformers 4.46.1's Trainer, every parameter
/// whose name has no `bias` (RMSNorm weights included); with `decay_norms` false, not the norm
/// weights either (as newer transformers).
pub fn decays(name: &str, decay_norms: bool) -> bool {
    !name.contains("bias") && (decay_norms || !name.contains("norm"))
}

/// One parameter's optimizer state.
pub struct Slot {
    pub name: String,
    pub var: Var,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    /// Moments on other devices.
    dev_state: Option<(Tensor, Tensor)>,
    /// The f32 master copy of a weight kept in lower precision (bf16 training): the update is
    /// made on it and the variable receives its rounding, so small updates are not lost.
    master: Option<Tensor>,
    pub decay: bool,
}

/// AdamW over named variables.
pub struct AdamW {
    pub params: AdamWParams,
    pub slots: Vec<Slot>,
    /// Optimizer steps taken.
    pub step: usize,
}

impl AdamW {
    pub fn new(vars: Vec<(String, Var)>, params: AdamWParams) -> Result<Self> {
        let slots = vars
            .into_iter()
            .map(|(name, var)| {
                let n = var.elem_count();
                let on_cpu = var.device().is_cpu() && var.dtype() == DType::F32;
                let dev_state = if on_cpu {
                    None
                } else {
                    Some((
                        var.zeros_like()?.to_dtype(DType::F32)?,
                        var.zeros_like()?.to_dtype(DType::F32)?,
                    ))
                };
                let master = if var.dtype() == DType::F32 {
                    None
                } else {
                    Some(var.as_tensor().to_dtype(DType::F32)?)
                };
                Ok(Slot {
                    decay: decays(&name, params.decay_norms),
                    name,
                    master,
                    var,
                    m: if on_cpu { vec![0.0; n] } else { Vec::new() },
                    v: if on_cpu { vec![0.0; n] } else { Vec::new() },
                    dev_state,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { params, slots, step: 0 })
    }

    /// One update with learning rate `lr` from `grads` (by slot), each scaled by `grad_scale`
    /// (gradient clipping).
    pub fn apply(&mut self, grads: &[Tensor], lr: f64, grad_scale: f64) -> Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let p = self.params;
        let bc1 = 1.0 - p.beta1.powi(t);
        let bc2 = 1.0 - p.beta2.powi(t);
        for (slot, g) in self.slots.iter_mut().zip(grads) {
            let wd = if slot.decay { p.weight_decay } else { 0.0 };
            match &mut slot.dev_state {
                None => {
                    let op = AdamWStep {
                        m: RefCell::new(&mut slot.m),
                        v: RefCell::new(&mut slot.v),
                        lr: lr as f32,
                        beta1: p.beta1 as f32,
                        beta2: p.beta2 as f32,
                        eps: p.eps as f32,
                        wd: wd as f32,
                        bc1: bc1 as f32,
                        bc2_sqrt: bc2.sqrt() as f32,
                        grad_scale: grad_scale as f32,
                    };
                    slot.var.as_tensor().inplace_op2(&g.contiguous()?, &op)?;
                }
                #[cfg(feature = "cuda")]
                Some((m, v)) if crate::model::kernels::fused_ops::supported_cuda(slot.var.as_tensor()) => {
                    let args = crate::model::kernels::cuda_train_ops::AdamWArgs {
                        beta1: p.beta1 as f32,
                        beta2: p.beta2 as f32,
                        eps: p.eps as f32,
                        decay: (1.0 - lr * wd) as f32,
                        step: (lr / bc1) as f32,
                        bc2_sqrt: bc2.sqrt() as f32,
                        grad_scale: grad_scale as f32,
                    };
                    let g = g.to_dtype(slot.var.dtype())?.contiguous()?;
                    crate::model::kernels::cuda_train_ops::adamw(
                        slot.var.as_tensor(),
                        &g,
                        m,
                        v,
                        slot.master.as_ref(),
                        args,
                    )?;
                }
                Some((m, v)) => {
                    let g = (g.to_dtype(DType::F32)? * grad_scale)?;
                    *m = ((&*m * p.beta1)? + (&g * (1.0 - p.beta1))?)?;
                    *v = ((&*v * p.beta2)? + (g.sqr()? * (1.0 - p.beta2))?)?;
                    let w = match &slot.master {
                        Some(w) => w.clone(),
                        None => slot.var.as_tensor().clone(),
                    };
                    let w = (w * (1.0 - lr * wd))?;
                    let denom = ((v.sqrt()? / bc2.sqrt())? + p.eps)?;
                    let w = (w - ((&*m / denom)? * (lr / bc1))?)?;
                    if slot.master.is_some() {
                        slot.var.set(&w.to_dtype(slot.var.dtype())?)?;
                        slot.master = Some(w);
                    } else {
                        slot.var.set(&w)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The moments by name (`m.<name>`, `v.<name>`) for a checkpoint.
    pub fn state_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for s in &self.slots {
            let (m, v) = match &s.dev_state {
                None => {
                    let shape = s.var.shape();
                    (
                        Tensor::from_slice(&s.m, shape, &candle_core::Device::Cpu)?,
                        Tensor::from_slice(&s.v, shape, &candle_core::Device::Cpu)?,
                    )
                }
                Some((m, v)) => (
                    m.to_device(&candle_core::Device::Cpu)?,
                    v.to_device(&candle_core::Device::Cpu)?,
                ),
            };
            out.insert(format!("m.{}", s.name), m);
            out.insert(format!("v.{}", s.name), v);
            if let Some(w) = &s.master {
                out.insert(format!("w.{}", s.name), w.to_device(&candle_core::Device::Cpu)?);
            }
        }
        Ok(out)
    }

    /// The f32 master weights of the variables kept in lower precision, by name (what a
    /// checkpoint saves for them).
    pub fn master_weights(&self) -> HashMap<&str, &Tensor> {
        self.slots
            .iter()
            .filter_map(|s| s.master.as_ref().map(|w| (s.name.as_str(), w)))
            .collect()
    }

    /// Restores the moments saved by [`AdamW::state_tensors`].
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>, step: usize) -> std::result::Result<(), String> {
        for s in &mut self.slots {
            let get = |k: String| -> std::result::Result<Tensor, String> {
                let t = state.get(&k).ok_or_else(|| format!("optimizer state lacks `{k}`"))?;
                if t.dims() != s.var.dims() {
                    return Err(format!(
                        "optimizer state `{k}` has shape {:?}, the model {:?}",
                        t.dims(),
                        s.var.dims()
                    ));
                }
                Ok(t.clone())
            };
            let m = get(format!("m.{}", s.name))?;
            let v = get(format!("v.{}", s.name))?;
            match &mut s.dev_state {
                None => {
                    s.m = m
                        .flatten_all()
                        .and_then(|t| t.to_vec1::<f32>())
                        .map_err(|e| e.to_string())?;
                    s.v = v
                        .flatten_all()
                        .and_then(|t| t.to_vec1::<f32>())
                        .map_err(|e| e.to_string())?;
                }
                Some(dev) => {
                    let d = s.var.device();
                    *dev = (
                        m.to_device(d).map_err(|e| e.to_string())?,
                        v.to_device(d).map_err(|e| e.to_string())?,
                    );
                }
            }
            // The f32 masters of a lower-precision run (absent in an f32 run's state: then the
            // loaded weights are the master).
            if s.master.is_some() && state.contains_key(&format!("w.{}", s.name)) {
                let w = get(format!("w.{}", s.name))?
                    .to_device(s.var.device())
                    .and_then(|t| t.to_dtype(DType::F32))
                    .map_err(|e| e.to_string())?;
                s.var
                    .set(&w.to_dtype(s.var.dtype()).map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?;
                s.master = Some(w);
            }
        }
        self.step = step;
        Ok(())
    }
}

/// The fused CPU update of one tensor.
struct AdamWStep<'a> {
    m: RefCell<&'a mut Vec<f32>>,
    v: RefCell<&'a mut Vec<f32>>,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    wd: f32,
    bc1: f32,
    bc2_sqrt: f32,
    grad_scale: f32,
}

impl InplaceOp2 for AdamWStep<'_> {
    fn name(&self) -> &'static str {
        "s1-adamw"
    }

    fn cpu_fwd(&self, ws: &mut CpuStorage, wl: &Layout, gs: &CpuStorage, gl: &Layout) -> Result<()> {
        let Some((wa, wb)) = wl.contiguous_offsets() else {
            candle_core::bail!("s1-adamw: expects contiguous tensors");
        };
        let CpuStorage::F32(w) = ws else {
            candle_core::bail!("s1-adamw: expects f32 weights");
        };
        let w = &mut w[wa..wb];
        let g = crate::model::kernels::cpu_gemm::f32_slice(gs, gl, "s1-adamw")?;
        let mut m = self.m.borrow_mut();
        let mut v = self.v.borrow_mut();
        if g.len() != w.len() || m.len() != w.len() {
            candle_core::bail!("s1-adamw: weight, gradient and state differ in size");
        }
        let step = self.lr / self.bc1;
        let decay = 1.0 - self.lr * self.wd;
        const CHUNK: usize = 16384;
        let (b1, b2, eps, bc2_sqrt, gs) = (self.beta1, self.beta2, self.eps, self.bc2_sqrt, self.grad_scale);
        w.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
            .for_each(|((wc, gc), (mc, vc))| {
                for i in 0..wc.len() {
                    let g = gc[i] * gs;
                    mc[i] = b1 * mc[i] + (1.0 - b1) * g;
                    vc[i] = b2 * vc[i] + (1.0 - b2) * g * g;
                    let denom = vc[i].sqrt() / bc2_sqrt + eps;
                    wc[i] = wc[i] * decay - step * mc[i] / denom;
                }
            });
        Ok(())
    }
}

/// The sum of squares of `xs` in f64, in 8 independent lanes (a single running sum is one long
/// chain of dependent additions; the lanes vectorise).
fn sum_of_squares(xs: &[f32]) -> f64 {
    let mut lanes = [0f64; 8];
    let chunks = xs.chunks_exact(8);
    let rest: f64 = chunks.remainder().iter().map(|&x| (x as f64) * (x as f64)).sum();
    for c in chunks {
        for (l, &x) in lanes.iter_mut().zip(c) {
            *l += (x as f64) * (x as f64);
        }
    }
    lanes.iter().sum::<f64>() + rest
}

/// The global L2 norm of `grads` (f64 accumulation on the CPU; on other devices an f32 sum
/// kept on the device, read back once).
pub fn global_norm(grads: &[Tensor]) -> Result<f64> {
    #[cfg(feature = "cuda")]
    if let Some(candle_core::Device::Cuda(dev)) = grads.first().map(|g| g.device()) {
        if grads
            .iter()
            .all(|g| g.device().same_device(grads[0].device()) && crate::model::kernels::fused_ops::supported_cuda(g))
        {
            return Ok(crate::model::kernels::cuda_train_ops::sum_of_squares(dev, grads)?.sqrt());
        }
    }
    let mut sum = 0f64;
    let mut dev_sum: Option<Tensor> = None;
    for g in grads {
        if g.device().is_cpu() && g.dtype() == DType::F32 {
            let (st, l) = g.storage_and_layout();
            let candle_core::Storage::Cpu(cpu) = &*st else {
                candle_core::bail!("expected CPU storage")
            };
            let data = cpu.as_slice::<f32>()?;
            let s: f64 = match l.contiguous_offsets() {
                Some((a, b)) => data[a..b].par_chunks(16384).map(sum_of_squares).sum(),
                None => g.to_dtype(DType::F64)?.sqr()?.sum_all()?.to_scalar::<f64>()?,
            };
            sum += s;
        } else {
            let s = g.to_dtype(DType::F32)?.sqr()?.sum_all()?;
            dev_sum = Some(match dev_sum {
                Some(t) => (t + s)?,
                None => s,
            });
        }
    }
    if let Some(t) = dev_sum {
        sum += t.to_scalar::<f32>()? as f64;
    }
    Ok(sum.sqrt())
}

/// The factor clipping scales gradients by: `max_norm / (norm + 1e-6)` when that is below 1
/// (PyTorch's `clip_grad_norm_`).
pub fn clip_scale(norm: f64, max_norm: f64) -> f64 {
    if max_norm <= 0.0 {
        return 1.0;
    }
    (max_norm / (norm + 1e-6)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        let total = 100;
        assert_eq!(lr_at(0, total, 1e-5, 0.05), 0.0);
        assert!((lr_at(2, total, 1e-5, 0.05) - 0.4e-5).abs() < 1e-15);
        assert!((lr_at(5, total, 1e-5, 0.05) - 1e-5).abs() < 1e-15);
        let mid = 5 + 95 / 2;
        assert!(lr_at(mid, total, 1e-5, 0.05) < 0.51e-5 && lr_at(mid, total, 1e-5, 0.05) > 0.49e-5);
        assert!(lr_at(99, total, 1e-5, 0.05) < 1e-8);
        assert_eq!(lr_at(100, total, 1e-5, 0.05), 0.0);
    }

    #[test]
    fn decay_skips_biases_and_optionally_norms() {
        for norms in [true, false] {
            assert!(decays("model.layers.0.self_attn.q_proj.weight", norms));
            assert!(decays("model.embed_tokens.weight", norms));
            assert!(decays("lm_head.weight", norms));
            assert!(!decays("model.layers.0.self_attn.q_proj.bias", norms));
            assert_eq!(decays("model.layers.0.input_layernorm.weight", norms), norms);
            assert_eq!(decays("model.norm.weight", norms), norms);
        }
    }

    /// s1's preset decays the norm weights as transformers 4.46.1 does (only `nn.LayerNorm`
    /// modules and biases are exempt there; Qwen2RMSNorm is not an `nn.LayerNorm`).
    #[test]
    fn s1_preset_decays_norm_weights() {
        use candle_core::{DType, Device};
        let p = AdamWParams::default();
        assert!(p.decay_norms);
        let var = |v: f32| Var::from_tensor(&Tensor::new(&[v], &Device::Cpu).unwrap()).unwrap();
        let (norm, bias) = (var(1.0), var(1.0));
        let mut opt = AdamW::new(
            vec![
                ("model.norm.weight".into(), norm.clone()),
                ("model.layers.0.self_attn.q_proj.bias".into(), bias.clone()),
            ],
            AdamWParams { weight_decay: 0.1, ..p },
        )
        .unwrap();
        let zero = Tensor::zeros(1, DType::F32, &Device::Cpu).unwrap();
        opt.apply(&[zero.clone(), zero], 0.5, 1.0).unwrap();
        let get = |v: &Var| v.as_tensor().to_vec1::<f32>().unwrap()[0];
        // A zero gradient leaves only the decay: w * (1 - lr * wd).
        assert!((get(&norm) - 0.95).abs() < 1e-6, "{}", get(&norm));
        assert_eq!(get(&bias), 1.0);
        // An old settings file without the field reads as s1's.
        let old: AdamWParams =
            serde_json::from_str(r#"{"beta1":0.9,"beta2":0.95,"eps":1e-8,"weight_decay":0.0001}"#).unwrap();
        assert!(old.decay_norms);
    }

    /// The fused CPU update equals PyTorch's AdamW formula computed by hand in f64.
    #[test]
    fn adamw_matches_the_reference_formula() {
        let w0 = [0.5f32, -1.0, 2.0, 0.0];
        let grads = [[0.1f32, -0.2, 0.3, 0.0], [0.05, 0.1, -0.4, 1.0]];
        let var = Var::from_slice(&w0, 4, &candle_core::Device::Cpu).unwrap();
        let p = AdamWParams::default();
        let mut opt = AdamW::new(vec![("x.weight".into(), var.clone())], p).unwrap();
        let (lr, scale) = (1e-2, 0.5);
        let (mut w, mut m, mut v) = (w0.map(|x| x as f64), [0f64; 4], [0f64; 4]);
        for (t, g) in grads.iter().enumerate() {
            let gt = Tensor::from_slice(g, 4, &candle_core::Device::Cpu).unwrap();
            opt.apply(&[gt], lr, scale).unwrap();
            let t = (t + 1) as i32;
            for i in 0..4 {
                let g = g[i] as f64 * scale;
                w[i] *= 1.0 - lr * p.weight_decay;
                m[i] = p.beta1 * m[i] + (1.0 - p.beta1) * g;
                v[i] = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
                let denom = (v[i] / (1.0 - p.beta2.powi(t))).sqrt() + p.eps;
                w[i] -= lr / (1.0 - p.beta1.powi(t)) * m[i] / denom;
            }
        }
        let got = var.as_tensor().to_vec1::<f32>().unwrap();
        for i in 0..4 {
            assert!((got[i] as f64 - w[i]).abs() < 1e-6, "{got:?} vs {w:?}");
        }
    }

    /// bf16 weights keep an f32 master: 100 updates of 1e-4 on a weight of 1.0 (each below
    /// bf16's spacing of 2^-7 there) still move it, the master is in the optimizer's state, and a
    /// restored optimizer continues from it exactly.
    #[test]
    fn bf16_weights_update_through_an_f32_master() {
        use candle_core::{DType, Device};
        let w0 = Tensor::ones(3, DType::BF16, &Device::Cpu).unwrap();
        let var = Var::from_tensor(&w0).unwrap();
        let p = AdamWParams {
            weight_decay: 0.0,
            ..AdamWParams::default()
        };
        let mut opt = AdamW::new(vec![("x.weight".into(), var.clone())], p).unwrap();
        let g = Tensor::ones(3, DType::BF16, &Device::Cpu).unwrap();
        for _ in 0..100 {
            opt.apply(std::slice::from_ref(&g), 1e-4, 1.0).unwrap();
        }
        // Each step moves the master by ~lr (Adam's normalised step): ~1.0 - 100 * 1e-4.
        let master = opt.master_weights()["x.weight"].to_vec1::<f32>().unwrap();
        assert!((master[0] - 0.99).abs() < 1e-4, "master {master:?}");
        let w = var.as_tensor().to_dtype(DType::F32).unwrap().to_vec1::<f32>().unwrap();
        assert!((w[0] - 0.99).abs() < 4e-3 && w[0] < 1.0, "bf16 weight {w:?}");
        // Save and restore into a fresh optimizer over a reloaded (rounded) weight.
        let state = opt.state_tensors().unwrap();
        assert!(state.contains_key("w.x.weight"));
        let var2 = Var::from_tensor(&var.as_tensor().copy().unwrap()).unwrap();
        let mut opt2 = AdamW::new(vec![("x.weight".into(), var2.clone())], p).unwrap();
        opt2.load_state(&state, opt.step).unwrap();
        opt.apply(std::slice::from_ref(&g), 1e-4, 1.0).unwrap();
        opt2.apply(std::slice::from_ref(&g), 1e-4, 1.0).unwrap();
        let a = opt.master_weights()["x.weight"].to_vec1::<f32>().unwrap();
        let b = opt2.master_weights()["x.weight"].to_vec1::<f32>().unwrap();
        assert_eq!(a, b);
    }
}
