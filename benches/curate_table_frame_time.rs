//! Frame time of the Curate view with a 60,000-question pool (target: smooth, 16 ms or less per
//! frame on a 2-core machine): a still frame, and frames that re-sort or re-filter the whole table
//! (the worst case: a click on a column header, a key typed in the search box). Headless
//! egui_kittest harness, as benches/ui_frame_time.rs.
//!
//!     cargo bench --bench curate_table_frame_time

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use s1_studio::curate::funnel::Stage;
use s1_studio::curate::steps::snapshot::{PoolRow, PoolSnapshot};
use s1_studio::ui::curate_state::SortBy;
use s1_studio::ui::settings::View;
use s1_studio::ui::{Settings, StudioApp};

const ROWS: usize = 60_000;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3
}

fn main() {
    let ws = std::env::temp_dir().join("s1-curate-bench-ws");
    let s = Settings {
        view: View::Curate,
        workspace: Some(ws.clone()),
        ..Default::default()
    };
    let mut app = StudioApp::new(s, std::sync::Arc::new(|| {})).expect("app");
    let words = [
        "find",
        "the",
        "number",
        "of",
        "triangles",
        "whose",
        "sides",
        "are",
        "integers",
        "prime",
    ];
    let rows: Vec<PoolRow> = (0..ROWS)
        .map(|i| PoolRow {
            key: format!("{:016x}", (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            source: ["aime_1983_2023", "math_train", "olympiadbench"][i % 3].into(),
            preview: (0..24)
                .map(|j| words[(i * 7 + j * 3) % words.len()])
                .collect::<Vec<_>>()
                .join(" "),
            tokens: Some(200 + (i * 7919) % 9000),
            domain: Some(format!("{:02}", 5 + i % 40)),
            manual: None,
            dropped_at: if i % 5 == 0 { Some(4) } else { None },
            selected: i % 60 == 0,
            flags: if i % 17 == 0 { "asy".into() } else { String::new() },
        })
        .collect();
    let stages = [
        "rows imported",
        "unique questions",
        "not excluded by hand",
        "quality 1: complete",
        "quality 2: no weird strings",
    ]
    .iter()
    .map(|n| Stage {
        name: n.to_string(),
        kept: ROWS,
        dropped: 0,
        note: String::new(),
    })
    .collect();
    app.curate.snapshot = Some(std::sync::Arc::new(PoolSnapshot {
        rows,
        stages,
        domains: (5..45).map(|d| (format!("{d:02}"), 1200)).collect(),
        lengths: (0..36).map(|b| (b * 250, 1000)).collect(),
        bin: 250,
        ..Default::default()
    }));
    app.curate.snapshot_of = Some(ws);
    let mut h = Harness::<StudioApp>::builder()
        .with_size(egui::vec2(1280.0, 820.0))
        .build_ui_state(|ui, app: &mut StudioApp| app.show(ui), app);
    h.ctx.set_missing_glyph_policy(egui::MissingGlyphPolicy::Tofu);
    h.run();
    let measure = |name: &str, h: &mut Harness<'static, StudioApp>, change: &dyn Fn(&mut StudioApp, usize)| {
        let mut v = Vec::new();
        for i in 0..60 {
            change(h.state_mut(), i);
            let t = Instant::now();
            h.step();
            v.push(t.elapsed());
        }
        v.sort();
        println!(
            "{name:<44} median {:.2} ms  p95 {:.2} ms  max {:.2} ms",
            percentile(&v, 0.5),
            percentile(&v, 0.95),
            percentile(&v, 1.0)
        );
    };
    println!(
        "Curate view, {ROWS} rows, 1280x800, {} cores",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    measure("still frame", &mut h, &|_, _| {});
    measure("re-sort every frame (header click)", &mut h, &|a, i| {
        a.curate.sort = [SortBy::Tokens, SortBy::Domain, SortBy::Key, SortBy::Source][i % 4];
    });
    measure("re-filter every frame (search typing)", &mut h, &|a, i| {
        a.curate.search = ["tri", "tria", "triangles", "prime", "pr", ""][i % 6].into();
    });
}
