//! The Train view: the launcher form with the s1 preset (a tooltip per field), Start / Stop /
//! Resume, live charts of loss (raw and smoothed), learning rate, gradient norm and tokens/s with
//! the ETA, the run history (named runs, their steps, checkpoints and loss curves overlaid),
//! "Chat with this checkpoint", and the prompt that Start raises over an existing run.

use eframe::egui::{self, RichText};
use egui_plot::{Legend, Line, Plot, PlotPoints};

use super::command::{CommandSender, TrainCommand, TrainPath};
use super::device_picker_ui::device_picker_ui;
use super::dialog_note_ui;
use super::train_state::{TrainState, TrainStatus};
use crate::train::config::{LastBatch, LossWeighting, TrainDtype};
use crate::train::mask::LossMask;
use crate::train::TrainSettings;

/// What the Train view draws and edits.
pub struct TrainView<'a> {
    pub state: &'a mut TrainState,
    pub form: &'a mut TrainSettings,
    /// The Slurm login node over SSH (persisted).
    pub ssh: &'a mut super::train_export_ui::SshForm,
    pub devices: &'a [crate::model::device::DeviceInfo],
    /// The machine's last sample (free RAM and GPU memory beside the memory estimate).
    pub system: Option<&'a super::system_monitor::SystemSample>,
    pub tx: &'a CommandSender,
}

pub fn train_view_ui(ui: &mut egui::Ui, mut v: TrainView<'_>) {
    egui::Panel::left("train-form")
        .resizable(true)
        .default_size(360.0)
        .show(ui, |ui| {
            // Where and Start stay in sight below the settings, which scroll.
            egui::Panel::bottom("train-actions")
                .frame(egui::Frame::NONE.inner_margin(egui::Margin::symmetric(0, 6)))
                .show(ui, |ui| actions_ui(ui, &mut v));
            egui::ScrollArea::vertical().show(ui, |ui| form_ui(ui, &mut v));
        });
    egui::CentralPanel::default().show(ui, |ui| {
        egui::ScrollArea::vertical().show(ui, |ui| run_ui(ui, &mut v));
    });
    if let Some(p) = &v.state.prompt {
        super::train_runs_ui::existing_run_prompt(ui.ctx(), p, v.tx);
    }
}

/// A path's label, field and "Choose…" button; where its dialog could not open, the message
/// below the field, which takes the focus.
fn path_row(v: &mut TrainView<'_>, ui: &mut egui::Ui, label: &str, tip: &str, which: TrainPath) {
    let current = match which {
        TrainPath::Model => &v.form.model,
        TrainPath::Data => &v.form.data,
        TrainPath::Out => &v.form.out,
    };
    let mut text = current.display().to_string();
    let l = ui.label(label).on_hover_text(tip);
    ui.horizontal(|ui| {
        let r = ui
            .add(egui::TextEdit::singleline(&mut text).desired_width(250.0))
            .labelled_by(l.id)
            .on_hover_text(tip);
        dialog_note_ui::focus_when(&r, &mut v.state.focus, which);
        if r.changed() {
            v.tx.send(TrainCommand::SetPath(which, text.clone().into()));
        }
        if ui
            .button("Choose…")
            .on_hover_text(format!("Pick the {}", label.to_lowercase()))
            .clicked()
        {
            v.tx.send(TrainCommand::PickPath(which));
        }
    });
    let note = v.state.dialog_error.as_ref().filter(|(w, _)| *w == which);
    dialog_note_ui::note_ui(ui, note.map(|(_, m)| m.as_str()));
}

fn number<T: egui::emath::Numeric>(
    ui: &mut egui::Ui,
    label: &str,
    tip: &str,
    v: &mut T,
    speed: f64,
    range: std::ops::RangeInclusive<T>,
) {
    let l = ui.label(label).on_hover_text(tip);
    ui.add(egui::DragValue::new(v).speed(speed).range(range))
        .labelled_by(l.id)
        .on_hover_text(tip);
    ui.end_row();
}

fn form_ui(ui: &mut egui::Ui, v: &mut TrainView<'_>) {
    ui.heading("Fine-tune");
    ui.weak("Supervised fine-tuning with the s1 recipe: the loss covers the assistant's thinking and answer only.");
    ui.add_space(6.0);
    path_row(
        v,
        ui,
        "Base model",
        "A Hugging Face folder: config.json, model.safetensors, tokenizer.json (e.g. Qwen2.5-0.5B-Instruct)",
        TrainPath::Model,
    );
    path_row(
        v,
        ui,
        "Training data",
        "Rows in the s1K schema (question, thinking_trajectories, attempt) or s1K-1.1's columns, as .jsonl or .json",
        TrainPath::Data,
    );
    path_row(
        v,
        ui,
        "Output folder",
        "checkpoint-N folders (Hugging Face layout) and trainer_log.jsonl go here",
        TrainPath::Out,
    );
    ui.add_space(6.0);
    let running = v.state.is_running();
    let s = &mut *v.form;
    ui.add_enabled_ui(!running, |ui| {
        egui::Grid::new("train-hyper")
            .num_columns(2)
            .spacing([12.0, 4.0])
            .show(ui, |ui| {
                number(
                    ui,
                    "Epochs",
                    "Passes over the data (s1: 5)",
                    &mut s.epochs,
                    0.1,
                    1..=1000,
                );
                let l = ui
                    .label("Learning rate")
                    .on_hover_text("Peak learning rate after warmup (s1: 1e-5)");
                ui.add(
                    egui::DragValue::new(&mut s.lr)
                        .speed(1e-6)
                        .range(1e-8..=1.0)
                        .custom_formatter(|v, _| format!("{v:.2e}")),
                )
                .labelled_by(l.id);
                ui.end_row();
                number(
                    ui,
                    "Warmup ratio",
                    "Share of the steps with a linear warmup, then cosine decay to 0 (s1: 0.05)",
                    &mut s.warmup_ratio,
                    0.005,
                    0.0..=0.99,
                );
                number(
                    ui,
                    "Weight decay",
                    "AdamW decoupled weight decay; not on biases and norms (s1: 1e-4)",
                    &mut s.adam.weight_decay,
                    1e-5,
                    0.0..=1.0,
                );
                number(
                    ui,
                    "Beta 1",
                    "AdamW first-moment decay (s1: 0.9)",
                    &mut s.adam.beta1,
                    0.001,
                    0.0..=0.999,
                );
                number(
                    ui,
                    "Beta 2",
                    "AdamW second-moment decay (s1: 0.95)",
                    &mut s.adam.beta2,
                    0.001,
                    0.0..=0.9999,
                );
                number(
                    ui,
                    "Batch",
                    "Rows per micro-batch (s1: 1 per GPU)",
                    &mut s.batch,
                    0.1,
                    1..=512,
                );
                number(
                    ui,
                    "Grad accumulation",
                    "Micro-batches per optimizer step; global batch = batch x this (s1: 16)",
                    &mut s.grad_accum,
                    0.1,
                    1..=4096,
                );
                number(
                    ui,
                    "Block size",
                    "Tokens per example; longer ones are truncated with a warning (s1: 32,768; s1.1: 20,000)",
                    &mut s.block_size,
                    16.0,
                    2..=1 << 20,
                );
                number(
                    ui,
                    "Max grad norm",
                    "Gradient-norm clipping; 0 turns it off (s1: 1.0)",
                    &mut s.max_grad_norm,
                    0.01,
                    0.0..=1e6,
                );
                number(
                    ui,
                    "Seed",
                    "Shuffling order of the examples",
                    &mut s.seed,
                    1.0,
                    0..=u64::MAX,
                );
                number(
                    ui,
                    "Save every",
                    "Also save a checkpoint every N steps (0: at each epoch's end only)",
                    &mut s.save_every,
                    1.0,
                    0..=1 << 30,
                );
            });
        let mut lora_on = s.lora.is_some();
        if ui
            .checkbox(&mut lora_on, "LoRA adapters")
            .on_hover_text("Train low-rank adapters on a frozen base instead of every weight; saved in peft's layout")
            .changed()
        {
            s.lora = lora_on.then(|| crate::train::LoraSettings::new(16));
        }
        if let Some(l) = s.lora.as_mut() {
            egui::Grid::new("train-lora")
                .num_columns(2)
                .spacing([12.0, 4.0])
                .show(ui, |ui| {
                    number(
                        ui,
                        "LoRA rank",
                        "Rank r of each adapter (A is r x in, B is out x r)",
                        &mut l.rank,
                        0.2,
                        1..=1024,
                    );
                    number(
                        ui,
                        "LoRA alpha",
                        "The update is scaled by alpha / rank",
                        &mut l.alpha,
                        0.5,
                        0.0..=1e4,
                    );
                });
            ui.horizontal_wrapped(|ui| {
                for m in crate::model::lora::MODULES {
                    let mut on = l.target_modules.iter().any(|t| t == m);
                    if ui
                        .checkbox(&mut on, *m)
                        .on_hover_text(format!("Adapters on every {m}"))
                        .changed()
                    {
                        l.target_modules.retain(|t| t != m);
                        if on {
                            l.target_modules.push(m.to_string());
                        }
                    }
                }
            });
        }
        ui.checkbox(&mut s.gradient_checkpointing, "Gradient checkpointing")
            .on_hover_text(
            "Keep only each layer's input and run the layer again in the backward pass: less memory, ~30% more compute",
        );
        device_picker_ui(ui, "train", &mut s.device, v.devices);
        if s.device.is_cpu() {
            s.dtype = TrainDtype::F32;
        }
        ui.add_enabled_ui(!s.device.is_cpu(), |ui| {
            egui::ComboBox::from_label("Precision")
                .selected_text(format!("{:?}", s.dtype).to_lowercase())
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut s.dtype, TrainDtype::F32, "f32");
                    ui.selectable_value(&mut s.dtype, TrainDtype::Bf16, "bf16");
                })
                .response
                .on_hover_text(
                    "bf16: the model computes in bf16 and the optimizer keeps f32 master weights (CUDA); \
                     the CPU trains in f32",
                );
        });
        super::train_memory_ui::memory_line_ui(ui, v.state, s, v.system, v.devices, v.tx);
        ui.checkbox(&mut s.adam.decay_norms, "Weight decay on norm weights")
            .on_hover_text(
                "s1: on, as transformers 4.46.1 (only biases are exempt); off: norms exempt too, as newer transformers",
            );
        egui::ComboBox::from_label("Loss mask")
            .selected_text(s.loss_mask.name())
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut s.loss_mask, LossMask::Completion, "completion");
                ui.selectable_value(&mut s.loss_mask, LossMask::Turn, "turn");
            })
            .response
            .on_hover_text(
                "completion (s1): every token after <|im_start|>assistant\\n to the end, as TRL's \
                 completion-only collator, the newline after <|im_end|> included; \
                 turn: the assistant turn through <|im_end|>",
            );
        egui::ComboBox::from_label("Loss weighting")
            .selected_text(s.loss_weighting.name())
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut s.loss_weighting, LossWeighting::Example, "example");
                ui.selectable_value(&mut s.loss_weighting, LossWeighting::Token, "token");
            })
            .response
            .on_hover_text(
                "example (s1): each example's loss is its token mean and a step averages the examples \
                 (s1 runs one example per GPU); token: the step's token losses over all its tokens, \
                 so long traces weigh more",
            );
        egui::ComboBox::from_label("Last batch")
            .selected_text(s.last_batch.name())
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut s.last_batch, LastBatch::Fill, "fill");
                ui.selectable_value(&mut s.last_batch, LastBatch::Short, "short");
            })
            .response
            .on_hover_text(
                "An epoch's last global batch when short. fill (s1): completed with the epoch's first \
                 examples, as accelerate does on 16 GPUs; short: a smaller last step",
            );
        ui.horizontal(|ui| {
            ui.label(format!("Global batch: {}", s.global_batch()));
            if ui
                .button("Reset to the s1 preset")
                .on_hover_text("Every value as in simplescaling/s1's train/sft.sh")
                .clicked()
            {
                let keep = (s.model.clone(), s.data.clone(), s.out.clone());
                *s = TrainSettings::s1(keep.0, keep.1, keep.2);
            }
        });
    });
}

/// Where the run trains (with the target's fields and command preview), Start / Stop / Resume,
/// Preview data, and the quick start before a first run.
fn actions_ui(ui: &mut egui::Ui, v: &mut TrainView<'_>) {
    let running = v.state.is_running();
    super::train_export_ui::where_ui(ui, &mut v.state.remote);
    super::train_export_ui::where_details_ui(ui, &mut v.state.remote, v.ssh, v.form);
    let waiting = v.state.checking || v.state.prompt.is_some();
    ui.horizontal(|ui| {
        if running {
            if ui
                .button("Stop")
                .on_hover_text("Stop after the current micro-batch; the last checkpoint stays")
                .clicked()
            {
                v.tx.send(TrainCommand::Stop);
            }
        } else {
            ui.add_enabled_ui(!waiting, |ui| {
                if ui
                    .button("Start")
                    .on_hover_text("Start a new run in the output folder (asks first when it already holds one)")
                    .clicked()
                {
                    v.tx.send(TrainCommand::Start { resume: false });
                }
                if ui
                    .button("Resume")
                    .on_hover_text("Continue from the newest checkpoint in the output folder")
                    .clicked()
                {
                    v.tx.send(TrainCommand::Start { resume: true });
                }
                if v.state.remote.target.is_some()
                    && ui
                        .button("Follow launched job")
                        .on_hover_text(
                            "Watch again the job started earlier from the output folder (on Slurm, here or over \
                             SSH, on Ray, or torchrun here), with the same charts and Stop; its checkpoints come \
                             back at the end",
                        )
                        .clicked()
                {
                    v.tx.send(TrainCommand::Attach);
                }
            });
            if v.state.checking {
                ui.spinner();
            }
            if ui
                .add_enabled(v.state.previewing.is_none(), egui::Button::new("Preview data"))
                .on_hover_text(
                    "Render the data as training will: the first example with its loss tokens marked, \
                     token counts, and how many examples the block size truncates",
                )
                .clicked()
            {
                v.tx.send(TrainCommand::PreviewData);
            }
        }
    });
    // On its own row: offered before a first local run only, it must not widen the form for later.
    if v.state.remote.target.is_none()
        && !running
        && !waiting
        && matches!(v.state.status, TrainStatus::Idle)
        && v.state.records.is_empty()
    {
        let hint = "A tiny model and 12 rows of the sample pool: a whole run on a laptop CPU";
        if ui
            .button(super::first_run::QUICK_FINETUNE)
            .on_hover_text(hint)
            .clicked()
        {
            v.tx.send(TrainCommand::QuickStart);
        }
    }
}

/// Exponential moving average of the loss (smoothing 0.9, bias-corrected like TensorBoard's).
fn smoothed(points: &[[f64; 2]]) -> Vec<[f64; 2]> {
    let mut ema = 0.0;
    points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            ema = 0.9 * ema + 0.1 * p[1];
            [p[0], ema / (1.0 - 0.9f64.powi(i as i32 + 1))]
        })
        .collect()
}

fn eta(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn run_ui(ui: &mut egui::Ui, v: &mut TrainView<'_>) {
    let t = &*v.state;
    match &t.status {
        TrainStatus::Idle => {
            ui.heading("No run yet");
            ui.label(
                "Choose a base model (a Hugging Face folder), the training data and an output folder, then Start.",
            );
            ui.weak("The same run from a terminal: s1-studio train --model DIR --data FILE --out DIR");
        }
        TrainStatus::Running => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.heading("Training");
            });
        }
        TrainStatus::Done { checkpoint } => {
            ui.heading("Done");
            ui.label(format!("Final checkpoint: {}", checkpoint.display()));
        }
        TrainStatus::Stopped { checkpoint, step } => {
            ui.heading(format!("Stopped at step {step}"));
            match checkpoint {
                Some(c) => ui.label(format!("Resume continues from {}", c.display())),
                None => ui.label("No checkpoint was written yet."),
            };
        }
        TrainStatus::Failed(e) => {
            ui.heading("The run failed");
            ui.colored_label(ui.visuals().error_fg_color, e.as_str());
        }
    }
    if let Some(r) = t.records.last() {
        ui.label(
            RichText::new(format!(
                "step {}/{} · epoch {:.2} · loss {:.4} · lr {:.2e} · grad norm {:.3} · {:.0} tokens/s · ETA {}",
                r.step,
                r.total_steps,
                r.epoch,
                r.loss,
                r.lr,
                r.grad_norm,
                r.tokens_per_s,
                eta(r.remaining)
            ))
            .monospace(),
        );
        ui.add(egui::ProgressBar::new(r.step as f32 / r.total_steps.max(1) as f32).desired_width(400.0));
    } else if t.is_running() {
        ui.label(if t.total_steps > 0 {
            format!(
                "{} examples, {} steps: the first step is running…",
                t.examples, t.total_steps
            )
        } else {
            "Loading the model and rendering the data…".to_string()
        });
    }
    for w in &t.warnings {
        ui.colored_label(ui.visuals().warn_fg_color, format!("Warning: {w}"));
    }
    if !t.is_running() {
        super::train_runs_ui::preview_ui(ui, t, v.form);
    }
    if let Some((out, to)) = &t.replaced {
        ui.weak(format!(
            "The earlier run in {} is kept in {}",
            out.display(),
            to.display()
        ));
    }
    if let Some(c) = t.last_checkpoint.clone() {
        if ui
            .button("Chat with this checkpoint")
            .on_hover_text(format!("Open {} in the Chat view", c.display()))
            .clicked()
        {
            v.tx.send(TrainCommand::ChatWithCheckpoint(c));
        }
    }
    ui.add_space(6.0);
    let series = |f: &dyn Fn(&crate::train::StepRecord) -> f64| -> Vec<[f64; 2]> {
        t.records.iter().map(|r| [r.step as f64, f(r)]).collect()
    };
    let loss = series(&|r| r.loss);
    let lr = series(&|r| r.lr);
    let gn = series(&|r| r.grad_norm);
    let tps = series(&|r| r.tokens_per_s);
    let h = 180.0;
    ui.strong("Loss");
    Plot::new("train-loss")
        .height(h)
        .legend(Legend::default())
        .show(ui, |p| {
            p.line(Line::new("loss", PlotPoints::from(loss.clone())));
            p.line(Line::new("smoothed", PlotPoints::from(smoothed(&loss))));
            for run in t.history.iter().filter(|r| r.shown) {
                let name = run
                    .out
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                p.line(Line::new(format!("past: {name}"), PlotPoints::from(run.losses.clone())));
            }
        });
    ui.columns(3, |cols| {
        for (ui, (title, pts)) in cols
            .iter_mut()
            .zip([("Learning rate", lr), ("Gradient norm", gn), ("Tokens/s", tps)])
        {
            ui.strong(title);
            Plot::new(format!("train-{title}")).height(140.0).show(ui, |p| {
                p.line(Line::new(title, PlotPoints::from(pts)));
            });
        }
    });
    ui.add_space(6.0);
    egui::CollapsingHeader::new(format!("Run history ({})", v.state.history.len()))
        .default_open(false)
        .show(ui, |ui| {
            if v.state.history.is_empty() {
                ui.weak("Runs started here are listed with their loss curves.");
            }
            let mut chat = None;
            for run in v.state.history.iter_mut() {
                super::train_runs_ui::history_row(ui, run, v.tx, &mut chat);
            }
            if let Some(c) = chat {
                v.tx.send(TrainCommand::ChatWithCheckpoint(c));
            }
        });
}
