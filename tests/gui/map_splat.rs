//! The map's compute path (shaders/pool_map_splat.wgsl: a large pool's plain points splatted
//! into per-pixel sums and resolved) draws what the quads (shaders/pool_map.wgsl) draw: the
//! same map rendered both ways through wgpu (Mesa's lavapipe here, a GPU where there is one) is
//! compared pixel by pixel inside the map. Points apart (four colours, some selected and
//! contaminated, drawn over the pool as quads either way) and one colour crowded on itself are
//! exact cases of the splat's order-independent blending; several colours crowded are not (the
//! quads' result depends on their order), and there only the covered pixels must agree.

use crate::common;

use common::gui::harness_with;
use egui_kittest::Harness;
use s1_studio::curate::steps::snapshot::{PoolMap, PoolRow, PoolSnapshot};
use s1_studio::ui::pool_map_gpu::splatted_frames;
use s1_studio::ui::pool_map_state::ColourBy;
use s1_studio::ui::settings::View;
use s1_studio::ui::{Settings, StudioApp};

/// One render at a time: which path drew is read from a process-wide count of splatted frames.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Renders `points` (with `source`, `selected` and contaminated rows) both ways and returns
/// (quads, splat) as RGBA bytes of the map's rect, and the rect's size.
fn render_both(
    points: Vec<[f32; 2]>,
    source: impl Fn(usize) -> String,
    selected: impl Fn(usize) -> bool,
    touched: &[usize],
    by: ColourBy,
) -> (Vec<[u8; 4]>, Vec<[u8; 4]>) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let rows = (0..points.len())
        .map(|i| PoolRow {
            key: format!("k{i}"),
            source: source(i),
            selected: selected(i),
            ..Default::default()
        })
        .collect();
    let mut app = StudioApp::new(
        Settings {
            view: View::Curate,
            workspace: Some(ws.clone()),
            ..Default::default()
        },
        std::sync::Arc::new(|| {}),
    )
    .unwrap();
    app.curate.snapshot = Some(std::sync::Arc::new(PoolSnapshot {
        rows,
        map: Some(PoolMap {
            embedder: "test".into(),
            points,
            touches: touched.iter().map(|&i| (i, "math500".to_string())).collect(),
            coverage: None,
        }),
        ..Default::default()
    }));
    app.curate.snapshot_of = Some(ws);
    app.curate.generation += 1;
    app.curate.map.shown = true;
    app.curate.map.colour_by = by;
    let mut h = harness_with(Harness::<StudioApp>::builder().wgpu(), app);
    let draw = |h: &mut Harness<'static, StudioApp>, splat_from: usize| {
        h.state_mut().curate.map.splat_from = Some(splat_from);
        h.run();
        let img = h.render().expect("render");
        let r = h.state().curate.map.last_view.expect("the map is drawn").rect;
        let mut px = Vec::new();
        for y in r.min.y.ceil() as u32 + 1..r.max.y.floor() as u32 - 1 {
            for x in r.min.x.ceil() as u32 + 1..r.max.x.floor() as u32 - 1 {
                px.push(img.get_pixel(x, y).0);
            }
        }
        px
    };
    let before = splatted_frames();
    let quads = draw(&mut h, usize::MAX);
    assert_eq!(splatted_frames(), before, "quads only");
    let splat = draw(&mut h, 0);
    assert!(
        splatted_frames() > before,
        "the compute path drew (the adapter runs compute shaders with storage buffers)"
    );
    (quads, splat)
}

fn diff(a: [u8; 4], b: [u8; 4]) -> u8 {
    (0..3).map(|c| a[c].abs_diff(b[c])).max().unwrap_or(0)
}

#[test]
fn points_apart_are_drawn_the_same_by_the_splat_and_the_quads() {
    // A 40 x 25 grid: ~25 pixels apart, none overlapping.
    let points: Vec<[f32; 2]> = (0..1000).map(|i| [(i % 40) as f32, (i / 40) as f32]).collect();
    let (quads, splat) = render_both(
        points,
        |i| format!("s{}", i % 4),
        |i| i % 50 == 0,
        &[3, 77, 500],
        ColourBy::Source,
    );
    let background = quads[0];
    let drawn = quads.iter().filter(|p| diff(**p, background) > 8).count();
    assert!(drawn > 1000 * 10, "the points cover pixels: {drawn}");
    let worst = quads.iter().zip(&splat).map(|(a, b)| diff(*a, *b)).max().unwrap_or(0);
    assert!(worst <= 3, "largest difference {worst} of 255");
}

#[test]
fn one_colour_crowded_on_itself_blends_as_the_quads_do() {
    // 3,000 points in a small disc (hundreds on some pixels), and four far corners for the
    // bounds; all one colour (none selected, by "selected or not").
    let mut points: Vec<[f32; 2]> = (0..3000)
        .map(|i| {
            let (a, r) = (i as f32 * 2.399_963, (i as f32 / 3000.0).sqrt());
            [r * a.cos(), r * a.sin()]
        })
        .collect();
    points.extend([[-20.0, -20.0], [20.0, -20.0], [-20.0, 20.0], [20.0, 20.0]]);
    let (quads, splat) = render_both(points, |_| "a".into(), |_| false, &[], ColourBy::Selected);
    let d: Vec<u8> = quads.iter().zip(&splat).map(|(a, b)| diff(*a, *b)).collect();
    let mean = d.iter().map(|&x| x as f64).sum::<f64>() / d.len() as f64;
    let worst = d.iter().copied().max().unwrap_or(0);
    assert!(worst <= 4, "largest difference {worst} of 255");
    assert!(mean < 0.2, "mean difference {mean}");
}

#[test]
fn several_colours_crowded_cover_the_same_pixels() {
    let points: Vec<[f32; 2]> = (0..4000)
        .map(|i| {
            let (a, r) = (i as f32 * 2.399_963, (i as f32 / 4000.0).sqrt() * 3.0);
            [r * a.cos(), r * a.sin()]
        })
        .collect();
    let (quads, splat) = render_both(points, |i| format!("s{}", i % 5), |_| false, &[], ColourBy::Source);
    let background = quads[0];
    let covered = |p: &[u8; 4]| diff(*p, background) > 24;
    let both = quads
        .iter()
        .zip(&splat)
        .filter(|(a, b)| covered(a) && covered(b))
        .count();
    let either = quads
        .iter()
        .zip(&splat)
        .filter(|(a, b)| covered(a) || covered(b))
        .count();
    assert!(either > 1000, "{either}");
    assert!(
        both as f64 >= 0.98 * either as f64,
        "{both} of {either} covered by both"
    );
}
