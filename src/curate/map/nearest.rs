//! The exact nearest of a set of 2D points to any query point: a static k-d tree (median splits,
//! alternating axes, kept implicitly in one index array). The coverage figure asks it for every
//! pool point; the uniform grid (grid.rs) answers the hover's "within a few pixels", but a grid
//! must search a ring as wide as the distance, which for a clumped selection and a far pool
//! point is most of the grid (a million such searches took 8 s; the tree takes a fraction of one).

/// A k-d tree over a fixed set of points.
#[derive(Debug, Clone)]
pub struct KdTree {
    points: Vec<[f32; 2]>,
    /// The points' indexes: each range's median (by its depth's axis) at the range's middle,
    /// the lower half before it, the upper half after it.
    order: Vec<u32>,
}

impl KdTree {
    /// The tree of `points` (those that are not finite are left out).
    pub fn new(points: &[[f32; 2]]) -> Self {
        let mut order: Vec<u32> = (0..points.len() as u32)
            .filter(|&i| points[i as usize].iter().all(|x| x.is_finite()))
            .collect();
        build(points, &mut order, 0);
        Self {
            points: points.to_vec(),
            order,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The point nearest `p` and its squared distance; of equally near ones, the lowest index.
    /// None when the tree is empty.
    pub fn nearest(&self, p: [f32; 2]) -> Option<(usize, f32)> {
        let mut best: Option<(f32, u32)> = None;
        let mut off = [0f32; 2];
        self.search(0, self.order.len(), 0, p, 0.0, &mut off, &mut best);
        best.map(|(d, i)| (i as usize, d))
    }

    /// Searches the range `lo..hi` (a region at squared distance at least `rd` from `p`, `off`
    /// being `p`'s offset from it per axis: Arya and Mount's incremental distance, which
    /// prunes a far query's search where a test against the splitting line alone would not).
    #[allow(clippy::too_many_arguments)]
    fn search(
        &self,
        lo: usize,
        hi: usize,
        depth: usize,
        p: [f32; 2],
        rd: f32,
        off: &mut [f32; 2],
        best: &mut Option<(f32, u32)>,
    ) {
        if lo >= hi {
            return;
        }
        let mid = lo + (hi - lo) / 2;
        let i = self.order[mid];
        let q = self.points[i as usize];
        let d = (q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2);
        if best.is_none_or(|b| (d, i) < b) {
            *best = Some((d, i));
        }
        let axis = depth % 2;
        let diff = p[axis] - q[axis];
        let (near, far) = if diff < 0.0 {
            ((lo, mid), (mid + 1, hi))
        } else {
            ((mid + 1, hi), (lo, mid))
        };
        self.search(near.0, near.1, depth + 1, p, rd, off, best);
        // The other side's region is this far: it can hold a nearer point (or an as near one
        // of a lower index) only when that is within the best distance.
        let old = off[axis];
        let far_rd = rd - old * old + diff * diff;
        if best.is_none_or(|b| far_rd <= b.0) {
            off[axis] = diff;
            self.search(far.0, far.1, depth + 1, p, far_rd, off, best);
            off[axis] = old;
        }
    }
}

/// Puts each range's median by `depth`'s axis at its middle, recursively.
fn build(points: &[[f32; 2]], order: &mut [u32], depth: usize) {
    if order.len() <= 1 {
        return;
    }
    let axis = depth % 2;
    let mid = order.len() / 2;
    order.select_nth_unstable_by(mid, |&a, &b| {
        points[a as usize][axis]
            .total_cmp(&points[b as usize][axis])
            .then(a.cmp(&b))
    });
    let (lower, rest) = order.split_at_mut(mid);
    build(points, lower, depth + 1);
    build(points, &mut rest[1..], depth + 1);
}

#[cfg(test)]
mod tests {
    use super::super::knn::Rng;
    use super::*;

    #[test]
    fn finds_the_same_point_as_a_scan() {
        let mut rng = Rng::new(3);
        // Clumped points with duplicates and a NaN, queried from near and far.
        let mut pts: Vec<[f32; 2]> = (0..3000)
            .map(|i| {
                let c = (i % 3) as f32 * 10.0;
                [c + rng.unit(), c * 0.5 + rng.unit()]
            })
            .collect();
        pts[7] = pts[8];
        pts[9] = [f32::NAN, 0.0];
        let tree = KdTree::new(&pts);
        for k in 0..2000 {
            let p = [rng.unit() * 60.0 - 15.0, rng.unit() * 40.0 - 10.0];
            let p = if k == 0 { pts[8] } else { p };
            let want = (0..pts.len())
                .filter(|&i| pts[i][0].is_finite())
                .map(|i| ((pts[i][0] - p[0]).powi(2) + (pts[i][1] - p[1]).powi(2), i))
                .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
                .unwrap();
            assert_eq!(tree.nearest(p), Some((want.1, want.0)), "query {p:?}");
        }
        assert_eq!(
            KdTree::new(&pts).nearest(pts[8]).unwrap().0,
            7,
            "ties: the lowest index"
        );
        assert!(KdTree::new(&[]).nearest([0.0, 0.0]).is_none());
    }
}
