//! How much of the pool's spread a selection covers, on the map: the share of the grid cells
//! the pool occupies that hold a selected question, and the mean distance from a pool question
//! to its nearest selected one (in map units, the layout's own scale). s1's argument for its
//! sampler is diversity; these two numbers make its ablations (random, longest, diverse)
//! comparable at a glance.

use super::grid::{GridIndex, MapRect};

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
        // The selected points on a finer grid; search rings outward until a hit, then one ring more.
        let fine = GridIndex::new(&sel, 4).unwrap_or_else(|| GridIndex::with_side(&sel, bounds, 1));
        let cell = ((fine.bounds.max[0] - fine.bounds.min[0]).max(fine.bounds.max[1] - fine.bounds.min[1])
            / fine.side as f32)
            .max(1e-6);
        let mut sum = 0f64;
        let mut count = 0usize;
        for p in points.iter().filter(|p| p[0].is_finite() && p[1].is_finite()) {
            let mut r = cell;
            let hit = loop {
                if let Some(i) = fine.nearest(&sel, *p, r) {
                    // A nearer one can sit just outside the searched square's circle: search
                    // again with the found distance (exact).
                    let d = ((sel[i][0] - p[0]).powi(2) + (sel[i][1] - p[1]).powi(2)).sqrt();
                    break fine.nearest(&sel, *p, d * 1.0001 + 1e-6).unwrap_or(i);
                }
                r *= 2.0;
            };
            let d = ((sel[hit][0] - p[0]).powi(2) + (sel[hit][1] - p[1]).powi(2)).sqrt();
            sum += d as f64;
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
