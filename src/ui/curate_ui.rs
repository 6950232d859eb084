//! The Curate view: the steps of the s1 funnel on the left (each a job with progress and Stop),
//! the funnel's counts, the domain and trace-length histograms and the pool table in the middle
//! (curate_table_ui.rs), and the sample inspector on the right with include/exclude by hand.

use eframe::egui::{self, RichText};
use egui_plot::{Bar, BarChart, Plot};

use std::path::Path;

use super::command::{CommandSender, CurateCommand, CuratePath};
use super::curate_pick::StepResult;
use super::curate_state::{CurateForm, CurateState, RowFilter, IMPORT};
use super::curate_table_ui::{inspector_ui, pool_table_ui, result_label};
use super::device_picker_ui::device_picker_ui;
use crate::curate::classify;
use crate::curate::quality::Rule;
use crate::curate::rule_config::{RulesChange, RulesConfig};
use crate::curate::steps::annotate::GenOptions;
use crate::curate::steps::attempts::{self, Grader};
use crate::curate::steps::report::thousands;
use crate::curate::steps::selection::Method;
use crate::curate::steps::{domains, traces, DomainSource, Step, TraceSource};

fn field(ui: &mut egui::Ui, label: &str, value: &mut String, hint: &str) -> bool {
    ui.horizontal(|ui| {
        let l = ui.label(label);
        ui.add(egui::TextEdit::singleline(value).desired_width(180.0))
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
            ui.add(egui::TextEdit::singleline(value).desired_width(150.0))
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

/// A step's button: off while any step runs.
fn step_button(ui: &mut egui::Ui, running: bool, label: &str) -> egui::Response {
    ui.add_enabled(!running, egui::Button::new(label))
}

/// Under a step's button: while the step it started runs, a progress bar with its counts and
/// Stop; once it ended, its result ("done: 1,000 selected", or the error) and its problems.
fn step_status(ui: &mut egui::Ui, st: &CurateState, button: &'static str, tx: &CommandSender) {
    if st.running_from == Some(button) {
        ui.horizontal(|ui| {
            ui.spinner();
            let (d, t) = st.progress;
            let unit = st.progress_unit;
            let bar = if t > 0 {
                egui::ProgressBar::new(d as f32 / t as f32).text(format!("{} / {} {unit}", thousands(d), thousands(t)))
            } else {
                egui::ProgressBar::new(0.0)
                    .animate(true)
                    .text(format!("{} {unit}", thousands(d)))
            };
            ui.add(bar.desired_width(200.0));
            if ui.button("Stop").clicked() {
                tx.send(CurateCommand::Stop);
            }
        });
    } else if let Some(r) = st.results.get(button) {
        result_label(ui, r);
    }
}

/// A problem found before a step could start (no tokenizer, no model): said beside its button.
fn refuse(st: &mut CurateState, button: &'static str, message: String) {
    st.results.insert(button, StepResult::failed(&message, Vec::new()));
    st.error = Some(message);
}

fn steps_ui(ui: &mut egui::Ui, v: &mut CurateView<'_>) {
    let running = v.state.is_running();
    let mut req: Option<(Step, &'static str)> = None;
    let mut pick: Option<CuratePath> = None;
    if v.workspace.is_none() {
        ui.label("Type a workspace folder in the top bar (Workspace folder, then Enter) or choose one: the pool and every annotation are kept there.");
        return;
    }
    ui.heading("1. Pool");
    let empty = v.state.snapshot.as_ref().is_none_or(|s| s.rows.is_empty());
    if empty {
        ui.label(
            "No questions yet. Start with the sample pool (AIME 1983-2023, OlympiadBench, MATH test) or import a file.",
        );
    }
    const SAMPLE: &str = "Use the sample pool";
    if step_button(ui, running, SAMPLE)
        .on_hover_text("6,150 competition questions with reference solutions (MIT), from assets/")
        .clicked()
    {
        req = Some((Step::ImportSample, SAMPLE));
    }
    step_status(ui, v.state, SAMPLE, v.tx);
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
    field(
        ui,
        "Columns",
        &mut f.mapping,
        "optional field=column overrides, e.g. question=prompt,solution=output",
    );
    if step_button(ui, running, IMPORT)
        .on_hover_text("Import every file named; a file that cannot be imported is listed and the others are imported")
        .clicked()
    {
        v.tx.send(CurateCommand::ImportTyped);
    }
    step_status(ui, v.state, IMPORT, v.tx);

    ui.separator();
    ui.heading("2. Traces");
    let f = &mut *v.form;
    ui.horizontal(|ui| {
        path_field(
            ui,
            (
                "Tokenizer",
                "tokenizer.json (or its folder) for trace lengths, e.g. Qwen's",
            ),
            &mut f.tokenizer,
            &mut v.state.focus,
            CuratePath::Tokenizer,
        );
        if ui.button("Browse…").clicked() {
            pick = Some(CuratePath::Tokenizer);
        }
    });
    const COLUMN: &str = "Solutions as traces";
    const MEASURE: &str = "Measure lengths";
    let mut refused: Option<(&'static str, String)> = None;
    ui.horizontal(|ui| {
        if step_button(ui, running, COLUMN)
            .on_hover_text("Stand-ins where no reasoning model is at hand: each reference solution becomes the trace")
            .clicked()
        {
            req = Some((
                Step::Traces {
                    from: TraceSource::Column("solution".into()),
                    tokenizer: f.tokenizer(),
                    remeasure: false,
                },
                COLUMN,
            ));
        }
        if step_button(ui, running, MEASURE).clicked() {
            match f.tokenizer() {
                Some(t) => {
                    req = Some((
                        Step::Traces {
                            from: TraceSource::Existing,
                            tokenizer: Some(t),
                            remeasure: false,
                        },
                        MEASURE,
                    ))
                }
                None => refused = Some((MEASURE, "choose a tokenizer first".into())),
            }
        }
    });
    step_status(ui, v.state, COLUMN, v.tx);
    step_status(ui, v.state, MEASURE, v.tx);

    ui.separator();
    ui.heading("3. Quality");
    const RULES: &str = "Run rules";
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
        if ui.add_enabled(!running, egui::Checkbox::new(&mut on, text)).changed() {
            let (on, off) = if on { (vec![r], vec![]) } else { (vec![], vec![r]) };
            req = Some((
                Step::ConfigureRules(RulesChange {
                    on,
                    off,
                    ..Default::default()
                }),
                RULES,
            ));
        }
    }
    let mut require = match &v.state.require_edit {
        Some(t) => t.clone(),
        None => snap
            .map(|s| s.rules_config.required.clone())
            .unwrap_or_else(|| RulesConfig::default().required)
            .join(","),
    };
    if field(
        ui,
        "Required",
        &mut require,
        "fields the missing-field rule requires: solution, answer, trace, attempt",
    ) {
        v.state.require_edit = Some(require);
    }
    if step_button(ui, running, RULES).clicked() {
        req = Some((v.state.rules_step(), RULES));
    }
    step_status(ui, v.state, RULES, v.tx);
    let f = &mut *v.form;
    field(
        ui,
        "Eval files",
        &mut f.eval_files,
        "more evaluation sets to decontaminate against (comma-separated JSONL/JSON/Parquet paths, e.g. GPQA Diamond)",
    );
    ui.checkbox(&mut f.cross_source, "Check each source against earlier sources")
        .on_hover_text("s1's collect_data.py: a source's questions join the test set before the next source (in import order) is checked");
    const DECONTAM: &str = "Decontaminate";
    if step_button(ui, running, DECONTAM)
        .on_hover_text("word 8-grams against MATH500, AIME24/25, AMC23, GSM8K and the files above; AIME after 2022")
        .clicked()
    {
        req = Some((
            Step::Decontam {
                eval: f.eval_files(),
                with_bundled: true,
                cross_source: f.cross_source,
            },
            DECONTAM,
        ));
    }
    step_status(ui, v.state, DECONTAM, v.tx);

    ui.separator();
    ui.heading("4. Models");
    models_ui(ui, v, running, &mut req, &mut refused);

    ui.separator();
    ui.heading("5. Select and export");
    const SELECT: &str = "Select";
    const EXPORT: &str = "Export";
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
        if step_button(ui, running, SELECT).clicked() {
            req = Some((f.select_request(), SELECT));
        }
    });
    step_status(ui, v.state, SELECT, v.tx);
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
    if step_button(ui, running, EXPORT).clicked() {
        match f.export_request() {
            Ok(r) => req = Some((r, EXPORT)),
            Err(e) => refused = Some((EXPORT, e)),
        }
    }
    step_status(ui, v.state, EXPORT, v.tx);
    super::pool_map_ui::map_steps_ui(ui, v.state, running, v.tx);
    if let Some((button, message)) = refused {
        refuse(v.state, button, message);
    }
    if let Some(p) = pick {
        v.tx.send(CurateCommand::PickPath(p));
    }
    if let Some((step, button)) = req {
        v.tx.send(CurateCommand::Start {
            step: Box::new(step),
            button,
        });
    }
    ui.separator();
    egui::CollapsingHeader::new("Log").default_open(true).show(ui, |ui| {
        for l in v.state.log.iter().rev().take(12) {
            ui.weak(l);
        }
    });
}

/// Step 4: the model (an endpoint or a local one), the judge, and the model-driven steps.
fn models_ui(
    ui: &mut egui::Ui,
    v: &mut CurateView<'_>,
    running: bool,
    req: &mut Option<(Step, &'static str)>,
    refused: &mut Option<(&'static str, String)>,
) {
    let f = &mut *v.form;
    ui.horizontal(|ui| {
        ui.radio_value(&mut f.use_local, false, "Endpoint");
        ui.radio_value(&mut f.use_local, true, "Local model");
    });
    if f.use_local {
        field(
            ui,
            "Model path",
            &mut f.local_model,
            "a Hugging Face folder or a .gguf, run through the engine",
        );
        ui.add(egui::Slider::new(&mut f.batch, 1..=32).text("batch"));
        device_picker_ui(ui, "curate", &mut f.device, v.devices);
    } else {
        field(
            ui,
            "URL",
            &mut f.endpoint,
            "OpenAI-compatible base URL (vLLM, a cloud API); key from S1_API_KEY",
        );
        field(ui, "Model", &mut f.endpoint_model, "the model name the endpoint serves");
        ui.add(egui::Slider::new(&mut f.concurrency, 1..=64).text("in flight"));
    }
    egui::CollapsingHeader::new("LLM judge for attempts").show(ui, |ui| {
        field(
            ui,
            "Judge URL",
            &mut f.judge_endpoint,
            "empty: attempts are graded offline",
        );
        field(
            ui,
            "Judge model",
            &mut f.judge_model,
            "s1's protocol: the reply ends with Yes or No",
        );
    });
    let judge = f.judge();
    let ep = f.model();
    let max_tokens = f.max_tokens;
    let tok = f.tokenizer();
    const MODEL_STEPS: [&str; 3] = ["Traces", "Attempts", "Domains"];
    ui.horizontal(|ui| {
        for label in MODEL_STEPS {
            if !step_button(ui, running, label).clicked() {
                continue;
            }
            let e = match &ep {
                Ok(e) => e.clone(),
                Err(e) => {
                    *refused = Some((label, e.clone()));
                    continue;
                }
            };
            let step = match label {
                "Traces" => Step::Traces {
                    from: TraceSource::Model {
                        model: e,
                        gen: GenOptions {
                            max_tokens,
                            ..traces::DEFAULT_GEN
                        },
                    },
                    tokenizer: tok.clone(),
                    remeasure: false,
                },
                "Attempts" => match &judge {
                    Ok(j) => Step::Attempts {
                        model: e,
                        grader: j.clone().map_or(Grader::Offline, Grader::Judge),
                        gen: GenOptions {
                            max_tokens,
                            ..attempts::DEFAULT_GEN
                        },
                    },
                    Err(m) => {
                        *refused = Some((label, m.clone()));
                        continue;
                    }
                },
                _ => Step::Domains(DomainSource::Model {
                    model: e,
                    gen: domains::DEFAULT_GEN,
                    how: Default::default(),
                    all: false,
                }),
            };
            *req = Some((step, label));
        }
    });
    for label in MODEL_STEPS {
        step_status(ui, v.state, label, v.tx);
    }
    const SUBJECTS: &str = "Domains from subjects";
    if step_button(ui, running, SUBJECTS)
        .on_hover_text(
            "MATH's `type` / OlympiadBench's `subfield` mapped to MSC codes: a rough stand-in, not s1's classifier",
        )
        .clicked()
    {
        *req = Some((Step::Domains(DomainSource::Subjects), SUBJECTS));
    }
    step_status(ui, v.state, SUBJECTS, v.tx);
}

fn funnel_ui(ui: &mut egui::Ui, c: &mut CurateState) {
    let Some(s) = &c.snapshot else {
        ui.weak("Reading the workspace…");
        return;
    };
    let mut filter = None;
    // Narrow (the inspector open, a small window): each stage's note moves into its name's
    // tooltip, so the histograms keep their width beside the funnel.
    let notes_inline = ui.available_width() >= 880.0;
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            ui.strong("Funnel");
            egui::Grid::new("funnel").striped(true).show(ui, |ui| {
                for (i, st) in s.stages.iter().enumerate() {
                    let name = ui.label(&st.name);
                    if !notes_inline && !st.note.is_empty() {
                        name.on_hover_text(&st.note);
                    }
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
                    if notes_inline {
                        ui.weak(&st.note);
                    }
                    ui.end_row();
                }
            });
        });
        ui.vertical(|ui| {
            ui.set_min_width(262.0);
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
                .height(110.0)
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
                .height(80.0)
                .width(260.0)
                .show(ui, |p| p.bar_chart(BarChart::new("tokens", bars)));
        });
    });
    if let Some(f) = filter {
        c.filter = f;
    }
}

/// What is not any one button's: the view's own read of the pool, and the reader's or a
/// dialog's error. Above the steps' scroll area, so always in sight.
fn steps_header_ui(ui: &mut egui::Ui, st: &CurateState) {
    if st.running.is_some() && st.running_from.is_none() {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(format!("Running: {}", st.running.unwrap_or_default()));
        });
    }
    if let Some(e) = &st.error {
        ui.add(egui::Label::new(RichText::new(e).color(ui.visuals().error_fg_color)).wrap());
    }
}

pub fn curate_view_ui(ui: &mut egui::Ui, mut v: CurateView<'_>) {
    egui::Panel::left("curate-steps")
        .resizable(true)
        .default_size(300.0)
        .show(ui, |ui| {
            steps_header_ui(ui, v.state);
            egui::ScrollArea::vertical()
                .id_salt("curate-steps-scroll")
                .show(ui, |ui| steps_ui(ui, &mut v));
        });
    if v.state.inspector_open && v.state.selected.is_some() {
        let esc = ui.input(|i| i.key_pressed(egui::Key::Escape)) && !ui.ctx().egui_wants_keyboard_input();
        if esc {
            v.tx.send(CurateCommand::ShowInspector(false));
        }
        egui::Panel::right("curate-inspector")
            .resizable(true)
            .default_size(380.0)
            .size_range(240.0..=900.0)
            .show(ui, |ui| inspector_ui(ui, v.state, v.tx));
    }
    egui::CentralPanel::default().show(ui, |ui| {
        // Bounded, so that the table keeps most of the height and the funnel's wide notes do
        // not widen the table past the window.
        egui::CollapsingHeader::new("Funnel and histograms")
            .default_open(true)
            .show_unindented(ui, |ui| {
                egui::ScrollArea::both()
                    .id_salt("curate-funnel")
                    .max_height(230.0)
                    .auto_shrink([false, true])
                    .show(ui, |ui| funnel_ui(ui, v.state));
            });
        if v.state.map.shown {
            super::pool_map_ui::pool_map_ui(ui, v.state, v.tx);
        } else {
            pool_table_ui(ui, v.state, v.tx);
        }
    });
}
