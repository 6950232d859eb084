//! How much of the pool's spread a selection covers, on the map: the share of the grid cells
//! the pool occupies that hold a selected question, and the mean distance from a pool question
//! to its nearest selected one (in map units, the layout's own scale). s1's argument for its
//! sampler is diversity; these two numbers make its ablations (random, longest, diverse)
//! comparable at a glance.

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
        // Each pool point's nearest selected point, exactly, from a k-d tree of the selection.
        let tree = KdTree::new(&sel);
        let mut sum = 0f64;
        let mut count = 0usize;
        for p in points.iter().filter(|p| p[0].is_finite() && p[1].is_finite()) {
            if let Some((_, d2)) = tree.nearest(*p) {
                sum += (d2 as f64).sqrt();
                count += 1;
            }
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
    let mut order: Vec<usize> = (0..points.len()).collect();
    let mut rng = Rng::new(0);
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let mut random = vec![false; points.len()];
    for &i in order.iter().take(n) {
        random[i] = true;
    }
    Some((coverage(points, selected), coverage(points, &random)))
}

#[cfg(test)]
mod tests {
    use super::*;

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
