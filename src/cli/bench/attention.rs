//! `s1-studio bench attention`: the training attention's forward + backward over a range of
//! sequence lengths, against PyTorch's scaled_dot_product_attention (scripts/
//! bench_attention_torch.py, and flash-attn where installed) in the same run.
//! On the CPU it times both of our paths, tiled (memory linear in t) and materialising: where
//! the tiled one becomes faster is the length from which training takes it
//! (fused_attention::DEFAULT_TILED_FROM). On CUDA (bf16, kernels/flash_attn.cu or, with `--kernel`,
//! flash_attn_v2.cu, or both side by side) `--check` also compares the output and every gradient
//! with the CPU tiled op on the same bf16 inputs.

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use clap::Args;

use super::{baseline_json, bench_config, median};
use crate::model::kernels::flash_kernel::{self, FlashKernel};
use crate::model::kernels::fused_attention::{causal_attention_on, AttentionPath};

/// Which CUDA attention kernels `--kernel` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KernelChoice {
    V1,
    V2,
    /// v1 and v2 side by side (each checked and timed)
    Both,
}

#[derive(Debug, Args)]
pub struct AttentionBenchArgs {
    /// Sequence lengths to time
    #[arg(long, value_delimiter = ',', default_value = "64,128,256,384,512,768,1024,2048,4096")]
    seq: Vec<usize>,
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Query heads, kv heads and head size (default: the 29.4M benchmark model's 8, 4, 64;
    /// Qwen2.5-0.5B is 14, 2, 64 and 1.5B 12, 2, 128)
    #[arg(long)]
    heads: Option<usize>,
    #[arg(long)]
    kv_heads: Option<usize>,
    #[arg(long)]
    head_dim: Option<usize>,
    /// Timed runs per path and length (after one warm-up run); the median is reported
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// cpu or cuda[:N]
    #[arg(long, default_value = "cpu")]
    device: String,
    /// On CUDA: compare with the CPU tiled op at the lengths up to this one (0: no check)
    #[arg(long, default_value_t = 0)]
    check: usize,
    /// On CUDA: the kernels to time (and check): v1 (kernels/flash_attn.cu), v2
    /// (kernels/flash_attn_v2.cu) or both; default: S1_FLASH_KERNEL's, else v1
    #[arg(long, value_enum)]
    kernel: Option<KernelChoice>,
    /// Python with torch for the baseline
    #[arg(long, env = "S1_BENCH_PYTHON", default_value = "python3")]
    python: String,
    #[arg(long)]
    no_baselines: bool,
}

/// The shape of one measurement.
#[derive(Clone, Copy)]
struct Shape {
    b: usize,
    t: usize,
    h: usize,
    kvh: usize,
    d: usize,
}

/// Random inputs q, k, v and an upstream gradient, rounded to bf16 (so that the CPU check sees
/// exactly what the GPU does), as f32 CPU tensors.
fn inputs(s: Shape) -> anyhow::Result<[Tensor; 4]> {
    let dev = Device::Cpu;
    let r = |heads: usize| -> anyhow::Result<Tensor> {
        Ok(Tensor::randn(0f32, 1.0, (s.b, s.t, heads * s.d), &dev)?
            .to_dtype(DType::BF16)?
            .to_dtype(DType::F32)?)
    };
    Ok([r(s.h)?, r(s.kvh)?, r(s.kvh)?, r(s.h)?])
}

/// The output and the gradients of q, k, v as f32 CPU tensors, and the seconds it took.
fn run_once(path: AttentionPath, s: Shape, x: &[Tensor; 4], dev: &Device) -> anyhow::Result<([Tensor; 4], f64)> {
    let dtype = if dev.is_cpu() { DType::F32 } else { DType::BF16 };
    let on = |t: &Tensor| -> anyhow::Result<Tensor> { Ok(t.to_dtype(dtype)?.to_device(dev)?) };
    let (q, k, v) = (
        Var::from_tensor(&on(&x[0])?)?,
        Var::from_tensor(&on(&x[1])?)?,
        Var::from_tensor(&on(&x[2])?)?,
    );
    let r = on(&x[3])?;
    dev.synchronize()?;
    let start = Instant::now();
    let o = causal_attention_on(path, q.as_tensor(), k.as_tensor(), v.as_tensor(), s.h, s.kvh, s.d)?;
    let grads = (&o * &r)?.sum_all()?.backward()?;
    dev.synchronize()?;
    let secs = start.elapsed().as_secs_f64();
    let back = |t: &Tensor| -> anyhow::Result<Tensor> { Ok(t.to_dtype(DType::F32)?.to_device(&Device::Cpu)?) };
    let g = |x: &Var| -> anyhow::Result<Tensor> {
        back(
            grads
                .get(x.as_tensor())
                .ok_or_else(|| anyhow::anyhow!("no gradient reached an input"))?,
        )
    };
    Ok(([back(&o)?, g(&q)?, g(&k)?, g(&v)?], secs))
}

/// Median seconds of forward + backward by `path`.
fn time_path(path: AttentionPath, s: Shape, x: &[Tensor; 4], dev: &Device, runs: usize) -> anyhow::Result<f64> {
    let mut times = Vec::new();
    for run in 0..=runs {
        let (_, secs) = run_once(path, s, x, dev)?;
        if run > 0 {
            times.push(secs);
        }
    }
    Ok(median(&mut times))
}

/// `max |a - b| / max(1, max |b|)` for o, dq, dk, dv.
fn errors(a: &[Tensor; 4], b: &[Tensor; 4]) -> anyhow::Result<[f32; 4]> {
    let mut out = [0f32; 4];
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let diff = (x - y)?.abs()?.max_all()?.to_scalar::<f32>()?;
        let scale = y.abs()?.max_all()?.to_scalar::<f32>()?.max(1.0);
        out[i] = diff / scale;
    }
    Ok(out)
}

/// PyTorch's milliseconds at this shape (sdpa, flash-attn or NaN).
fn baseline(a: &AttentionBenchArgs, s: Shape) -> anyhow::Result<(f64, f64)> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let args: Vec<String> = [
        ("--batch", s.b),
        ("--seq", s.t),
        ("--heads", s.h),
        ("--kv-heads", s.kvh),
        ("--head-dim", s.d),
        ("--runs", a.runs),
        ("--threads", threads),
    ]
    .iter()
    .flat_map(|(k, v)| [k.to_string(), v.to_string()])
    .chain(["--device".to_string(), a.device.clone()])
    .collect();
    let j = baseline_json(&a.python, "bench_attention_torch.py", &args)?;
    let ms = |k: &str| j[k].as_f64().unwrap_or(f64::NAN);
    Ok((ms("sdpa_ms"), ms("flash_attn_ms")))
}

pub fn run(a: AttentionBenchArgs) -> anyhow::Result<()> {
    let c = bench_config();
    let (h, kvh, d) = (
        a.heads.unwrap_or(c.num_heads),
        a.kv_heads.unwrap_or(c.num_kv_heads),
        a.head_dim.unwrap_or(c.head_dim),
    );
    let dev = crate::model::parse_device(&a.device)?;
    let kernels = match (a.kernel, dev.is_cpu()) {
        (Some(_), true) => anyhow::bail!(
            "--kernel picks the CUDA kernels (kernels/flash_attn*.cu); the CPU has one tiled path: drop it or use --device cuda"
        ),
        // Not used on the CPU.
        (None, true) => vec![FlashKernel::V1],
        (None, false) => vec![flash_kernel::current().map_err(anyhow::Error::msg)?],
        (Some(KernelChoice::V1), false) => vec![FlashKernel::V1],
        (Some(KernelChoice::V2), false) => vec![FlashKernel::V2],
        (Some(KernelChoice::Both), false) => vec![FlashKernel::V1, FlashKernel::V2],
    };
    let result = run_kernels(&a, &dev, &kernels, (h, kvh, d));
    flash_kernel::set(None);
    result
}

/// The table (and checks) of [`run`] for each of `kernels` (one entry on the CPU, where it is not
/// used).
fn run_kernels(
    a: &AttentionBenchArgs,
    dev: &Device,
    kernels: &[FlashKernel],
    (h, kvh, d): (usize, usize, usize),
) -> anyhow::Result<()> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "attention forward + backward, {}, batch {}, {h} heads / {kvh} kv heads of {d}, {threads} threads, \
         median of {} runs",
        a.device, a.batch, a.runs
    );
    let named = kernels.len() > 1;
    if !dev.is_cpu() {
        let names: Vec<&str> = kernels.iter().map(|k| k.name()).collect();
        println!("CUDA kernels: {}", names.join(", "));
    }
    let label = |k: &FlashKernel, what: &str| {
        if named {
            format!("{} {what}", k.name())
        } else {
            what.to_string()
        }
    };
    let mut head = format!("{:>7} {:>12}", "t", "material. ms");
    for k in kernels {
        head += &format!(" {:>12}", label(k, "tiled ms"));
    }
    head += &format!(" {:>10} {:>10}", "sdpa ms", "f-attn ms");
    // Column widths of the TFLOP/s and "vs sdpa" columns of each kernel.
    let widths = |k: &FlashKernel| (label(k, "TFLOP/s").len().max(9), label(k, "vs sdpa").len().max(8));
    for k in kernels {
        let (wf, ws) = widths(k);
        head += &format!(" {:>wf$} {:>ws$}", label(k, "TFLOP/s"), label(k, "vs sdpa"));
    }
    println!("{head}");
    let mut failed = false;
    for &t in &a.seq {
        let s = Shape {
            b: a.batch,
            t,
            h,
            kvh,
            d,
        };
        let x = inputs(s)?;
        // Causal forward + backward: 2 + 5 products of t^2/2 * d per head (the recomputation
        // of the backward not counted).
        let flops = 7.0 * (a.batch * h) as f64 * (t * t) as f64 * d as f64;
        let mat = if dev.is_cpu() {
            time_path(AttentionPath::Materialised, s, &x, dev, a.runs)?
        } else {
            f64::NAN
        };
        let mut tiled = Vec::new();
        for &k in kernels {
            flash_kernel::set(Some(k));
            tiled.push(time_path(AttentionPath::Tiled, s, &x, dev, a.runs)?);
        }
        let (sdpa, fa) = if a.no_baselines {
            (f64::NAN, f64::NAN)
        } else {
            baseline(a, s)?
        };
        let mut line = format!("{t:>7} {:>12.2}", mat * 1e3);
        for secs in &tiled {
            line += &format!(" {:>12.2}", secs * 1e3);
        }
        line += &format!(" {sdpa:>10.2} {fa:>10.2}");
        for (k, secs) in kernels.iter().zip(&tiled) {
            let (wf, ws) = widths(k);
            let ws = ws - 1;
            line += &format!(" {:>wf$.2} {:>ws$.2}x", flops / secs / 1e12, sdpa / (secs * 1e3));
        }
        println!("{line}");
        if !dev.is_cpu() && t <= a.check {
            let (cpu, _) = run_once(AttentionPath::Tiled, s, &x, &Device::Cpu)?;
            for &k in kernels {
                flash_kernel::set(Some(k));
                let (gpu, _) = run_once(AttentionPath::Tiled, s, &x, dev)?;
                let e = errors(&gpu, &cpu)?;
                // bf16 outputs (relative rounding 2^-9) and bf16 probabilities inside the products.
                let ok = e.iter().all(|&v| v.is_finite() && v <= 2e-2);
                failed |= !ok;
                println!(
                    "        check of {} against the CPU op: o {:.1e}, dq {:.1e}, dk {:.1e}, dv {:.1e} -> {}",
                    k.name(),
                    e[0],
                    e[1],
                    e[2],
                    e[3],
                    if ok { "ok" } else { "FAILED (tolerance 2e-2)" }
                );
            }
        }
    }
    if failed {
        anyhow::bail!("the CUDA attention differs from the CPU op beyond the tolerance");
    }
    Ok(())
}
