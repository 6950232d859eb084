//! The map's density layer: the points binned into a [`DENSITY_SIDE`]² grid over the map's
//! bounds and drawn as a heat image under the points, so that where the pool is dense shows
//! when a million points overlap into one colour. Counts go through a log scale (a few dense
//! clusters would otherwise leave every other cell dark) and empty cells stay transparent.

use eframe::egui::{Color32, ColorImage};

use crate::curate::map::grid::MapRect;

/// Cells a side: fine enough to show clusters at a glance, 64K texels to upload.
pub const DENSITY_SIDE: usize = 256;

/// The number of finite points in each cell of a `side` x `side` grid over `bounds`, row-major
/// from the minimum corner (points on or past the maximum edge fall in the last cell).
pub fn bin_counts(points: &[[f32; 2]], bounds: MapRect, side: usize) -> Vec<u32> {
    let side = side.max(1);
    let mut counts = vec![0u32; side * side];
    let cell = |v: f32, lo: f32, hi: f32| {
        let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.0 };
        ((t * side as f32) as isize).clamp(0, side as isize - 1) as usize
    };
    for p in points.iter().filter(|p| p[0].is_finite() && p[1].is_finite()) {
        let (c, r) = (
            cell(p[0], bounds.min[0], bounds.max[0]),
            cell(p[1], bounds.min[1], bounds.max[1]),
        );
        counts[r * side + c] += 1;
    }
    counts
}

/// The heat image of `counts` (`side` x `side`): transparent where empty, else a dark violet
/// to warm yellow ramp by `ln(1 + count) / ln(1 + max)`, half opaque so the points stay the
/// foreground.
pub fn density_image(counts: &[u32], side: usize) -> ColorImage {
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f32;
    let pixels = counts
        .iter()
        .map(|&n| {
            if n == 0 {
                return Color32::TRANSPARENT;
            }
            let t = (1.0 + n as f32).ln() / (1.0 + max).ln();
            let lerp = |a: f32, b: f32| (a + (b - a) * t) as u8;
            Color32::from_rgba_unmultiplied(
                lerp(60.0, 255.0),
                lerp(20.0, 210.0),
                lerp(110.0, 60.0),
                lerp(70.0, 150.0),
            )
        })
        .collect();
    ColorImage {
        size: [side, side],
        source_size: eframe::egui::Vec2::splat(side as f32),
        pixels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_lands_in_its_cell_and_the_densest_is_brightest() {
        let b = MapRect::from_corners([0.0, 0.0], [4.0, 4.0]);
        let pts = [
            [0.0, 0.0],
            [0.5, 0.5],
            [0.9, 0.1],
            [3.9, 0.2],
            [4.0, 4.0],
            [2.0, 3.0],
            [f32::NAN, 1.0],
        ];
        let c = bin_counts(&pts, b, 4);
        assert_eq!(c.iter().sum::<u32>(), 6, "the non-finite point is left out");
        assert_eq!((c[0], c[3], c[15], c[3 * 4 + 2]), (3, 1, 1, 1));
        let img = density_image(&c, 4);
        assert_eq!(img.size, [4, 4]);
        assert_eq!(img.pixels[1], Color32::TRANSPARENT);
        let bright = |p: Color32| p.r() as u32 + p.g() as u32 + p.a() as u32;
        assert!(bright(img.pixels[0]) > bright(img.pixels[3]));
        assert!(img.pixels[3].a() > 0);
    }
}
