//! The pool map's runtime state in the Curate view: the view (centre, zoom), the colouring,
//! the hovered point and the box being dragged, and what is derived from a snapshot once per
//! change (the grid index for hover and box selection, the GPU's instance bytes and the
//! legend; the coverage figure comes computed with the snapshot, off this thread). A large
//! pool's derivation (a million points: ~0.1 s) runs on a thread of its own while the last one
//! stays drawn, so a new colouring or pick never stalls a frame. No drawing here
//! (pool_map_ui.rs), no GPU calls (pool_map_gpu.rs).

use std::collections::BTreeSet;
use std::sync::Arc;

use crossbeam_channel::{Receiver, TryRecvError};
use eframe::egui::Color32;

use super::curate_pick::Picked;
pub use super::pool_map_colours::{colours, ColourBy};
use super::pool_map_gpu::{MapInstances, CONTAMINATED, INSTANCE_BYTES, PICKED, SELECTED};
use crate::cancel::Notify;
use crate::curate::map::coverage::Coverage;
use crate::curate::map::grid::{GridIndex, MapRect};
use crate::curate::steps::snapshot::PoolSnapshot;

/// A pool with this many plain points or more is splatted by the compute shader (below it the
/// quads cost under a millisecond), as long as a point is at most [`SPLAT_RADIUS`] pixels.
pub const SPLAT_FROM: usize = 100_000;
/// The largest point (radius in pixels) splatted: beyond it, zoomed in, few points are on
/// screen and the quads draw them in their order.
pub const SPLAT_RADIUS: f32 = 4.5;

/// Pools from this size on are derived on the map's own thread (smaller ones in the frame,
/// where it costs under ~10 ms).
pub const BACKGROUND_FROM: usize = 150_000;

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
    /// A derivation running on the map's thread, for its key.
    pending: Option<Pending>,
    /// Pools from this size on are derived off the UI thread ([`BACKGROUND_FROM`]; 0 in
    /// tests that exercise that path on a small pool).
    pub background_from: Option<usize>,
    /// The last derivation that failed (its thread could not start or stopped).
    pub error: Option<String>,
    /// Pools with this many plain points or more are splatted by the compute shader when
    /// zoomed out ([`SPLAT_FROM`]; 0 in tests that compare it with the quads; usize::MAX
    /// draws quads only).
    pub splat_from: Option<usize>,
}

/// (snapshot generation, colouring, picked rows' version).
type Key = (usize, ColourBy, u64);

/// A derivation on the map's thread.
struct Pending {
    key: Key,
    rx: Receiver<Option<Derived>>,
}

/// What is computed from a snapshot, a colouring and the picked rows, once per change.
pub struct Derived {
    /// (snapshot generation, colouring, picked rows' version): not the hover, which the
    /// painter rings, so moving the pointer never rebuilds a million instances.
    key: Key,
    pub bounds: MapRect,
    /// Shared with the next derivation of the same snapshot (a recolouring keeps it).
    pub grid: Arc<GridIndex>,
    pub instances: Arc<MapInstances>,
    /// (label, colour) for the legend.
    pub legend: Vec<(String, Color32)>,
    /// The stored selection's coverage, and a random draw's of the same size (seed 0), as the
    /// snapshot brought them.
    pub coverage: Option<(Coverage, Coverage)>,
    /// Rows with a point.
    pub placed: usize,
    /// The snapshot's row count (a derivation is only shown over the rows it was made from).
    pub rows: usize,
}

impl Derived {
    /// The generation of the snapshot it was derived from.
    pub fn generation(&self) -> usize {
        self.key.0
    }

    /// The colouring its instances and legend show.
    pub fn colour_by(&self) -> ColourBy {
        self.key.1
    }
}

/// The GPU instance buffer's versions (each build is a new version).
static VERSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Everything [`Derived`] holds for one snapshot, colouring and set of picked keys. `grid`: the
/// same snapshot's index when a recolouring can keep it. None when the snapshot has no map
/// for its rows, or no point of it is placed.
fn derive(s: &PoolSnapshot, key: Key, picked: &BTreeSet<String>, grid: Option<Arc<GridIndex>>) -> Option<Derived> {
    let map = s.map.as_ref().filter(|m| m.points.len() == s.rows.len())?;
    let grid = match grid {
        Some(g) => g,
        None => Arc::new(GridIndex::new(&map.points, 6)?),
    };
    let (cols, legend) = colours(s, key.1);
    // Each point's flags and layer, once: drawn in three passes, the pool, then the selected
    // over it, then the marked ones (contaminated or picked).
    let mut flags: Vec<u32> = s
        .rows
        .iter()
        .map(|r| {
            let picked = !picked.is_empty() && picked.contains(&r.key);
            (if r.selected { SELECTED } else { 0 }) | (if picked { PICKED } else { 0 })
        })
        .collect();
    for t in &map.touches {
        if let Some(f) = flags.get_mut(t.0) {
            *f |= CONTAMINATED;
        }
    }
    let layer = |i: usize| -> u8 {
        let p = map.points[i];
        if !(p[0].is_finite() && p[1].is_finite()) {
            3
        } else if flags[i] & (CONTAMINATED | PICKED) != 0 {
            2
        } else if flags[i] & SELECTED != 0 {
            1
        } else {
            0
        }
    };
    let layers: Vec<u8> = (0..map.points.len()).map(layer).collect();
    let placed = layers.iter().filter(|&&l| l < 3).count();
    let mut inst = MapInstances {
        version: VERSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        count: placed as u32,
        pool: layers.iter().filter(|&&l| l == 0).count() as u32,
        bytes: vec![0; placed * INSTANCE_BYTES],
    };
    let mut out = inst.bytes.chunks_exact_mut(INSTANCE_BYTES);
    for pass in 0..3 {
        for (i, _) in layers.iter().enumerate().filter(|(_, &l)| l == pass) {
            if let Some(slot) = out.next() {
                MapInstances::write(slot, map.points[i], cols[i], flags[i]);
            }
        }
    }
    Some(Derived {
        key,
        bounds: grid.bounds,
        grid,
        instances: Arc::new(inst),
        legend,
        coverage: map.coverage,
        placed,
        rows: s.rows.len(),
    })
}

impl PoolMapState {
    /// Recomputes what the snapshot, colouring or picked rows changed; `generation` is the
    /// snapshot's. A large pool's derivation starts on the map's thread and is taken up by a
    /// later call (`notify` wakes the UI when it is done); until then the last one stays
    /// drawn when it is of the same rows.
    pub fn refresh(
        &mut self,
        snapshot: Option<&Arc<PoolSnapshot>>,
        generation: usize,
        picked: &Picked,
        notify: &Notify,
    ) {
        let Some(s) = snapshot else {
            self.derived = None;
            self.pending = None;
            return;
        };
        let key = (generation, self.colour_by, picked.version());
        if let Some(p) = &self.pending {
            match p.rx.try_recv() {
                Ok(d) => {
                    let done = p.key;
                    self.pending = None;
                    self.derived = d;
                    if done == key {
                        return;
                    }
                }
                Err(TryRecvError::Empty) if p.key == key => return,
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => {
                    self.pending = None;
                    self.error = Some("the map's colouring stopped without a result".into());
                }
            }
        }
        if self.derived.as_ref().is_some_and(|d| d.key == key) {
            return;
        }
        // The grid changes only with the snapshot.
        let grid = self
            .derived
            .as_ref()
            .filter(|d| d.key.0 == generation)
            .map(|d| d.grid.clone());
        // What is drawn meanwhile must be of these rows (the hover reads the row it names).
        if self.derived.as_ref().is_some_and(|d| d.rows != s.rows.len()) {
            self.derived = None;
        }
        if s.rows.len() < self.background_from.unwrap_or(BACKGROUND_FROM) {
            self.pending = None;
            self.derived = derive(s, key, &picked.keys, grid);
            return;
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let (s, picked, notify) = (s.clone(), picked.keys.clone(), notify.clone());
        let started = std::thread::Builder::new()
            .name("pool-map-colours".into())
            .spawn(move || {
                let _ = tx.send(derive(&s, key, &picked, grid));
                notify();
            });
        match started {
            Ok(_) => self.pending = Some(Pending { key, rx }),
            Err(e) => {
                self.pending = None;
                self.error = Some(format!("could not start the map's colouring thread: {e}"));
            }
        }
    }

    /// A derivation is running on the map's thread (what is drawn is an older one, or none).
    pub fn is_deriving(&self) -> bool {
        self.pending.is_some()
    }
}
