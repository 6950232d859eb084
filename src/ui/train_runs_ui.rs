//! The Train view's parts about runs and data: the prompt that Start raises over a folder that
//! already holds a run, a row of the run history, and the data preview before Start.

use eframe::egui::{self, text::LayoutJob, Color32, FontId, TextFormat};

use super::command::{CommandSender, RunChoice, TrainCommand};
use super::train_state::{preview_key, PastRun, RunPrompt, TrainState};
use crate::train::TrainSettings;

/// The modal that Start raises over a folder that already holds a run: Resume, Start in a new
/// folder (named before confirming), or Replace, which asks again and moves the old run aside.
/// Tab reaches every button; Esc cancels.
pub fn existing_run_prompt(ctx: &egui::Context, p: &RunPrompt, tx: &CommandSender) {
    let r = egui::Modal::new(egui::Id::unique("train-existing-run")).show(ctx, |ui| {
        ui.set_max_width(520.0);
        let e = &p.existing;
        ui.heading("This folder already holds a run");
        ui.label(format!(
            "{} (\"{}\"): {} of {} steps, {} checkpoint{}.",
            p.out.display(),
            e.name,
            e.steps,
            e.total_steps,
            e.checkpoints.len(),
            if e.checkpoints.len() == 1 { "" } else { "s" }
        ));
        for n in &e.notes {
            ui.colored_label(ui.visuals().warn_fg_color, n.as_str());
        }
        ui.add_space(8.0);
        if p.confirm_replace {
            ui.strong(format!(
                "Replace moves {} aside to {}.replaced-<time> (nothing is deleted) and starts afresh in it.",
                p.out.display(),
                p.out
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default()
            ));
            ui.horizontal(|ui| {
                if ui.button("Move it aside and start").clicked() {
                    tx.send(TrainCommand::Choose(RunChoice::ConfirmReplace));
                }
                if ui.button("Back").clicked() {
                    tx.send(TrainCommand::Choose(RunChoice::Cancel));
                }
            });
            return;
        }
        let newest = e.checkpoints.last();
        ui.horizontal_wrapped(|ui| {
            let resume = ui.add_enabled(newest.is_some(), egui::Button::new("Resume this run"));
            let resume = match newest {
                Some((step, _)) => resume.on_hover_text(format!("Continue from checkpoint-{step}")),
                None => resume.on_disabled_hover_text("It has no complete checkpoint to resume from"),
            };
            if resume.clicked() {
                tx.send(TrainCommand::Choose(RunChoice::Resume));
            }
            if ui
                .button(format!("Start in {}", p.next_free.display()))
                .on_hover_text("A new run in the next free folder; this one stays as it is")
                .clicked()
            {
                tx.send(TrainCommand::Choose(RunChoice::NewFolder));
            }
            if ui
                .button("Replace…")
                .on_hover_text("Move this run aside and start afresh in its folder (asks again)")
                .clicked()
            {
                tx.send(TrainCommand::Choose(RunChoice::Replace));
            }
            if ui.button("Cancel").clicked() {
                tx.send(TrainCommand::Choose(RunChoice::Cancel));
            }
        });
    });
    if r.should_close() {
        tx.send(TrainCommand::Choose(RunChoice::Cancel));
    }
}

/// One past run: its name (editable, saved when the field is left), last step, last loss,
/// checkpoints (each opens in Chat) and notes on what could not be read.
pub fn history_row(ui: &mut egui::Ui, run: &mut PastRun, tx: &CommandSender, chat: &mut Option<std::path::PathBuf>) {
    ui.horizontal(|ui| {
        ui.checkbox(&mut run.shown, "")
            .on_hover_text("Overlay this run's loss curve");
        let r = ui
            .add(egui::TextEdit::singleline(&mut run.name).desired_width(140.0))
            .on_hover_text(format!("Run name (saved in {}/run.json)", run.out.display()));
        if r.lost_focus() && !run.name.trim().is_empty() {
            tx.send(TrainCommand::Rename(run.out.clone(), run.name.clone()));
        }
        let loss = run
            .losses
            .last()
            .map(|l| format!(", last loss {:.4}", l[1]))
            .unwrap_or_default();
        let of = if run.total_steps > 0 {
            format!("/{}", run.total_steps)
        } else {
            String::new()
        };
        ui.label(format!("{} steps{of}{loss}", run.steps))
            .on_hover_text(run.out.display().to_string());
        for (step, dir) in &run.checkpoints {
            if ui
                .small_button(format!("checkpoint-{step}"))
                .on_hover_text(format!("Chat with {}", dir.display()))
                .clicked()
            {
                *chat = Some(dir.clone());
            }
        }
    });
    for n in &run.notes {
        ui.colored_label(ui.visuals().warn_fg_color, format!("    {n}"));
    }
}

/// Characters of the first example shown at most (a long trace is cut in the middle).
const PREVIEW_CHARS: usize = 6000;

/// The data preview: counts, truncation by the block size, and the first example with the
/// tokens in the loss highlighted. Says when the form changed since it was made.
pub fn preview_ui(ui: &mut egui::Ui, t: &TrainState, form: &TrainSettings) {
    if t.previewing.is_some() {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Rendering the data…");
        });
        return;
    }
    let Some((key, r)) = &t.preview else { return };
    egui::CollapsingHeader::new("Data preview")
        .default_open(true)
        .show(ui, |ui| {
            if *key != preview_key(form) {
                ui.weak("The model, data, block size or loss mask changed since: preview again.");
            }
            let p = match r {
                Ok(p) => p,
                Err(e) => {
                    ui.colored_label(ui.visuals().error_fg_color, e.as_str());
                    return;
                }
            };
            ui.label(format!(
                "{} examples · {} tokens, {} in the loss · longest {} tokens (block size {})",
                p.examples, p.tokens, p.loss_tokens, p.longest, key.2
            ));
            if p.truncated > 0 {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    format!(
                        "{} of {} examples are longer than the block size and get truncated ({} tokens cut)",
                        p.truncated, p.examples, p.tokens_cut
                    ),
                );
            } else {
                ui.label("No example is truncated by the block size.");
            }
            let loss_bg = if ui.visuals().dark_mode {
                Color32::from_rgb(30, 70, 40)
            } else {
                Color32::from_rgb(200, 240, 205)
            };
            ui.horizontal(|ui| {
                ui.label(format!("First example (line {}); ", p.first_line));
                ui.label(egui::RichText::new("highlighted: in the loss").background_color(loss_bg));
            });
            let mut job = LayoutJob::default();
            let total: usize = p.first.iter().map(|(s, _)| s.chars().count()).sum();
            let mut shown = 0;
            for (text, on) in &p.first {
                let room = PREVIEW_CHARS.saturating_sub(shown);
                let cut: String = text.chars().take(room).collect();
                shown += cut.chars().count();
                let mut fmt = TextFormat::simple(FontId::monospace(12.0), ui.visuals().text_color());
                if *on {
                    fmt.background = loss_bg;
                }
                job.append(&cut, 0.0, fmt);
                if room == 0 {
                    break;
                }
            }
            if total > shown {
                job.append(
                    &format!("\n… {} more characters", total - shown),
                    0.0,
                    TextFormat::simple(FontId::proportional(12.0), ui.visuals().weak_text_color()),
                );
            }
            egui::ScrollArea::vertical()
                .id_salt("train-preview")
                .max_height(260.0)
                .show(ui, |ui| ui.label(job));
        });
}
