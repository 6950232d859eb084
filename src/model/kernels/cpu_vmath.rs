//! Vectorised f32 elementwise math for the CPU training ops: `exp` (Cephes' single-precision
//! polynomial, within 2 ulp of the exact value over the normal range), shifted-exp rows with their
//! sum (softmax, cross-entropy) and SwiGLU forward and backward. libm's `expf` is a scalar call
//! per element, which keeps these loops from vectorising; here every loop body is plain
//! arithmetic, compiled once for AVX2 + FMA (chosen at run time) and once for the baseline.

/// Below this, `exp` underflows to zero (below the smallest normal float).
const EXP_LO: f32 = -87.336_55;
/// Above this, `exp` overflows; inputs are clamped here (softmax inputs are never positive).
const EXP_HI: f32 = 88.722_83;

/// `a * b + c`, fused where the caller's code is compiled with FMA.
#[inline(always)]
fn fma<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `exp(x)`: x = n ln2 + r with |r| <= ln2 / 2, e^r by a degree-7 polynomial, 2^n by the
/// exponent bits. Branch-free, so loops over it vectorise.
#[inline(always)]
fn exp<const FMA: bool>(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let xc = if x > EXP_HI { EXP_HI } else { x };
    let xc = if xc < EXP_LO { EXP_LO } else { xc };
    let t = fma::<FMA>(xc, std::f32::consts::LOG2_E, ROUND);
    let n = t - ROUND;
    // ln 2 split in two so that n * C1 is exact.
    let r = fma::<FMA>(n, -0.693_359_4, xc);
    let r = fma::<FMA>(n, 2.121_944_4e-4, r);
    let mut p = 1.987_569_1e-4;
    p = fma::<FMA>(p, r, 1.398_2e-3);
    p = fma::<FMA>(p, r, 8.333_452e-3);
    p = fma::<FMA>(p, r, 4.166_579_6e-2);
    p = fma::<FMA>(p, r, 0.166_666_65);
    p = fma::<FMA>(p, r, 0.5);
    let e = fma::<FMA>(p, r * r, r) + 1.0;
    // The low bits of t hold n; 2^n is n + 127 in the exponent field.
    let bits = t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23;
    let v = e * f32::from_bits(bits);
    if x < EXP_LO {
        0.0
    } else {
        v
    }
}

/// Whether this CPU runs the AVX2 + FMA versions (std caches the answer).
fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    return is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Defines `pub fn $name(args) -> ret` that runs `$body::<FMA>` compiled with AVX2 + FMA where
/// the CPU has them, else the baseline build of the same body.
macro_rules! dispatch {
    ($(#[$doc:meta])* $name:ident, $body:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn fast($($arg: $ty),*) -> $ret {
                    $body::<true>($($arg),*)
                }
                if avx2() {
                    // SAFETY: the CPU has AVX2 and FMA (checked at run time).
                    return unsafe { fast($($arg),*) };
                }
            }
            $body::<false>($($arg),*)
        }
    };
}

/// Sum in 16 independent lanes (vectorises), then across them.
#[inline(always)]
fn sum(xs: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let chunks = xs.chunks_exact(16);
    let rest: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + rest
}

#[inline(always)]
fn exp_shift_body<const FMA: bool>(xs: &mut [f32], scale: f32, shift: f32) -> f32 {
    for v in xs.iter_mut() {
        *v = exp::<FMA>(fma::<FMA>(*v, scale, -shift));
    }
    sum(xs)
}

dispatch!(
    /// `x = exp(x * scale - shift)` over the slice; returns the sum of the results.
    exp_shift, exp_shift_body, (xs: &mut [f32], scale: f32, shift: f32) -> f32
);

#[inline(always)]
fn max_body<const FMA: bool>(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 16];
    let chunks = xs.chunks_exact(16);
    let mut m = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = if v > *a { v } else { *a };
        }
    }
    for a in acc {
        m = if a > m { a } else { m };
    }
    m
}

dispatch!(
    /// The largest value (NaNs ignored; `-inf` for an empty slice).
    max, max_body, (xs: &[f32]) -> f32
);

#[inline(always)]
fn sigmoid<const FMA: bool>(v: f32) -> f32 {
    1.0 / (1.0 + exp::<FMA>(-v))
}

#[inline(always)]
fn swiglu_body<const FMA: bool>(g: &[f32], u: &[f32], y: &mut [f32]) {
    for ((o, &a), &b) in y.iter_mut().zip(g).zip(u) {
        *o = a * sigmoid::<FMA>(a) * b;
    }
}

dispatch!(
    /// `y = silu(g) * u` elementwise (the three slices of one length).
    swiglu, swiglu_body, (g: &[f32], u: &[f32], y: &mut [f32]) -> ()
);

#[inline(always)]
fn swiglu_bwd_body<const FMA: bool>(g: &[f32], u: &[f32], dy: &[f32], dg: &mut [f32], du: &mut [f32]) {
    let n = g.len().min(u.len()).min(dy.len()).min(dg.len()).min(du.len());
    let (g, u, dy, dg, du) = (&g[..n], &u[..n], &dy[..n], &mut dg[..n], &mut du[..n]);
    for i in 0..n {
        let s = sigmoid::<FMA>(g[i]);
        du[i] = dy[i] * g[i] * s;
        dg[i] = dy[i] * u[i] * s * fma::<FMA>(g[i], 1.0 - s, 1.0);
    }
}

dispatch!(
    /// The gradients of `silu(g) * u` given the upstream `dy`: `dg` and `du`.
    swiglu_bwd, swiglu_bwd_body, (g: &[f32], u: &[f32], dy: &[f32], dg: &mut [f32], du: &mut [f32]) -> ()
);

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f64) -> f64 {
        let ulp = (b.abs() as f32).max(f32::MIN_POSITIVE);
        let ulp = (f32::from_bits(ulp.to_bits() + 1) - ulp) as f64;
        (a as f64 - b).abs() / ulp
    }

    #[test]
    fn exp_is_within_two_ulp_over_the_normal_range() {
        for fused in [false, true] {
            let mut worst = 0f64;
            let mut x = -87.0f32;
            while x < 88.0 {
                let got = if fused { exp::<true>(x) } else { exp::<false>(x) };
                worst = worst.max(ulps(got, (x as f64).exp()));
                x += 0.000_731;
            }
            assert!(worst <= 2.0, "fma {fused}: worst error {worst} ulp");
        }
        assert_eq!(exp::<false>(0.0), 1.0);
        assert_eq!(exp::<false>(-100.0), 0.0);
        assert_eq!(exp::<false>(f32::NEG_INFINITY), 0.0);
        assert!(exp::<false>(100.0) > 1e38);
    }

    #[test]
    fn slice_kernels_match_scalar_math() {
        let xs: Vec<f32> = (0..1000).map(|i| ((i * 37 % 211) as f32 - 105.0) * 0.07).collect();
        let mut e = xs.clone();
        let s = exp_shift(&mut e, 0.5, 1.25);
        // The argument rounded to f32 as the kernel computes it (x * 0.5 is exact).
        let want: Vec<f64> = xs.iter().map(|&x| ((x * 0.5 - 1.25) as f64).exp()).collect();
        for (a, b) in e.iter().zip(&want) {
            assert!(ulps(*a, *b) <= 2.0, "{a} vs {b}");
        }
        let ws: f64 = want.iter().sum();
        assert!((s as f64 - ws).abs() / ws < 1e-5, "{s} vs {ws}");
        assert_eq!(max(&xs), xs.iter().cloned().fold(f32::MIN, f32::max));
        assert_eq!(max(&[]), f32::NEG_INFINITY);

        let u: Vec<f32> = xs.iter().map(|v| 0.3 - v * 0.5).collect();
        let dy: Vec<f32> = xs.iter().map(|v| (v * 1.7).sin()).collect();
        let mut y = vec![0f32; xs.len()];
        swiglu(&xs, &u, &mut y);
        let (mut dg, mut du) = (vec![0f32; xs.len()], vec![0f32; xs.len()]);
        swiglu_bwd(&xs, &u, &dy, &mut dg, &mut du);
        for i in 0..xs.len() {
            let (g, uu, d) = (xs[i] as f64, u[i] as f64, dy[i] as f64);
            let s = 1.0 / (1.0 + (-g).exp());
            let close = |a: f32, b: f64| (a as f64 - b).abs() <= 1e-6 * (1.0 + b.abs());
            assert!(close(y[i], g * s * uu), "y[{i}]");
            assert!(close(du[i], d * g * s), "du[{i}]");
            assert!(close(dg[i], d * uu * s * (1.0 + g * (1.0 - s))), "dg[{i}]");
        }
    }
}
