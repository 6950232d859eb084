//! A linear layer `y = x W^T + b` over dense, candle-quantized or CPU-quantized weights, with
//! an optional LoRA adapter: the inference paths (the `cpu_gemv` decode kernels for one or a
//! group of layers reading the same input, else a matmul) and the fused CPU training linear.

use candle_core::{DType, Module, Tensor};

use super::error::Result;
use super::kernels::cpu_gemv::{self, KernelWeight};
use super::kernels::fused_linear;
use super::weights::{Weight, WeightLoader};

/// A linear layer `y = x W^T + b` over dense or quantized weights.
#[derive(Clone)]
pub struct Linear {
    pub(super) weight: Weight,
    pub(super) bias: Option<Tensor>,
    /// A low-rank adapter being trained: `y += scale * (x A^T) B^T` (see lora.rs).
    pub(super) lora: Option<super::lora::Lora>,
}

impl Linear {
    pub(super) fn load(w: &mut dyn WeightLoader, name: &str, out: usize, inp: usize, bias: bool) -> Result<Self> {
        let weight = w.matrix(&format!("{name}.weight"), out, inp)?;
        let bias = if bias {
            Some(w.tensor(&format!("{name}.bias"), &[out])?)
        } else {
            None
        };
        Ok(Self {
            weight,
            bias,
            lora: None,
        })
    }

    pub fn forward(&self, x: &Tensor, fast: bool) -> candle_core::Result<Tensor> {
        match &self.lora {
            // The fast kernels know nothing of adapters (inference merges them at load).
            Some(l) => self.forward_base(x, false)? + l.forward_composed(x)?,
            None => self.forward_base(x, fast),
        }
    }

    /// `x W^T + b`, without any adapter.
    fn forward_base(&self, x: &Tensor, fast: bool) -> candle_core::Result<Tensor> {
        // CPU-quantized weights have no other path: alone, they always go through the kernels
        // (a group of mixed types, as a Q4_K_M file writes them, falls back to this one by one).
        if fast || matches!(self.weight, Weight::CpuQuant(_)) {
            if let Some(mut ys) = Self::forward_cpu_kernel(&[self], x)? {
                return Ok(ys.remove(0));
            }
        }
        let y = match &self.weight {
            Weight::Dense(w) => {
                let dims = x.dims();
                let inp = dims[dims.len() - 1];
                let rows = x.elem_count() / inp;
                let y = x.reshape((rows, inp))?.matmul(&w.t()?)?;
                let mut out = dims.to_vec();
                *out.last_mut().unwrap_or(&mut 0) = w.dim(0)?;
                y.reshape(out)?
            }
            Weight::Quantized(q) => q.forward(&x.contiguous()?)?,
            Weight::CpuQuant(_) => candle_core::bail!("CPU-quantized weights need f32 activations on the CPU"),
        };
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }

    /// Several layers that read the same input (q/k/v, gate/up), in one pass when they can.
    pub(super) fn forward_group(lins: &[&Linear], x: &Tensor, fast: bool) -> candle_core::Result<Vec<Tensor>> {
        if fast && lins.iter().all(|l| l.lora.is_none()) {
            if let Some(ys) = Self::forward_cpu_kernel(lins, x)? {
                return Ok(ys);
            }
        }
        lins.iter().map(|l| l.forward(x, false)).collect()
    }

    /// The decode kernels of `cpu_gemv`: f32 weights for a few rows of input, CPU-quantized
    /// weights always.
    /// `None` when they do not apply (GPU, other dtypes, many rows of f32).
    fn forward_cpu_kernel(lins: &[&Linear], x: &Tensor) -> candle_core::Result<Option<Vec<Tensor>>> {
        use candle_core::{CpuStorage, Storage};
        if !x.device().is_cpu() || x.dtype() != DType::F32 {
            return Ok(None);
        }
        let dims = x.dims().to_vec();
        let k = dims[dims.len() - 1];
        let m = x.elem_count() / k.max(1);
        let x = x.contiguous()?;
        let (xs, xl) = x.storage_and_layout();
        let Storage::Cpu(CpuStorage::F32(xv)) = &*xs else {
            return Ok(None);
        };
        let xv = &xv[xl.start_offset()..xl.start_offset() + m * k];
        let Some(out) = Self::gemv_many(lins, xv, m)? else {
            return Ok(None);
        };
        let total = out.len();
        let flat = Tensor::from_vec(out, total, x.device())?;
        let mut ys = Vec::with_capacity(lins.len());
        let mut offset = 0;
        for l in lins {
            let n = l.out_features()?;
            let mut shape = dims.clone();
            *shape.last_mut().unwrap_or(&mut 0) = n;
            let y = flat.narrow(0, offset, m * n)?.reshape(shape)?;
            offset += m * n;
            ys.push(match &l.bias {
                Some(b) => y.broadcast_add(b)?,
                None => y,
            });
        }
        Ok(Some(ys))
    }

    pub(super) fn out_features(&self) -> candle_core::Result<usize> {
        Ok(match &self.weight {
            Weight::Dense(w) => w.dim(0)?,
            Weight::Quantized(q) => match &**q {
                candle_core::quantized::QMatMul::QTensor(t) => t.shape().dims()[0],
                candle_core::quantized::QMatMul::Tensor(t) | candle_core::quantized::QMatMul::TensorF16(t) => {
                    t.dim(0)?
                }
            },
            Weight::CpuQuant(q) => q.rows(),
        })
    }

    /// `W x` (no bias) for each layer through `cpu_gemv`, `x` holding `m` rows; `None` when a
    /// weight is not one the kernels read (or f32 weights with many rows, where gemm is faster).
    pub(super) fn gemv_many(lins: &[&Linear], x: &[f32], m: usize) -> candle_core::Result<Option<Vec<f32>>> {
        use candle_core::{CpuStorage, Storage};
        for l in lins {
            let ok = match &l.weight {
                Weight::CpuQuant(_) => true,
                Weight::Dense(w) => m <= 8 && w.dtype() == DType::F32 && w.is_contiguous() && w.device().is_cpu(),
                Weight::Quantized(_) => false,
            };
            if !ok {
                return Ok(None);
            }
        }
        let guards: Vec<_> = lins
            .iter()
            .map(|l| match &l.weight {
                Weight::Dense(w) => Some(w.storage_and_layout()),
                _ => None,
            })
            .collect();
        let mut mats = Vec::with_capacity(lins.len());
        for (l, g) in lins.iter().zip(&guards) {
            match (&l.weight, g) {
                (Weight::CpuQuant(q), _) => mats.push(KernelWeight::Quant(q)),
                (Weight::Dense(w), Some((st, lay))) => {
                    let Storage::Cpu(CpuStorage::F32(v)) = &**st else {
                        return Ok(None);
                    };
                    let (rows, cols) = w.dims2()?;
                    let data = &v[lay.start_offset()..lay.start_offset() + rows * cols];
                    mats.push(KernelWeight::F32 { data, rows, cols });
                }
                _ => return Ok(None),
            }
        }
        Ok(Some(cpu_gemv::gemv(x, m, &mats)))
    }

    pub fn weight(&self) -> &Weight {
        &self.weight
    }
}

impl Linear {
    /// The fused CPU training linear (dense f32 weights).
    pub(super) fn forward_train(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = match &self.weight {
            Weight::Dense(w) => fused_linear::linear(x, w, self.bias.as_ref())?,
            _ => candle_core::bail!("training needs dense weights"),
        };
        match &self.lora {
            Some(l) => y + l.forward_fused(x)?,
            None => Ok(y),
        }
    }
}
