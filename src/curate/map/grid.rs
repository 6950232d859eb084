//! A uniform grid over the map's points: the hover's nearest point and the box selection are
//! answered on the CPU from the stored layout (never by reading back the GPU), and the coverage
//! figure counts its cells.

/// An axis-aligned box in map coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MapRect {
    pub min: [f32; 2],
    pub max: [f32; 2],
}

impl MapRect {
    /// The box with these two corners, in any order.
    pub fn from_corners(a: [f32; 2], b: [f32; 2]) -> Self {
        Self {
            min: [a[0].min(b[0]), a[1].min(b[1])],
            max: [a[0].max(b[0]), a[1].max(b[1])],
        }
    }

    /// Inside or on the edge.
    pub fn contains(&self, p: [f32; 2]) -> bool {
        p[0] >= self.min[0] && p[0] <= self.max[0] && p[1] >= self.min[1] && p[1] <= self.max[1]
    }

    /// The box around the finite points (None when there is none).
    pub fn bounds(points: &[[f32; 2]]) -> Option<Self> {
        let mut it = points.iter().filter(|p| p[0].is_finite() && p[1].is_finite());
        let first = *it.next()?;
        Some(it.fold(Self::from_corners(first, first), |r, p| Self {
            min: [r.min[0].min(p[0]), r.min[1].min(p[1])],
            max: [r.max[0].max(p[0]), r.max[1].max(p[1])],
        }))
    }
}

/// The indexes of the points inside `rect` (on the edge counts as inside), in point order.
pub fn points_in_box(points: &[[f32; 2]], rect: MapRect) -> Vec<usize> {
    (0..points.len()).filter(|&i| rect.contains(points[i])).collect()
}

/// The points bucketed in `side` x `side` cells over their bounds.
#[derive(Debug, Clone)]
pub struct GridIndex {
    pub bounds: MapRect,
    pub side: usize,
    /// Per cell, the indexes of its points.
    cells: Vec<Vec<u32>>,
}

impl GridIndex {
    /// About `per_cell` points per occupied cell on average, at most 1024 cells a side.
    pub fn new(points: &[[f32; 2]], per_cell: usize) -> Option<Self> {
        let bounds = MapRect::bounds(points)?;
        let n = points.len().max(1);
        let side = ((n / per_cell.max(1)) as f64).sqrt().ceil().clamp(1.0, 1024.0) as usize;
        Some(Self::with_side(points, bounds, side))
    }

    /// A grid of exactly `side` cells a side over `bounds` (points outside are clamped in).
    pub fn with_side(points: &[[f32; 2]], bounds: MapRect, side: usize) -> Self {
        let side = side.max(1);
        let mut g = Self {
            bounds,
            side,
            cells: vec![Vec::new(); side * side],
        };
        for (i, p) in points.iter().enumerate() {
            if p[0].is_finite() && p[1].is_finite() {
                let c = g.cell_of(*p);
                g.cells[c.1 * side + c.0].push(i as u32);
            }
        }
        g
    }

    /// The cell (column, row) a point falls in.
    pub fn cell_of(&self, p: [f32; 2]) -> (usize, usize) {
        let f = |v: f32, lo: f32, hi: f32| {
            let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.0 };
            ((t * self.side as f32) as isize).clamp(0, self.side as isize - 1) as usize
        };
        (
            f(p[0], self.bounds.min[0], self.bounds.max[0]),
            f(p[1], self.bounds.min[1], self.bounds.max[1]),
        )
    }

    /// Cells holding at least one point.
    pub fn occupied(&self) -> usize {
        self.cells.iter().filter(|c| !c.is_empty()).count()
    }

    pub fn cell(&self, col: usize, row: usize) -> &[u32] {
        &self.cells[row * self.side + col]
    }

    /// The point nearest `p` within `radius` (map units), if any; ties go to the lower index.
    pub fn nearest(&self, points: &[[f32; 2]], p: [f32; 2], radius: f32) -> Option<usize> {
        let lo = self.cell_of([p[0] - radius, p[1] - radius]);
        let hi = self.cell_of([p[0] + radius, p[1] + radius]);
        let mut best: Option<(f32, usize)> = None;
        for row in lo.1..=hi.1 {
            for col in lo.0..=hi.0 {
                for &i in self.cell(col, row) {
                    let q = points[i as usize];
                    let d = (q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2);
                    if d <= radius * radius && best.is_none_or(|b| (d, i as usize) < b) {
                        best = Some((d, i as usize));
                    }
                }
            }
        }
        best.map(|b| b.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_selection_picks_exactly_the_points_inside() {
        let mut rng = super::super::knn::Rng::new(9);
        let pts: Vec<[f32; 2]> = (0..2000)
            .map(|_| [rng.unit() * 10.0 - 5.0, rng.unit() * 10.0 - 5.0])
            .collect();
        // Corners given in any order; the edge counts as inside.
        let rect = MapRect::from_corners([2.0, -1.0], [-1.5, 3.0]);
        let got = points_in_box(&pts, rect);
        let expected: Vec<usize> = (0..pts.len())
            .filter(|&i| {
                let [x, y] = pts[i];
                (-1.5..=2.0).contains(&x) && (-1.0..=3.0).contains(&y)
            })
            .collect();
        assert_eq!(got, expected);
        assert!(!got.is_empty() && got.len() < pts.len());
        let edge = [[2.0, 0.0], [2.0001, 0.0], [f32::NAN, 0.0]];
        assert_eq!(points_in_box(&edge, rect), [0]);
    }

    #[test]
    fn nearest_matches_brute_force() {
        let mut rng = super::super::knn::Rng::new(4);
        let pts: Vec<[f32; 2]> = (0..3000).map(|_| [rng.unit() * 20.0, rng.unit() * 5.0]).collect();
        let g = GridIndex::new(&pts, 8).unwrap();
        for _ in 0..200 {
            let p = [rng.unit() * 22.0 - 1.0, rng.unit() * 6.0 - 0.5];
            let brute = (0..pts.len())
                .map(|i| ((pts[i][0] - p[0]).powi(2) + (pts[i][1] - p[1]).powi(2), i))
                .filter(|x| x.0 <= 0.25 * 0.25)
                .min_by(|a, b| a.partial_cmp(b).unwrap())
                .map(|x| x.1);
            assert_eq!(g.nearest(&pts, p, 0.25), brute);
        }
    }
}
