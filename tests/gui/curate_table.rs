//! The Curate view's table and steps at a laptop's size (1000x700), driven through egui_kittest:
//! the inspector closes (its button, Esc) and reopens (a row's click, its toggle), giving the
//! table its width back; the columns stay under their headers whatever a row holds (selected by
//! the sampler, picked, marked by hand); a click anywhere on a row picks it; Ctrl-click and
//! Shift-click pick several, and the bulk marks change them all; a step's result shows beside
//! its button and in the status bar; an import lists a malformed file and imports the others.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::gui::{app, step_until};
use egui::accesskit::Role;
use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::Harness;
use s1_studio::ui::settings::View;
use s1_studio::ui::{Settings, StudioApp};
use s1_studio::workspace::Manual;

const W: f32 = 1000.0;
const H: f32 = 700.0;
const HEADERS: [&str; 7] = ["±", "key", "source", "tokens", "domain", "stage", "question"];

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(rel)
}

/// Runs `s1-studio curate --workspace WS ARGS...`.
fn cli(ws: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_s1-studio"))
        .arg("curate")
        .arg("--workspace")
        .arg(ws)
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "curate {args:?} failed:\n{text}");
    text
}

/// A workspace with the 675 OlympiadBench questions (stand-in traces, rules, subject domains
/// and a 200-question selection with `select`).
fn workspace(dir: &Path, select: bool) -> PathBuf {
    let ws = dir.join("ws");
    let pool = shared("pool/olympiadbench_en_comp_675.jsonl");
    assert!(pool.exists(), "this test needs {}", pool.display());
    cli(&ws, &["import", pool.to_str().unwrap()]);
    if select {
        let tok = common::qwen_tokenizer();
        cli(
            &ws,
            &[
                "traces",
                "--from-column",
                "solution",
                "--tokenizer",
                tok.to_str().unwrap(),
            ],
        );
        cli(&ws, &["rules"]);
        cli(&ws, &["classify", "--from-subject"]);
        cli(&ws, &["select", "--target", "200", "--seed", "5"]);
    }
    ws
}

/// The studio on `ws`'s Curate view in a 1000x700 window, once the pool is read.
fn laptop(ws: PathBuf, s: impl FnOnce(&mut Settings)) -> Harness<'static, StudioApp> {
    let mut settings = Settings {
        view: View::Curate,
        workspace: Some(ws),
        ..Default::default()
    };
    s(&mut settings);
    let mut h = Harness::<StudioApp>::builder()
        .with_size(egui::vec2(W, H))
        .build_ui_state(|ui, app: &mut StudioApp| app.show(ui), app(settings));
    idle(&mut h);
    h
}

fn idle(h: &mut Harness<'static, StudioApp>) {
    step_until(
        h,
        Duration::from_secs(120),
        |_| {},
        |a| a.curate.snapshot.is_some() && !a.curate.is_running(),
    );
    h.run();
}

/// The keys of the first `n` rows as the table shows them.
fn shown_keys(h: &Harness<'static, StudioApp>, n: usize) -> Vec<String> {
    let c = &h.state().curate;
    let s = c.snapshot.as_ref().unwrap();
    c.visible.iter().take(n).map(|&i| s.rows[i].key.clone()).collect()
}

fn row(h: &Harness<'static, StudioApp>, key: &str) -> egui::Rect {
    h.get_by_label(&format!("row {key}")).rect()
}

/// Rows drawn inside the window (the table's rows are laid out only where they show).
fn rows_in_sight(h: &Harness<'static, StudioApp>) -> usize {
    h.query_all_by_role(Role::Row)
        .filter(|n| n.rect().max.y <= H && n.rect().min.y >= 0.0)
        .count()
}

/// Headers whose column lies wholly left of `right`.
fn columns_in_sight(h: &Harness<'static, StudioApp>, right: f32) -> usize {
    HEADERS
        .iter()
        .filter(|name| h.get_by_label(name).rect().max.x <= right + 0.5)
        .count()
}

fn inspect(h: &mut Harness<'static, StudioApp>, key: &str) {
    step_until(
        h,
        Duration::from_secs(30),
        |_| {},
        |a| a.curate.detail.as_ref().is_some_and(|d| d.key == key),
    );
    h.run();
}

/// At 1000x700 the inspector leaves the table a few columns; closed (its button, Esc), the table
/// takes the whole width and shows every column and many rows; a row's click and the toggle
/// open it again; its edge can be dragged.
#[test]
fn the_inspector_closes_and_gives_the_table_its_width() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = laptop(workspace(dir.path(), false), |_| {});
    assert!(
        h.query_by_label("Close inspector").is_none(),
        "no inspector before a click"
    );
    let all = columns_in_sight(&h, W);
    assert_eq!(all, HEADERS.len(), "every column at 1000 wide without the inspector");
    let rows = rows_in_sight(&h);
    assert!(rows >= 10, "{rows} rows in sight at 1000x700");

    let key = shown_keys(&h, 1).remove(0);
    h.get_by_label(&key).click();
    // The row's detail comes from the curation thread: inspect() waits for it (a
    // settling run here would race with its arrival).
    h.step();
    inspect(&mut h, &key);
    assert!(h.state().curate.inspector_open);
    let inspector_left = h.get_by_label_contains("source: ").rect().min.x;
    let squeezed = columns_in_sight(&h, inspector_left);
    assert!(squeezed < all, "{squeezed} columns beside the inspector");

    // Its close button.
    h.get_by_label("Close inspector").click();
    h.run();
    assert!(!h.state().curate.inspector_open);
    assert!(h.query_by_label("Close inspector").is_none());
    assert_eq!(columns_in_sight(&h, W), all);
    // As many as at first, less the picked row's bar.
    assert!(
        rows_in_sight(&h) >= rows - 2,
        "{} rows after closing",
        rows_in_sight(&h)
    );
    // The toggle opens it again (the question stays the one clicked), Esc closes it.
    h.get_by_label("Inspector").click();
    h.run();
    assert!(h.query_by_label("Close inspector").is_some());
    h.key_press(egui::Key::Escape);
    h.run();
    assert!(h.query_by_label("Close inspector").is_none());
    assert_eq!(columns_in_sight(&h, W), all);
    // A row's click opens it.
    let other = shown_keys(&h, 3).remove(2);
    h.get_by_label(&format!("row {other}")).click();
    // The row's detail comes from the curation thread: inspect() waits for it (a
    // settling run here would race with its arrival).
    h.step();
    inspect(&mut h, &other);
    assert!(h.query_by_label("Close inspector").is_some());
    // Resizable: a wider inspector leaves the table fewer columns still.
    let before = h.get_by_label_contains("source: ").rect().min.x;
    let edge = egui::pos2(before - 8.0 - 1.0, 300.0);
    for pos in [edge, edge + egui::vec2(-1.0, 0.0)] {
        h.event(egui::Event::PointerMoved(pos));
        h.step();
    }
    h.event(egui::Event::PointerButton {
        pos: edge,
        button: egui::PointerButton::Primary,
        pressed: true,
        modifiers: Default::default(),
    });
    h.step();
    for dx in [20.0, 60.0, 120.0] {
        h.event(egui::Event::PointerMoved(edge - egui::vec2(dx, 0.0)));
        h.step();
    }
    h.event(egui::Event::PointerButton {
        pos: edge - egui::vec2(120.0, 0.0),
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: Default::default(),
    });
    h.run();
    let after = h.get_by_label_contains("source: ").rect().min.x;
    assert!(
        after < before - 60.0,
        "the inspector's edge did not move: {before} -> {after}"
    );
}

/// Each cell of the first rows starts where its header starts (plus the cell's padding) and ends
/// before the next column, for rows selected by the sampler, picked or marked by hand alike.
fn assert_aligned(h: &Harness<'static, StudioApp>, keys: &[String]) {
    let c = &h.state().curate;
    let s = c.snapshot.as_ref().unwrap();
    let head: Vec<egui::Rect> = HEADERS
        .iter()
        .map(|n| {
            // "tokens v" when sorted by it.
            let sorted = [format!("{n} ^"), format!("{n} v")];
            h.query_by_label(n)
                .map(|x| x.rect())
                .or_else(|| sorted.iter().find_map(|l| h.query_by_label(l).map(|x| x.rect())))
                .unwrap_or_else(|| panic!("no header {n}"))
        })
        .collect();
    for w in head.windows(2) {
        assert!(
            (w[0].max.x - w[1].min.x).abs() < 0.5,
            "headers overlap or leave a gap: {head:?}"
        );
    }
    for key in keys {
        let r = s.rows.iter().find(|r| &r.key == key).unwrap();
        let y = row(h, key).center().y;
        let tokens = r.tokens.map(|t| t.to_string()).unwrap_or_else(|| "–".into());
        let texts = [
            (1, key.clone()),
            (2, r.source.clone()),
            (3, tokens),
            (4, r.domain.clone().unwrap_or_else(|| "–".into())),
        ];
        for (col, text) in texts {
            // The cell in this row with this text.
            let cell = h
                .query_all_by_label(&text)
                .map(|n| n.rect())
                .find(|rect| (rect.center().y - y).abs() < 5.0)
                .unwrap_or_else(|| panic!("no cell {text:?} in row {key}"));
            let x = head[col].min.x;
            assert!(
                (cell.min.x - (x + 4.0)).abs() < 0.5,
                "row {key} ({}): {:?} starts at {} under header {} at {x}",
                if r.selected { "selected" } else { "not selected" },
                text,
                cell.min.x,
                HEADERS[col]
            );
            assert!(cell.max.x <= head[col].max.x + 0.5, "{text:?} runs past its column");
        }
    }
}

/// Columns under their headers with rows selected by the sampler (the " (selected)" suffix used
/// to push them right), with a row picked, and with rows marked by hand.
#[test]
fn columns_stay_under_their_headers() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = laptop(workspace(dir.path(), true), |_| {});
    // The funnel folded away: more rows, the sampler's picks among the rest.
    h.get_by_label("Funnel and histograms").click();
    h.run();
    // The rows in sight, less those the picked rows' bar will push down.
    let keys = shown_keys(&h, rows_in_sight(&h) - 3);
    let s = h.state().curate.snapshot.clone().unwrap();
    let selected = keys
        .iter()
        .filter(|k| s.rows.iter().any(|r| &r.key == *k && r.selected))
        .count();
    assert!(
        selected > 0 && selected < keys.len(),
        "the first rows should mix selected and not: {selected}"
    );
    assert_aligned(&h, &keys);
    // Picked and inspected.
    h.get_by_label(&format!("row {}", keys[1])).click();
    // The row's detail comes from the curation thread: inspect() waits for it (a
    // settling run here would race with its arrival).
    h.step();
    inspect(&mut h, &keys[1]);
    h.get_by_label("Close inspector").click();
    h.run();
    assert_aligned(&h, &keys);
    // Marked by hand: the mark has its own column.
    h.get_by_label(&format!("row {}", keys[2]))
        .click_modifiers(egui::Modifiers::COMMAND);
    h.run_steps(8);
    h.get_by_label("Include selected").click();
    step_until(
        &mut h,
        Duration::from_secs(30),
        |_| {},
        |a| {
            let s = a.curate.snapshot.as_ref().unwrap();
            s.rows.iter().filter(|r| r.manual.is_some()).count() == 2
        },
    );
    h.run();
    assert_eq!(h.query_all_by_label("+").count(), 2);
    assert_aligned(&h, &keys);
}

/// A click anywhere on a row (here its middle, far from the key) picks it and opens it; Ctrl
/// adds a row, Shift picks a range in the order shown; the bulk Exclude marks every picked row,
/// stored in the workspace and shown in the table; Reset puts them back.
#[test]
fn whole_rows_click_and_several_are_marked_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let ws = workspace(dir.path(), false);
    let mut h = laptop(ws.clone(), |_| {});
    let keys = shown_keys(&h, 8);

    // The row's middle: the source and tokens columns, not the key's cell.
    let r = row(&h, &keys[0]);
    let key_cell = h.get_by_label(&keys[0]).rect();
    assert!(!key_cell.contains(r.center()));
    h.get_by_label(&format!("row {}", keys[0])).click();
    // The row's detail comes from the curation thread: inspect() waits for it (a
    // settling run here would race with its arrival).
    h.step();
    inspect(&mut h, &keys[0]);
    let picked =
        |h: &Harness<'static, StudioApp>| -> Vec<String> { h.state().curate.picked.keys.iter().cloned().collect() };
    assert_eq!(picked(&h), [keys[0].clone()]);
    assert!(h.state().curate.inspector_open);

    // Ctrl-click adds row 2; Shift-click ranges from it to row 5.
    h.get_by_label(&format!("row {}", keys[2]))
        .click_modifiers(egui::Modifiers::COMMAND);
    h.run_steps(8);
    let mut want = vec![keys[0].clone(), keys[2].clone()];
    want.sort();
    assert_eq!(picked(&h), want);
    h.get_by_label(&format!("row {}", keys[5]))
        .click_modifiers(egui::Modifiers::SHIFT);
    h.run_steps(8);
    let mut want: Vec<String> = keys[2..=5].to_vec();
    want.sort();
    assert_eq!(picked(&h), want);
    h.get_by_label("4 selected");

    h.get_by_label("Exclude selected").click();
    let excluded = |a: &StudioApp, want: Option<Manual>| {
        let s = a.curate.snapshot.as_ref().unwrap();
        keys[2..=5]
            .iter()
            .all(|k| s.rows.iter().any(|r| &r.key == k && r.manual == want))
    };
    step_until(
        &mut h,
        Duration::from_secs(30),
        |_| {},
        |a| excluded(a, Some(Manual::Exclude)),
    );
    h.run();
    let s = h.state().curate.snapshot.clone().unwrap();
    assert_eq!(
        s.rows.iter().filter(|r| r.manual.is_some()).count(),
        4,
        "only the picked rows"
    );
    assert_eq!(h.query_all_by_label("−").count(), 4, "the mark column shows them");
    // Said in the bar and in the status bar.
    assert_eq!(h.query_all_by_label_contains("done: 4 marked excluded").count(), 2);
    let c = rusqlite::Connection::open(ws.join("workspace.sqlite")).unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM questions WHERE manual = 'exclude'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(n, 4);

    h.get_by_label("Reset selected").click();
    step_until(&mut h, Duration::from_secs(30), |_| {}, |a| excluded(a, None));
    h.get_by_label("Select none").click();
    h.run();
    assert!(h.state().curate.picked.is_empty());
    assert!(h.query_by_label("Exclude selected").is_none());
}

/// The status bar's line (the app's notice).
fn notice(h: &Harness<'static, StudioApp>) -> String {
    h.state().notice.clone().unwrap_or_default()
}

/// Beside `button` (just under it, within its column): a line starting with `start`.
fn beside(h: &Harness<'static, StudioApp>, button: &str, start: &str) -> String {
    let b = h.get_by_label(button).rect();
    h.query_all_by_label_contains(start)
        .filter(|n| {
            let r = n.rect();
            r.min.y >= b.min.y - 2.0 && r.min.y < b.max.y + 60.0 && r.min.x < b.max.x + 300.0
        })
        .filter_map(|n| {
            let n = n.accesskit_node();
            n.label().or(n.value())
        })
        .find(|text| text.starts_with(start))
        .unwrap_or_else(|| panic!("no {start:?} beside {button}"))
}

/// A step's result shows beside its button and in the status bar: done with its count, or the
/// reason it failed; a refusal before the start (no tokenizer) too.
#[test]
fn a_step_result_shows_beside_its_button_and_in_the_status_bar() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("no-such-folder/out");
    let mut h = laptop(workspace(dir.path(), true), |s| {
        s.curate.export_path = out.display().to_string();
    });
    h.get_by_label("Domains from subjects").click_accesskit();
    h.step();
    idle(&mut h);
    let done = beside(&h, "Domains from subjects", "done: ");
    assert!(done.contains("domains stored"), "{done}");
    assert!(
        notice(&h).contains("Domains from subjects: done: ") && notice(&h).contains("domains stored"),
        "{}",
        notice(&h)
    );

    h.get_by_label("Measure lengths").click_accesskit();
    h.run();
    let refused = beside(&h, "Measure lengths", "failed: ");
    assert!(refused.contains("choose a tokenizer first"), "{refused}");

    // Run rules, then Select: the sampler's count.
    h.get_by_label("Run rules").click_accesskit();
    h.step();
    idle(&mut h);
    beside(&h, "Run rules", "done: ");
    h.get_by_label("Select").click_accesskit();
    h.step();
    idle(&mut h);
    let sel = beside(&h, "Select", "done: ");
    assert!(sel.ends_with(" selected"), "{sel}");
    assert!(notice(&h).contains(&sel), "{} vs {sel}", notice(&h));
    // Export into a folder that does not exist: the error beside Export and in the status bar.
    h.get_by_label("Export").click_accesskit();
    h.step();
    idle(&mut h);
    let failed = beside(&h, "Export", "failed: ");
    assert!(failed.contains("no-such-folder"), "{failed}");
    assert!(notice(&h).contains("Export: failed: "), "{}", notice(&h));
    // The earlier results stay beside their buttons.
    beside(&h, "Domains from subjects", "done: ");
}

/// Three files typed with a glob, the middle one malformed (JSON cut short): the two good ones
/// are imported, the bad one is listed with its path and problem beside Import, and the status
/// bar says there is a problem.
#[test]
fn a_malformed_file_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let q =
        |i: usize| serde_json::json!({"question": format!("What is {i} times {i}?"), "solution": format!("{}", i * i)});
    std::fs::write(data.join("a.jsonl"), format!("{}\n{}\n", q(1), q(2))).unwrap();
    let bad = data.join("b.json");
    std::fs::write(&bad, "[{\"question\": \"cut short").unwrap();
    std::fs::write(data.join("c.jsonl"), format!("{}\n", q(3))).unwrap();
    let mut h = laptop(dir.path().join("ws"), |s| {
        s.curate.import_path = format!("{}/*", data.display());
    });
    h.get_by_label("Import").click_accesskit();
    h.step();
    step_until(
        &mut h,
        Duration::from_secs(60),
        |_| {},
        |a| a.curate.results.contains_key("Import"),
    );
    idle(&mut h);
    assert_eq!(h.state().curate.snapshot.as_ref().unwrap().rows.len(), 3);
    let done = beside(&h, "Import", "done: ");
    assert!(
        done.contains("3 new questions from 2 files") && done.contains("1 not imported"),
        "{done}"
    );
    let text = beside(&h, "Import", &format!("{}: ", bad.display()));
    assert!(
        text.len() > bad.display().to_string().len() + 5,
        "the problem is said: {text}"
    );
    assert!(
        notice(&h).contains("1 problem listed beside the button"),
        "{}",
        notice(&h)
    );
    // The command line imports the good files too and fails, listing the bad one.
    let ws2 = dir.path().join("ws2");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_s1-studio"))
        .args(["curate", "--workspace"])
        .arg(&ws2)
        .arg("import")
        .arg(data.join("a.jsonl"))
        .arg(&bad)
        .arg(data.join("c.jsonl"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains(&format!("{}: not imported: ", bad.display())), "{text}");
    assert!(text.contains("pool: 3 questions"), "{text}");
}
