//! The Curate view's pool table (virtualised: only visible rows are laid out, so 60,000 rows
//! scroll smoothly; the visible rows are computed in the logic step), with whole-row clicks,
//! multi-select and the bulk marks, and the sample inspector with include/exclude by hand.

use eframe::egui;

use super::command::{CommandSender, CurateCommand};
use super::curate_pick::{ClickKind, StepResult};
use super::curate_state::{CurateState, RowFilter, SortBy, PICKED_BAR};
use crate::curate::classify;
use crate::curate::steps::report::thousands;
use crate::curate::steps::snapshot::{PoolRow, PoolSnapshot};
use crate::workspace::Manual;

fn stage_name(c: &CurateState, at: Option<u8>) -> String {
    match (at, &c.snapshot) {
        (None, _) => "passed".into(),
        (Some(i), Some(s)) => s.stages.get(i as usize).map(|s| s.name.clone()).unwrap_or_default(),
        _ => String::new(),
    }
}

/// The table's columns: header, width (the last takes the rest, at least this), sort.
const COLUMNS: [(&str, f32, SortBy); 7] = [
    ("±", 22.0, SortBy::Manual),
    ("key", 100.0, SortBy::Key),
    ("source", 120.0, SortBy::Source),
    ("tokens", 56.0, SortBy::Tokens),
    ("domain", 56.0, SortBy::Domain),
    ("stage", 110.0, SortBy::Stage),
    ("question", 160.0, SortBy::Pool),
];

const ROW_H: f32 = 20.0;
const PAD: f32 = 4.0;

/// The columns' x ranges from `left`, in a table `width` wide (the last column takes the rest).
fn column_spans(left: f32, width: f32) -> [egui::Rangef; 7] {
    let fixed: f32 = COLUMNS[..6].iter().map(|c| c.1).sum();
    let mut x = left;
    std::array::from_fn(|i| {
        let w = if i == 6 {
            (width - fixed).max(COLUMNS[6].1)
        } else {
            COLUMNS[i].1
        };
        let span = egui::Rangef::new(x, x + w);
        x += w;
        span
    })
}

/// The table's least width (every column at its least).
fn min_width() -> f32 {
    COLUMNS.iter().map(|c| c.1).sum()
}

/// A cell's text at its column's place in `row` (clipped to the column; not clickable, so a
/// click anywhere on the row is the row's).
fn cell(ui: &mut egui::Ui, row: egui::Rect, span: egui::Rangef, text: impl Into<egui::WidgetText>) -> egui::Response {
    let rect = egui::Rect::from_x_y_ranges(egui::Rangef::new(span.min + PAD, span.max - PAD), row.y_range());
    let mut child = ui.new_child(
        egui::UiBuilder::new()
            .max_rect(rect)
            .layout(egui::Layout::left_to_right(egui::Align::Center)),
    );
    child.set_clip_rect(rect.intersect(ui.clip_rect()));
    child.add(egui::Label::new(text).selectable(false).truncate())
}

/// The row's stage, as the stage column says it.
fn stage_text(r: &PoolRow, s: &PoolSnapshot) -> String {
    match r.dropped_at {
        None if r.selected => "selected".to_string(),
        None => "passed".to_string(),
        Some(i) => format!(
            "out: {}",
            s.stages.get(i as usize).map(|s| s.name.as_str()).unwrap_or("")
        ),
    }
}

/// The search, the stage filter and the inspector's toggle.
fn toolbar_ui(ui: &mut egui::Ui, st: &mut CurateState, tx: &CommandSender) {
    ui.horizontal(|ui| {
        let l = ui.label("Search");
        ui.add(egui::TextEdit::singleline(&mut st.search).desired_width(200.0))
            .labelled_by(l.id);
        let label = |f: RowFilter, st: &CurateState| match f {
            RowFilter::All => "all".to_string(),
            RowFilter::Passed => "passed".into(),
            RowFilter::DroppedAt(i) => format!("dropped: {}", stage_name(st, Some(i))),
            RowFilter::Selected => "selected".into(),
            RowFilter::Flagged => "flagged".into(),
            RowFilter::ByHand => "marked by hand".into(),
        };
        let current = label(st.filter, st);
        let mut choice = st.filter;
        let stages = st.snapshot.as_ref().map(|s| s.stages.len()).unwrap_or(0);
        egui::ComboBox::from_label("Show")
            .selected_text(current)
            .show_ui(ui, |ui| {
                for f in [
                    RowFilter::All,
                    RowFilter::Passed,
                    RowFilter::Selected,
                    RowFilter::Flagged,
                    RowFilter::ByHand,
                ]
                .into_iter()
                .chain((2..stages as u8).map(RowFilter::DroppedAt))
                {
                    let text = label(f, st);
                    ui.selectable_value(&mut choice, f, text);
                }
            });
        st.filter = choice;
        let mut open = st.inspector_open;
        if ui
            .add_enabled(st.selected.is_some(), egui::Button::selectable(open, "Inspector"))
            .on_hover_text("show or hide the question's details (Esc hides them)")
            .on_disabled_hover_text("click a row to inspect its question")
            .clicked()
        {
            open = !open;
            tx.send(CurateCommand::ShowInspector(open));
        }
    });
}

/// "N selected" with the bulk marks, when rows are picked.
pub fn picked_bar_ui(ui: &mut egui::Ui, st: &CurateState, tx: &CommandSender) {
    if st.picked.is_empty() {
        return;
    }
    ui.horizontal_wrapped(|ui| {
        ui.strong(format!("{} selected", thousands(st.picked.len())));
        let hint = "Ctrl-click (Cmd on macOS) adds or removes a row, Shift-click a range";
        for (label, manual, what) in [
            (
                "Include selected",
                Some(Manual::Include),
                "keep them whatever the filters say",
            ),
            (
                "Exclude selected",
                Some(Manual::Exclude),
                "drop them whatever the filters say",
            ),
            ("Reset selected", None, "back to the funnel's verdict"),
        ] {
            if ui.button(label).on_hover_text(what).clicked() {
                tx.send(CurateCommand::MarkPicked(manual));
            }
        }
        if ui.button("Select none").on_hover_text(hint).clicked() {
            tx.send(CurateCommand::PickNone);
        }
    });
    if let Some(r) = st.results.get(PICKED_BAR) {
        result_label(ui, r);
    }
}

/// A step's result: its line (in the error colour when it failed), then each problem.
pub fn result_label(ui: &mut egui::Ui, r: &StepResult) {
    let color = if r.failed {
        ui.visuals().error_fg_color
    } else {
        ui.visuals().weak_text_color()
    };
    ui.add(egui::Label::new(egui::RichText::new(&r.text).color(color)).wrap());
    for p in &r.problems {
        ui.add(egui::Label::new(egui::RichText::new(p).color(ui.visuals().warn_fg_color)).wrap());
    }
}

/// The pool table: search, filter by stage, sort by column (the headers). Columns keep their
/// places whatever a row holds; a click anywhere on a row picks it and opens it in the
/// inspector, Ctrl/Cmd-click and Shift-click pick several for the bulk marks.
pub fn pool_table_ui(ui: &mut egui::Ui, st: &mut CurateState, tx: &CommandSender) {
    toolbar_ui(ui, st, tx);
    picked_bar_ui(ui, st, tx);
    if st.visible_is_stale() {
        // The rows are recomputed in the next frame's logic step.
        ui.ctx().request_repaint();
    }
    let n = st.visible.len();
    let total = st.snapshot.as_ref().map(|s| s.rows.len()).unwrap_or(0);
    ui.weak(format!("{} of {} questions", thousands(n), thousands(total)));
    let mut clicked: Option<(String, ClickKind)> = None;
    egui::ScrollArea::horizontal()
        .id_salt("pool-table-h")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            let width = ui.available_width().max(min_width());
            // The header.
            let (head, _) = ui.allocate_exact_size(egui::vec2(width, ROW_H), egui::Sense::hover());
            let spans = column_spans(head.left(), width);
            for ((name, _, by), span) in COLUMNS.into_iter().zip(spans) {
                let arrow = match (st.sort == by && by != SortBy::Pool, st.descending) {
                    (true, true) => " v",
                    (true, false) => " ^",
                    _ => "",
                };
                let rect = egui::Rect::from_x_y_ranges(span, head.y_range());
                let b = ui
                    .put(
                        rect,
                        egui::Button::new(egui::RichText::new(format!("{name}{arrow}")).strong()).frame(false),
                    )
                    .on_hover_text(if by == SortBy::Manual {
                        "marked by hand: + included, − excluded (click to sort)"
                    } else {
                        "click to sort"
                    });
                if b.clicked() {
                    if st.sort == by {
                        st.descending = !st.descending;
                    } else {
                        st.sort = by;
                        st.descending = false;
                    }
                }
            }
            ui.separator();
            egui::ScrollArea::vertical()
                .id_salt("pool-table")
                .auto_shrink([false, false])
                .show_rows(ui, ROW_H, n, |ui, range| {
                    let Some(s) = &st.snapshot else { return };
                    for vi in range {
                        let Some(r) = st.visible.get(vi).and_then(|&i| s.rows.get(i)) else {
                            continue;
                        };
                        let (rect, resp) = ui.allocate_exact_size(egui::vec2(width, ROW_H), egui::Sense::click());
                        let picked = st.picked.contains(&r.key);
                        let inspected = st.selected.as_deref() == Some(r.key.as_str());
                        let v = ui.visuals();
                        let fill = if picked {
                            Some(v.selection.bg_fill)
                        } else if resp.hovered() {
                            Some(v.widgets.hovered.weak_bg_fill)
                        } else if vi % 2 == 1 {
                            Some(v.faint_bg_color)
                        } else {
                            None
                        };
                        if let Some(f) = fill {
                            ui.painter().rect_filled(rect, 0.0, f);
                        }
                        if inspected {
                            let stroke = egui::Stroke::new(1.0, v.selection.stroke.color);
                            ui.painter()
                                .rect_stroke(rect.shrink(0.5), 0.0, stroke, egui::StrokeKind::Inside);
                        }
                        let key = r.key.clone();
                        resp.widget_info(|| {
                            egui::WidgetInfo::selected(egui::accesskit::Role::Row, true, picked, format!("row {key}"))
                        });
                        let spans = column_spans(rect.left(), width);
                        let manual = match r.manual {
                            Some(Manual::Include) => "+",
                            Some(Manual::Exclude) => "−",
                            None => "",
                        };
                        cell(ui, rect, spans[0], manual);
                        cell(ui, rect, spans[1], r.key.as_str());
                        cell(ui, rect, spans[2], r.source.as_str());
                        cell(
                            ui,
                            rect,
                            spans[3],
                            r.tokens.map(|t| t.to_string()).unwrap_or_else(|| "–".into()),
                        );
                        cell(ui, rect, spans[4], r.domain.clone().unwrap_or_else(|| "–".into()));
                        cell(ui, rect, spans[5], stage_text(r, s));
                        cell(ui, rect, spans[6], r.preview.as_str());
                        if resp.clicked() {
                            let m = ui.input(|i| i.modifiers);
                            let how = ClickKind {
                                toggle: m.command,
                                range: m.shift,
                            };
                            clicked = Some((r.key.clone(), how));
                        }
                    }
                });
        });
    if let Some((key, how)) = clicked {
        tx.send(CurateCommand::ClickRow { key, how });
    }
}

/// One question in full, with Include / Exclude / Clear by hand.
pub fn inspector_ui(ui: &mut egui::Ui, c: &CurateState, tx: &CommandSender) {
    let Some(d) = c.detail.clone() else {
        ui.horizontal(|ui| {
            ui.weak("Reading the question…");
            if ui.button("Close inspector").clicked() {
                tx.send(CurateCommand::ShowInspector(false));
            }
        });
        return;
    };
    ui.horizontal(|ui| {
        // The button first (at the right), then the key in the width left, cut short if need be.
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui
                .button("Close inspector")
                .on_hover_text("the table takes the whole width (Esc; a row's click opens it again)")
                .clicked()
            {
                tx.send(CurateCommand::ShowInspector(false));
            }
            ui.with_layout(egui::Layout::left_to_right(egui::Align::Center), |ui| {
                ui.add(egui::Label::new(egui::RichText::new(&d.key).heading()).truncate());
            });
        });
    });
    ui.label(format!("source: {}", d.source));
    ui.horizontal(|ui| {
        let mark = match d.manual {
            Some(Manual::Include) => "included by hand",
            Some(Manual::Exclude) => "excluded by hand",
            None => "as the funnel decides",
        };
        ui.label(mark);
    });
    ui.horizontal(|ui| {
        if ui.button("Include").clicked() {
            tx.send(CurateCommand::Mark(d.key.clone(), Some(Manual::Include)));
        }
        if ui.button("Exclude").clicked() {
            tx.send(CurateCommand::Mark(d.key.clone(), Some(Manual::Exclude)));
        }
        if d.manual.is_some() && ui.button("Clear").clicked() {
            tx.send(CurateCommand::Mark(d.key.clone(), None));
        }
    });
    if !d.flags.is_empty() {
        ui.strong("Flags");
        for (rule, detail) in &d.flags {
            ui.label(format!(
                "{rule}{}",
                detail.as_ref().map(|x| format!(": {x}")).unwrap_or_default()
            ));
        }
    }
    if let Some(code) = &d.domain {
        ui.label(format!("domain: {code} {}", classify::title(code).unwrap_or("")));
    }
    egui::ScrollArea::vertical().id_salt("inspector").show(ui, |ui| {
        ui.strong("Question");
        ui.label(&d.question);
        if let Some(a) = &d.answer {
            ui.strong("Answer");
            ui.label(a);
        }
        if let Some(t) = &d.trace {
            ui.strong(format!(
                "Trace ({}, {} tokens{})",
                d.trace_origin.as_deref().unwrap_or("?"),
                d.trace_tokens
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "not measured".into()),
                match d.trace_correct {
                    Some(true) => ", its answer correct",
                    Some(false) => ", its answer wrong",
                    None => "",
                }
            ));
            ui.label(t);
        }
        if let Some(a) = &d.trace_attempt {
            ui.strong("Attempt (trace's answer)");
            ui.label(a);
        }
        for (model, verdict, grader, response) in &d.attempts {
            ui.strong(format!("Difficulty attempt by {model}: {verdict} ({grader})"));
            ui.label(response);
        }
        if let Some(s) = &d.solution {
            ui.strong("Reference solution");
            ui.label(s);
        }
    });
}
