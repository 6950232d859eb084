//! The map's 2D layout: a UMAP-style force layout of our own (McInnes, Healy and Melville 2018,
//! "UMAP: Uniform Manifold Approximation and Projection"), kept small and deterministic:
//! approximate kNN (knn.rs), UMAP's fuzzy membership weights symmetrised, a PCA start, then
//! epochs of attraction along the graph's edges and repulsion from negative samples with UMAP's
//! curve `1 / (1 + a d^2b)` (min_dist 0.1). The optimisation runs on one thread in a fixed
//! order from a seeded generator, so the same vectors and seed give the same map bit for bit.
//!
//! Why not a crate: umap-rs expects the kNN and the start computed elsewhere and its parallel
//! SGD (Hogwild) is not reproducible; annembed brings ndarray-linalg and a LAPACK; bhtsne's
//! Barnes-Hut t-SNE is several times slower at 100K points on two cores.

use super::knn::{self, dist2, Neighbours, Rng};
use crate::cancel::CancelToken;

/// The layout's knobs; [`LayoutOptions::for_points`] picks them for a pool's size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayoutOptions {
    pub seed: u64,
    pub neighbours: usize,
    pub trees: usize,
    pub epochs: usize,
    pub negatives: usize,
}

impl LayoutOptions {
    /// Fewer epochs for a larger pool (UMAP itself uses 500 below 10K points and 200 above).
    pub fn for_points(n: usize, seed: u64) -> Self {
        Self {
            seed,
            neighbours: 12,
            trees: if n > 50_000 { 4 } else { 6 },
            epochs: if n <= 20_000 { 200 } else { 80 },
            negatives: if n <= 20_000 { 5 } else { 3 },
        }
    }
}

// UMAP's a and b for min_dist 0.1, spread 1.
const A: f32 = 1.577;
const B: f32 = 0.8951;

/// Fuzzy membership of each kNN edge (UMAP's smooth kNN distances), symmetrised:
/// `w = w_ij + w_ji - w_ij w_ji`. Edges as (i, j, w), i < j.
fn edges(lists: &[Neighbours]) -> Vec<(u32, u32, f32)> {
    let mut directed: Vec<(u32, u32, f32)> = Vec::new();
    for (i, l) in lists.iter().enumerate() {
        if l.is_empty() {
            continue;
        }
        let d: Vec<f32> = l.iter().map(|x| x.0.max(0.0).sqrt()).collect();
        let rho = d[0];
        let target = (l.len() as f32).log2();
        let (mut lo, mut hi, mut sigma) = (0f32, f32::INFINITY, 1f32);
        for _ in 0..48 {
            let s: f32 = d.iter().map(|&x| (-((x - rho).max(0.0)) / sigma).exp()).sum();
            if (s - target).abs() < 1e-4 {
                break;
            }
            if s > target {
                hi = sigma;
                sigma = (lo + hi) / 2.0;
            } else {
                lo = sigma;
                sigma = if hi.is_finite() { (lo + hi) / 2.0 } else { sigma * 2.0 };
            }
        }
        let sigma = sigma.max(1e-3 * d.iter().sum::<f32>() / d.len() as f32).max(1e-12);
        for (&(_, j), &x) in l.iter().zip(&d) {
            let w = (-((x - rho).max(0.0)) / sigma).exp();
            let (a, b) = if (i as u32) < j { (i as u32, j) } else { (j, i as u32) };
            directed.push((a, b, w));
        }
    }
    directed.sort_by_key(|x| (x.0, x.1));
    let mut out: Vec<(u32, u32, f32)> = Vec::with_capacity(directed.len());
    for (a, b, w) in directed {
        match out.last_mut() {
            Some(last) if last.0 == a && last.1 == b => last.2 = last.2 + w - last.2 * w,
            _ => out.push((a, b, w)),
        }
    }
    out
}

/// The first two principal components of the rows, scaled to a spread of 10 (UMAP's start size).
fn pca_start(data: &[f32], dim: usize, rng: &mut Rng) -> Vec<[f32; 2]> {
    let n = data.len() / dim.max(1);
    let mut mean = vec![0f64; dim];
    for r in data.chunks_exact(dim) {
        mean.iter_mut().zip(r).for_each(|(m, x)| *m += *x as f64);
    }
    mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
    let mut cov = vec![0f64; dim * dim];
    for r in data.chunks_exact(dim) {
        let c: Vec<f64> = r.iter().zip(&mean).map(|(x, m)| *x as f64 - m).collect();
        for a in 0..dim {
            for b in a..dim {
                cov[a * dim + b] += c[a] * c[b];
            }
        }
    }
    for a in 0..dim {
        for b in 0..a {
            cov[a * dim + b] = cov[b * dim + a];
        }
    }
    // Power iteration for two components, the second deflated against the first.
    let mut comps: Vec<Vec<f64>> = Vec::new();
    for _ in 0..2 {
        let mut v: Vec<f64> = (0..dim).map(|_| rng.unit() as f64 - 0.5).collect();
        for _ in 0..100 {
            let mut w: Vec<f64> = (0..dim)
                .map(|a| (0..dim).map(|b| cov[a * dim + b] * v[b]).sum())
                .collect();
            for c in &comps {
                let p: f64 = w.iter().zip(c).map(|(x, y)| x * y).sum();
                w.iter_mut().zip(c).for_each(|(x, y)| *x -= p * y);
            }
            let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm < 1e-12 {
                break;
            }
            v = w.into_iter().map(|x| x / norm).collect();
        }
        comps.push(v);
    }
    let mut pts: Vec<[f32; 2]> = data
        .chunks_exact(dim)
        .map(|r| {
            let p = |c: &[f64]| {
                r.iter()
                    .zip(&mean)
                    .zip(c)
                    .map(|((x, m), w)| (*x as f64 - m) * w)
                    .sum::<f64>()
            };
            [p(&comps[0]) as f32, p(&comps[1]) as f32]
        })
        .collect();
    let spread = pts.iter().flat_map(|p| p.iter().map(|x| x.abs())).fold(0f32, f32::max);
    let scale = if spread > 0.0 { 10.0 / spread } else { 1.0 };
    for p in &mut pts {
        // A little jitter so identical questions do not sit on one point.
        p[0] = p[0] * scale + (rng.unit() - 0.5) * 1e-2;
        p[1] = p[1] * scale + (rng.unit() - 0.5) * 1e-2;
    }
    pts
}

fn clip(x: f32) -> f32 {
    x.clamp(-4.0, 4.0)
}

/// Lays out the rows of `data` (`dim` floats each, unit length) in 2D. `progress(done, total)`
/// counts the kNN's trees, then the epochs; a cancel stops between epochs with `None`.
pub fn layout(
    data: &[f32],
    dim: usize,
    opts: &LayoutOptions,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(usize, usize),
) -> Option<Vec<[f32; 2]>> {
    let n = data.len().checked_div(dim).unwrap_or(0);
    let knn_steps = opts.trees + 1;
    let total = knn_steps + opts.epochs;
    let lists = knn::knn(data, dim, opts.neighbours, opts.trees, opts.seed, &mut |d, _| {
        progress(d, total)
    });
    if cancel.is_cancelled() {
        return None;
    }
    let mut rng = Rng::new(opts.seed.wrapping_add(1));
    let mut y = pca_start(data, dim, &mut rng);
    if n < 3 {
        return Some(y);
    }
    let e = edges(&lists);
    let wmax = e.iter().map(|x| x.2).fold(0f32, f32::max).max(1e-12);
    // UMAP's schedule: an edge of weight w is sampled every wmax / w epochs.
    let per: Vec<f32> = e.iter().map(|x| wmax / x.2.max(1e-6)).collect();
    let mut next = per.clone();
    for epoch in 0..opts.epochs {
        if cancel.is_cancelled() {
            return None;
        }
        progress(knn_steps + epoch, total);
        let alpha = 1.0 - epoch as f32 / opts.epochs as f32;
        for (ei, &(a, b, _)) in e.iter().enumerate() {
            if next[ei] > (epoch + 1) as f32 {
                continue;
            }
            next[ei] += per[ei];
            // Both ends in turn, as UMAP's symmetric graph lists the edge twice: each pulls
            // the other closer and is pushed from its own negative samples.
            for (i, j) in [(a as usize, b as usize), (b as usize, a as usize)] {
                attract_and_repel(&mut y, i, j, alpha, opts.negatives, &mut rng);
            }
        }
    }
    progress(total, total);
    Some(y)
}

/// One edge's move (its head `i` towards `j`, and `j` towards `i`), then `i` pushed from
/// `negatives` random points.
fn attract_and_repel(y: &mut [[f32; 2]], i: usize, j: usize, alpha: f32, negatives: usize, rng: &mut Rng) {
    let n = y.len();
    let d2 = dist2(&y[i], &y[j]);
    if d2 > 0.0 {
        let g = -2.0 * A * B * d2.powf(B - 1.0) / (1.0 + A * d2.powf(B));
        let sx = clip(g * (y[i][0] - y[j][0])) * alpha;
        let sy = clip(g * (y[i][1] - y[j][1])) * alpha;
        y[i] = [y[i][0] + sx, y[i][1] + sy];
        y[j] = [y[j][0] - sx, y[j][1] - sy];
    }
    for _ in 0..negatives {
        let k = rng.below(n);
        if k == i || k == j {
            continue;
        }
        let d2 = dist2(&y[i], &y[k]);
        let g = 2.0 * B / ((0.001 + d2) * (1.0 + A * d2.powf(B)));
        let step = |a: f32, b: f32| if g > 0.0 { clip(g * (a - b)) } else { 4.0 };
        let (sx, sy) = (step(y[i][0], y[k][0]), step(y[i][1], y[k][1]));
        y[i] = [y[i][0] + sx * alpha, y[i][1] + sy * alpha];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three separated clusters in 32 dimensions.
    fn clusters(n: usize, seed: u64) -> Vec<f32> {
        let dim = 32;
        let mut rng = Rng::new(seed);
        (0..n)
            .flat_map(|i| {
                let mut v: Vec<f32> = (0..dim).map(|_| rng.unit() * 0.3).collect();
                v[i % 3] += 3.0;
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.into_iter().map(|x| x / norm).collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn same_seed_same_map_and_clusters_stay_apart() {
        let data = clusters(300, 5);
        let opts = LayoutOptions {
            epochs: 60,
            ..LayoutOptions::for_points(300, 42)
        };
        let run = |o: &LayoutOptions| layout(&data, 32, o, &CancelToken::new(), &mut |_, _| {}).unwrap();
        let a = run(&opts);
        assert_eq!(a.len(), 300);
        assert!(a.iter().all(|p| p[0].is_finite() && p[1].is_finite()));
        assert_eq!(a, run(&opts), "the same seed gives the same layout");
        assert_ne!(a, run(&LayoutOptions { seed: 43, ..opts }));
        // Each point's nearest point in the map is of its own cluster, nearly always.
        let mut same = 0;
        for i in 0..a.len() {
            let j = (0..a.len())
                .filter(|&j| j != i)
                .min_by(|&x, &y| dist2(&a[i], &a[x]).total_cmp(&dist2(&a[i], &a[y])))
                .unwrap();
            same += usize::from(i % 3 == j % 3);
        }
        assert!(same > 285, "{same} of 300");
    }

    #[test]
    fn a_cancel_stops_the_layout() {
        let data = clusters(60, 1);
        let cancel = CancelToken::new();
        cancel.cancel();
        assert!(layout(&data, 32, &LayoutOptions::for_points(60, 1), &cancel, &mut |_, _| {}).is_none());
    }
}
