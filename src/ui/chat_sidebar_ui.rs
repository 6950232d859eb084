//! The chat's sidebar (saved conversations: new, open, rename, delete, as LM Studio's) and the
//! presets box above the thinking controls (save, apply, delete).

use eframe::egui;

use super::chat_library::NEW_TITLE;
use super::chat_state::{ChatSettings, ChatState};
use super::command::{ChatCommand, CommandSender};

/// The list of conversations, the open one selected; Rename and Delete act on the open one.
pub fn conversations_ui(ui: &mut egui::Ui, state: &mut ChatState, tx: &CommandSender) {
    ui.heading("Conversations");
    if ui
        .add_enabled(!state.is_generating(), egui::Button::new("New conversation"))
        .clicked()
    {
        tx.send(ChatCommand::NewConversation);
    }
    ui.separator();
    let lib = &state.library;
    egui::ScrollArea::vertical()
        .id_salt("conversations")
        .max_height(ui.available_height() - 110.0)
        .show(ui, |ui| {
            if !lib.current_is_saved() {
                let _ = ui
                    .selectable_label(true, format!("{NEW_TITLE} (no message yet)"))
                    .on_hover_text("Saved once you send a message");
            }
            for c in &lib.saved {
                let open = c.id == lib.current;
                let r = ui
                    .selectable_label(open, c.title.as_str())
                    .on_hover_text(format!("{} turns", c.conversation.turns.len()));
                if r.clicked() && !open {
                    tx.send(ChatCommand::OpenConversation(c.id.clone()));
                }
            }
            if lib.store.is_some() && !lib.loaded {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.weak("Reading saved conversations…");
                });
            }
        });
    ui.separator();
    actions_ui(ui, state, tx);
    for p in &state.library.problems {
        ui.colored_label(ui.visuals().warn_fg_color, p.as_str());
    }
}

fn actions_ui(ui: &mut egui::Ui, state: &mut ChatState, tx: &CommandSender) {
    let id = state.library.current.clone();
    let saved = state.library.current_is_saved();
    if let Some(draft) = &mut state.rename_draft {
        let l = ui.label("Title");
        let r = ui.text_edit_singleline(draft).labelled_by(l.id);
        let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let title = draft.clone();
        let mut cancel = false;
        ui.horizontal(|ui| {
            if ui.button("Save title").clicked() || enter {
                tx.send(ChatCommand::RenameConversation { id, title });
            }
            cancel = ui.button("Cancel").clicked();
        });
        if cancel {
            state.rename_draft = None;
        }
        return;
    }
    if state.confirm_delete {
        ui.label(format!("Delete \"{}\"?", state.library.current_title()));
        ui.horizontal(|ui| {
            if ui.button("Delete for good").clicked() {
                tx.send(ChatCommand::DeleteConversation(id.clone()));
            }
            if ui.button("Keep it").clicked() {
                state.confirm_delete = false;
            }
        });
        return;
    }
    ui.horizontal(|ui| {
        if ui
            .add_enabled(saved, egui::Button::new("Rename"))
            .on_hover_text("Rename the open conversation")
            .clicked()
        {
            state.rename_draft = Some(state.library.current_title().to_string());
        }
        let deletable = saved && !state.is_generating();
        if ui
            .add_enabled(deletable, egui::Button::new("Delete"))
            .on_hover_text("Delete the open conversation (asks first)")
            .clicked()
        {
            state.confirm_delete = true;
        }
    });
}

/// Named presets of the thinking and sampling controls: one button per preset applies it; the
/// name field saves the current controls under it or deletes the preset of that name.
pub fn presets_ui(ui: &mut egui::Ui, state: &mut ChatState, settings: &ChatSettings, tx: &CommandSender) {
    ui.heading("Presets");
    if settings.presets.is_empty() {
        ui.weak("Save the controls below under a name to come back to them");
    }
    ui.horizontal_wrapped(|ui| {
        for p in &settings.presets {
            if ui
                .button(p.name.as_str())
                .on_hover_text("Apply this preset to the controls")
                .clicked()
            {
                tx.send(ChatCommand::ApplyPreset(p.name.clone()));
            }
        }
    });
    let l = ui.label("Preset name");
    ui.text_edit_singleline(&mut state.preset_name).labelled_by(l.id);
    let name = state.preset_name.trim().to_string();
    ui.horizontal(|ui| {
        if ui
            .add_enabled(!name.is_empty(), egui::Button::new("Save preset"))
            .on_hover_text("Save the thinking and sampling controls under this name")
            .clicked()
        {
            tx.send(ChatCommand::SavePreset(name.clone()));
        }
        let exists = settings.presets.iter().any(|p| p.name == name);
        if ui.add_enabled(exists, egui::Button::new("Delete preset")).clicked() {
            tx.send(ChatCommand::DeletePreset(name.clone()));
        }
    });
    ui.separator();
}
