//! The Evaluate view: a model, a benchmark and the budgets to sweep; Run and Stop with
//! progress; the scaling plot filling in as samples arrive; Control, Scaling and Performance;
//! and a per-sample browser (question, thinking, answer, extracted answer, verdict) filtered by
//! verdict.

use eframe::egui::{self, RichText};
use egui_plot::{Legend, Line, Plot, PlotPoints, Points};

use super::command::{CommandSender, EvalCommand, EvalPath};
use super::device_picker_ui::device_picker_ui;
use super::eval_state::{EvalForm, EvalState, EvalStatus};
use crate::eval::benchmarks::NAMED;
use crate::eval::presets;
use crate::grade::{Extraction, Verdict};

fn field(ui: &mut egui::Ui, label: &str, value: &mut String, hint: &str) -> egui::Response {
    ui.horizontal(|ui| {
        let l = ui.label(label);
        ui.add(egui::TextEdit::singleline(value).desired_width(260.0))
            .labelled_by(l.id)
            .on_hover_text(hint)
    })
    .inner
}

/// Gives `r` the focus when its path's dialog could not open (once).
fn focus_if(r: &egui::Response, focus: &mut Option<EvalPath>, which: &[EvalPath]) {
    if focus.is_some_and(|f| which.contains(&f)) {
        r.request_focus();
        *focus = None;
    }
}

/// What the Evaluate view draws and edits.
pub struct EvalView<'a> {
    pub state: &'a mut EvalState,
    pub form: &'a mut EvalForm,
    pub devices: &'a [crate::model::device::DeviceInfo],
    /// The model loaded in Chat, offered as the model to evaluate.
    pub loaded_model: Option<&'a std::path::Path>,
    pub tx: &'a CommandSender,
}

/// Where the model runs: this machine (its device) or an OpenAI-compatible endpoint (URL, the
/// model name it serves, the environment variable with its key, requests at once).
fn endpoint_ui(ui: &mut egui::Ui, f: &mut super::eval_state::EvalForm, devices: &[crate::model::device::DeviceInfo]) {
    // One row with the device, so that the local form keeps its layout.
    ui.horizontal(|ui| {
        if !f.use_endpoint {
            device_picker_ui(ui, "eval", &mut f.device, devices);
            ui.separator();
        }
        ui.label("Model runs");
        ui.radio_value(&mut f.use_endpoint, false, "local file")
            .on_hover_text("Load the model above on this machine");
        ui.radio_value(&mut f.use_endpoint, true, "endpoint").on_hover_text(
            "An OpenAI-compatible server (vLLM, llama.cpp, s1-studio serve): budget forcing runs as s1's loop over \
             /completions; the model above gives only the tokenizer and chat template",
        );
    });
    if !f.use_endpoint {
        return;
    }
    field(
        ui,
        "Endpoint URL",
        &mut f.endpoint_url,
        "The base URL, e.g. http://127.0.0.1:8080/v1",
    );
    field(
        ui,
        "Endpoint model",
        &mut f.endpoint_model,
        "The model name the endpoint serves",
    );
    field(
        ui,
        "API key env var",
        &mut f.api_key_env,
        "The environment variable holding the key (empty: no key)",
    );
    ui.horizontal(|ui| {
        let l = ui.label("Requests at once");
        ui.add(egui::DragValue::new(&mut f.concurrency).range(1..=256))
            .labelled_by(l.id);
    });
    ui.checkbox(&mut f.text_prompts, "Send prompts as text").on_hover_text(
        "Off: token ids, as s1's loop hands vLLM its prompts (nothing re-tokenized between rounds). \
             On: for servers that take text only (llama-cpp-python's).",
    );
}

fn form_ui(ui: &mut egui::Ui, v: &mut EvalView<'_>) {
    let running = v.state.is_running();
    let mut pick = None;
    let mut quick_run = false;
    // The quick start is offered until a sweep has run in this session.
    let fresh = v.state.samples.is_empty() && v.state.job.is_none();
    let f = &mut *v.form;
    let focus = &mut v.state.focus;
    ui.add_enabled_ui(!running, |ui| {
        let r = field(ui, "Model", &mut f.model, "A Hugging Face folder or a .gguf file");
        focus_if(&r, focus, &[EvalPath::ModelFolder, EvalPath::ModelFile]);
        if let Some(loaded) = v.loaded_model.filter(|p| *p != std::path::Path::new(f.model.trim())) {
            let name = loaded.file_name().unwrap_or(loaded.as_os_str()).to_string_lossy();
            if ui
                .button(format!("Use the model loaded in Chat ({name})"))
                .on_hover_text(loaded.display().to_string())
                .clicked()
            {
                f.model = loaded.display().to_string();
            }
        }
        if fresh {
            let hint = "Runs budgets 32, 128 and 512 on the bundled GSM8K set with the model loaded in Chat (or \
                        the one above): a scaling plot in minutes on a CPU";
            if ui.button(super::first_run::QUICK_SWEEP).on_hover_text(hint).clicked() {
                super::first_run::quick_sweep(f, v.loaded_model);
                // One click runs it; without a model the filled form waits for one.
                quick_run = !f.model.trim().is_empty();
            }
        }
        ui.horizontal(|ui| {
            if ui.button("Model folder…").clicked() {
                pick = Some(EvalPath::ModelFolder);
            }
            if ui.button("GGUF file…").clicked() {
                pick = Some(EvalPath::ModelFile);
            }
            if ui.button("Benchmark file…").clicked() {
                pick = Some(EvalPath::Bench);
            }
            if ui.button("Output folder…").clicked() {
                pick = Some(EvalPath::Out);
            }
        });
        endpoint_ui(ui, f, v.devices);
        ui.horizontal(|ui| {
            let l = ui.label("Benchmark");
            let r = ui
                .add(egui::TextEdit::singleline(&mut f.bench).desired_width(160.0))
                .labelled_by(l.id)
                .on_hover_text(
                    "A named benchmark (shipped with the app) or a JSONL file with question and answer columns",
                );
            focus_if(&r, focus, &[EvalPath::Bench]);
            egui::ComboBox::from_label("Named benchmarks")
                .selected_text("pick…")
                .show_ui(ui, |ui| {
                    for (name, _, _) in NAMED {
                        if ui.selectable_label(f.bench == *name, *name).clicked() {
                            f.bench = name.to_string();
                        }
                    }
                });
        });
        let mut chosen = None;
        ui.horizontal(|ui| {
            let shown = if f.preset.is_empty() {
                "budgets x waits"
            } else {
                f.preset.as_str()
            };
            egui::ComboBox::from_label("Sweep")
                .selected_text(shown)
                .show_ui(ui, |ui| {
                    if ui.selectable_label(f.preset.is_empty(), "budgets x waits").clicked() {
                        chosen = Some(String::new());
                    }
                    for p in presets::presets() {
                        if ui
                            .selectable_label(f.preset == p.name, p.name)
                            .on_hover_text(p.about)
                            .clicked()
                        {
                            chosen = Some(p.name.to_string());
                        }
                    }
                })
                .response
                .on_hover_text("The lists below, or a sweep with s1's own settings (eval/commands.sh)");
        });
        if let Some(name) = chosen {
            f.choose_preset(&name);
        }
        match presets::preset(&f.preset) {
            Ok(p) => {
                ui.weak(p.about);
            }
            Err(_) => {
                field(
                    ui,
                    "Budgets",
                    &mut f.budgets,
                    "Maximum thinking tokens to sweep: numbers, auto, unlimited",
                );
                field(
                    ui,
                    "Waits",
                    &mut f.waits,
                    "How many ends of thinking to ignore (\"Wait\"), e.g. 0,1,2,4",
                );
            }
        }
        field(ui, "Questions", &mut f.limit, "Use the first N questions (empty: all)");
        field(
            ui,
            "Max tokens",
            &mut f.max_tokens,
            "Bound on all generated tokens per sample (empty: none)",
        );
        ui.horizontal(|ui| {
            ui.label("Samples");
            ui.add(egui::DragValue::new(&mut f.samples).range(1..=64))
                .on_hover_text("Samples per question and setting (majority vote needs several)");
            ui.label("Temperature");
            ui.add(egui::DragValue::new(&mut f.temperature).range(0.0..=2.0).speed(0.05))
                .on_hover_text("0 is greedy, as s1 evaluates");
            ui.label("Batch");
            ui.add(egui::DragValue::new(&mut f.batch).range(1..=64))
                .on_hover_text("Sequences generated at once: faster, the same results");
        });
        egui::ComboBox::from_label("Answer reading")
            .selected_text(match f.extraction {
                Extraction::S1 => "s1's",
                Extraction::Lenient => "Lenient",
            })
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut f.extraction, Extraction::S1, "s1's")
                    .on_hover_text(
                        "As s1's evaluation tasks read answers: the last boxed answer, else after the first Answer:",
                    );
                ui.selectable_value(&mut f.extraction, Extraction::Lenient, "Lenient")
                    .on_hover_text("The studio's reading: more answer forms, GSM8K's ####, no default letter");
            });
        let r = field(
            ui,
            "Output folder",
            &mut f.out,
            "samples.jsonl, metrics.json and scaling.svg go here (as `s1-studio eval --out` writes them); a rerun resumes",
        );
        focus_if(&r, focus, &[EvalPath::Out]);
    });
    v.state.recheck_form(v.form);
    if let Some(n) = &v.state.notice {
        ui.colored_label(ui.visuals().warn_fg_color, n);
    }
    if let Some(which) = pick {
        v.tx.send(EvalCommand::PickPath(which));
    }
    if quick_run {
        v.tx.send(EvalCommand::Run);
    }
    ui.horizontal(|ui| {
        if running {
            if ui
                .button("Stop")
                .on_hover_text("Stop after the current sample; a rerun resumes")
                .clicked()
            {
                v.tx.send(EvalCommand::Stop);
            }
        } else if ui
            .button("Run")
            .on_hover_text("Generate every question under every setting, grade, and plot")
            .clicked()
        {
            v.tx.send(EvalCommand::Run);
        }
        if let Some(p) = v.state.progress {
            ui.add(
                egui::ProgressBar::new(p.done as f32 / p.total.max(1) as f32)
                    .text(format!("{}/{} samples", p.done, p.total))
                    .desired_width(240.0),
            );
            if running {
                match v.state.eta() {
                    Some(left) => ui.label(super::eval_state::eta_text(left)),
                    None => ui.weak("ETA after the first sample"),
                };
            }
        }
    });
    match &v.state.status {
        EvalStatus::Failed(e) => {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        EvalStatus::Stopped => {
            ui.label("Stopped; Run continues where it stopped.");
        }
        EvalStatus::Done => {
            ui.label(format!("Done: results in {}", v.form.out));
        }
        _ => {}
    }
}

fn plot_ui(ui: &mut egui::Ui, e: &EvalState) {
    let Some(m) = &e.metrics else {
        ui.weak("The scaling curve appears here as samples arrive.");
        return;
    };
    ui.label(
        RichText::new(format!(
            "Control {:.0}% of settings in bounds ({:.0}% of runs)   Performance {:.1}%",
            m.control, m.control_runs, m.performance
        ))
        .strong(),
    );
    ui.label(
        RichText::new(format!(
            "Scaling {}",
            m.scaling_per_1k_tokens
                .map(|v| format!("{v:.2} {}", crate::eval::metrics::SCALING_PER_1K_UNIT))
                .unwrap_or_else(|| "–".into()),
        ))
        .strong(),
    );
    let curves = crate::eval::metrics::curves(m);
    Plot::new("scaling")
        .height(220.0)
        .legend(Legend::default())
        .x_axis_label("mean thinking tokens")
        .y_axis_label("accuracy (%)")
        .include_y(0.0)
        .include_y(100.0)
        .show(ui, |p| {
            for (name, pts) in curves {
                let pts: Vec<[f64; 2]> = pts.iter().map(|p| [p.0, p.1]).collect();
                p.line(Line::new(name.clone(), PlotPoints::from(pts.clone())));
                p.points(Points::new(name, PlotPoints::from(pts)).radius(4.0));
            }
        });
    egui::Grid::new("eval-settings").striped(true).show(ui, |ui| {
        ui.strong("setting");
        ui.strong("samples");
        ui.strong("accuracy");
        ui.strong("thinking");
        ui.end_row();
        for s in &m.settings {
            ui.label(&s.setting);
            ui.label(s.samples.to_string());
            ui.label(format!("{:.1}%", s.accuracy));
            ui.label(format!("{:.0}", s.mean_thinking_tokens));
            ui.end_row();
        }
    });
}

fn verdict_text(v: Verdict) -> &'static str {
    match v {
        Verdict::Correct => "correct",
        Verdict::Incorrect => "incorrect",
        Verdict::Undecided => "undecided",
    }
}

fn browser_ui(ui: &mut egui::Ui, e: &mut EvalState) {
    ui.horizontal(|ui| {
        egui::ComboBox::from_label("Show")
            .selected_text(e.filter.map(verdict_text).unwrap_or("all"))
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut e.filter, None, "all");
                for v in [Verdict::Correct, Verdict::Incorrect, Verdict::Undecided] {
                    ui.selectable_value(&mut e.filter, Some(v), verdict_text(v));
                }
            });
        let shown = e
            .samples
            .iter()
            .filter(|s| e.filter.is_none_or(|f| s.verdict == f))
            .count();
        ui.weak(format!("{shown} of {} samples", e.samples.len()));
    });
    egui::ScrollArea::vertical()
        .id_salt("samples")
        .max_height(160.0)
        .show(ui, |ui| {
            for (i, s) in e.samples.iter().enumerate() {
                if e.filter.is_some_and(|f| s.verdict != f) {
                    continue;
                }
                let text = format!(
                    "{} · question {} · {}",
                    s.setting,
                    s.question_id,
                    verdict_text(s.verdict)
                );
                if ui.selectable_label(e.selected == Some(i), text).clicked() {
                    e.selected = Some(i);
                }
            }
        });
    let Some(s) = e.selected.and_then(|i| e.samples.get(i)) else {
        return;
    };
    ui.separator();
    egui::ScrollArea::vertical().id_salt("sample").show(ui, |ui| {
        ui.label(RichText::new(&s.prompt).strong());
        egui::CollapsingHeader::new(format!(
            "Thinking ({} tokens, {} waits)",
            s.thinking_tokens, s.waits_injected
        ))
        .id_salt("thinking")
        .show(ui, |ui| {
            ui.label(RichText::new(&s.thinking).weak());
        });
        ui.label(&s.answer);
        ui.horizontal(|ui| {
            ui.label(format!("extracted: {}", s.extracted.as_deref().unwrap_or("(none)")));
            ui.label(format!("reference: {}", s.reference));
            ui.strong(verdict_text(s.verdict));
        });
    });
}

pub fn eval_view_ui(ui: &mut egui::Ui, mut v: EvalView<'_>) {
    egui::CentralPanel::default().show(ui, |ui| {
        ui.columns(2, |cols| {
            form_ui(&mut cols[0], &mut v);
            cols[0].separator();
            browser_ui(&mut cols[0], v.state);
            plot_ui(&mut cols[1], v.state);
        });
    });
}
