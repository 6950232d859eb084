//! How much of the pool's spread a selection covers, on the map: the share of the grid cells
//! the pool occupies that hold a selected question, and the mean distance from a pool question
//! to its nearest selected one (in map units, the layout's own scale). s1's argument for its
//! sampler is diversity; these two numbers make its ablations (random, longest, diverse)
//! comparable at a glance.

use std::sync::Mutex;

use rayon::prelude::*;

use super::grid::{GridIndex, MapRect};
use super::knn::Rng;
use super::nearest::KdTree;

/// Cells a side of the coverage grid.
pub const COVERAGE_SIDE: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coverage {
    /// Selected questions with a place on the map.
    pub selected: usize,
    /// Cells the pool occupies.
    pub pool_cells: usize,
    /// Of those, cells holding a selected question.
    pub covered_cells: usize,
    /// Mean over the pool of the distance to the nearest selected question (NaN: none selected).
    pub mean_distance: f32,
}

impl Coverage {
    pub fn cell_share(&self) -> f32 {
        if self.pool_cells == 0 {
            0.0
        } else {
            self.covered_cells as f32 / self.pool_cells as f32
        }
    }
}

/// The coverage of the points flagged in `selected` (one flag per point).
pub fn coverage(points: &[[f32; 2]], selected: &[bool]) -> Coverage {
    let Some(bounds) = MapRect::bounds(points) else {
        return Coverage {
            selected: 0,
            pool_cells: 0,
            covered_cells: 0,
            mean_distance: f32::NAN,
        };
    };
    let pool = GridIndex::with_side(points, bounds, COVERAGE_SIDE);
    let sel: Vec<[f32; 2]> = points
        .iter()
        .zip(selected)
        .filter(|(p, s)| **s && p[0].is_finite() && p[1].is_finite())
        .map(|(p, _)| *p)
        .collect();
    let chosen = GridIndex::with_side(&sel, bounds, COVERAGE_SIDE);
    let mean_distance = if sel.is_empty() {
        f32::NAN
    } else {
        // Each pool point's nearest selected point, exactly, from a k-d tree of the selection,
        // on every core (the distances in the points' order, summed in that order: the same
        // figure whatever the cores).
        let tree = KdTree::new(&sel);
        let d: Vec<f32> = points
            .par_iter()
            .with_min_len(4096)
            .map(|p| match p[0].is_finite() && p[1].is_finite() {
                true => tree.nearest(*p).map_or(f32::NAN, |(_, d2)| d2),
                false => f32::NAN,
            })
            .collect();
        let (mut sum, mut count) = (0f64, 0usize);
        for d2 in d.into_iter().filter(|d| !d.is_nan()) {
            sum += (d2 as f64).sqrt();
            count += 1;
        }
        (sum / count.max(1) as f64) as f32
    };
    let mut covered = 0;
    for row in 0..COVERAGE_SIDE {
        for col in 0..COVERAGE_SIDE {
            if !pool.cell(col, row).is_empty() && !chosen.cell(col, row).is_empty() {
                covered += 1;
            }
        }
    }
    Coverage {
        selected: sel.len(),
        pool_cells: pool.occupied(),
        covered_cells: covered,
        mean_distance,
    }
}

/// The stored selection's coverage and, for comparison, that of a seeded random draw of as
/// many questions from the same pool (None when nothing is selected).
pub fn selection_coverage(points: &[[f32; 2]], selected: &[bool]) -> Option<(Coverage, Coverage)> {
    let n = selected.iter().filter(|s| **s).count();
    if n == 0 {
        return None;
    }
    // Every snapshot brings the figure, and most snapshots (a mark by hand, a step that left
    // the map and the selection alone) have the same points and selection as the last: the
    // last answer is kept for them (a million points: ~2 s of nearest-point searches saved
    // for ~5 ms of hashing).
    let key = content_key(points, selected);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((k, c)) = *last {
        if k == key {
            return Some(c);
        }
    }
    let c = fresh_coverage(points, selected, n);
    *last = Some((key, c));
    Some(c)
}

/// Two hashes of the points and flags, and the count ([`content_key`]).
type ContentKey = (u64, u64, usize);

/// The last figure [`selection_coverage`] computed, with its inputs' [`content_key`].
static LAST: Mutex<Option<(ContentKey, (Coverage, Coverage))>> = Mutex::new(None);

/// Two independent 64-bit hashes of the points' bits and the flags, and the count: equal
/// for equal inputs; a false match needs both hashes to collide at the same length.
fn content_key(points: &[[f32; 2]], selected: &[bool]) -> ContentKey {
    use std::hash::{BuildHasher, Hasher};
    let hash = |seed: u64| {
        let mut h = foldhash::quality::FixedState::with_seed(seed).build_hasher();
        for (p, s) in points.iter().zip(selected) {
            h.write_u64(((p[0].to_bits() as u64) << 32) | p[1].to_bits() as u64);
            h.write_u8(*s as u8);
        }
        h.finish()
    };
    (hash(0x5eed_0001), hash(0x5eed_0002), points.len())
}

/// [`selection_coverage`] without the memo; `n`: how many are selected.
fn fresh_coverage(points: &[[f32; 2]], selected: &[bool], n: usize) -> (Coverage, Coverage) {
    let mut order: Vec<usize> = (0..points.len()).collect();
    let mut rng = Rng::new(0);
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let mut random = vec![false; points.len()];
    for &i in order.iter().take(n) {
        random[i] = true;
    }
    (coverage(points, selected), coverage(points, &random))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kept_figure_is_for_the_same_points_and_selection_only() {
        let pts: Vec<[f32; 2]> = (0..900).map(|i| [(i % 30) as f32, (i / 30) as f32 * 0.5]).collect();
        let a: Vec<bool> = (0..900).map(|i| i % 7 == 0).collect();
        let mut b = a.clone();
        b[1] = true;
        let fresh = |s: &[bool]| fresh_coverage(&pts, s, s.iter().filter(|x| **x).count());
        assert_eq!(selection_coverage(&pts, &a), Some(fresh(&a)));
        // One more selected, then one point moved: each a new figure, not the kept one.
        assert_eq!(selection_coverage(&pts, &b), Some(fresh(&b)));
        assert_ne!(fresh(&a).0, fresh(&b).0);
        let mut moved = pts.clone();
        moved[0] = [100.0, 100.0];
        let m = selection_coverage(&moved, &b).expect("selected");
        assert_eq!(m, fresh_coverage(&moved, &b, fresh(&b).0.selected));
        assert_ne!(m.0, fresh(&b).0);
        // Back to the first: its figure again.
        assert_eq!(selection_coverage(&pts, &a), Some(fresh(&a)));
        assert_eq!(selection_coverage(&pts, &vec![false; 900]), None);
    }

    #[test]
    fn spread_selection_covers_more_than_a_clumped_one() {
        let pts: Vec<[f32; 2]> = (0..64 * 64).map(|i| [(i % 64) as f32, (i / 64) as f32]).collect();
        // Every 8th point in each direction vs the first 64 points of one corner.
        let spread: Vec<bool> = (0..pts.len()).map(|i| i % 8 == 0 && (i / 64) % 8 == 0).collect();
        let clump: Vec<bool> = (0..pts.len()).map(|i| i % 64 < 8 && i / 64 < 8).collect();
        let (a, b) = (coverage(&pts, &spread), coverage(&pts, &clump));
        assert_eq!(a.selected, 64);
        assert_eq!(b.selected, 64);
        assert_eq!(a.pool_cells, 32 * 32);
        assert!(a.cell_share() > b.cell_share() * 3.0, "{a:?} {b:?}");
        assert!(a.mean_distance < b.mean_distance / 3.0, "{a:?} {b:?}");
        // Brute force for the mean distance of the spread selection.
        let sel: Vec<_> = pts.iter().zip(&spread).filter(|x| *x.1).map(|x| *x.0).collect();
        let brute: f64 = pts
            .iter()
            .map(|p| {
                sel.iter()
                    .map(|s| (((s[0] - p[0]).powi(2) + (s[1] - p[1]).powi(2)) as f64).sqrt())
                    .fold(f64::INFINITY, f64::min)
            })
            .sum::<f64>()
            / pts.len() as f64;
        assert!(
            (a.mean_distance as f64 - brute).abs() < 1e-3,
            "{} {brute}",
            a.mean_distance
        );
        assert!(coverage(&pts, &vec![false; pts.len()]).mean_distance.is_nan());
    }
}
