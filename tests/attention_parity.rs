//! The training attention on the CPU, both paths (tiled with an online softmax, and
//! materialising), forward and every gradient, for t in {1, 17, 64, 1000, 4096} and GQA ratios
//! 1, 2 and 7: against PyTorch's scaled_dot_product_attention (tests/fixtures/parity/
//! attention.safetensors, written by `scripts/make_parity_fixtures.py --attention`, computed in
//! f64), against a plain f64 implementation, and against each other; and the whole-model
//! gradient fixtures with the tiled path forced at every length.
//!
//! Tolerances: every comparison is `max |a - b| / max(1, max |b|)` over a tensor. Both paths compute in
//! f32 (unit roundoff u = 6e-8) and sum at most t = 4096 products per value (blocked, so the
//! error grows like sqrt(t) u in practice, t u = 2.4e-4 in the worst case); the measured errors
//! are below 2e-6 against f64 (printed by the tests), and the bound of 3e-5 leaves a margin of
//! ten while still catching any indexing or masking mistake (those give errors of order 1).

mod common;

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use s1_studio::model::kernels::fused_attention::{causal_attention_on, set_tiled_from, AttentionPath};
use s1_studio::train::parity::{gradient_parity, ParityRun};

const TOL: f32 = 3e-5;

/// The output and the gradients of q, k and v for an upstream gradient `d_o`.
#[derive(Debug)]
struct Result4 {
    o: Vec<f32>,
    dq: Vec<f32>,
    dk: Vec<f32>,
    dv: Vec<f32>,
}

/// Shape of a case: batch, sequence, heads, kv heads, head size.
#[derive(Debug, Clone, Copy)]
struct Case {
    b: usize,
    t: usize,
    h: usize,
    kvh: usize,
    d: usize,
}

fn ours(path: AttentionPath, c: Case, q: &[f32], k: &[f32], v: &[f32], d_o: &[f32]) -> Result4 {
    let dev = Device::Cpu;
    let var = |x: &[f32], heads: usize| Var::from_vec(x.to_vec(), (c.b, c.t, heads * c.d), &dev).unwrap();
    let (qv, kv, vv) = (var(q, c.h), var(k, c.kvh), var(v, c.kvh));
    let o = causal_attention_on(path, qv.as_tensor(), kv.as_tensor(), vv.as_tensor(), c.h, c.kvh, c.d).unwrap();
    let dot = Tensor::from_vec(d_o.to_vec(), (c.b, c.t, c.h * c.d), &dev).unwrap();
    let grads = (&o * &dot).unwrap().sum_all().unwrap().backward().unwrap();
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let g = |x: &Var| flat(grads.get(x.as_tensor()).expect("a gradient for every input"));
    Result4 {
        o: flat(&o),
        dq: g(&qv),
        dk: g(&kv),
        dv: g(&vv),
    }
}

/// Causal grouped-query attention and its gradients in f64, straight from the definition.
fn reference(c: Case, q: &[f32], k: &[f32], v: &[f32], d_o: &[f32]) -> Result4 {
    let Case { b, t, h, kvh, d } = c;
    let rep = h / kvh;
    let scale = 1.0 / (d as f64).sqrt();
    let qi = |bi: usize, i: usize, hh: usize| ((bi * t + i) * h + hh) * d;
    let ki = |bi: usize, j: usize, g: usize| ((bi * t + j) * kvh + g) * d;
    let dotp = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum::<f64>();
    let (mut o, mut dq) = (vec![0f64; q.len()], vec![0f64; q.len()]);
    let (mut dk, mut dv) = (vec![0f64; k.len()], vec![0f64; k.len()]);
    for bi in 0..b {
        for hh in 0..h {
            let g = hh / rep;
            for i in 0..t {
                let qr = &q[qi(bi, i, hh)..qi(bi, i, hh) + d];
                let s: Vec<f64> = (0..=i)
                    .map(|j| scale * dotp(qr, &k[ki(bi, j, g)..ki(bi, j, g) + d]))
                    .collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
                let z: f64 = e.iter().sum();
                let p: Vec<f64> = e.iter().map(|x| x / z).collect();
                let dor = &d_o[qi(bi, i, hh)..qi(bi, i, hh) + d];
                let dp: Vec<f64> = (0..=i).map(|j| dotp(dor, &v[ki(bi, j, g)..ki(bi, j, g) + d])).collect();
                let dsum: f64 = p.iter().zip(&dp).map(|(a, b)| a * b).sum();
                for j in 0..=i {
                    let ds = p[j] * (dp[j] - dsum) * scale;
                    for x in 0..d {
                        o[qi(bi, i, hh) + x] += p[j] * v[ki(bi, j, g) + x] as f64;
                        dq[qi(bi, i, hh) + x] += ds * k[ki(bi, j, g) + x] as f64;
                        dk[ki(bi, j, g) + x] += ds * qr[x] as f64;
                        dv[ki(bi, j, g) + x] += p[j] * dor[x] as f64;
                    }
                }
            }
        }
    }
    let f = |x: Vec<f64>| x.into_iter().map(|v| v as f32).collect();
    Result4 {
        o: f(o),
        dq: f(dq),
        dk: f(dk),
        dv: f(dv),
    }
}

/// `max |a - b| / max(1, max |b|)`: relative to the tensor's largest value, or absolute where
/// that is below 1 (the inputs are of order 1; at t = 1 dq is exactly 0, the rounding of
/// P (dP - D) with dP of order 1 is not).
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// Asserts that every tensor of `a` is within [`TOL`] of `b`'s; returns the worst error.
fn assert_close(a: &Result4, b: &Result4, what: &str) -> f32 {
    let mut worst = 0f32;
    for (name, x, y) in [
        ("o", &a.o, &b.o),
        ("dq", &a.dq, &b.dq),
        ("dk", &a.dk, &b.dk),
        ("dv", &a.dv, &b.dv),
    ] {
        let e = rel_err(x, y);
        assert!(
            e <= TOL,
            "{what}: {name} differs by {e:.2e} (relative to its largest value)"
        );
        worst = worst.max(e);
    }
    worst
}

/// Deterministic values in [-amp, amp).
fn values(n: usize, seed: u64, amp: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * amp
        })
        .collect()
}

fn random_case(c: Case, seed: u64) -> [Vec<f32>; 4] {
    let (nq, nk) = (c.b * c.t * c.h * c.d, c.b * c.t * c.kvh * c.d);
    // q of amplitude 3: scores of std ~1.7, a softmax neither flat nor one-hot.
    [
        values(nq, seed, 3.0),
        values(nk, seed + 1, 1.7),
        values(nk, seed + 2, 1.7),
        values(nq, seed + 3, 1.7),
    ]
}

/// Ratios 1, 2 and 7 at every length: tiled against materialising, both against f64 (which at
/// 4,096 runs for ratio 1 only, to keep the plain O(t^2) loops short).
#[test]
fn tiled_matches_materialising_and_f64() {
    for t in [1, 17, 64, 1000, 4096] {
        for (i, (h, kvh)) in [(2, 2), (4, 2), (7, 1)].into_iter().enumerate() {
            let c = Case {
                b: if t > 1000 { 1 } else { 2 },
                t,
                h,
                kvh,
                d: 16,
            };
            let [q, k, v, d_o] = random_case(c, (t * 10 + i) as u64);
            let tiled = ours(AttentionPath::Tiled, c, &q, &k, &v, &d_o);
            let mat = ours(AttentionPath::Materialised, c, &q, &k, &v, &d_o);
            let e_tm = assert_close(&tiled, &mat, &format!("{c:?} tiled vs materialising"));
            let mut line = format!("{c:?}: tiled vs materialising {e_tm:.1e}");
            if t <= 1000 || h == kvh {
                let r = reference(c, &q, &k, &v, &d_o);
                let e_t = assert_close(&tiled, &r, &format!("{c:?} tiled vs f64"));
                let e_m = assert_close(&mat, &r, &format!("{c:?} materialising vs f64"));
                line += &format!(", tiled vs f64 {e_t:.1e}, materialising vs f64 {e_m:.1e}");
            }
            eprintln!("{line}");
        }
    }
}

/// Both paths against torch's scaled_dot_product_attention at every fixture case.
#[test]
fn both_paths_match_pytorch_sdpa() {
    let path = common::fixture("parity/attention.safetensors");
    let fx: HashMap<String, Tensor> = candle_core::safetensors::load(&path, &Device::Cpu).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (scripts/make_parity_fixtures.py --attention writes it)",
            path.display()
        )
    });
    let mut cases: Vec<&str> = fx.keys().filter_map(|k| k.strip_suffix(".q")).collect();
    cases.sort();
    assert_eq!(cases.len(), 13, "cases in {}: {cases:?}", path.display());
    let get = |name: &str, what: &str| -> (Vec<f32>, Vec<usize>) {
        let t = &fx[&format!("{name}.{what}")];
        let dims = t.dims().to_vec();
        let v = t
            .to_dtype(DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        (v, dims)
    };
    let (mut lengths, mut ratios) = (Vec::new(), Vec::new());
    for name in cases {
        let (q, qd) = get(name, "q");
        let (k, kd) = get(name, "k");
        let c = Case {
            b: 1,
            t: qd[0],
            h: qd[1],
            kvh: kd[1],
            d: qd[2],
        };
        lengths.push(c.t);
        ratios.push(c.h / c.kvh);
        let (v, d_o) = (get(name, "v").0, get(name, "do").0);
        let want = Result4 {
            o: get(name, "o").0,
            dq: get(name, "dq").0,
            dk: get(name, "dk").0,
            dv: get(name, "dv").0,
        };
        for path in [AttentionPath::Tiled, AttentionPath::Materialised] {
            let got = ours(path, c, &q, &k, &v, &d_o);
            let e = assert_close(&got, &want, &format!("{name} {path:?} vs sdpa"));
            eprintln!("{name} {path:?}: worst relative error against sdpa {e:.1e}");
        }
    }
    for t in [1, 17, 64, 1000, 4096] {
        assert!(lengths.contains(&t), "no fixture case at t = {t}");
    }
    for r in [1, 2, 7] {
        assert!(ratios.contains(&r), "no fixture case with GQA ratio {r}");
    }
}

/// The whole-model gradient fixtures (Qwen2 through the block op, Llama with one kv head, Qwen3
/// through the per-op path) with the tiled path forced at every length, with and without
/// checkpointing. (This binary's other tests choose their path explicitly.)
#[test]
fn model_gradients_match_pytorch_through_tiled_attention() {
    set_tiled_from(0);
    for name in ["qwen2", "llama", "qwen3"] {
        for checkpoint in [false, true] {
            let dir = common::fixture("parity").join(name);
            let run = ParityRun {
                fused: true,
                checkpoint,
                split: false,
            };
            let r = gradient_parity(&dir, &Device::Cpu, DType::F32, run).unwrap();
            let what = format!("{name} (checkpoint {checkpoint})");
            assert!(
                (r.loss - r.expected_loss).abs() < 1e-5 * r.expected_loss,
                "{what}: loss {} vs {}",
                r.loss,
                r.expected_loss
            );
            assert!(r.missing.is_empty(), "{what}: without a gradient: {:?}", r.missing);
            for (p, rel) in &r.relative {
                assert!(*rel < 1e-4, "{what}: {p} relative error {rel}");
            }
            let (worst, at) = r.worst();
            eprintln!("{what}: worst relative gradient error {worst:.2e} ({at})");
        }
    }
}
