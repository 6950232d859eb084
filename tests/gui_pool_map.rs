//! The Curate view's map, driven as a user would (no GPU needed: the points' drawing is a wgpu
//! paint callback, which this harness skips, while hover, click and box selection are the
//! view's own, on the CPU): step 6 shows the map; hovering a point finds its question, a click
//! opens it in the inspector, and a Shift-drag box picks exactly the points inside for the bulk
//! marks.

mod common;

use std::time::Duration;

use common::gui::{app, harness, step_until};
use egui_kittest::kittest::Queryable;
use s1_studio::curate::map::grid::{points_in_box, MapRect};
use s1_studio::curate::steps::{self, map::MapOptions, Step};
use s1_studio::jobs::CancelToken;
use s1_studio::ui::Settings;

fn workspace(dir: &std::path::Path) -> std::path::PathBuf {
    let file = dir.join("q.jsonl");
    let topics = [
        "triangle circle radius",
        "prime divisor integer",
        "probability dice coin",
    ];
    let lines: Vec<String> = (0..60)
        .map(|i| {
            let q = format!("Question {i} about {} with number {}", topics[i % 3], i * 7 % 13);
            serde_json::json!({"question": q, "solution": "x"}).to_string()
        })
        .collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let ws_dir = dir.join("ws");
    let mut ws = s1_studio::workspace::Workspace::open(&ws_dir).unwrap();
    for step in [
        Step::Import {
            files: vec![file],
            options: Default::default(),
        },
        Step::Map(MapOptions::default()),
    ] {
        steps::run(&mut ws, &step, &CancelToken::new(), &mut |_| {}).unwrap();
    }
    ws_dir
}

#[test]
fn hover_click_and_box_selection_on_the_map() {
    let dir = tempfile::tempdir().unwrap();
    let s = Settings {
        view: s1_studio::ui::settings::View::Curate,
        workspace: Some(workspace(dir.path())),
        ..Default::default()
    };
    let mut h = harness(app(s));
    step_until(
        &mut h,
        Duration::from_secs(60),
        |_| {},
        |a| a.curate.snapshot.is_some() && !a.curate.is_running(),
    );
    h.get_by_label("Show the map").click_accesskit();
    h.run();
    let st = &h.state().curate;
    assert_eq!(st.map.derived.as_ref().expect("the map is shown").placed, 60);
    let view = st.map.last_view.expect("drawn once");
    let snap = st.snapshot.clone().unwrap();
    let points = snap.map.as_ref().unwrap().points.clone();

    // Hover a point: its question is found from the grid; a click opens it.
    let i = 17;
    h.hover_at(view.to_screen(points[i]));
    h.run();
    let hovered = h.state().curate.map.hovered.expect("a point under the pointer");
    let d = |j: usize| {
        let (a, b) = (points[i], points[j]);
        (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)
    };
    assert!(d(hovered) <= 1e-9, "the hovered point sits where the pointer is");
    h.drag_at(view.to_screen(points[i]));
    h.run();
    h.drop_at(view.to_screen(points[i]));
    step_until(&mut h, Duration::from_secs(30), |_| {}, |a| a.curate.detail.is_some());
    assert_eq!(
        h.state().curate.selected.as_deref(),
        Some(snap.rows[hovered].key.as_str())
    );

    // A box over the map's left half, drawn with Shift held: exactly the points inside (the
    // inspector took some of the width: the map's view as drawn now).
    h.hover_at(egui::pos2(5.0, 5.0));
    h.run();
    let view = h.state().curate.map.last_view.expect("drawn");
    let rect = view.rect;
    let (from, to) = (
        rect.min + egui::vec2(4.0, 4.0),
        egui::pos2(rect.center().x, rect.max.y - 4.0),
    );
    let shift = egui::Modifiers::SHIFT;
    let press = |pos, pressed| egui::Event::PointerButton {
        pos,
        button: egui::PointerButton::Primary,
        pressed,
        modifiers: shift,
    };
    // Shift held from the press to the release.
    h.event(egui::Event::ModifiersChanged(shift));
    h.event(egui::Event::PointerMoved(from));
    h.event(press(from, true));
    h.step();
    for t in [0.25, 0.5, 1.0] {
        h.event(egui::Event::PointerMoved(from + (to - from) * t));
        h.step();
    }
    h.event(press(to, false));
    h.step();
    h.event(egui::Event::ModifiersChanged(egui::Modifiers::default()));
    h.run();
    let want: std::collections::BTreeSet<String> =
        points_in_box(&points, MapRect::from_corners(view.to_map(from), view.to_map(to)))
            .into_iter()
            .map(|j| snap.rows[j].key.clone())
            .collect();
    assert!(!want.is_empty() && want.len() < 60, "{}", want.len());
    assert_eq!(h.state().curate.picked.keys, want);
    h.get_by_label(&format!("{} selected", want.len()));
    h.get_by_label("Exclude selected");
}
