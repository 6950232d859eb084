//! The Curate view: the steps of the s1 funnel on the left (each a job with progress and Stop),
//! the funnel's counts, the domain and trace-length histograms and the pool table in the middle
//! (virtualised: only visible rows are laid out, so 60,000 rows scroll smoothly), and the sample
//! inspector on the right with include/exclude by hand.

use eframe::egui::{self, RichText};
use egui_plot::{Bar, BarChart, Plot};

use std::path::Path;

use super::command::{CommandSender, CurateCommand, CuratePath};
use super::curate_state::{CurateForm, CurateState, RowFilter, SortBy};
use super::device_picker_ui::device_picker_ui;
use crate::curate::classify;
use crate::curate::quality::Rule;
use crate::curate::selection::Method;
use crate::jobs::CurateRequest;
use crate::workspace::Manual;

fn field(ui: &mut egui::Ui, label: &str, value: &mut String, hint: &str) -> bool {
    ui.horizontal(|ui| {
        let l = ui.label(label);
        ui.add(egui::TextEdit::singleline(value).desired_width(200.0))
            .labelled_by(l.id)
            .on_hover_text(hint)
            .changed()
    })
    .inner
}

/// What the Curate view draws and edits.
pub struct CurateView<'a> {
    pub state: &'a mut CurateState,
    pub form: &'a mut CurateForm,
    pub workspace: Option<&'a Path>,
    pub devices: &'a [crate::model::device::DeviceInfo],
    pub tx: &'a CommandSender,
}

fn steps_ui(ui: &mut egui::Ui, v: &mut CurateView<'_>) {
    let running = v.state.is_running();
    let mut req: Option<CurateRequest> = None;
    let mut pick: Option<CuratePath> = None;
    if v.workspace.is_none() {
        ui.label("Choose a workspace folder (top bar): the pool and every annotation are kept there.");
        return;
    }
    ui.add_enabled_ui(!running, |ui| {
        ui.heading("1. Pool");
        let empty = v.state.snapshot.as_ref().is_none_or(|s| s.rows.is_empty());
        if empty {
            ui.label("No questions yet. Start with the sample pool (AIME 1983-2023, OlympiadBench, MATH test) or import a file.");
        }
        if ui
            .button("Use the sample pool")
            .on_hover_text("6,150 competition questions with reference solutions (MIT), from assets/")
            .clicked()
        {
            req = Some(CurateRequest::ImportSample);
        }
        let f = &mut *v.form;
        ui.horizontal(|ui| {
            field(ui, "File", &mut f.import_path, "JSONL, JSON or Parquet (Hugging Face datasets files too)");
            if ui.button("Browse…").clicked() {
                pick = Some(CuratePath::Import);
            }
        });
        field(ui, "Columns", &mut f.mapping, "optional field=column overrides, e.g. question=prompt,solution=output");
        if ui.button("Import").clicked() {
            if f.import_path.trim().is_empty() {
                v.state.error = Some("give a file to import".into());
            } else {
                let mapping = (!f.mapping.trim().is_empty()).then(|| f.mapping.trim().to_string());
                req = Some(CurateRequest::Import {
                    files: vec![f.import_path.trim().into()],
                    mapping,
                });
            }
        }

        ui.separator();
        ui.heading("2. Traces");
        let f = &mut *v.form;
        ui.horizontal(|ui| {
            field(ui, "Tokenizer", &mut f.tokenizer, "tokenizer.json (or its folder) for trace lengths, e.g. Qwen's");
            if ui.button("Browse…").clicked() {
                pick = Some(CuratePath::Tokenizer);
            }
        });
        ui.horizontal(|ui| {
            if ui
                .button("Solutions as traces")
                .on_hover_text("Stand-ins where no reasoning model is at hand: each reference solution becomes the trace")
                .clicked()
            {
                req = Some(CurateRequest::TracesFromColumn {
                    column: "solution".into(),
                    tokenizer: f.tokenizer(),
                });
            }
            if ui.button("Measure lengths").clicked() {
                match f.tokenizer() {
                    Some(t) => req = Some(CurateRequest::MeasureTraces { tokenizer: t }),
                    None => v.state.error = Some("choose a tokenizer first".into()),
                }
            }
        });

        ui.separator();
        ui.heading("3. Quality");
        let hits: Vec<Option<usize>> = Rule::ALL
            .iter()
            .map(|r| {
                v.state
                    .snapshot
                    .as_ref()
                    .filter(|s| s.rules_ran)
                    .and_then(|s| s.rules.iter().find(|c| c.rule == *r).map(|c| c.hits))
            })
            .collect();
        let f = &mut *v.form;
        for (r, n) in Rule::ALL.into_iter().zip(hits) {
            let mut on = !f.rules_off.iter().any(|o| o == r.name());
            let text = match n {
                Some(n) => format!("{} ({n})", r.describe()),
                None => r.describe().to_string(),
            };
            if ui.checkbox(&mut on, text).changed() {
                f.rules_off.retain(|o| o != r.name());
                if !on {
                    f.rules_off.push(r.name().to_string());
                }
            }
        }
        field(ui, "Required", &mut f.require, "fields the missing-field rule requires: solution, answer, trace, attempt");
        if ui.button("Run rules").clicked() {
            req = Some(f.rules_request());
        }
        field(
            ui,
            "Eval files",
            &mut f.eval_files,
            "more evaluation sets to decontaminate against (comma-separated JSONL/JSON/Parquet paths, e.g. GPQA Diamond)",
        );
        ui.checkbox(&mut f.cross_source, "Check each source against earlier sources")
            .on_hover_text("s1's collect_data.py: a source's questions join the test set before the next source (in import order) is checked");
        if ui
            .button("Decontaminate")
            .on_hover_text("word 8-grams against MATH500, AIME24/25, AMC23, GSM8K and the files above; AIME after 2022")
            .clicked()
        {
            req = Some(CurateRequest::Decontam {
                extra: f.eval_files(),
                cross_source: f.cross_source,
            });
        }

        ui.separator();
        ui.heading("4. Models");
        let f = &mut *v.form;
        ui.horizontal(|ui| {
            ui.radio_value(&mut f.use_local, false, "Endpoint");
            ui.radio_value(&mut f.use_local, true, "Local model");
        });
        if f.use_local {
            field(ui, "Model path", &mut f.local_model, "a Hugging Face folder or a .gguf, run through the engine");
            ui.add(egui::Slider::new(&mut f.batch, 1..=32).text("batch"));
            device_picker_ui(ui, "curate", &mut f.device, v.devices);
        } else {
            field(ui, "URL", &mut f.endpoint, "OpenAI-compatible base URL (vLLM, a cloud API); key from S1_API_KEY");
            field(ui, "Model", &mut f.endpoint_model, "the model name the endpoint serves");
            ui.add(egui::Slider::new(&mut f.concurrency, 1..=64).text("in flight"));
        }
        egui::CollapsingHeader::new("LLM judge for attempts").show(ui, |ui| {
            field(ui, "Judge URL", &mut f.judge_endpoint, "empty: attempts are graded offline");
            field(ui, "Judge model", &mut f.judge_model, "s1's protocol: the reply ends with Yes or No");
        });
        let judge = f.judge();
        let ep = f.model();
        let max_tokens = f.max_tokens;
        let tok = f.tokenizer();
        ui.horizontal(|ui| {
            for (label, which) in [("Traces", 0), ("Attempts", 1), ("Domains", 2)] {
                if ui.button(label).clicked() {
                    match &ep {
                        Ok(e) => {
                            req = Some(match which {
                                0 => CurateRequest::TracesByModel {
                                    model: e.clone(),
                                    tokenizer: tok.clone(),
                                    max_tokens,
                                },
                                1 => match &judge {
                                    Ok(j) => CurateRequest::Attempts {
                                        model: e.clone(),
                                        max_tokens,
                                        judge: j.clone(),
                                    },
                                    Err(m) => {
                                        v.state.error = Some(m.clone());
                                        return;
                                    }
                                },
                                _ => CurateRequest::DomainsByModel { model: e.clone() },
                            })
                        }
                        Err(e) => v.state.error = Some(e.clone()),
                    }
                }
            }
        });
        if ui
            .button("Domains from subjects")
            .on_hover_text("MATH's `type` / OlympiadBench's `subfield` mapped to MSC codes: a rough stand-in, not s1's classifier")
            .clicked()
        {
            req = Some(CurateRequest::DomainsFromSubjects);
        }

        ui.separator();
        ui.heading("5. Select and export");
        let f = &mut *v.form;
        ui.horizontal(|ui| {
            egui::ComboBox::from_id_salt("method")
                .selected_text(f.method.name())
                .width(70.0)
                .show_ui(ui, |ui| {
                    for m in [Method::S1, Method::Random, Method::Diverse, Method::Longest] {
                        ui.selectable_value(&mut f.method, m, m.name());
                    }
                })
                .response
                .on_hover_text("s1's sampler, or an ablation set: 1K-random, 1K-diverse, 1K-longest");
            ui.add(egui::DragValue::new(&mut f.seed).prefix("seed "));
            ui.add(egui::DragValue::new(&mut f.target).range(1..=100_000).prefix("target "));
            if ui.button("Select").clicked() {
                req = Some(f.select_request());
            }
        });
        ui.horizontal(|ui| {
            field(ui, "Export to", &mut f.export_path, "path without extension: .jsonl and .parquet are written");
            if ui.button("Browse…").clicked() {
                pick = Some(CuratePath::Export);
            }
        });
        if ui.button("Export").clicked() {
            match f.export_request() {
                Ok(r) => req = Some(r),
                Err(e) => v.state.error = Some(e),
            }
        }
    });
    if let Some(p) = pick {
        v.tx.send(CurateCommand::PickPath(p));
    }
    if let Some(r) = req {
        v.tx.send(CurateCommand::Start(Box::new(r)));
    }
    ui.separator();
    if let Some(label) = v.state.running {
        ui.horizontal(|ui| {
            ui.spinner();
            let (d, t) = v.state.progress;
            if t > 0 {
                ui.add(
                    egui::ProgressBar::new(d as f32 / t as f32)
                        .desired_width(140.0)
                        .text(format!("{d}/{t}")),
                );
            }
            ui.label(format!("Running: {label}"));
            if ui.button("Stop").clicked() {
                v.tx.send(CurateCommand::Stop);
            }
        });
    }
    if let Some(e) = &v.state.error {
        ui.colored_label(ui.visuals().error_fg_color, e);
    }
    egui::CollapsingHeader::new("Log").default_open(true).show(ui, |ui| {
        for l in v.state.log.iter().rev().take(12) {
            ui.weak(l);
        }
    });
}

fn funnel_ui(ui: &mut egui::Ui, c: &mut CurateState) {
    let Some(s) = &c.snapshot else {
        ui.weak("Reading the workspace…");
        return;
    };
    let mut filter = None;
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            ui.strong("Funnel");
            egui::Grid::new("funnel").striped(true).show(ui, |ui| {
                for (i, st) in s.stages.iter().enumerate() {
                    ui.label(&st.name);
                    ui.label(RichText::new(st.kept.to_string()).strong());
                    if st.dropped > 0 && i >= 2 && st.name != "selected" {
                        if ui
                            .link(format!("-{}", st.dropped))
                            .on_hover_text("show the questions it dropped")
                            .clicked()
                        {
                            filter = Some(RowFilter::DroppedAt(i as u8));
                        }
                    } else {
                        ui.weak(format!("-{}", st.dropped));
                    }
                    ui.weak(&st.note);
                    ui.end_row();
                }
            });
        });
        ui.vertical(|ui| {
            ui.strong("Domains (passed)");
            let bars: Vec<Bar> = s
                .domains
                .iter()
                .take(24)
                .enumerate()
                .map(|(i, (d, n))| {
                    Bar::new(i as f64, *n as f64).name(format!("{d} {}", classify::title(d).unwrap_or("")))
                })
                .collect();
            Plot::new("domains")
                .height(150.0)
                .width(260.0)
                .show_axes([false, true])
                .show(ui, |p| p.bar_chart(BarChart::new("domains", bars)));
            ui.strong(format!("Trace length (passed, bins of {})", s.bin));
            let bars: Vec<Bar> = s
                .lengths
                .iter()
                .map(|(lo, n)| Bar::new(*lo as f64 + s.bin as f64 / 2.0, *n as f64).width(s.bin as f64 * 0.9))
                .collect();
            Plot::new("lengths")
                .height(110.0)
                .width(260.0)
                .show(ui, |p| p.bar_chart(BarChart::new("tokens", bars)));
        });
    });
    if let Some(f) = filter {
        c.filter = f;
    }
}

fn stage_name(c: &CurateState, at: Option<u8>) -> String {
    match (at, &c.snapshot) {
        (None, _) => "passed".into(),
        (Some(i), Some(s)) => s.stages.get(i as usize).map(|s| s.name.clone()).unwrap_or_default(),
        _ => String::new(),
    }
}

fn table_ui(ui: &mut egui::Ui, v: &mut CurateView<'_>) {
    let st = &mut *v.state;
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
        v.tx.send(CurateCommand::Inspect(k));
    }
}

fn inspector_ui(ui: &mut egui::Ui, v: &mut CurateView<'_>) {
    let Some(d) = v.state.detail.clone() else {
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
            v.tx.send(CurateCommand::Mark(d.key.clone(), Some(Manual::Include)));
        }
        if ui.button("Exclude").clicked() {
            v.tx.send(CurateCommand::Mark(d.key.clone(), Some(Manual::Exclude)));
        }
        if d.manual.is_some() && ui.button("Clear").clicked() {
            v.tx.send(CurateCommand::Mark(d.key.clone(), None));
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

pub fn curate_view_ui(ui: &mut egui::Ui, mut v: CurateView<'_>) {
    egui::Panel::left("curate-steps")
        .resizable(true)
        .default_size(340.0)
        .show(ui, |ui| {
            egui::ScrollArea::vertical()
                .id_salt("curate-steps-scroll")
                .show(ui, |ui| steps_ui(ui, &mut v));
        });
    if v.state.detail.is_some() {
        egui::Panel::right("curate-inspector")
            .resizable(true)
            .default_size(380.0)
            .show(ui, |ui| inspector_ui(ui, &mut v));
    }
    egui::CentralPanel::default().show(ui, |ui| {
        funnel_ui(ui, v.state);
        ui.separator();
        table_ui(ui, &mut v);
    });
}
