//! `s1-studio bench attention`: the CPU training attention's forward + backward, tiled
//! (memory linear in t) against materialising, at the benchmark model's head shape over a
//! range of sequence lengths: where the tiled path becomes the faster one is the length from
//! which the training path takes it (fused_attention's DEFAULT_TILED_FROM).

use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use clap::Args;

use super::{bench_config, median};
use crate::model::kernels::fused_attention::{causal_attention_on, AttentionPath};

#[derive(Debug, Args)]
pub struct AttentionBenchArgs {
    /// Sequence lengths to time
    #[arg(long, value_delimiter = ',', default_value = "64,128,256,384,512,768,1024,2048,4096")]
    seq: Vec<usize>,
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Timed runs per path and length (after one warm-up run); the median is reported
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

/// Median seconds of forward + backward by `path` on random inputs of the given shape.
fn time_path(path: AttentionPath, b: usize, t: usize, runs: usize) -> anyhow::Result<f64> {
    let c = bench_config();
    let (h, kvh, d) = (c.num_heads, c.num_kv_heads, c.head_dim);
    let dev = Device::Cpu;
    let q = Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, t, h * d), &dev)?)?;
    let k = Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, t, kvh * d), &dev)?)?;
    let v = Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, t, kvh * d), &dev)?)?;
    let r = Tensor::randn(0f32, 1.0, (b, t, h * d), &dev)?;
    let mut times = Vec::new();
    for run in 0..=runs {
        let start = Instant::now();
        let o = causal_attention_on(path, q.as_tensor(), k.as_tensor(), v.as_tensor(), h, kvh, d)?;
        let grads = (o * &r)?.sum_all()?.backward()?;
        drop(grads);
        if run > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    Ok(median(&mut times))
}

pub fn run(a: AttentionBenchArgs) -> anyhow::Result<()> {
    let c = bench_config();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "attention forward + backward on the CPU, batch {}, {} heads / {} kv heads of {}, {threads} threads, \
         median of {} runs",
        a.batch, c.num_heads, c.num_kv_heads, c.head_dim, a.runs
    );
    println!(
        "{:>8} {:>16} {:>12} {:>8}",
        "t", "materialising ms", "tiled ms", "ratio"
    );
    let mut crossover = None;
    for &t in &a.seq {
        let m = time_path(AttentionPath::Materialised, a.batch, t, a.runs)?;
        let f = time_path(AttentionPath::Tiled, a.batch, t, a.runs)?;
        println!("{t:>8} {:>16.2} {:>12.2} {:>8.2}", m * 1e3, f * 1e3, m / f);
        if f <= m && crossover.is_none() {
            crossover = Some(t);
        } else if f > m {
            crossover = None;
        }
    }
    match crossover {
        Some(t) => println!("the tiled path is as fast or faster from t = {t} on"),
        None => println!("the tiled path is slower at the longest length timed"),
    }
    Ok(())
}
