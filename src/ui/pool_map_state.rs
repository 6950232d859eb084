//! The pool map's runtime state in the Curate view: the view (centre, zoom), the colouring,
//! the hovered point and the box being dragged, and what is derived from a snapshot once per
//! change (the grid index for hover and box selection, the GPU's instance bytes and the
//! legend; the coverage figure comes computed with the snapshot, off this thread). No drawing
//! here (pool_map_ui.rs), no GPU calls (pool_map_gpu.rs).

use std::collections::HashMap;
use std::sync::Arc;

use eframe::egui::Color32;

use super::curate_pick::Picked;
use super::pool_map_gpu::{MapInstances, CONTAMINATED, PICKED, SELECTED};
use crate::curate::map::coverage::Coverage;
use crate::curate::map::grid::{GridIndex, MapRect};
use crate::curate::steps::snapshot::{PoolRow, PoolSnapshot};

/// What the points' colours say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColourBy {
    #[default]
    Stage,
    Source,
    Domain,
    Selected,
    TraceLength,
}

impl ColourBy {
    pub const ALL: [ColourBy; 5] = [
        ColourBy::Stage,
        ColourBy::Source,
        ColourBy::Domain,
        ColourBy::Selected,
        ColourBy::TraceLength,
    ];
    pub fn label(self) -> &'static str {
        match self {
            ColourBy::Stage => "funnel stage",
            ColourBy::Source => "source",
            ColourBy::Domain => "domain",
            ColourBy::Selected => "selected or not",
            ColourBy::TraceLength => "trace length",
        }
    }
}

/// Twelve colours told apart on a dark background (Tableau-like), then grey for the rest.
const PALETTE: [Color32; 12] = [
    Color32::from_rgb(78, 161, 235),
    Color32::from_rgb(242, 142, 43),
    Color32::from_rgb(89, 200, 120),
    Color32::from_rgb(225, 87, 89),
    Color32::from_rgb(176, 122, 225),
    Color32::from_rgb(237, 201, 72),
    Color32::from_rgb(118, 215, 215),
    Color32::from_rgb(255, 157, 180),
    Color32::from_rgb(156, 117, 95),
    Color32::from_rgb(186, 220, 88),
    Color32::from_rgb(130, 140, 250),
    Color32::from_rgb(250, 190, 130),
];
const OTHER: Color32 = Color32::from_rgb(110, 110, 118);
const PASSED: Color32 = Color32::from_rgb(78, 161, 235);
const SELECTED_GOLD: Color32 = Color32::from_rgb(255, 196, 40);
const DIM: Color32 = Color32::from_rgb(72, 82, 100);

/// The map's view and what it derived from the snapshot.
#[derive(Default)]
pub struct PoolMapState {
    /// The Map tab is shown instead of the table.
    pub shown: bool,
    pub colour_by: ColourBy,
    /// The map point at the centre of the widget (None: the whole map fitted).
    pub centre: Option<[f32; 2]>,
    /// 1: the whole map fits the widget.
    pub zoom: f32,
    /// The row under the pointer.
    pub hovered: Option<usize>,
    /// Where a box selection's drag began (map coordinates).
    pub box_from: Option<[f32; 2]>,
    /// Where the pointer is in that drag (map coordinates).
    pub box_to: Option<[f32; 2]>,
    /// A drag draws a lasso rather than panning (the toolbar's toggle; Alt-drag does it too).
    pub lasso_mode: bool,
    /// The lasso being drawn: the pointer's path in map coordinates, closed when let go.
    pub lasso: Option<Vec<[f32; 2]>>,
    /// The density layer under the points is on (the toolbar's toggle).
    pub density: bool,
    /// Its texture, for the snapshot generation it was binned from.
    pub density_texture: Option<(usize, eframe::egui::TextureHandle)>,
    /// The render target's format (from eframe's render state; None: the headless default).
    pub target_format: Option<eframe::egui_wgpu::wgpu::TextureFormat>,
    /// The last frame's view of the map widget (where each point was on screen).
    pub last_view: Option<super::pool_map_ui::MapView>,
    /// The pool size a map step was started for on its own (so it starts once per import).
    pub auto_started_for: Option<usize>,
    /// The snapshot generation whose map was checked for unplaced questions.
    pub checked_for: Option<usize>,
    pub derived: Option<Derived>,
}

/// What is computed from a snapshot, a colouring and the picked rows, once per change.
pub struct Derived {
    /// (snapshot generation, colouring, picked rows' version): not the hover, which the
    /// painter rings, so moving the pointer never rebuilds a million instances.
    key: (usize, ColourBy, u64),
    pub bounds: MapRect,
    pub grid: GridIndex,
    pub instances: Arc<MapInstances>,
    /// (label, colour) for the legend.
    pub legend: Vec<(String, Color32)>,
    /// The stored selection's coverage, and a random draw's of the same size (seed 0), as the
    /// snapshot brought them.
    pub coverage: Option<(Coverage, Coverage)>,
    /// Rows with a point.
    pub placed: usize,
}

impl Derived {
    /// The generation of the snapshot it was derived from.
    pub fn generation(&self) -> usize {
        self.key.0
    }
}

/// The GPU instance buffer's versions (each build is a new version).
static VERSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Categories ordered by size (largest first), each given a palette colour; the rest OTHER.
fn categories<'a>(values: impl Iterator<Item = &'a str>) -> (HashMap<String, Color32>, Vec<(String, Color32)>) {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for v in values {
        *count.entry(v).or_default() += 1;
    }
    let mut by: Vec<(&str, usize)> = count.into_iter().collect();
    by.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut map = HashMap::new();
    let mut legend = Vec::new();
    for (i, (v, _)) in by.iter().enumerate() {
        let c = PALETTE.get(i).copied().unwrap_or(OTHER);
        map.insert(v.to_string(), c);
        if i < PALETTE.len() {
            legend.push((v.to_string(), c));
        }
    }
    if by.len() > PALETTE.len() {
        legend.push((format!("{} more", by.len() - PALETTE.len()), OTHER));
    }
    (map, legend)
}

/// The colour at 75% brightness, opaque.
fn darker(c: Color32) -> Color32 {
    let f = |x: u8| (x as f32 * 0.75) as u8;
    Color32::from_rgb(f(c.r()), f(c.g()), f(c.b()))
}

/// Blue to yellow through green (viridis-like), t in 0..=1.
fn ramp(t: f32) -> Color32 {
    let t = t.clamp(0.0, 1.0);
    let stops = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let x = t * (stops.len() - 1) as f32;
    let i = (x as usize).min(stops.len() - 2);
    let f = x - i as f32;
    let (a, b) = (stops[i], stops[i + 1]);
    let m = |p: f32, q: f32| (p + (q - p) * f) as u8;
    Color32::from_rgb(m(a.0, b.0), m(a.1, b.1), m(a.2, b.2))
}

/// Each row's colour and the legend for `by`.
pub fn colours(s: &PoolSnapshot, by: ColourBy) -> (Vec<Color32>, Vec<(String, Color32)>) {
    match by {
        ColourBy::Source | ColourBy::Domain | ColourBy::Stage => {
            // A point's label as the table names it, borrowed (no String per row: a million
            // of them were most of a colouring's time).
            let stage_names: Vec<String> = s.stages.iter().map(|st| format!("out: {}", st.name)).collect();
            fn label_of<'a>(r: &'a PoolRow, by: ColourBy, stage_names: &'a [String]) -> &'a str {
                match by {
                    ColourBy::Source => r.source.as_str(),
                    ColourBy::Domain => r.domain.as_deref().unwrap_or("no domain"),
                    _ => match r.dropped_at {
                        None if r.selected => "selected",
                        None => "passed",
                        Some(i) => stage_names.get(i as usize).map_or("out: ", String::as_str),
                    },
                }
            }
            let label = |r| label_of(r, by, &stage_names);
            let (mut map, mut legend) = categories(s.rows.iter().map(label));
            if by == ColourBy::Stage {
                // The two that matter most keep their colours whatever the counts: passed in
                // blue, selected in gold (drawn over the pool); the stages that dropped
                // questions take the palette's muted rest.
                for (name, c) in [("passed", PASSED), ("selected", SELECTED_GOLD)] {
                    if let Some(v) = map.get_mut(name) {
                        *v = c;
                    }
                }
                // Not blue, red (the contamination ring) or gold.
                let mut drops = PALETTE
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| ![0, 3, 5].contains(i))
                    .map(|(_, c)| *c)
                    .cycle();
                for (name, c) in legend.iter_mut() {
                    *c = match name.as_str() {
                        "passed" => PASSED,
                        "selected" => SELECTED_GOLD,
                        _ => {
                            let d = darker(drops.next().unwrap_or(OTHER));
                            if let Some(v) = map.get_mut(name.as_str()) {
                                *v = d;
                            }
                            d
                        }
                    };
                }
            }
            let cols = s
                .rows
                .iter()
                .map(|r| map.get(label(r)).copied().unwrap_or(OTHER))
                .collect();
            (cols, legend)
        }
        ColourBy::Selected => {
            let cols = s
                .rows
                .iter()
                .map(|r| if r.selected { SELECTED_GOLD } else { DIM })
                .collect();
            (
                cols,
                vec![("selected".into(), SELECTED_GOLD), ("not selected".into(), DIM)],
            )
        }
        ColourBy::TraceLength => {
            let max = s.rows.iter().filter_map(|r| r.tokens).max().unwrap_or(0).max(2) as f32;
            let cols = s
                .rows
                .iter()
                .map(|r| match r.tokens {
                    Some(t) => ramp((1.0 + t as f32).ln() / (1.0 + max).ln()),
                    None => OTHER,
                })
                .collect();
            let legend = vec![
                ("short".into(), ramp(0.2)),
                (format!("{} tokens", max as usize), ramp(1.0)),
                ("not measured".into(), OTHER),
            ];
            (cols, legend)
        }
    }
}

impl PoolMapState {
    /// Recomputes what the snapshot, colouring or picked rows changed; `generation` is the
    /// snapshot's.
    pub fn refresh(&mut self, snapshot: Option<&PoolSnapshot>, generation: usize, picked: &Picked) {
        let Some(s) = snapshot else {
            self.derived = None;
            return;
        };
        let Some(map) = s.map.as_ref().filter(|m| m.points.len() == s.rows.len()) else {
            self.derived = None;
            return;
        };
        let key = (generation, self.colour_by, picked.version());
        if self.derived.as_ref().is_some_and(|d| d.key == key) {
            return;
        }
        // The grid and bounds change only with the snapshot (which brings the coverage,
        // computed on the curation thread).
        let same_snapshot = self.derived.as_ref().is_some_and(|d| d.key.0 == generation);
        let (bounds, grid) = match self.derived.take() {
            Some(d) if same_snapshot => (d.bounds, d.grid),
            _ => {
                let Some(grid) = GridIndex::new(&map.points, 6) else {
                    return;
                };
                (grid.bounds, grid)
            }
        };
        let cover = map.coverage;
        let (cols, legend) = colours(s, self.colour_by);
        // Each point's flags, once (the three passes below read them).
        let mut flags: Vec<u32> = s
            .rows
            .iter()
            .map(|r| {
                let picked = !picked.keys.is_empty() && picked.contains(&r.key);
                (if r.selected { SELECTED } else { 0 }) | (if picked { PICKED } else { 0 })
            })
            .collect();
        for t in &map.touches {
            if let Some(f) = flags.get_mut(t.0) {
                *f |= CONTAMINATED;
            }
        }
        let mut inst = MapInstances {
            version: VERSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            ..Default::default()
        };
        inst.bytes
            .reserve(map.points.len() * super::pool_map_gpu::INSTANCE_BYTES);
        // Drawn in three passes: the pool, then the selected over it, then the marked ones.
        let mut placed = 0;
        for pass in 0..3 {
            for (i, p) in map.points.iter().enumerate() {
                if !(p[0].is_finite() && p[1].is_finite()) {
                    continue;
                }
                let f = flags[i];
                let layer = if f & (CONTAMINATED | PICKED) != 0 {
                    2
                } else if f & SELECTED != 0 {
                    1
                } else {
                    0
                };
                if layer == pass {
                    inst.push(*p, cols[i], f);
                    placed += 1;
                }
            }
        }
        self.derived = Some(Derived {
            key,
            bounds,
            grid,
            instances: Arc::new(inst),
            legend,
            coverage: cover,
            placed,
        });
    }
}
