//! Approximate k nearest neighbours of unit vectors, for the map's layout: a forest of random
//! projection trees (each leaf's points compared with each other), then one round of
//! neighbours-of-neighbours refinement (the first step of NN-descent). Deterministic for a
//! seed: the trees are built from a seeded generator, and the parallel parts only read shared
//! data and write each point's own list.

use rayon::prelude::*;

use super::embed::mix64;

/// A point's neighbours: (squared distance, index), nearest first, at most k.
pub type Neighbours = Vec<(f32, u32)>;

/// A small seeded generator (SplitMix64): the same numbers on every platform and version.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(mix64(seed ^ 0x5151_5151))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) % n.max(1) as u64) as usize
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

pub fn dist2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Adds `(d, j)` to a sorted list of at most `k`, unless already there or too far.
fn push(list: &mut Neighbours, k: usize, d: f32, j: u32) {
    if list.len() == k && list.last().is_some_and(|l| l.0 <= d) {
        return;
    }
    if list.iter().any(|&(_, x)| x == j) {
        return;
    }
    let at = list.partition_point(|l| l.0 <= d);
    list.insert(at, (d, j));
    list.truncate(k);
}

/// The leaves (index sets of at most `leaf` points) of one random projection tree.
fn tree_leaves(data: &[f32], dim: usize, leaf: usize, rng: &mut Rng) -> Vec<Vec<u32>> {
    let n = data.len() / dim;
    let mut stack = vec![(0..n as u32).collect::<Vec<u32>>()];
    let mut leaves = Vec::new();
    let row = |i: u32| &data[i as usize * dim..(i as usize + 1) * dim];
    while let Some(set) = stack.pop() {
        if set.len() <= leaf {
            leaves.push(set);
            continue;
        }
        let a = row(set[rng.below(set.len())]);
        let b = row(set[rng.below(set.len())]);
        let normal: Vec<f32> = a.iter().zip(b).map(|(x, y)| x - y).collect();
        let offset: f32 = a.iter().zip(b).zip(&normal).map(|((x, y), w)| w * (x + y) / 2.0).sum();
        let (mut left, mut right): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
        for &i in &set {
            let s: f32 = row(i).iter().zip(&normal).map(|(x, w)| x * w).sum::<f32>() - offset;
            // Ties (equal points, or a and b the same) alternate sides at random.
            let go_left = if s == 0.0 { rng.next_u64() & 1 == 0 } else { s < 0.0 };
            if go_left {
                left.push(i)
            } else {
                right.push(i)
            }
        }
        if left.is_empty() || right.is_empty() {
            // A degenerate split: halve the set as it is.
            let mut all = if left.is_empty() { right } else { left };
            let other = all.split_off(all.len() / 2);
            stack.push(all);
            stack.push(other);
        } else {
            stack.push(left);
            stack.push(right);
        }
    }
    leaves
}

/// The `k` approximate nearest neighbours of each of the `data.len() / dim` points (rows of
/// `dim` floats), not counting the point itself. `progress(done, total)` counts the trees and
/// the refinement round.
pub fn knn(
    data: &[f32],
    dim: usize,
    k: usize,
    trees: usize,
    seed: u64,
    progress: &mut dyn FnMut(usize, usize),
) -> Vec<Neighbours> {
    let n = data.len().checked_div(dim).unwrap_or(0);
    let mut lists: Vec<Neighbours> = vec![Vec::with_capacity(k + 1); n];
    if n < 2 {
        return lists;
    }
    let leaf = (2 * k).max(24);
    let row = |i: u32| &data[i as usize * dim..(i as usize + 1) * dim];
    let mut rng = Rng::new(seed);
    for t in 0..trees {
        progress(t, trees + 1);
        let leaves = tree_leaves(data, dim, leaf, &mut rng);
        // Each point is in one leaf of a tree: leaves can update their own points in parallel.
        let found: Vec<Vec<(u32, Neighbours)>> = leaves
            .par_iter()
            .map(|set| {
                set.iter()
                    .map(|&i| {
                        let mut l = Neighbours::with_capacity(k + 1);
                        for &j in set {
                            if j != i {
                                push(&mut l, k, dist2(row(i), row(j)), j);
                            }
                        }
                        (i, l)
                    })
                    .collect()
            })
            .collect();
        for (i, l) in found.into_iter().flatten() {
            let list = &mut lists[i as usize];
            for (d, j) in l {
                push(list, k, d, j);
            }
        }
    }
    progress(trees, trees + 1);
    // Neighbours of neighbours (and the reverse edges' points) as candidates, twice.
    for _ in 0..REFINE_ROUNDS {
        lists = refine(data, dim, k, &lists);
    }
    progress(trees + 1, trees + 1);
    lists
}

/// Rounds of neighbours-of-neighbours refinement after the trees.
const REFINE_ROUNDS: usize = 2;

/// One round: each point's list merged with its neighbours' neighbours (and the points that
/// list it), keeping the k nearest.
fn refine(data: &[f32], dim: usize, k: usize, lists: &[Neighbours]) -> Vec<Neighbours> {
    let n = lists.len();
    let row = |i: u32| &data[i as usize * dim..(i as usize + 1) * dim];
    let mut reverse: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (i, l) in lists.iter().enumerate() {
        for &(_, j) in l.iter() {
            if reverse[j as usize].len() < k {
                reverse[j as usize].push(i as u32);
            }
        }
    }
    (0..n)
        .into_par_iter()
        .map(|i| {
            let mut l = lists[i].clone();
            let near: Vec<u32> = lists[i].iter().map(|x| x.1).chain(reverse[i].iter().copied()).collect();
            for &j in &near {
                for &(_, m) in lists[j as usize].iter() {
                    if m as usize != i {
                        push(&mut l, k, dist2(row(i as u32), row(m)), m);
                    }
                }
                if j as usize != i {
                    push(&mut l, k, dist2(row(i as u32), row(j)), j);
                }
            }
            l
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against brute force on random clustered points: most true neighbours are found.
    #[test]
    fn finds_most_true_neighbours() {
        let (n, dim, k) = (600, 16, 8);
        let mut rng = Rng::new(3);
        let centres: Vec<f32> = (0..10 * dim).map(|_| rng.unit() * 4.0).collect();
        let data: Vec<f32> = (0..n)
            .flat_map(|i| {
                let c = (i % 10) * dim;
                (0..dim).map(|j| centres[c + j] + rng.unit()).collect::<Vec<_>>()
            })
            .collect();
        let got = knn(&data, dim, k, 4, 1, &mut |_, _| {});
        let mut hits = 0;
        for i in 0..n {
            let mut all: Vec<(f32, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| (dist2(&data[i * dim..(i + 1) * dim], &data[j * dim..(j + 1) * dim]), j))
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0));
            let truth: Vec<u32> = all[..k].iter().map(|x| x.1 as u32).collect();
            assert_eq!(got[i].len(), k);
            assert!(got[i].windows(2).all(|w| w[0].0 <= w[1].0));
            hits += got[i].iter().filter(|x| truth.contains(&x.1)).count();
        }
        let recall = hits as f32 / (n * k) as f32;
        assert!(recall > 0.9, "recall {recall}");
        assert_eq!(knn(&data, dim, k, 4, 1, &mut |_, _| {}), got);
    }
}
