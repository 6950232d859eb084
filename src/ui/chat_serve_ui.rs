//! The serve panel under the Chat view's model bar: port, Start/Stop, the URL and ready-to-run
//! `curl` and `openai` examples (each with Copy), and the log of the requests answered.

use eframe::egui::{self, RichText};

use super::chat_serve::{ServeState, ServeStatus};
use super::command::{AppCommand, ChatCommand, CommandSender};
use crate::serve::local::{curl_example, python_example, APP_LIMITS};

/// Draws the panel; `loaded`: a model is loaded (serving needs one).
pub fn serve_panel_ui(ui: &mut egui::Ui, s: &mut ServeState, loaded: bool, tx: &CommandSender) {
    ui.separator();
    ui.horizontal(|ui| {
        ui.strong("Serve on localhost");
        let running = s.is_running();
        let l = ui.label("Port");
        ui.add_enabled(
            !running,
            egui::TextEdit::singleline(&mut s.port_input).desired_width(56.0),
        )
        .labelled_by(l.id)
        .on_hover_text("0 takes any free port");
        if running {
            if ui.button("Stop serving").clicked() {
                tx.send(ChatCommand::ServeStop);
            }
        } else if ui
            .add_enabled(loaded, egui::Button::new("Start serving"))
            .on_disabled_hover_text("load a model first")
            .clicked()
        {
            tx.send(ChatCommand::ServeStart);
        }
        ui.weak(format!(
            "OpenAI API on 127.0.0.1 only · {} requests at once · max_tokens up to {}",
            APP_LIMITS.parallel, APP_LIMITS.max_tokens_limit
        ));
    });
    match &s.status {
        ServeStatus::Off => {
            ui.weak("Off. The chat's model is shared with the server, not loaded twice.");
        }
        ServeStatus::Starting => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("starting…");
            });
        }
        ServeStatus::Failed(e) => {
            ui.colored_label(ui.visuals().error_fg_color, format!("Could not serve: {e}"));
        }
        ServeStatus::Ended(why) => {
            ui.weak(why);
        }
        ServeStatus::Listening { url, model } => listening_ui(ui, s, url, model, tx),
    }
}

fn listening_ui(ui: &mut egui::Ui, s: &ServeState, url: &str, model: &str, tx: &CommandSender) {
    let base = format!("{url}/v1");
    ui.horizontal(|ui| {
        ui.label("Serving");
        ui.strong(model);
        ui.label("at");
        ui.monospace(&base);
        if ui.small_button("Copy URL").clicked() {
            tx.send(AppCommand::Copy(base.clone()));
        }
    });
    let curl = curl_example(url, model);
    let python = python_example(url, model);
    egui::CollapsingHeader::new("Examples")
        .id_salt("serve_examples")
        .default_open(true)
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                if ui.small_button("Copy curl").clicked() {
                    tx.send(AppCommand::Copy(curl.clone()));
                }
                if ui.small_button("Copy Python").clicked() {
                    tx.send(AppCommand::Copy(python.clone()));
                }
                ui.weak("thinking: max_thinking_tokens, min_thinking_tokens, thinking_n_ignore, reasoning_effort");
            });
            egui::ScrollArea::horizontal().id_salt("serve_curl").show(ui, |ui| {
                ui.add(egui::Label::new(RichText::new(&curl).monospace().small()).extend());
            });
        });
    ui.label(format!("Requests ({})", s.log.len()));
    egui::ScrollArea::vertical()
        .id_salt("serve_log")
        .max_height(90.0)
        .stick_to_bottom(true)
        .show(ui, |ui| {
            if s.log.is_empty() {
                ui.weak("none yet");
            }
            for line in &s.log {
                let text = RichText::new(line.to_string()).monospace().small();
                if line.status >= 400 {
                    ui.colored_label(ui.visuals().warn_fg_color, text);
                } else {
                    ui.label(text);
                }
            }
        });
}
