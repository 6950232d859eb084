//! The Curate view's pool table (virtualised: only visible rows are laid out, so 60,000 rows
//! scroll smoothly; the visible rows are computed in the logic step) and the sample inspector with
//! include/exclude by hand.

use eframe::egui;

use super::command::{CommandSender, CurateCommand};
use super::curate_state::{CurateState, RowFilter, SortBy};
use crate::curate::classify;
use crate::workspace::Manual;

fn stage_name(c: &CurateState, at: Option<u8>) -> String {
    match (at, &c.snapshot) {
        (None, _) => "passed".into(),
        (Some(i), Some(s)) => s.stages.get(i as usize).map(|s| s.name.clone()).unwrap_or_default(),
        _ => String::new(),
    }
}

/// The pool table: search, filter by stage, sort by column; a click opens the inspector.
pub fn pool_table_ui(ui: &mut egui::Ui, st: &mut CurateState, tx: &CommandSender) {
    ui.horizontal(|ui| {
        let l = ui.label("Search");
        ui.add(egui::TextEdit::singleline(&mut st.search).desired_width(220.0))
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
    });
    if st.visible_is_stale() {
        // The rows are recomputed in the next frame's logic step.
        ui.ctx().request_repaint();
    }
    let n = st.visible.len();
    let total = st.snapshot.as_ref().map(|s| s.rows.len()).unwrap_or(0);
    ui.weak(format!("{n} of {total} questions"));
    let widths = [150.0, 150.0, 60.0, 60.0, 170.0];
    ui.horizontal(|ui| {
        for (i, (name, by)) in [
            ("key", SortBy::Key),
            ("source", SortBy::Source),
            ("tokens", SortBy::Tokens),
            ("domain", SortBy::Domain),
            ("stage", SortBy::Stage),
            ("question", SortBy::Pool),
        ]
        .into_iter()
        .enumerate()
        {
            let arrow = if st.sort == by && by != SortBy::Pool {
                if st.descending {
                    " v"
                } else {
                    " ^"
                }
            } else {
                ""
            };
            let w = widths.get(i).copied().unwrap_or(300.0);
            if ui
                .add_sized([w, 18.0], egui::Button::new(format!("{name}{arrow}")).frame(false))
                .clicked()
            {
                if st.sort == by {
                    st.descending = !st.descending;
                } else {
                    st.sort = by;
                    st.descending = false;
                }
            }
        }
    });
    let row_h = 20.0;
    let mut clicked: Option<String> = None;
    egui::ScrollArea::vertical()
        .id_salt("pool-table")
        .auto_shrink([false, false])
        .show_rows(ui, row_h, n, |ui, range| {
            let Some(s) = &st.snapshot else { return };
            for vi in range {
                let r = &s.rows[st.visible[vi]];
                let sel = st.selected.as_deref() == Some(r.key.as_str());
                ui.horizontal(|ui| {
                    ui.set_height(row_h);
                    let mut key = r.key.clone();
                    if r.selected {
                        key.push_str(" (selected)");
                    }
                    if let Some(m) = r.manual {
                        key.push_str(if m == Manual::Include { " (+)" } else { " (-)" });
                    }
                    if ui
                        .add_sized([widths[0], row_h], egui::Button::selectable(sel, key))
                        .clicked()
                    {
                        clicked = Some(r.key.clone());
                    }
                    ui.add_sized([widths[1], row_h], egui::Label::new(&r.source).truncate());
                    ui.add_sized(
                        [widths[2], row_h],
                        egui::Label::new(r.tokens.map(|t| t.to_string()).unwrap_or_else(|| "–".into())),
                    );
                    ui.add_sized(
                        [widths[3], row_h],
                        egui::Label::new(r.domain.clone().unwrap_or_else(|| "–".into())),
                    );
                    let stage = match r.dropped_at {
                        None if r.selected => "selected".to_string(),
                        None => "passed".to_string(),
                        Some(i) => format!(
                            "out: {}",
                            s.stages.get(i as usize).map(|s| s.name.as_str()).unwrap_or("")
                        ),
                    };
                    ui.add_sized([widths[4], row_h], egui::Label::new(stage).truncate());
                    ui.add(egui::Label::new(&r.preview).truncate());
                });
            }
        });
    if let Some(k) = clicked {
        tx.send(CurateCommand::Inspect(k));
    }
}

/// One question in full, with Include / Exclude / Clear by hand.
pub fn inspector_ui(ui: &mut egui::Ui, c: &CurateState, tx: &CommandSender) {
    let Some(d) = c.detail.clone() else {
        ui.weak("Click a question to inspect it.");
        return;
    };
    ui.heading(&d.key);
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
