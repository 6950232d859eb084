//! Frame time of the Curate view's pool map (shaders/pool_map.wgsl through egui_wgpu's paint
//! callback) at 100K and 1M points: each frame is an egui frame of the whole app, tessellated
//! and rendered by wgpu into an offscreen 1280x820 target and read back (egui_kittest's wgpu
//! renderer: Mesa lavapipe on a machine without a GPU, the GPU where there is one). The same
//! frame with the table instead of the map is measured too: the difference is the map's cost.
//! Each line also gives the UI pass alone (the app's logic and layout on the CPU, before the
//! tessellation, the GPU's work and the read-back): what a frame costs when nothing changed.
//!
//!     cargo bench --bench map_frame_time

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use s1_studio::curate::funnel::Stage;
use s1_studio::curate::map::coverage::selection_coverage;
use s1_studio::curate::steps::snapshot::{PoolMap, PoolRow, PoolSnapshot};
use s1_studio::ui::pool_map_gpu::splatted_frames;
use s1_studio::ui::pool_map_state::ColourBy;
use s1_studio::ui::settings::View;
use s1_studio::ui::{Settings, StudioApp};

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3
}

/// `n` points in 40 Gaussian-ish clusters (a pool's map looks like that), with rows to match.
fn snapshot(n: usize) -> PoolSnapshot {
    let mut z: u64 = 7;
    let mut unit = move || {
        z = z.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (z >> 40) as f32 / (1u64 << 24) as f32
    };
    let centres: Vec<[f32; 2]> = (0..40).map(|_| [unit() * 20.0, unit() * 20.0]).collect();
    let mut points = Vec::with_capacity(n);
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let c = centres[i % 40];
        let (a, b) = (unit() + unit() + unit() - 1.5, unit() + unit() + unit() - 1.5);
        points.push([c[0] + a * 1.5, c[1] + b * 1.5]);
        rows.push(PoolRow {
            key: format!("{:016x}", (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            source: ["aime", "math_train", "olympiadbench", "math_test"][i % 4].into(),
            preview: "find the number of triangles".into(),
            tokens: Some(200 + (i * 7919) % 9000),
            domain: Some(format!("{:02}", 5 + i % 30)),
            dropped_at: if i % 5 == 0 { Some(3) } else { None },
            selected: i % 100 == 0,
            ..Default::default()
        });
    }
    let touches = (0..n).step_by(997).map(|i| (i, "math500".to_string())).collect();
    // As the curation thread computes it with the snapshot (timed: it is part of what a new
    // snapshot costs there, not a frame).
    let selected: Vec<bool> = rows.iter().map(|r| r.selected).collect();
    let t = Instant::now();
    let coverage = selection_coverage(&points, &selected);
    let fresh = t.elapsed().as_secs_f64() * 1e3;
    // The next snapshot with the same points and selection (a mark by hand) keeps the figure.
    let t = Instant::now();
    let again = selection_coverage(&points, &selected);
    assert_eq!(again, coverage);
    println!(
        "{n:>9} points, coverage of the selection and of a random draw (curation thread): {fresh:.0} ms; \
         the next snapshot's, same points and selection: {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    PoolSnapshot {
        rows,
        stages: (0..5)
            .map(|i| Stage {
                name: format!("stage {i}"),
                kept: n,
                dropped: 0,
                note: String::new(),
            })
            .collect(),
        map: Some(PoolMap {
            embedder: "bench".into(),
            points,
            touches,
            coverage,
        }),
        ..Default::default()
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this without it: then a smoke
    // run (10K points, 2 frames) that only checks the bench still works.
    let full = std::env::args().any(|a| a == "--bench");
    let (sizes, frames): (&[usize], usize) = if full {
        (&[100_000, 1_000_000], 20)
    } else {
        (&[10_000], 2)
    };
    println!(
        "pool map frame time, 1280x820, wgpu offscreen render + read-back, {} cores",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    for &n in sizes {
        let ws = std::env::temp_dir().join("s1-map-bench-ws");
        let s = Settings {
            view: View::Curate,
            workspace: Some(ws.clone()),
            ..Default::default()
        };
        let mut app = StudioApp::new(s, std::sync::Arc::new(|| {})).expect("app");
        app.curate.snapshot = Some(std::sync::Arc::new(snapshot(n)));
        app.curate.snapshot_of = Some(ws);
        app.curate.generation += 1;
        let mut h = Harness::<StudioApp>::builder()
            .with_size(egui::vec2(1280.0, 820.0))
            .wgpu()
            .build_ui_state(|ui, app: &mut StudioApp| app.show(ui), app);
        h.ctx.set_missing_glyph_policy(egui::MissingGlyphPolicy::Tofu);
        let measure = |name: &str, h: &mut Harness<'static, StudioApp>, map: bool| {
            h.state_mut().curate.map.shown = map;
            // The first frame derives what the frames after it reuse (the map's instances, grid
            // and coverage): timed on its own.
            let t = Instant::now();
            h.step();
            let first = t.elapsed().as_secs_f64() * 1e3;
            let _ = h.render();
            let (mut total, mut ui) = (Vec::new(), Vec::new());
            for i in 0..frames {
                // Pan a little every frame, so each frame draws a new view.
                h.state_mut().curate.map.zoom = 1.0 + (i % 4) as f32 * 0.25;
                let t = Instant::now();
                h.step();
                let stepped = t.elapsed();
                h.render().expect("render");
                total.push(t.elapsed());
                ui.push(stepped);
            }
            total.sort();
            ui.sort();
            println!(
                "{n:>9} points, {name:<16} median {:>7.1} ms  p95 {:>7.1} ms  (of which the UI pass on the CPU: median {:.2} ms; first UI pass {first:.0} ms)",
                percentile(&total, 0.5),
                percentile(&total, 0.95),
                percentile(&ui, 0.5),
            );
        };
        measure("table (no map)", &mut h, false);
        // The pool's plain points drawn as instanced quads, then splatted by the compute
        // shader (what the app does from SPLAT_FROM points on, zoomed out).
        h.state_mut().curate.map.splat_from = Some(usize::MAX);
        measure("map, quads", &mut h, true);
        h.state_mut().curate.map.splat_from = Some(0);
        let before = splatted_frames();
        measure("map, splat", &mut h, true);
        let splatted = splatted_frames() - before;
        if splatted == 0 {
            println!("{n:>9} points: the compute path did not run on this adapter (quads drawn instead)");
        }
        h.state_mut().curate.map.splat_from = None;
        // A new colouring (or a pick) rebuilds the points' colours and the instance bytes: the
        // UI pass of the frame that shows it, per colouring.
        // From BACKGROUND_FROM points on it runs on the map's own thread: the frames meanwhile
        // keep the last colouring, and the longest UI pass among them is what a user feels;
        // "drawn after" is when the new colours are on the map.
        for by in ColourBy::ALL {
            h.state_mut().curate.map.colour_by = by;
            let t = Instant::now();
            let mut longest: f64 = 0.0;
            loop {
                let f = Instant::now();
                h.step();
                longest = longest.max(f.elapsed().as_secs_f64() * 1e3);
                let m = &h.state().curate.map;
                if !m.is_deriving() && m.derived.as_ref().is_some_and(|d| d.colour_by() == by) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            let drawn = t.elapsed().as_secs_f64() * 1e3;
            h.render().expect("render");
            println!(
                "{n:>9} points, recolour by {:<16} longest UI pass {longest:>6.1} ms, drawn after {drawn:>6.1} ms",
                by.label()
            );
        }
    }
}
