//! The chat view: model bar, the saved conversations on the left, the conversation with
//! thinking set apart, input, and the presets and controls on the right. Esc stops a
//! generation, as the Stop button does.

use eframe::egui::{self, Color32, RichText};

use std::path::PathBuf;

use super::chat_serve_ui::serve_panel_ui;
use super::chat_sidebar_ui::{conversations_ui, presets_ui};
use super::chat_state::{ChatSettings, ChatState, ModelStatus, SendKey};
use super::command::{AppCommand, ChatCommand, Command, CommandSender, LibraryCommand};
use super::device_picker_ui::device_picker_ui;
use super::dialog_note_ui;
use super::thinking_controls_ui::thinking_controls_ui;
use crate::generate::conversation::{stable_chunks, AssistantTurn, SegmentKind, Turn};
use crate::generate::StopReason;

/// What the chat view draws and edits.
pub struct ChatView<'a> {
    pub state: &'a mut ChatState,
    pub settings: &'a mut ChatSettings,
    pub recent_models: &'a [PathBuf],
    pub model: &'a ModelStatus,
    pub devices: &'a [crate::model::device::DeviceInfo],
    pub tx: &'a CommandSender,
}

pub fn chat_view_ui(ui: &mut egui::Ui, mut v: ChatView<'_>) {
    if v.state.is_generating() && ui.input(|i| i.key_pressed(egui::Key::Escape)) {
        v.tx.send(ChatCommand::Stop);
    }
    egui::Panel::top("model_bar").show(ui, |ui| model_bar_ui(ui, &mut v));
    egui::Panel::left("conversations")
        .resizable(true)
        .default_size(190.0)
        .show(ui, |ui| conversations_ui(ui, v.state, v.tx));
    egui::Panel::right("thinking_controls")
        .resizable(true)
        .default_size(290.0)
        .show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                presets_ui(ui, v.state, v.settings, v.tx);
                thinking_controls_ui(ui, v.settings);
            });
        });
    egui::Panel::bottom("chat_input").show(ui, |ui| input_ui(ui, &mut v));
    egui::CentralPanel::default().show(ui, |ui| {
        if matches!(v.model, ModelStatus::Loaded(_)) || !v.state.conversation.turns.is_empty() {
            conversation_ui(ui, &v);
        } else {
            empty_state_ui(ui, &v);
        }
    });
}

fn model_bar_ui(ui: &mut egui::Ui, v: &mut ChatView<'_>) {
    ui.horizontal(|ui| {
        if ui.button("Open model folder…").clicked() {
            v.tx.send(ChatCommand::PickModelFolder);
        }
        if ui.button("Open GGUF file…").clicked() {
            v.tx.send(ChatCommand::PickModelFile);
        }
        if ui.button("Model library…").clicked() {
            v.tx.send(LibraryCommand::Open);
        }
        let l = ui.label("Path");
        let r = ui
            .add(
                egui::TextEdit::singleline(&mut v.state.path_input)
                    .desired_width(260.0)
                    .hint_text("model folder or .gguf"),
            )
            .labelled_by(l.id);
        dialog_note_ui::focus_once(&r, &mut v.state.focus_path);
        let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if ui.button("Load").clicked() || enter {
            let p = v.state.path_input.trim();
            if !p.is_empty() {
                v.tx.send(ChatCommand::OpenModel(p.into()));
            }
        }
        device_picker_ui(ui, "chat", &mut v.settings.device, v.devices);
        let serving = if v.state.serve.is_running() {
            "Serve on localhost ●"
        } else {
            "Serve on localhost"
        };
        ui.toggle_value(&mut v.state.serve.open, serving)
            .on_hover_text("the loaded model behind an OpenAI-compatible API on 127.0.0.1, with min and max thinking");
        let recent = v.recent_models;
        if !recent.is_empty() {
            egui::ComboBox::from_label("Recent models")
                .selected_text(format!("{} opened before", recent.len()))
                .show_ui(ui, |ui| {
                    for p in recent {
                        if ui.selectable_label(false, p.display().to_string()).clicked() {
                            v.tx.send(ChatCommand::OpenModel(p.clone()));
                        }
                    }
                });
        }
    });
    dialog_note_ui::note_ui(ui, v.state.dialog_error.as_deref());
    if v.state.serve.open {
        let loaded = matches!(v.model, ModelStatus::Loaded(_));
        serve_panel_ui(ui, &mut v.state.serve, loaded, v.tx);
    }
    match v.model {
        ModelStatus::Loading { fraction, stage, .. } => {
            ui.add(egui::ProgressBar::new(*fraction).text(stage.as_str()));
        }
        ModelStatus::Failed { path, error } => {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!("Could not load {}: {error}", path.display()),
            );
        }
        ModelStatus::Loaded(info) if info.template_is_fallback => {
            ui.weak("This model ships no chat template: plain ChatML is used.");
        }
        _ => {}
    }
}

fn empty_state_ui(ui: &mut egui::Ui, v: &ChatView<'_>) {
    ui.vertical_centered(|ui| {
        ui.add_space(60.0);
        ui.heading("Open a model to start chatting");
        ui.add_space(8.0);
        ui.label("A Hugging Face folder (config.json, model.safetensors, tokenizer.json), or a single .gguf file.");
        ui.label("Drop either onto this window, use the buttons above, or paste a path.");
        ui.add_space(8.0);
        ui.label("No model at hand?");
        if ui
            .button("Get the demo model (98 MB)")
            .on_hover_text("SmolLM2-135M-Instruct Q4_1, opened with a suggested prompt and a thinking budget")
            .clicked()
        {
            v.tx.send(LibraryCommand::FetchDemo);
        }
        if ui.button("Download from Hugging Face…").clicked() {
            v.tx.send(LibraryCommand::Open);
        }
        if let Some(p) = v.recent_models.first() {
            ui.add_space(8.0);
            if ui.button(format!("Open {}", p.display())).clicked() {
                v.tx.send(ChatCommand::OpenModel(p.clone()));
            }
        }
        if ui.input(|i| !i.raw.hovered_files.is_empty()) {
            ui.add_space(8.0);
            ui.strong("Drop to open");
        }
    });
}

fn conversation_ui(ui: &mut egui::Ui, v: &ChatView<'_>) {
    let last = v.state.conversation.turns.len().saturating_sub(1);
    let generating = v.state.is_generating();
    let mut commands = Vec::new();
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .stick_to_bottom(true)
        .show(ui, |ui| {
            if v.state.conversation.turns.is_empty() && matches!(v.model, ModelStatus::Loaded(_)) {
                ui.add_space(24.0);
                ui.vertical_centered(|ui| {
                    ui.weak("Ask something below. The thinking appears first, in a dim block, then the answer.");
                    ui.weak(
                        "Move \"Maximum thinking tokens\" to cut the thinking short, or raise \"Waits\" and \
                         \"Minimum thinking tokens\" to make the model think longer (budget forcing).",
                    );
                });
            }
            for (i, turn) in v.state.conversation.turns.iter().enumerate() {
                match turn {
                    Turn::User(text) => user_turn_ui(ui, text),
                    Turn::Assistant(a) => {
                        let live = generating && i == last;
                        assistant_turn_ui(ui, i, a, live, &mut commands);
                    }
                }
                ui.add_space(6.0);
            }
            if let Some(e) = &v.state.error {
                ui.colored_label(ui.visuals().error_fg_color, e.as_str());
            }
        });
    for c in commands {
        v.tx.send(c);
    }
}

fn user_turn_ui(ui: &mut egui::Ui, text: &str) {
    egui::Frame::new()
        .fill(ui.visuals().faint_bg_color)
        .corner_radius(6)
        .inner_margin(8)
        .show(ui, |ui| {
            ui.strong("You");
            ui.label(text);
        });
}

/// Thinking in a dim, framed, collapsible block; injected ignore strings highlighted; the forced
/// end marked; the answer below; figures and actions under it.
fn assistant_turn_ui(ui: &mut egui::Ui, index: usize, a: &AssistantTurn, live: bool, commands: &mut Vec<Command>) {
    let dark = ui.visuals().dark_mode;
    let think_fg = if dark {
        Color32::from_gray(150)
    } else {
        Color32::from_gray(100)
    };
    let inject_fg = if dark {
        Color32::from_rgb(255, 190, 80)
    } else {
        Color32::from_rgb(170, 90, 0)
    };
    let forced_fg = ui.visuals().error_fg_color;
    let has_thinking = !a.thinking.is_empty() || a.thinking_tokens > 0;
    if has_thinking {
        let header = if live && a.answer.is_empty() && a.forced_end_at.is_none() {
            format!("Thinking… {} tokens", a.thinking_tokens)
        } else {
            format!("Thinking ({} tokens)", a.thinking_tokens)
        };
        egui::CollapsingHeader::new(RichText::new(header).color(think_fg))
            .id_salt(("thinking", index))
            .default_open(true)
            .show(ui, |ui| {
                egui::Frame::new()
                    .fill(if dark {
                        Color32::from_gray(28)
                    } else {
                        Color32::from_gray(240)
                    })
                    .corner_radius(4)
                    .inner_margin(8)
                    .show(ui, |ui| {
                        ui.horizontal_wrapped(|ui| {
                            ui.spacing_mut().item_spacing.x = 0.0;
                            for seg in &a.thinking {
                                match seg.kind {
                                    SegmentKind::Model => {
                                        // Pieces with fixed boundaries: egui caches the layout of
                                        // each finished piece, so a long trace stays cheap.
                                        for piece in stable_chunks(&seg.text, 1024) {
                                            ui.label(RichText::new(piece).italics().color(think_fg));
                                        }
                                    }
                                    SegmentKind::Injected => {
                                        ui.label(RichText::new(format!("«{}»", seg.text)).strong().color(inject_fg))
                                            .on_hover_text("Injected by budget forcing in place of an end of thinking");
                                    }
                                }
                            }
                        });
                        if let Some(at) = a.forced_end_at {
                            ui.label(
                                RichText::new(format!("— budget reached: end of thinking forced at {at} tokens"))
                                    .strong()
                                    .color(forced_fg),
                            );
                        }
                    });
            });
    }
    if !a.answer.is_empty() || !live {
        ui.label(a.answer.trim_start());
    }
    if let Some(e) = &a.error {
        ui.colored_label(ui.visuals().error_fg_color, e.as_str());
    }
    ui.horizontal(|ui| {
        let mut figures = format!(
            "thinking {} · answer {} tokens · {:.1} tokens/s",
            a.thinking_tokens, a.answer_tokens, a.tokens_per_s
        );
        if let Some(t) = a.first_token_s {
            figures.push_str(&format!(" · first token {t:.2} s"));
        }
        figures.push_str(&format!(" · {}", a.waits_label()));
        if a.forced_end_at.is_some() {
            figures.push_str(" · forced end");
        }
        match a.stop_reason {
            Some(StopReason::Cancelled) => figures.push_str(" · stopped"),
            Some(StopReason::MaxTokens) => figures.push_str(" · hit max new tokens"),
            _ => {}
        }
        ui.weak(figures);
        ui.weak(format!("[{}]", a.budget_label));
        if !live && ui.small_button("Copy").clicked() {
            let mut text = a.answer.trim().to_string();
            if !a.thinking.is_empty() {
                text = format!("<thinking>\n{}\n</thinking>\n{text}", a.thinking_text());
            }
            commands.push(AppCommand::Copy(text).into());
        }
    });
}

fn input_ui(ui: &mut egui::Ui, v: &mut ChatView<'_>) {
    let loaded = matches!(v.model, ModelStatus::Loaded(_));
    let generating = v.state.is_generating();
    let id = ui.make_persistent_id("chat_input");
    let focused = ui.memory(|m| m.has_focus(id));
    let send_key = v.settings.send_key;
    // Take the send key before the text box turns it into a newline.
    let mut send = false;
    if focused && !generating {
        send = ui.input_mut(|i| match send_key {
            SendKey::Enter => i.consume_key(egui::Modifiers::NONE, egui::Key::Enter),
            SendKey::CtrlEnter => i.consume_key(egui::Modifiers::COMMAND, egui::Key::Enter),
        });
    }
    ui.add_space(4.0);
    let label = ui.label("Message");
    ui.add(
        egui::TextEdit::multiline(&mut v.state.input)
            .id(id)
            .desired_rows(2)
            .desired_width(f32::INFINITY)
            .hint_text(if loaded {
                "Ask something…"
            } else {
                "Load a model first"
            }),
    )
    .labelled_by(label.id);
    ui.horizontal(|ui| {
        if generating {
            if ui.button("Stop").on_hover_text("Esc").clicked() {
                v.tx.send(ChatCommand::Stop);
            }
            if v.state.is_thinking()
                && ui
                    .button("Answer now")
                    .on_hover_text("End the thinking here: the answer delimiter and \"Final Answer:\" follow")
                    .clicked()
            {
                v.tx.send(ChatCommand::AnswerNow);
            }
        } else if ui.add_enabled(loaded, egui::Button::new("Send")).clicked() {
            send = true;
        }
        let can_regen = loaded && !generating && matches!(v.state.conversation.turns.last(), Some(Turn::Assistant(_)));
        if ui
            .add_enabled(can_regen, egui::Button::new("Regenerate"))
            .on_hover_text("Again, with the current budget")
            .clicked()
        {
            v.tx.send(ChatCommand::Regenerate);
        }
        if ui.button("Clear conversation").clicked() {
            v.tx.send(ChatCommand::Clear);
        }
        ui.weak(match send_key {
            SendKey::Enter => "Enter sends · Shift+Enter new line · Esc stops",
            SendKey::CtrlEnter => "Ctrl+Enter sends · Enter new line · Esc stops",
        });
    });
    if send && loaded {
        v.tx.send(ChatCommand::Send);
    }
}
