//! The Curate view: the steps of the s1 funnel on the left (each a job with progress and Stop),
//! the funnel's counts, the domain and trace-length histograms and the pool table in the middle
//! (curate_table_ui.rs), and the sample inspector on the right with include/exclude by hand.

use eframe::egui::{self, RichText};
use egui_plot::{Bar, BarChart, Plot};

use std::path::Path;

use super::command::{CommandSender, CurateCommand, CuratePath};
use super::curate_state::{CurateForm, CurateState, RowFilter};
use super::curate_table_ui::{inspector_ui, pool_table_ui};
use super::device_picker_ui::device_picker_ui;
use crate::curate::classify;
use crate::curate::quality::Rule;
use crate::curate::rule_config::{RulesChange, RulesConfig};
use crate::curate::steps::annotate::GenOptions;
use crate::curate::steps::attempts::{self, Grader};
use crate::curate::steps::selection::Method;
use crate::curate::steps::{domains, traces, DomainSource, Step, TraceSource};

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

/// A typed path, given the focus when `which`'s dialog could not open (once).
fn path_field(
    ui: &mut egui::Ui,
    (label, hint): (&str, &str),
    value: &mut String,
    focus: &mut Option<CuratePath>,
    which: CuratePath,
) {
    let r = ui
        .horizontal(|ui| {
            let l = ui.label(label);
            ui.add(egui::TextEdit::singleline(value).desired_width(200.0))
                .labelled_by(l.id)
                .on_hover_text(hint)
        })
        .inner;
    if *focus == Some(which) {
        r.request_focus();
        *focus = None;
    }
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
    let mut req: Option<Step> = None;
    let mut pick: Option<CuratePath> = None;
    if v.workspace.is_none() {
        ui.label("Type a workspace folder in the top bar (Workspace folder, then Enter) or choose one: the pool and every annotation are kept there.");
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
            req = Some(Step::ImportSample);
        }
        let f = &mut *v.form;
        ui.horizontal(|ui| {
            path_field(
                ui,
                (
                    "Files",
                    "JSONL, JSON or Parquet (Hugging Face datasets files too); several separated by commas, and globs such as data/*.jsonl",
                ),
                &mut f.import_path,
                &mut v.state.focus,
                CuratePath::Import,
            );
            if ui.button("Browse…").clicked() {
                pick = Some(CuratePath::Import);
            }
        });
        field(ui, "Columns", &mut f.mapping, "optional field=column overrides, e.g. question=prompt,solution=output");
        if ui.button("Import").on_hover_text("Import every file named (each file's result is listed)").clicked() {
            v.tx.send(CurateCommand::ImportTyped);
        }

        ui.separator();
        ui.heading("2. Traces");
        let f = &mut *v.form;
        ui.horizontal(|ui| {
            path_field(
                ui,
                ("Tokenizer", "tokenizer.json (or its folder) for trace lengths, e.g. Qwen's"),
                &mut f.tokenizer,
                &mut v.state.focus,
                CuratePath::Tokenizer,
            );
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
                req = Some(Step::Traces {
                    from: TraceSource::Column("solution".into()),
                    tokenizer: f.tokenizer(),
                    remeasure: false,
                });
            }
            if ui.button("Measure lengths").clicked() {
                match f.tokenizer() {
                    Some(t) => {
                        req = Some(Step::Traces {
                            from: TraceSource::Existing,
                            tokenizer: Some(t),
                            remeasure: false,
                        })
                    }
                    None => v.state.error = Some("choose a tokenizer first".into()),
                }
            }
        });

        ui.separator();
        ui.heading("3. Quality");
        // Which rules are on and the required fields: as the workspace keeps them (the command
        // line's `curate rules` changes the same), changed through the curation job.
        let snap = v.state.snapshot.as_ref();
        for r in Rule::ALL {
            let count = snap.and_then(|s| s.rules.iter().find(|c| c.rule == r));
            let mut on = snap.is_none_or(|s| s.rules_config.enabled.contains(&r));
            let text = match count.filter(|_| snap.is_some_and(|s| s.rules_ran)) {
                Some(c) => format!("{} ({})", r.describe(), c.hits),
                None => r.describe().to_string(),
            };
            if ui.checkbox(&mut on, text).changed() {
                let (on, off) = if on { (vec![r], vec![]) } else { (vec![], vec![r]) };
                req = Some(Step::ConfigureRules(RulesChange {
                    on,
                    off,
                    ..Default::default()
                }));
            }
        }
        let mut require = match &v.state.require_edit {
            Some(t) => t.clone(),
            None => snap
                .map(|s| s.rules_config.required.clone())
                .unwrap_or_else(|| RulesConfig::default().required)
                .join(","),
        };
        if field(ui, "Required", &mut require, "fields the missing-field rule requires: solution, answer, trace, attempt") {
            v.state.require_edit = Some(require);
        }
        if ui.button("Run rules").clicked() {
            req = Some(v.state.rules_step());
        }
        let f = &mut *v.form;
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
            req = Some(Step::Decontam {
                eval: f.eval_files(),
                with_bundled: true,
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
                                0 => Step::Traces {
                                    from: TraceSource::Model {
                                        model: e.clone(),
                                        gen: GenOptions {
                                            max_tokens,
                                            ..traces::DEFAULT_GEN
                                        },
                                    },
                                    tokenizer: tok.clone(),
                                    remeasure: false,
                                },
                                1 => match &judge {
                                    Ok(j) => Step::Attempts {
                                        model: e.clone(),
                                        grader: j.clone().map_or(Grader::Offline, Grader::Judge),
                                        gen: GenOptions {
                                            max_tokens,
                                            ..attempts::DEFAULT_GEN
                                        },
                                    },
                                    Err(m) => {
                                        v.state.error = Some(m.clone());
                                        return;
                                    }
                                },
                                _ => Step::Domains(DomainSource::Model {
                                    model: e.clone(),
                                    gen: domains::DEFAULT_GEN,
                                    how: Default::default(),
                                    all: false,
                                }),
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
            req = Some(Step::Domains(DomainSource::Subjects));
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
            path_field(
                ui,
                ("Export to", "path without extension: .jsonl and .parquet are written"),
                &mut f.export_path,
                &mut v.state.focus,
                CuratePath::Export,
            );
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
            .show(ui, |ui| inspector_ui(ui, v.state, v.tx));
    }
    egui::CentralPanel::default().show(ui, |ui| {
        funnel_ui(ui, v.state);
        ui.separator();
        pool_table_ui(ui, v.state, v.tx);
    });
}
