//! The Curate view's map of the pool: every question as a point (drawn on the GPU by
//! pool_map_gpu.rs), coloured by funnel stage, source, domain, selection or trace length, the
//! selected questions over the pool and the contaminated ones ringed in red. Drag pans, the
//! wheel zooms, a hover shows the question, a click opens it in the inspector, Shift-drag picks
//! the points in a box and Alt-drag (or a drag with the Lasso toggle on) those in a free shape,
//! for the bulk Include / Exclude. Beside it, the legend and the coverage
//! figure of the stored selection. Hover and box and lasso selection use the stored layout on
//! the CPU (the grid index in pool_map_state.rs, the even-odd polygon test), never a GPU
//! read-back. A toggle puts the density layer (pool_map_density.rs) under the points.

use eframe::egui::{self, Color32, Pos2, Rect, RichText, Sense, Stroke, Vec2};

use super::command::{CommandSender, CurateCommand};
use super::curate_pick::ClickKind;
use super::curate_state::CurateState;
use super::curate_table_ui::{picked_bar_ui, result_label};
use super::pool_map_density::{bin_counts, density_image, DENSITY_SIDE};
use super::pool_map_gpu::{paint_map, PoolMapCallback, ViewUniform};
use super::pool_map_state::{ColourBy, Derived, PoolMapState, SPLAT_FROM, SPLAT_RADIUS};
use super::pool_map_steps_ui::{draw_button_ui, embedder_switch_ui, map_progress_ui};
use crate::curate::map::coverage::COVERAGE_SIDE;
use crate::curate::map::embed::is_tfidf;
use crate::curate::map::grid::{points_in_box, points_in_polygon, MapRect};
use crate::curate::steps::map::MapOptions;
use crate::curate::steps::report::thousands;
use crate::curate::steps::Step;

pub use super::pool_map_steps_ui::MAP_BUTTON;

/// Map coordinates <-> screen points for a widget `rect` at the state's centre and zoom.
#[derive(Debug, Clone, Copy)]
pub struct MapView {
    pub rect: Rect,
    pub centre: [f32; 2],
    /// Screen points per map unit.
    pub k: f32,
}

impl MapView {
    pub fn new(rect: Rect, bounds: MapRect, st: &PoolMapState) -> Self {
        let w = (bounds.max[0] - bounds.min[0]).max(1e-6);
        let h = (bounds.max[1] - bounds.min[1]).max(1e-6);
        let fit = 0.92 * (rect.width() / w).min(rect.height() / h);
        let centre = st.centre.unwrap_or([
            (bounds.min[0] + bounds.max[0]) / 2.0,
            (bounds.min[1] + bounds.max[1]) / 2.0,
        ]);
        Self {
            rect,
            centre,
            k: fit * st.zoom.max(1e-3),
        }
    }
    pub fn to_screen(&self, p: [f32; 2]) -> Pos2 {
        self.rect.center() + Vec2::new(p[0] - self.centre[0], p[1] - self.centre[1]) * self.k
    }
    pub fn to_map(&self, s: Pos2) -> [f32; 2] {
        let d = (s - self.rect.center()) / self.k;
        [self.centre[0] + d.x, self.centre[1] + d.y]
    }
}

/// The point radius (points) and the alpha of one point: lower when many points overlap on
/// screen, so crowded regions show as brighter (the density shading when zoomed out).
fn radius_and_alpha(placed: usize, zoom: f32, rect: Rect) -> (f32, f32) {
    let base = if placed > 20_000 { 1.6 } else { 2.6 };
    let r = (base * zoom.max(1.0).powf(0.35)).min(7.0);
    let on_screen = placed as f32 / zoom.max(1.0).powi(2);
    let overdraw = on_screen * std::f32::consts::PI * r * r / rect.area().max(1.0);
    (r, (1.6 / overdraw.max(1e-6)).clamp(0.1, 0.9))
}

/// The map view; `request` is the map step as step 6 chose it (its button here too).
pub fn pool_map_ui(ui: &mut egui::Ui, st: &mut CurateState, request: Result<Step, String>, tx: &CommandSender) {
    ui.horizontal(|ui| {
        if ui.button("Table").on_hover_text("back to the table").clicked() {
            st.map.shown = false;
        }
        let mut by = st.map.colour_by;
        egui::ComboBox::from_label("Colour by")
            .selected_text(by.label())
            .show_ui(ui, |ui| {
                for c in ColourBy::ALL {
                    ui.selectable_value(&mut by, c, c.label());
                }
            });
        st.map.colour_by = by;
        if ui.button("Fit").on_hover_text("the whole map in view").clicked() {
            st.map.centre = None;
            st.map.zoom = 1.0;
        }
        let running = st.is_running();
        draw_button_ui(ui, st, request, running, tx);
        ui.toggle_value(&mut st.map.lasso_mode, "Lasso")
            .on_hover_text("a drag draws a free shape and picks the points inside it (Alt-drag does so too)");
        ui.toggle_value(&mut st.map.density, "Density").on_hover_text(format!(
            "a heat layer under the points: the questions in each of {DENSITY_SIDE}x{DENSITY_SIDE} cells, log scale"
        ));
        ui.weak("drag: pan · wheel: zoom · Shift-drag: pick a box · Alt-drag: lasso · click: inspect");
    });
    if let Some(r) = st.results.get(MAP_BUTTON) {
        result_label(ui, r);
    }
    picked_bar_ui(ui, st, tx);
    let Some(snap) = &st.snapshot else {
        ui.weak("Reading the workspace…");
        return;
    };
    let rows = snap.rows.len();
    // Once per snapshot (not per frame: counting a million points is not free): a pool without
    // a map, or with questions TF-IDF's map has not placed, is drawn on its own, once per pool
    // size. A model's map missing some questions is left as it is (it was chosen).
    if st.map.checked_for != Some(st.generation) && !st.is_running() {
        st.map.checked_for = Some(st.generation);
        let unplaced = match &snap.map {
            None => rows > 0,
            Some(m) => is_tfidf(&m.embedder) && m.points.iter().filter(|p| p[0].is_finite()).count() < rows,
        };
        if unplaced && st.map.auto_started_for != Some(rows) {
            st.map.auto_started_for = Some(rows);
            tx.send(CurateCommand::Start {
                step: Box::new(Step::Map(MapOptions::default())),
                button: MAP_BUTTON,
            });
        }
    }
    map_progress_ui(ui, st);
    if let Some(e) = &st.map.error {
        ui.colored_label(ui.visuals().error_fg_color, e);
    }
    if st.map.derived.is_none() {
        ui.weak(if rows == 0 {
            "No questions yet: import a pool and its map is drawn here.".to_string()
        } else if st.map.is_deriving() {
            format!("Drawing the map of {} questions…", thousands(rows))
        } else {
            "No map yet: it is being computed (hashed TF-IDF vectors, then the layout).".to_string()
        });
        return;
    }
    let embedder = snap.map.as_ref().map(|m| m.embedder.clone()).unwrap_or_default();
    let side = 230.0;
    let avail = ui.available_size();
    let map_size = Vec2::new((avail.x - side - 12.0).max(200.0), avail.y.max(200.0));
    ui.horizontal_top(|ui| {
        map_canvas_ui(ui, st, map_size, tx);
        ui.vertical(|ui| {
            ui.set_width(side);
            embedder_switch_ui(ui, st, side - 8.0, tx);
            if let Some(d) = st.map.derived.as_ref() {
                legend_ui(ui, d, d.colour_by(), &embedder, st.map.is_deriving());
            }
        });
    });
}

/// The legend, the contamination mark and the coverage figure.
fn legend_ui(ui: &mut egui::Ui, d: &Derived, by: ColourBy, embedder: &str, deriving: bool) {
    let title = format!("{} points by {}", thousands(d.placed), by.label());
    if deriving {
        ui.horizontal(|ui| {
            ui.strong(title);
            ui.spinner().on_hover_text("recolouring on the map's thread");
        });
    } else {
        ui.strong(title);
    }
    for (label, c) in &d.legend {
        ui.horizontal(|ui| {
            let (r, _) = ui.allocate_exact_size(Vec2::splat(10.0), Sense::hover());
            ui.painter().circle_filled(r.center(), 4.5, *c);
            ui.label(label);
        });
    }
    ui.horizontal(|ui| {
        let (r, _) = ui.allocate_exact_size(Vec2::splat(10.0), Sense::hover());
        ui.painter()
            .circle_stroke(r.center(), 4.0, Stroke::new(2.0, Color32::from_rgb(242, 41, 41)));
        ui.label("contaminated (hover: which set)");
    });
    ui.separator();
    ui.strong("Coverage of the selection");
    match &d.coverage {
        None => {
            ui.weak("no selection yet");
        }
        Some((sel, random)) => {
            egui::Grid::new("map-coverage").num_columns(3).show(ui, |ui| {
                ui.label("");
                ui.label("selection");
                ui.label("random");
                ui.end_row();
                ui.label("cells")
                    .on_hover_text(format!("share of the {COVERAGE_SIDE}x{COVERAGE_SIDE} cells the pool occupies that hold a selected question"));
                ui.label(RichText::new(format!("{:.0}%", 100.0 * sel.cell_share())).strong());
                ui.label(format!("{:.0}%", 100.0 * random.cell_share()));
                ui.end_row();
                ui.label("mean dist")
                    .on_hover_text("mean distance from a pool question to its nearest selected one (map units; lower covers more)");
                ui.label(RichText::new(format!("{:.3}", sel.mean_distance)).strong());
                ui.label(format!("{:.3}", random.mean_distance));
                ui.end_row();
            });
            ui.weak(format!(
                "{} selected; random: as many drawn uniformly from the pool (seed 0)",
                thousands(sel.selected)
            ));
        }
    }
    ui.separator();
    ui.weak(format!("layout of {embedder}"));
}

/// The map itself, with its interactions.
fn map_canvas_ui(ui: &mut egui::Ui, st: &mut CurateState, size: Vec2, tx: &CommandSender) {
    let (rect, resp) = ui.allocate_exact_size(size, Sense::click_and_drag());
    // Taken out while the view changes, put back at the end.
    let Some(d) = st.map.derived.take() else { return };
    if let Some(snap) = st.snapshot.as_ref() {
        if let Some(map) = snap.map.as_ref() {
            canvas(ui, rect, &resp, &d, snap, map, &mut st.map, tx);
        }
    }
    st.map.derived = Some(d);
}

#[allow(clippy::too_many_arguments)]
fn canvas(
    ui: &mut egui::Ui,
    rect: Rect,
    resp: &egui::Response,
    d: &Derived,
    snap: &crate::curate::steps::snapshot::PoolSnapshot,
    map: &crate::curate::steps::snapshot::PoolMap,
    m: &mut PoolMapState,
    tx: &CommandSender,
) {
    if m.zoom <= 0.0 {
        m.zoom = 1.0;
    }
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 4.0, Color32::from_rgb(14, 17, 24));
    let mut view = MapView::new(rect, d.bounds, m);
    // Zoom about the pointer.
    if let Some(pos) = resp.hover_pos() {
        let (scroll, pinch) = ui.input(|i| (i.smooth_scroll_delta.y, i.zoom_delta()));
        let factor = (scroll / 200.0).exp() * pinch;
        if (factor - 1.0).abs() > 1e-4 {
            let at = view.to_map(pos);
            let fit = view.k / m.zoom;
            m.zoom = (m.zoom * factor).clamp(0.5, 400.0);
            let off = (pos - rect.center()) / (fit * m.zoom);
            m.centre = Some([at[0] - off.x, at[1] - off.y]);
            view = MapView::new(rect, d.bounds, m);
        }
    }
    let (shift, alt) = ui.input(|i| (i.modifiers.shift, i.modifiers.alt));
    if resp.drag_started() {
        let origin = ui
            .input(|i| i.pointer.press_origin())
            .or(resp.interact_pointer_pos())
            .map(|p| view.to_map(p));
        if shift {
            m.box_from = origin;
            m.box_to = m.box_from;
        } else if alt || m.lasso_mode {
            m.lasso = origin.map(|o| vec![o]);
        }
    }
    if resp.dragged() && m.box_from.is_none() && m.lasso.is_none() {
        let delta = resp.drag_delta() / view.k;
        m.centre = Some([view.centre[0] - delta.x, view.centre[1] - delta.y]);
        view = MapView::new(rect, d.bounds, m);
    }
    m.last_view = Some(view);
    if m.density {
        density_ui(ui, &painter, &view, d, map, m);
    }
    let (r, alpha) = radius_and_alpha(d.placed, m.zoom, rect);
    let ppp = ui.ctx().pixels_per_point();
    let scale = [2.0 * view.k / rect.width(), -2.0 * view.k / rect.height()];
    paint_map(
        ui,
        rect,
        PoolMapCallback {
            instances: d.instances.clone(),
            view: ViewUniform {
                scale,
                offset: [-view.centre[0] * scale[0], -view.centre[1] * scale[1]],
                viewport: [rect.width() * ppp, rect.height() * ppp],
                radius: r * ppp,
                alpha,
            },
            rect,
            splat: d.instances.pool as usize >= m.splat_from.unwrap_or(SPLAT_FROM) && r * ppp <= SPLAT_RADIUS,
            format: m
                .target_format
                .unwrap_or(eframe::egui_wgpu::wgpu::TextureFormat::Rgba8Unorm),
        },
    );
    // The box being dragged (from where the button went down to the pointer), and the pick
    // when it is let go.
    if let Some(from) = m.box_from {
        let pointer = resp
            .interact_pointer_pos()
            .or(resp.hover_pos())
            .or(ui.input(|i| i.pointer.latest_pos()));
        if let Some(p) = pointer {
            m.box_to = Some(view.to_map(p));
        }
        if let Some(to) = m.box_to {
            painter.rect_stroke(
                Rect::from_two_pos(view.to_screen(from), view.to_screen(to)),
                0.0,
                Stroke::new(1.0, Color32::WHITE),
                egui::StrokeKind::Inside,
            );
        }
        if resp.drag_stopped() || !resp.dragged() {
            if let Some(to) = m.box_to.take() {
                let keys: Vec<String> = points_in_box(&map.points, MapRect::from_corners(from, to))
                    .into_iter()
                    .filter_map(|i| snap.rows.get(i).map(|r| r.key.clone()))
                    .collect();
                tx.send(CurateCommand::PickKeys(keys));
            }
            m.box_from = None;
        }
    }
    lasso_ui(ui, &painter, resp, &view, snap, map, m, tx);
    // Hover: the nearest point within a few pixels, from the grid.
    m.hovered = resp
        .hover_pos()
        .and_then(|p| d.grid.nearest(&map.points, view.to_map(p), (r + 4.0) / view.k));
    if let Some(i) = m.hovered {
        let row = &snap.rows[i];
        painter.circle_stroke(view.to_screen(map.points[i]), r + 3.0, Stroke::new(1.5, Color32::WHITE));
        let touches = map.touches.iter().find(|t| t.0 == i).map(|t| t.1.clone());
        let stage = match row.dropped_at {
            None if row.selected => "selected".to_string(),
            None => "passed".to_string(),
            Some(s) => format!(
                "out: {}",
                snap.stages.get(s as usize).map(|s| s.name.as_str()).unwrap_or("")
            ),
        };
        resp.clone().on_hover_ui_at_pointer(|ui| {
            ui.set_max_width(420.0);
            ui.strong(format!("{} · {} · {stage}", row.key, row.source));
            if let Some(dm) = &row.domain {
                ui.label(format!("domain {dm}"));
            }
            if let Some(t) = row.tokens {
                ui.label(format!("{t} trace tokens"));
            }
            if let Some(t) = touches {
                ui.colored_label(Color32::from_rgb(242, 80, 80), format!("contaminated: {t}"));
            }
            ui.label(&row.preview);
        });
        if resp.clicked() {
            let how = ClickKind {
                toggle: ui.input(|i| i.modifiers.command),
                range: false,
            };
            tx.send(CurateCommand::ClickRow {
                key: row.key.clone(),
                how,
            });
        }
    }
}

/// The density layer under the points: binned once per snapshot into a texture, drawn over the
/// map's bounds.
fn density_ui(
    ui: &egui::Ui,
    painter: &egui::Painter,
    view: &MapView,
    d: &Derived,
    map: &crate::curate::steps::snapshot::PoolMap,
    m: &mut PoolMapState,
) {
    let generation = d.generation();
    if m.density_texture.as_ref().is_none_or(|t| t.0 != generation) {
        let image = density_image(&bin_counts(&map.points, d.bounds, DENSITY_SIDE), DENSITY_SIDE);
        let texture = ui
            .ctx()
            .load_texture("pool-map-density", image, egui::TextureOptions::LINEAR);
        m.density_texture = Some((generation, texture));
    }
    if let Some((_, texture)) = &m.density_texture {
        painter.image(
            texture.id(),
            Rect::from_two_pos(view.to_screen(d.bounds.min), view.to_screen(d.bounds.max)),
            Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
            Color32::WHITE,
        );
    }
}

/// The lasso being drawn: the pointer's path (a vertex each time it has moved 3 points), drawn
/// closed; when let go, the points inside it (even-odd) become the picked rows.
#[allow(clippy::too_many_arguments)]
fn lasso_ui(
    ui: &egui::Ui,
    painter: &egui::Painter,
    resp: &egui::Response,
    view: &MapView,
    snap: &crate::curate::steps::snapshot::PoolSnapshot,
    map: &crate::curate::steps::snapshot::PoolMap,
    m: &mut PoolMapState,
    tx: &CommandSender,
) {
    let Some(path) = m.lasso.as_mut() else { return };
    let pointer = resp
        .interact_pointer_pos()
        .or(resp.hover_pos())
        .or(ui.input(|i| i.pointer.latest_pos()));
    if let (Some(p), Some(last)) = (pointer, path.last()) {
        if (view.to_screen(*last) - p).length() >= 3.0 {
            path.push(view.to_map(p));
        }
    }
    let screen: Vec<Pos2> = path.iter().map(|p| view.to_screen(*p)).collect();
    if screen.len() >= 2 {
        painter.add(egui::Shape::closed_line(screen, Stroke::new(1.0, Color32::WHITE)));
    }
    if resp.drag_stopped() || !resp.dragged() {
        if let Some(poly) = m.lasso.take() {
            let keys: Vec<String> = points_in_polygon(&map.points, &poly)
                .into_iter()
                .filter_map(|i| snap.rows.get(i).map(|r| r.key.clone()))
                .collect();
            tx.send(CurateCommand::PickKeys(keys));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screen_and_map_coordinates_round_trip_and_fit() {
        let rect = Rect::from_min_size(Pos2::new(10.0, 20.0), Vec2::new(400.0, 200.0));
        let bounds = MapRect::from_corners([-2.0, -1.0], [6.0, 3.0]);
        let mut st = PoolMapState::default();
        st.zoom = 1.0;
        let v = MapView::new(rect, bounds, &st);
        // Fitted: the whole map inside the widget, its centre at the widget's.
        assert!(rect.contains(v.to_screen(bounds.min)) && rect.contains(v.to_screen(bounds.max)));
        assert!((v.to_screen([2.0, 1.0]) - rect.center()).length() < 1e-3);
        let p = Pos2::new(123.0, 77.0);
        let back = v.to_screen(v.to_map(p));
        assert!((back - p).length() < 1e-3);
        st.zoom = 4.0;
        assert!((MapView::new(rect, bounds, &st).k - 4.0 * v.k).abs() < 1e-3);
    }

    #[test]
    fn points_are_fainter_when_they_crowd() {
        let rect = Rect::from_min_size(Pos2::ZERO, Vec2::new(800.0, 600.0));
        let (_, few) = radius_and_alpha(500, 1.0, rect);
        let (_, many) = radius_and_alpha(1_000_000, 1.0, rect);
        let (_, zoomed) = radius_and_alpha(1_000_000, 50.0, rect);
        assert!(many < few && zoomed > many, "{few} {many} {zoomed}");
    }
}
