//! The CUDA FlashAttention kernels run from their own source in a CPU emulator
//! (tests/cuda_emu: each CUDA thread a fiber, the inline-PTX instructions with the PTX ISA's
//! semantics, a shared-memory race checker), checked like scripts/device-check.sh checks them on
//! a GPU: the output and every gradient against the CPU tiled op, `max |a - b| / max(1, max |b|)`
//! <= 2e-2 (bf16 outputs, relative rounding 2^-9, and bf16 probabilities inside the products).
//!
//! - kernels/flash_attn.cu (v1) passed that check on an H200; passing it here shows the emulator
//!   reproduces a verified kernel.
//! - kernels/flash_attn_v2.cu (v2) has not run on a GPU. Here it runs at GQA ratios 1, 2 and 7,
//!   head sizes 64 and 128, lengths from 1 past several blocks, and its dK/dV split into 1 or
//!   several parts; under three schedules (threads resumed in order, reversed, shuffled; cp.async
//!   landing late, early, at random) its results must be bit for bit the same, and the race
//!   checker must stay silent.
//! - Kernels with one planted bug each (a read racing a copy, a copy racing a read, a thread reading
//!   its own copy before waiting, a copy never committed and so never waited for, a barrier half
//!   the block skips, half a warp at another mma.sync, a read of unwritten shared memory) must be
//!   refused, so that the checks above can fail.
//! - Each row's log-sum-exp, which the forward writes and the backward reads (either version's
//!   backward reads either version's forward), is compared with a direct one in f64
//!   (`max |a - b| / max(1, max |b|)` <= 1e-4: it is an f32 sum of exact bf16 products).
//!
//! Needs a C++17 compiler (`c++`, or $CXX): g++ on the CI image. Without one the tests fail and
//! say so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use candle_core::{DType, Device, Tensor, Var};
use s1_studio::model::kernels::flash_kernel::{dkdv_splits, v2_cfg};
use s1_studio::model::kernels::fused_attention::{causal_attention_on, AttentionPath};

const TOL: f32 = 2e-2;
const LSE_TOL: f64 = 1e-4;

/// The emulator binary, built once per test process from tests/cuda_emu and kernels/.
fn emulator() -> &'static Path {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BIN.get_or_init(build) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

fn build() -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cuda_emu");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let emu = root.join("tests/cuda_emu");
    // The three translation units compile side by side (about 10 s of one core each, -O2).
    let units = ["main", "v1", "v2"];
    let children: Vec<_> = units
        .iter()
        .map(|u| {
            Command::new(&cxx)
                .args(["-std=c++17", "-O2", "-fno-strict-aliasing", "-DS1_CUDA_EMU", "-c"])
                .arg("-I")
                .arg(&emu)
                .arg("-iquote")
                .arg(root.join("kernels"))
                .arg(emu.join(format!("{u}.cpp")))
                .arg("-o")
                .arg(dir.join(format!("{u}.o")))
                .output()
        })
        .collect();
    for (u, out) in units.iter().zip(children) {
        let out = out.map_err(|e| {
            format!("tests/flash_emulated.rs needs a C++17 compiler (`{cxx}`, or set CXX), as CI's image has: {e}")
        })?;
        if !out.status.success() {
            return Err(format!(
                "compiling tests/cuda_emu/{u}.cpp failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let bin = dir.join("emu");
    let out = Command::new(&cxx)
        .args(units.map(|u| dir.join(format!("{u}.o"))))
        .arg("-o")
        .arg(&bin)
        .output()
        .map_err(|e| format!("linking the emulator: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "linking the emulator failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(bin)
}

/// How the emulator interleaves a block's threads (tests/cuda_emu/cuda_emu.h, `Policy`).
#[derive(Debug, Clone, Copy)]
struct Schedule {
    /// 0: threads in index order, 1: reversed, 2: shuffled at every pass.
    order: i32,
    /// cp.async lands 0: at cp.async.wait_group, 1: when issued, 2: either, by coin.
    land: i32,
    seed: u64,
}

const IN_ORDER: Schedule = Schedule {
    order: 0,
    land: 0,
    seed: 1,
};
const SCHEDULES: [Schedule; 3] = [
    IN_ORDER,
    Schedule {
        order: 1,
        land: 1,
        seed: 2,
    },
    Schedule {
        order: 2,
        land: 2,
        seed: 3,
    },
];

/// One run: kernel version (1 or 2), shape, and v2's dK/dV split (a divisor of h / kvh).
#[derive(Debug, Clone, Copy)]
struct Case {
    version: i32,
    b: usize,
    t: usize,
    h: usize,
    kvh: usize,
    d: usize,
    splits: usize,
}

const fn case(version: i32, b: usize, t: usize, h: usize, kvh: usize, d: usize, splits: usize) -> Case {
    Case {
        version,
        b,
        t,
        h,
        kvh,
        d,
        splits,
    }
}

/// q, k, v and the upstream gradient, rounded to bf16, as f32 CPU tensors `[b, t, heads * d]`.
fn inputs(c: Case) -> [Tensor; 4] {
    let r = |heads: usize| {
        Tensor::randn(0f32, 1.0, (c.b, c.t, heads * c.d), &Device::Cpu)
            .and_then(|x| x.to_dtype(DType::BF16))
            .and_then(|x| x.to_dtype(DType::F32))
            .expect("random input")
    };
    [r(c.h), r(c.kvh), r(c.kvh), r(c.h)]
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().and_then(|x| x.to_vec1::<f32>()).expect("tensor values")
}

/// o, dq, dk and dv from the CPU tiled op (the reference the GPU check uses).
fn reference(c: Case, x: &[Tensor; 4]) -> [Vec<f32>; 4] {
    let (q, k, v) = (
        Var::from_tensor(&x[0]).expect("q"),
        Var::from_tensor(&x[1]).expect("k"),
        Var::from_tensor(&x[2]).expect("v"),
    );
    let o = causal_attention_on(
        AttentionPath::Tiled,
        q.as_tensor(),
        k.as_tensor(),
        v.as_tensor(),
        c.h,
        c.kvh,
        c.d,
    )
    .expect("CPU attention");
    let grads = (&o * &x[3])
        .and_then(|y| y.sum_all())
        .and_then(|y| y.backward())
        .expect("backward");
    let g = |v: &Var| values(grads.get(v.as_tensor()).expect("a gradient"));
    [values(&o), g(&q), g(&k), g(&v)]
}

/// What the emulated kernels wrote: o, dq, dk and dv; each row's log-sum-exp `[b, h, t]`; and the
/// emulator's counts (blocks, barriers, instructions).
struct Emulated {
    grads: [Vec<f32>; 4],
    lse: Vec<f32>,
    counts: String,
}

/// Each row's log-sum-exp `[b, h, t]` of the scaled causal scores, in f64.
fn lse_reference(c: Case, x: &[Tensor; 4]) -> Vec<f64> {
    let (q, k) = (values(&x[0]), values(&x[1]));
    let scale = 1.0 / (c.d as f64).sqrt();
    let mut out = Vec::with_capacity(c.b * c.h * c.t);
    for b in 0..c.b {
        for h in 0..c.h {
            let g = h / (c.h / c.kvh);
            for i in 0..c.t {
                let qi = &q[((b * c.t + i) * c.h + h) * c.d..][..c.d];
                let s: Vec<f64> = (0..=i)
                    .map(|j| {
                        let kj = &k[((b * c.t + j) * c.kvh + g) * c.d..][..c.d];
                        qi.iter().zip(kj).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>() * scale
                    })
                    .collect();
                let m = s.iter().fold(f64::NEG_INFINITY, |m, v| m.max(*v));
                out.push(m + s.iter().map(|v| (v - m).exp()).sum::<f64>().ln());
            }
        }
    }
    out
}

fn emulate(c: Case, x: &[Tensor; 4], s: Schedule) -> Emulated {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cuda_emu");
    let name = format!(
        "v{}_b{}_t{}_h{}_kv{}_d{}_s{}_o{}l{}x{}_{:?}",
        c.version,
        c.b,
        c.t,
        c.h,
        c.kvh,
        c.d,
        c.splits,
        s.order,
        s.land,
        s.seed,
        std::thread::current().id()
    )
    .replace(|ch: char| !ch.is_ascii_alphanumeric() && ch != '_', "");
    let (inp, out) = (dir.join(format!("{name}.in")), dir.join(format!("{name}.out")));
    let mut bytes = b"S1EMU001".to_vec();
    let header = [
        c.version,
        c.b as i32,
        c.t as i32,
        c.h as i32,
        c.kvh as i32,
        c.d as i32,
        c.splits as i32,
        s.order,
        s.land,
    ];
    for v in header {
        bytes.extend(v.to_le_bytes());
    }
    bytes.extend(s.seed.to_le_bytes());
    for t in x {
        // The values are bf16 already: their top 16 bits are the bf16.
        for v in values(t) {
            bytes.extend(((v.to_bits() >> 16) as u16).to_le_bytes());
        }
    }
    std::fs::write(&inp, bytes).expect("writing the case");
    let run = Command::new(emulator())
        .arg("run")
        .arg(&inp)
        .arg(&out)
        .output()
        .expect("running the emulator");
    assert!(
        run.status.success(),
        "the emulator refused {c:?} under {s:?}:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let raw = std::fs::read(&out).expect("the emulator's output");
    let f: Vec<f32> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let (nq, nk, ns) = (c.b * c.t * c.h * c.d, c.b * c.t * c.kvh * c.d, c.b * c.h * c.t);
    assert_eq!(f.len(), 2 * nq + ns + 2 * nk, "output size of {c:?}");
    let (o, rest) = f.split_at(nq);
    let (lse, rest) = rest.split_at(ns);
    let (dq, rest) = rest.split_at(nq);
    let (dk, dv) = rest.split_at(nk);
    let _ = std::fs::remove_file(&inp);
    let _ = std::fs::remove_file(&out);
    Emulated {
        grads: [o.to_vec(), dq.to_vec(), dk.to_vec(), dv.to_vec()],
        lse: lse.to_vec(),
        counts: String::from_utf8_lossy(&run.stdout).trim().to_string(),
    }
}

/// `max |a - b| / max(1, max |b|)`, infinite where a is not finite.
fn error(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0f32, |m, (x, y)| {
        if x.is_finite() {
            m.max((x - y).abs() / scale)
        } else {
            f32::INFINITY
        }
    })
}

fn check_against_cpu(cases: &[Case]) {
    let mut failed = Vec::new();
    for &c in cases {
        let x = inputs(c);
        let want = reference(c, &x);
        let got = emulate(c, &x, IN_ORDER);
        let e: Vec<f32> = got.grads.iter().zip(&want).map(|(g, w)| error(g, w)).collect();
        let lse_want = lse_reference(c, &x);
        let lse_scale = lse_want.iter().fold(1f64, |m, v| m.max(v.abs()));
        let lse_e = got.lse.iter().zip(&lse_want).fold(0f64, |m, (a, b)| {
            let d = (*a as f64 - b).abs() / lse_scale;
            if d.is_finite() {
                m.max(d)
            } else {
                f64::INFINITY
            }
        });
        let ok = e.iter().all(|v| *v <= TOL) && lse_e <= LSE_TOL;
        let counts = &got.counts;
        println!(
            "v{} b {} t {:>4} h {} kv {} d {:>3} splits {}: o {:.1e}, dq {:.1e}, dk {:.1e}, dv {:.1e}, lse {lse_e:.1e} -> {} ({counts})",
            c.version,
            c.b,
            c.t,
            c.h,
            c.kvh,
            c.d,
            c.splits,
            e[0],
            e[1],
            e[2],
            e[3],
            if ok { "ok" } else { "FAILED" }
        );
        if !ok {
            failed.push(c);
        }
    }
    assert!(failed.is_empty(), "beyond the tolerance {TOL}: {failed:?}");
}

#[test]
fn v1_in_the_emulator_matches_the_cpu_op() {
    check_against_cpu(&[
        case(1, 2, 17, 4, 2, 64, 1),
        case(1, 1, 200, 7, 1, 64, 1),
        case(1, 1, 150, 2, 2, 128, 1),
    ]);
}

#[test]
fn v2_at_head_size_64_matches_the_cpu_op() {
    check_against_cpu(&[
        case(2, 2, 1, 2, 2, 64, 1),
        case(2, 2, 17, 4, 2, 64, 2),
        case(2, 1, 64, 7, 1, 64, 7),
        case(2, 1, 64, 7, 1, 64, 1),
        case(2, 1, 200, 4, 2, 64, 1),
        case(2, 1, 1000, 2, 1, 64, 2),
    ]);
}

#[test]
fn v2_at_head_size_128_matches_the_cpu_op() {
    check_against_cpu(&[
        case(2, 2, 1, 2, 2, 128, 1),
        case(2, 2, 17, 4, 2, 128, 2),
        case(2, 1, 100, 7, 1, 128, 7),
        case(2, 1, 300, 4, 2, 128, 1),
    ]);
}

/// v2 at the attention shapes of Qwen2.5-0.5B (14 heads over 2 kv heads, d 64) and 1.5B (12 over 2,
/// d 128), with the dK/dV split the CUDA launcher picks for that grid.
#[test]
fn v2_at_qwen_shapes_with_the_launchers_split_matches_the_cpu_op() {
    let launched = |t: usize, h: usize, kvh: usize, d: usize| {
        let blocks = t.div_ceil(v2_cfg(d).kv_warps * 16) * kvh;
        case(2, 1, t, h, kvh, d, dkdv_splits(h / kvh, blocks))
    };
    let cases = [launched(130, 14, 2, 64), launched(90, 12, 2, 128)];
    assert!(
        cases.iter().all(|c| c.splits > 1),
        "small grids split the heads: {cases:?}"
    );
    check_against_cpu(&cases);
}

#[test]
fn results_do_not_depend_on_the_schedule() {
    for c in [
        case(2, 1, 150, 4, 2, 64, 2),
        case(2, 1, 70, 2, 1, 128, 2),
        case(1, 1, 100, 2, 1, 64, 1),
    ] {
        let x = inputs(c);
        let first = emulate(c, &x, SCHEDULES[0]);
        for s in &SCHEDULES[1..] {
            let other = emulate(c, &x, *s);
            let (a_all, b_all) = (
                first.grads.iter().chain([&first.lse]),
                other.grads.iter().chain([&other.lse]),
            );
            for (i, (a, b)) in a_all.zip(b_all).enumerate() {
                let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(
                    same,
                    "{c:?}: output {i} (o, dq, dk, dv, lse) differs between {:?} and {s:?}",
                    SCHEDULES[0]
                );
            }
        }
        println!("{c:?}: the same bits under {} schedules", SCHEDULES.len());
    }
}

#[test]
fn the_emulator_refuses_planted_bugs() {
    let run = |what: &str| {
        Command::new(emulator())
            .arg(what)
            .output()
            .unwrap_or_else(|e| panic!("running the emulator ({what}): {e}"))
    };
    let ok = run("selftest");
    assert!(
        ok.status.success(),
        "the emulator's self-test failed:\n{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    for (what, says) in [
        ("race-raw", "may still be writing"),
        ("race-war", "read in the same barrier phase"),
        ("race-own", "before its own cp.async"),
        ("uncommitted", "may still be writing"),
        ("diverge", "deadlock"),
        ("diverge-warp", "(divergence)"),
        ("unwritten", "which nothing wrote"),
    ] {
        let out = run(what);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{what}: not refused (stdout {:?}, stderr {err:?})",
            out.stdout
        );
        assert!(err.contains(says), "{what}: refused for another reason: {err}");
    }
}
