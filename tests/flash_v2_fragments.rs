//! A CPU check of kernels/flash_attn_v2.cu's index maths, which no GPU was at hand to run: the
//! cp.async copies into XOR-swizzled shared tiles, and the ldmatrix(.trans) lane addresses that
//! fill the mma.m16n8k16 fragments. The kernel's index functions are mirrored here (the first test
//! fails when the .cu's lines change without this file), then simulated with the PTX ISA's
//! semantics:
//! - ldmatrix.x4: lanes 8j..8j+7 give the row addresses of 8x8 matrix j; lane 4g + c receives in
//!   register j elements (g, 2c) and (g, 2c+1) of matrix j, with .trans (2c, g) and (2c+1, g);
//! - mma A (16x16): a0 (g, 2c..2c+1), a1 (g+8, ..), a2 (g, 2c+8..), a3 (g+8, 2c+8..);
//!   B (16x8, k x n): b0 (k = 2c..2c+1, n = g), b1 (k = 2c+8..2c+9, n = g);
//!   C (16x8): c0, c1 (g, 2c..2c+1), c2, c3 (g+8, 2c..2c+1).
//!
//! For every tile shape the kernels use (block shapes parsed from the .cu's `Cfg<D>`), it proves
//! that each fragment holds exactly the intended sub-matrix, that every copy and every ldmatrix
//! phase is free of shared-memory bank conflicts, and (numerically) that a warp's S = Q K^T and
//! O = P V, with P passed from C to A registers, equal the direct products.

use std::collections::HashSet;

const SRC: &str = include_str!("../kernels/flash_attn_v2.cu");

/// The kernel's lines that this file mirrors, verbatim.
const MIRRORED: [&str; 5] = [
    "template <int D> __device__ __forceinline__ int swz(int r, int col) { return r * D + ((((col >> 3) ^ (r & 7))) << 3); }",
    "__device__ __forceinline__ int lm_row_a(int l) { return (l & 7) + (l & 8); }",
    "__device__ __forceinline__ int lm_col_a(int l) { return (l >> 4) << 3; }",
    "__device__ __forceinline__ int lm_row_bt(int l) { return (l & 7) + ((l >> 4) << 3); }",
    "__device__ __forceinline__ int lm_col_bt(int l) { return l & 8; }",
];

fn swz(d: usize, r: usize, col: usize) -> usize {
    r * d + (((col >> 3) ^ (r & 7)) << 3)
}
fn lm_row_a(l: usize) -> usize {
    (l & 7) + (l & 8)
}
fn lm_col_a(l: usize) -> usize {
    (l >> 4) << 3
}
fn lm_row_bt(l: usize) -> usize {
    (l & 7) + ((l >> 4) << 3)
}
fn lm_col_bt(l: usize) -> usize {
    l & 8
}

/// A logical tile element: (row, column).
type El = (usize, usize);
/// One 32-bit register: two bf16 elements (low, high).
type Reg = (El, El);

/// The 16-byte bank group (of 8 per 128 bytes) of a bf16 offset.
fn bank_group(off: usize) -> usize {
    (off * 2 / 16) % 8
}

/// The shared tile after `load_tile<D, NT>` copied `rows` rows: which logical element each bf16
/// slot holds. Checks that no slot is written twice, every element lands, and each quarter-warp's
/// 16-byte copies fall in 8 different bank groups.
fn copy_tile(d: usize, rows: usize, nt: usize) -> Vec<Option<El>> {
    let v = d / 8;
    let mut smem = vec![None; rows * d];
    let mut steps: Vec<Vec<(usize, usize)>> = Vec::new(); // per step: (thread, destination)
    for tid in 0..nt {
        let mut i = tid;
        let mut step = 0;
        while i < rows * v {
            let (r, ch) = (i / v, i % v);
            let dst = swz(d, r, ch * 8);
            assert_eq!(dst % 8, 0, "cp.async destination not 16-byte aligned");
            for e in 0..8 {
                assert!(smem[dst + e].is_none(), "d {d}: slot {} written twice", dst + e);
                smem[dst + e] = Some((r, ch * 8 + e));
            }
            if steps.len() <= step {
                steps.push(Vec::new());
            }
            steps[step].push((tid, dst));
            i += nt;
            step += 1;
        }
    }
    assert!(
        smem.iter().all(Option::is_some),
        "d {d}, {rows} rows: a slot was never written"
    );
    for step in &steps {
        for quarter in step.chunks(8) {
            let groups: HashSet<usize> = quarter.iter().map(|&(_, dst)| bank_group(dst)).collect();
            assert_eq!(
                groups.len(),
                quarter.len(),
                "d {d}: bank conflict in a cp.async quarter-warp"
            );
        }
    }
    smem
}

/// ldmatrix.x4 (`trans`: .trans) from the lanes' element offsets: the 4 registers of each lane.
/// Checks 16-byte alignment and that each 8x8 matrix's 8 rows hit 8 different bank groups.
fn ldmatrix(smem: &[Option<El>], addr: &[usize; 32], trans: bool) -> [[Reg; 4]; 32] {
    let at = |off: usize| smem[off].expect("ldmatrix reads an unwritten slot");
    for j in 0..4 {
        let rows = &addr[8 * j..8 * j + 8];
        assert!(
            rows.iter().all(|a| a % 8 == 0 && a + 8 <= smem.len()),
            "bad ldmatrix row address"
        );
        let groups: HashSet<usize> = rows.iter().map(|&a| bank_group(a)).collect();
        assert_eq!(groups.len(), 8, "bank conflict in ldmatrix matrix {j}: {rows:?}");
    }
    let mut out = [[((0, 0), (0, 0)); 4]; 32];
    for (lane, regs) in out.iter_mut().enumerate() {
        let (g, c) = (lane / 4, lane % 4);
        for (j, reg) in regs.iter_mut().enumerate() {
            let m = |i: usize, e: usize| at(addr[8 * j + i] + e);
            *reg = if trans {
                (m(2 * c, g), m(2 * c + 1, g))
            } else {
                (m(g, 2 * c), m(g, 2 * c + 1))
            };
        }
    }
    out
}

/// The 16x16 A matrix the MMA sees in these registers.
fn a_matrix(regs: &[[Reg; 4]; 32]) -> [[El; 16]; 16] {
    let mut a = [[(0, 0); 16]; 16];
    for (lane, r) in regs.iter().enumerate() {
        let (g, c) = (lane / 4, lane % 4);
        for (j, &(lo, hi)) in r.iter().enumerate() {
            let (row, col) = (g + 8 * (j & 1), 2 * c + 8 * (j >> 1));
            a[row][col] = lo;
            a[row][col + 1] = hi;
        }
    }
    a
}

/// The 16x8 (k x n) B matrix the MMA sees in registers `i` and `i + 1`.
fn b_matrix(regs: &[[Reg; 4]; 32], i: usize) -> [[El; 8]; 16] {
    let mut b = [[(0, 0); 8]; 16];
    for (lane, r) in regs.iter().enumerate() {
        let (g, c) = (lane / 4, lane % 4);
        for half in 0..2 {
            let (lo, hi) = r[i + half];
            b[2 * c + 8 * half][g] = lo;
            b[2 * c + 8 * half + 1][g] = hi;
        }
    }
    b
}

/// Lane addresses of an A fragment at (r, k), a B pair read along columns at (n, k) and a .trans B
/// pair at (k, n), as the kernel computes them.
fn addr_a(d: usize, r: usize, k: usize) -> [usize; 32] {
    std::array::from_fn(|l| swz(d, r + lm_row_a(l), k + lm_col_a(l)))
}
fn addr_bt(d: usize, n: usize, k: usize) -> [usize; 32] {
    std::array::from_fn(|l| swz(d, n + lm_row_bt(l), k + lm_col_bt(l)))
}
fn addr_trans(d: usize, k: usize, n: usize) -> [usize; 32] {
    std::array::from_fn(|l| swz(d, k + lm_row_a(l), n + lm_col_a(l)))
}

/// Every fragment the kernels read from a tile of `rows` x d copied by `nt` threads is the intended
/// sub-matrix: A(i, j) = X[r + i][k + j]; bt: B(i, j) = X[n + j][k + i] (K in Q K^T); trans:
/// B(i, j) = X[k + i][n + j] (V in P V), each pair giving n-tiles n and n + 8.
fn check_tile(d: usize, rows: usize, nt: usize) {
    let smem = copy_tile(d, rows, nt);
    for r in (0..rows).step_by(16) {
        for k in (0..d).step_by(16) {
            let a = a_matrix(&ldmatrix(&smem, &addr_a(d, r, k), false));
            for (i, row) in a.iter().enumerate() {
                for (j, &el) in row.iter().enumerate() {
                    assert_eq!(el, (r + i, k + j), "A fragment at ({r}, {k}), d {d}");
                }
            }
            let regs = ldmatrix(&smem, &addr_bt(d, r, k), false);
            for pair in 0..2 {
                let b = b_matrix(&regs, 2 * pair);
                for (i, row) in b.iter().enumerate() {
                    for (j, &el) in row.iter().enumerate() {
                        assert_eq!(el, (r + 8 * pair + j, k + i), "bt pair at ({r}, {k}), d {d}");
                    }
                }
            }
        }
    }
    for k in (0..rows).step_by(16) {
        for n in (0..d).step_by(16) {
            let regs = ldmatrix(&smem, &addr_trans(d, k, n), true);
            for pair in 0..2 {
                let b = b_matrix(&regs, 2 * pair);
                for (i, row) in b.iter().enumerate() {
                    for (j, &el) in row.iter().enumerate() {
                        assert_eq!(el, (k + i, n + 8 * pair + j), ".trans pair at ({k}, {n}), d {d}");
                    }
                }
            }
        }
    }
}

/// `Cfg<D>`'s field `name` in the .cu.
fn cfg(d: usize, name: &str) -> usize {
    let head = format!("template <> struct Cfg<{d}> {{");
    let body = &SRC[SRC.find(&head).expect("Cfg in flash_attn_v2.cu") + head.len()..];
    let body = &body[..body.find("};").expect("end of Cfg")];
    let rest = &body[body.find(&format!("{name} = ")).expect("Cfg field") + name.len() + 3..];
    let end = rest.find(|ch: char| !ch.is_ascii_digit()).unwrap_or(rest.len());
    rest[..end].parse().expect("a number")
}

#[test]
fn kernel_source_has_the_mirrored_index_maths() {
    for line in MIRRORED {
        assert!(
            SRC.contains(line),
            "flash_attn_v2.cu no longer has `{line}`: update this test's mirror"
        );
    }
}

#[test]
fn every_tile_the_kernels_read_gives_the_intended_fragments() {
    for d in [64, 128] {
        let (fw, fbc) = (cfg(d, "FWD_WARPS"), cfg(d, "FWD_BC"));
        let (kw, kbt) = (cfg(d, "KV_WARPS"), cfg(d, "KV_BT"));
        let (qw, qbc) = (cfg(d, "DQ_WARPS"), cfg(d, "DQ_BC"));
        for bc in [fbc, kbt, qbc] {
            assert!(
                bc % 16 == 0 && bc > 0,
                "d {d}: tiles must hold whole 16-row fragments ({bc})"
            );
        }
        // Forward: the q rows, and the k / v tiles.
        check_tile(d, fw * 16, fw * 32);
        check_tile(d, fbc, fw * 32);
        // dK/dV: the block's k / v rows, and the q / dO tiles.
        check_tile(d, kw * 16, kw * 32);
        check_tile(d, kbt, kw * 32);
        // dQ: the block's q / dO rows, and the k / v tiles.
        check_tile(d, qw * 16, qw * 32);
        check_tile(d, qbc, qw * 32);
    }
}

#[test]
fn the_checks_catch_an_unswizzled_or_misaddressed_tile() {
    // Without the swizzle (row-major, rows 64 bf16 apart), the 8 rows of an ldmatrix phase share
    // one bank group: the simulated ldmatrix refuses it.
    let plain: Vec<Option<El>> = (0..16 * 64).map(|i| Some((i / 64, i % 64))).collect();
    let addr: [usize; 32] = std::array::from_fn(|l| lm_row_a(l) * 64 + lm_col_a(l));
    assert!(std::panic::catch_unwind(|| ldmatrix(&plain, &addr, false)).is_err());
    // A B pair read with the A fragment's lane addresses gives the wrong sub-matrix.
    let smem = copy_tile(64, 16, 128);
    let wrong = b_matrix(&ldmatrix(&smem, &addr_a(64, 0, 0), false), 2);
    assert_ne!(wrong[0][0], (8, 0));
}

/// A deterministic value for element (r, c) of tile `id`, exact in bf16 (small integers / 8).
fn value(id: usize, (r, c): El) -> f64 {
    ((r * 7 + c * 3 + id * 5) % 17) as f64 / 8.0 - 1.0
}

/// mma.m16n8k16 on the lanes' C registers, with A and B as the MMA sees them.
fn mma(acc: &mut [[f64; 4]; 32], a: &[[f64; 16]; 16], b: &[[f64; 8]; 16]) {
    for (lane, c) in acc.iter_mut().enumerate() {
        let (g, cc) = (lane / 4, lane % 4);
        for (e, x) in c.iter_mut().enumerate() {
            let (i, j) = (g + 8 * (e >> 1), 2 * cc + (e & 1));
            *x += (0..16).map(|k| a[i][k] * b[k][j]).sum::<f64>();
        }
    }
}

/// One warp's S = Q K^T (16 x bc) over d, then O = P V with P = S taken from the C registers into
/// A registers as the kernel's c_to_a does, against the direct products.
fn check_warp_products(d: usize, bc: usize) {
    let (qs, ks, vs) = (copy_tile(d, 16, 128), copy_tile(d, bc, 128), copy_tile(d, bc, 128));
    let vals = |id: usize, m: [[El; 16]; 16]| m.map(|row| row.map(|el| value(id, el)));
    let bvals = |id: usize, m: [[El; 8]; 16]| m.map(|row| row.map(|el| value(id, el)));
    // s[n-tile][lane][e]
    let mut s = vec![[[0f64; 4]; 32]; bc / 8];
    for kk in (0..d).step_by(16) {
        let a = vals(0, a_matrix(&ldmatrix(&qs, &addr_a(d, 0, kk), false)));
        for np in 0..bc / 16 {
            let regs = ldmatrix(&ks, &addr_bt(d, np * 16, kk), false);
            mma(&mut s[2 * np], &a, &bvals(1, b_matrix(&regs, 0)));
            mma(&mut s[2 * np + 1], &a, &bvals(1, b_matrix(&regs, 2)));
        }
    }
    let direct = |i: usize, j: usize| (0..d).map(|x| value(0, (i, x)) * value(1, (j, x))).sum::<f64>();
    // P = S / 64 (any exact values do), row by row as the C registers hold it.
    let mut p_rows = vec![vec![0f64; bc]; 16];
    for (nt, tile) in s.iter().enumerate() {
        for (lane, c) in tile.iter().enumerate() {
            let (g, cc) = (lane / 4, lane % 4);
            for (e, &x) in c.iter().enumerate() {
                let (i, j) = (g + 8 * (e >> 1), nt * 8 + 2 * cc + (e & 1));
                assert!((x - direct(i, j)).abs() < 1e-9, "S({i}, {j}) at d {d}, bc {bc}");
                p_rows[i][j] = x / 64.0;
            }
        }
    }
    // O = P V: the A fragment of k-step kj from C tiles 2kj, 2kj + 1 (c_to_a).
    let mut o = vec![[[0f64; 4]; 32]; d / 8];
    for kj in 0..bc / 16 {
        let mut a = [[0f64; 16]; 16];
        for (lane, _) in s[0].iter().enumerate() {
            let (g, cc) = (lane / 4, lane % 4);
            let c0 = s[2 * kj][lane].map(|x| x / 64.0);
            let c1 = s[2 * kj + 1][lane].map(|x| x / 64.0);
            // a0 = (c0[0], c0[1]), a1 = (c0[2], c0[3]), a2 = (c1[0], c1[1]), a3 = (c1[2], c1[3])
            let regs = [(c0[0], c0[1]), (c0[2], c0[3]), (c1[0], c1[1]), (c1[2], c1[3])];
            for (j, (lo, hi)) in regs.into_iter().enumerate() {
                let (row, col) = (g + 8 * (j & 1), 2 * cc + 8 * (j >> 1));
                a[row][col] = lo;
                a[row][col + 1] = hi;
            }
        }
        for (i, row) in a.iter().enumerate() {
            for (j, &x) in row.iter().enumerate() {
                assert_eq!(x, p_rows[i][kj * 16 + j], "c_to_a: P({i}, {})", kj * 16 + j);
            }
        }
        for np in 0..d / 16 {
            let regs = ldmatrix(&vs, &addr_trans(d, kj * 16, np * 16), true);
            mma(&mut o[2 * np], &a, &bvals(2, b_matrix(&regs, 0)));
            mma(&mut o[2 * np + 1], &a, &bvals(2, b_matrix(&regs, 2)));
        }
    }
    for (nt, tile) in o.iter().enumerate() {
        for (lane, c) in tile.iter().enumerate() {
            let (g, cc) = (lane / 4, lane % 4);
            for (e, &x) in c.iter().enumerate() {
                let (i, j) = (g + 8 * (e >> 1), nt * 8 + 2 * cc + (e & 1));
                let want: f64 = (0..bc).map(|kx| p_rows[i][kx] * value(2, (kx, j))).sum();
                assert!((x - want).abs() < 1e-9, "O({i}, {j}) at d {d}, bc {bc}: {x} vs {want}");
            }
        }
    }
}

#[test]
fn a_warps_products_equal_the_direct_ones() {
    for d in [64, 128] {
        for bc in [16, 32, 64] {
            check_warp_products(d, bc);
        }
    }
}

/// The kernels' blocking (tile ranges, skipped tiles, masks, zero fill, log2-domain softmax),
/// emulated in numpy by scripts/check_flash_v2_tiling.py against direct attention. Needs a Python
/// with numpy: S1_PYTHON, or `python3`; scripts/test.sh provides one.
#[test]
fn the_kernels_blocking_emulated_in_numpy_matches_direct_attention() {
    let py = std::env::var("S1_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/check_flash_v2_tiling.py");
    let out = std::process::Command::new(&py)
        .arg(script)
        .output()
        .unwrap_or_else(|e| panic!("running {py} {script}: {e} (set S1_PYTHON to a Python with numpy)"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{script} failed (S1_PYTHON={py}):\n{text}");
    assert!(text.trim_end().ends_with("ok"), "{text}");
}
