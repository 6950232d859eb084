//! The Curate view's map, driven as a user would (no GPU needed: the points' drawing is a wgpu
//! paint callback, which this harness skips, while hover, click and box selection are the
//! view's own, on the CPU): step 6 shows the map; hovering a point finds its question, a click
//! opens it in the inspector, a Shift-drag box picks exactly the points inside for the bulk
//! marks, and so does a lasso (Alt-drag, or a drag with the Lasso toggle on) by the even-odd
//! rule; the Density toggle bins the points into the heat layer's texture. The map's switch
//! shows another stored embedder's layout (laying it out first when it has none), and step 6
//! with the model loaded in Chat embeds with that model, shared, not loaded again.

use crate::common;

use std::time::Duration;

use common::gui::{app, harness, step_until};
use egui_kittest::kittest::Queryable;
use s1_studio::curate::map::grid::{points_in_box, points_in_polygon, MapRect};
use s1_studio::curate::steps::{self, map::MapOptions, Step};
use s1_studio::jobs::CancelToken;
use s1_studio::ui::{Settings, StudioApp};

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

/// The app on [`workspace`]'s pool in `dir`, its map shown.
fn map_shown(dir: &std::path::Path) -> egui_kittest::Harness<'static, StudioApp> {
    let s = Settings {
        view: s1_studio::ui::settings::View::Curate,
        workspace: Some(workspace(dir)),
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
    h
}

#[test]
fn hover_click_and_box_selection_on_the_map() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = map_shown(dir.path());
    let st = &h.state().curate;
    assert_eq!(st.map.derived.as_ref().expect("the map is shown").placed, 60);
    let view = st.map.last_view.expect("drawn once");
    let snap = st.snapshot.clone().unwrap();
    let points = snap.map.as_ref().unwrap().points.clone();
    let first_version = st.map.derived.as_ref().unwrap().instances.version;

    // Hover a point: its question is found from the grid; a click opens it.
    let i = 17;
    h.hover_at(view.to_screen(points[i]));
    h.run();
    let hovered = h.state().curate.map.hovered.expect("a point under the pointer");
    // Hovering rebuilt nothing: the GPU's points (uploaded when their version changes) are the
    // ones first made.
    let version = |h: &egui_kittest::Harness<'static, StudioApp>| {
        h.state().curate.map.derived.as_ref().unwrap().instances.version
    };
    assert_eq!(version(&h), first_version);
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
    // The pick changed the points' flags: new instances, once; frames after it reuse them.
    let picked_version = version(&h);
    assert_ne!(picked_version, first_version);
    h.hover_at(rect.center());
    h.run();
    assert_eq!(version(&h), picked_version);
}

/// A large pool is coloured on the map's own thread (here: every pool, by lowering the size it
/// starts at): the frame that asks for a new colouring keeps drawing the last one, and what
/// arrives is byte for byte what the frame would have made itself.
#[test]
fn a_large_pool_is_coloured_on_the_maps_thread_as_the_frame_would() {
    use s1_studio::ui::pool_map_state::ColourBy;
    let dir = tempfile::tempdir().unwrap();
    let mut h = map_shown(dir.path());
    let bytes = |h: &egui_kittest::Harness<'static, StudioApp>| {
        let d = h.state().curate.map.derived.as_ref().expect("drawn");
        (d.colour_by(), d.instances.bytes.clone(), d.legend.clone())
    };
    // In the frame (60 points): by source, then back by stage.
    h.state_mut().curate.map.colour_by = ColourBy::Source;
    h.step();
    assert!(!h.state().curate.map.is_deriving());
    let in_frame = bytes(&h);
    assert_eq!(in_frame.0, ColourBy::Source);
    h.state_mut().curate.map.colour_by = ColourBy::Stage;
    h.step();
    let by_stage = bytes(&h);
    assert_ne!(by_stage.1, in_frame.1, "the two colourings differ");

    // On the map's thread.
    h.state_mut().curate.map.background_from = Some(0);
    h.state_mut().curate.map.colour_by = ColourBy::Source;
    h.step();
    assert!(h.state().curate.map.is_deriving(), "started on its thread");
    assert_eq!(bytes(&h), by_stage, "the last colouring stays drawn meanwhile");
    step_until(&mut h, Duration::from_secs(30), |_| {}, |a| !a.curate.map.is_deriving());
    let threaded = bytes(&h);
    assert_eq!(threaded.0, ColourBy::Source);
    assert_eq!(threaded.1, in_frame.1, "the same instance bytes as the frame's own");
    assert_eq!(threaded.2, in_frame.2, "the same legend");
    assert_eq!(h.state().curate.map.derived.as_ref().unwrap().placed, 60);
    assert!(h.state().curate.map.error.is_none());
}

/// A drag through `path` (screen points) with `modifiers` held from the press to the release;
/// returns the lasso as the view held it just before the release (map coordinates) and the
/// view then (the picked bar that appears after moves the map down).
fn drag_through(
    h: &mut egui_kittest::Harness<'static, StudioApp>,
    path: &[egui::Pos2],
    modifiers: egui::Modifiers,
) -> (Option<Vec<[f32; 2]>>, s1_studio::ui::pool_map_ui::MapView) {
    let press = |pos, pressed| egui::Event::PointerButton {
        pos,
        button: egui::PointerButton::Primary,
        pressed,
        modifiers,
    };
    h.event(egui::Event::ModifiersChanged(modifiers));
    h.event(egui::Event::PointerMoved(path[0]));
    h.event(press(path[0], true));
    h.step();
    for p in &path[1..] {
        h.event(egui::Event::PointerMoved(*p));
        h.step();
    }
    let drawn = h.state().curate.map.lasso.clone();
    let view = h.state().curate.map.last_view.expect("drawn");
    h.event(press(path[path.len() - 1], false));
    h.step();
    h.event(egui::Event::ModifiersChanged(egui::Modifiers::default()));
    h.run();
    (drawn, view)
}

#[test]
fn lasso_picks_exactly_the_points_inside() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = map_shown(dir.path());
    let snap = h.state().curate.snapshot.clone().unwrap();
    let points = snap.map.as_ref().unwrap().points.clone();
    let view = h.state().curate.map.last_view.expect("drawn once");
    let (c, r) = (view.rect.center(), view.rect.size() * 0.45);
    // A concave, self-crossing lasso (a bow tie) with Alt held, then a pentagon with the
    // toolbar's Lasso toggle and no key: each picks exactly the points inside it.
    let bow_tie = [
        (-1.0, -1.0),
        (1.0, 1.0),
        (1.0, -1.0),
        (-0.2, 0.1),
        (-1.0, 1.0),
        (-1.0, -0.9),
    ];
    let pentagon: Vec<(f32, f32)> = (0..6)
        .map(|k| {
            let a = k as f32 * std::f32::consts::TAU / 5.0;
            (a.cos(), a.sin())
        })
        .collect();
    for (shape, modifiers) in [
        (&bow_tie[..], egui::Modifiers::ALT),
        (&pentagon[..], egui::Modifiers::NONE),
    ] {
        if modifiers.is_none() {
            h.get_by_label("Lasso").click_accesskit();
            h.run();
            assert!(h.state().curate.map.lasso_mode);
        }
        let path: Vec<egui::Pos2> = shape.iter().map(|&(x, y)| c + egui::vec2(x * r.x, y * r.y)).collect();
        let (drawn, view) = drag_through(&mut h, &path, modifiers);
        let drawn = drawn.expect("a lasso while dragging");
        assert!(h.state().curate.map.lasso.is_none(), "the lasso closes when let go");
        // The lasso drawn is the pointer's path.
        let poly: Vec<[f32; 2]> = path.iter().map(|p| view.to_map(*p)).collect();
        assert_eq!(drawn.len(), poly.len(), "{drawn:?} {poly:?}");
        for (d, p) in drawn.iter().zip(&poly) {
            assert!(
                (view.to_screen(*d) - view.to_screen(*p)).length() < 0.5,
                "{drawn:?} {poly:?}"
            );
        }
        let poly = drawn;
        let want: std::collections::BTreeSet<String> = points_in_polygon(&points, &poly)
            .into_iter()
            .map(|j| snap.rows[j].key.clone())
            .collect();
        assert!(!want.is_empty() && want.len() < 60, "{}", want.len());
        assert_eq!(h.state().curate.picked.keys, want);
        h.get_by_label(&format!("{} selected", want.len()));
    }
    // The density layer: binned into a texture once the toggle is on.
    assert!(h.state().curate.map.density_texture.is_none());
    h.get_by_label("Density").click_accesskit();
    h.run();
    let st = &h.state().curate.map;
    assert!(st.density && st.density_texture.is_some());
}

/// Stores a second embedder's vectors for the first `n` questions (points on a circle, as a
/// model's vectors would be stored: unit length, little-endian f32) without a layout.
fn store_vectors(ws_dir: &std::path::Path, embedder: &str, n: usize) {
    let ws = s1_studio::workspace::Workspace::open(ws_dir).unwrap();
    let keys: Vec<String> = ws
        .conn
        .prepare("SELECT key FROM questions ORDER BY id LIMIT ?1")
        .unwrap()
        .query_map([n as i64], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (i, k) in keys.iter().enumerate() {
        let a = i as f32 / n as f32 * 6.0;
        let blob: Vec<u8> = [a.cos(), a.sin()].iter().flat_map(|x| x.to_le_bytes()).collect();
        ws.conn
            .execute(
                "INSERT INTO embeddings (key, embedder, dim, vec) VALUES (?1, ?2, 2, ?3)",
                (k, embedder, blob),
            )
            .unwrap();
    }
}

#[test]
fn the_map_switches_between_stored_embedders() {
    let dir = tempfile::tempdir().unwrap();
    let ws_dir = workspace(dir.path());
    let model = "model-fake.gguf-t256";
    // A model's vectors for 40 of the 60 questions, not laid out yet.
    store_vectors(&ws_dir, model, 40);
    let s = Settings {
        view: s1_studio::ui::settings::View::Curate,
        workspace: Some(ws_dir),
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
    let shown = |h: &egui_kittest::Harness<'static, StudioApp>| {
        let m = h.state().curate.snapshot.as_ref().unwrap().map.clone().unwrap();
        (m.embedder, m.points)
    };
    let (tfidf, before) = shown(&h);
    assert_eq!(tfidf, "tfidf-hash-256-s0");
    assert_eq!(h.state().curate.map.derived.as_ref().unwrap().placed, 60);

    // The switch lists both with their question counts; the model's is laid out when chosen
    // (on the curation thread) and then drawn.
    h.get_by_label("Embedder").click_accesskit();
    h.run();
    h.get_by_label(&format!("{model} · 40 questions (not laid out)"))
        .click();
    step_until(
        &mut h,
        Duration::from_secs(60),
        |_| {},
        |a| {
            !a.curate.is_running()
                && a.curate
                    .snapshot
                    .as_ref()
                    .and_then(|s| s.map.as_ref())
                    .map(|m| m.embedder.as_str())
                    == Some(model)
        },
    );
    h.run();
    let (_, after) = shown(&h);
    let d = h.state().curate.map.derived.as_ref().expect("drawn");
    assert_eq!(d.placed, 40, "the model's layout places its 40 questions");
    assert!(after[40..].iter().all(|p| p[0].is_nan()));
    assert_ne!(&after[..40], &before[..40], "another layout, other positions");
    // The 20 questions without a model vector do not switch the map back to TF-IDF.
    assert!(!h.state().curate.is_running());
    h.get_by_label(&format!("layout of {model}"));

    // Back to TF-IDF: its stored layout, as it was.
    h.get_by_label("Embedder").click_accesskit();
    h.run();
    h.get_by_label(&format!("{tfidf} · 60 questions")).click();
    step_until(
        &mut h,
        Duration::from_secs(60),
        |_| {},
        |a| {
            !a.curate.is_running()
                && a.curate
                    .snapshot
                    .as_ref()
                    .and_then(|s| s.map.as_ref())
                    .map(|m| m.embedder.as_str())
                    == Some(tfidf.as_str())
        },
    );
    h.run();
    assert_eq!(shown(&h).1, before);
    assert_eq!(h.state().curate.map.derived.as_ref().unwrap().placed, 60);
    let listed = &h.state().curate.snapshot.as_ref().unwrap().embedders;
    let names: Vec<&str> = listed.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, [model, tfidf.as_str()]);
    assert_eq!(
        (listed[0].layout, listed[0].shown, listed[1].layout, listed[1].shown),
        (Some((40, 0)), false, Some((60, 0)), true)
    );
}

#[test]
fn the_loaded_model_embeds_without_loading_again() {
    let dir = tempfile::tempdir().unwrap();
    let ws_dir = workspace(dir.path());
    let s = Settings {
        view: s1_studio::ui::settings::View::Curate,
        workspace: Some(ws_dir),
        ..Default::default()
    };
    let mut h = harness(app(s));
    let model = common::smollm2_gguf();
    h.state().command(s1_studio::ui::ChatCommand::OpenModel(model.clone()));
    step_until(
        &mut h,
        Duration::from_secs(60),
        |_| {},
        |a| {
            matches!(a.model, s1_studio::ui::ModelStatus::Loaded(_))
                && a.curate.snapshot.is_some()
                && !a.curate.is_running()
        },
    );
    h.run();
    // Step 6 with the Chat's model: the step shares its weights instead of loading a copy.
    h.state_mut().settings.curate.map_embedder = s1_studio::ui::curate_form::MapVectors::LoadedModel;
    h.run();
    h.get_by_label("Draw the map").click_accesskit();
    step_until(
        &mut h,
        Duration::from_secs(120),
        |_| {},
        |a| !a.curate.is_running() && a.curate.results.contains_key("Draw the map"),
    );
    let log = h.state().curate.log.join("\n");
    assert!(
        log.contains("embedder model-SmolLM2-135M-Instruct.Q4_1.gguf-t256: 60 questions embedded, 0 had a vector (by the model already loaded, shared)"),
        "{log}"
    );
    let snap = h.state().curate.snapshot.as_ref().unwrap();
    assert_eq!(
        snap.map.as_ref().unwrap().embedder,
        "model-SmolLM2-135M-Instruct.Q4_1.gguf-t256"
    );
    assert_eq!(snap.embedders.len(), 2);
}
