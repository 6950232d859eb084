//! The controls beside the chat input: thinking budget, Waits, sampling, system prompt.

use eframe::egui;

use super::chat_state::{ChatSettings, FormatChoice, SendKey};

/// The largest budget the slider offers; "unlimited" and "auto" sit past its end.
pub const MAX_BUDGET: u32 = 32_768;

pub fn thinking_controls_ui(ui: &mut egui::Ui, s: &mut ChatSettings) {
    ui.heading("Thinking");
    ui.checkbox(&mut s.thinking, "Thinking on");
    ui.add_enabled_ui(s.thinking, |ui| {
        ui.label("Maximum thinking tokens");
        ui.add_enabled(
            !s.max_unlimited && !s.max_auto,
            egui::Slider::new(&mut s.max_thinking, 0..=MAX_BUDGET)
                .logarithmic(true)
                .text("max"),
        );
        ui.horizontal(|ui| {
            if ui.checkbox(&mut s.max_unlimited, "Unlimited").changed() && s.max_unlimited {
                s.max_auto = false;
            }
            if ui
                .checkbox(&mut s.max_auto, "Auto")
                .on_hover_text("s1's rule: max new tokens minus delimiters minus 100 left for the answer")
                .changed()
                && s.max_auto
            {
                s.max_unlimited = false;
            }
        });
        ui.label("Minimum thinking tokens");
        let cap = if s.max_unlimited || s.max_auto {
            MAX_BUDGET
        } else {
            s.max_thinking
        };
        ui.add(
            egui::Slider::new(&mut s.min_thinking, 0..=cap.max(1))
                .logarithmic(true)
                .text("min"),
        );
        ui.horizontal(|ui| {
            let l = ui.label("Waits");
            ui.add(egui::DragValue::new(&mut s.waits).range(0..=64))
                .labelled_by(l.id)
                .on_hover_text(
                    "How many times an end of thinking is replaced by the ignore string (s1's thinking_n_ignore)",
                );
        });
        ui.horizontal(|ui| {
            let l = ui.label("Ignore string");
            ui.add(egui::TextEdit::singleline(&mut s.ignore_str).desired_width(120.0))
                .labelled_by(l.id)
                .on_hover_text(
                    "Empty: the end of thinking is dropped and the model goes on (s1 without an ignore string)",
                );
        });
        ui.checkbox(&mut s.cut_at_max, "Stop at the maximum after a wait")
            .on_hover_text(
                "Off (s1): after a wait, the model goes on past the maximum unseen until its round ends; the \
                 thinking is then cut at the maximum and ends as that round did. On: the end is forced at \
                 the maximum at once (faster, not s1's behaviour)",
            );
        ui.horizontal(|ui| {
            let l = ui.label("Final-answer prefix");
            ui.add(egui::TextEdit::singleline(&mut s.final_answer).desired_width(120.0))
                .labelled_by(l.id);
        });
        egui::ComboBox::from_label("Delimiters")
            .selected_text(match s.format {
                FormatChoice::Auto => "Auto",
                FormatChoice::S1 => "s1 (<|im_start|>think)",
                FormatChoice::ThinkTags => "<think> tags",
            })
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut s.format, FormatChoice::Auto, "Auto");
                ui.selectable_value(&mut s.format, FormatChoice::S1, "s1 (<|im_start|>think)");
                ui.selectable_value(&mut s.format, FormatChoice::ThinkTags, "<think> tags");
            });
    });
    if s.min_thinking > s.max_thinking && !s.max_unlimited && !s.max_auto {
        s.min_thinking = s.max_thinking;
    }

    ui.separator();
    ui.heading("Sampling");
    ui.add(egui::Slider::new(&mut s.temperature, 0.0..=2.0).text("temperature"));
    ui.add(egui::Slider::new(&mut s.top_p, 0.05..=1.0).text("top-p"));
    ui.horizontal(|ui| {
        let l = ui.label("Seed");
        ui.add(egui::DragValue::new(&mut s.seed)).labelled_by(l.id);
    });
    ui.horizontal(|ui| {
        let l = ui.label("Max new tokens");
        ui.add(egui::DragValue::new(&mut s.max_new_tokens).range(1..=131_072))
            .labelled_by(l.id);
    });

    ui.separator();
    ui.heading("System prompt");
    let l = ui.weak("Empty: the chat template's default");
    ui.add(egui::TextEdit::multiline(&mut s.system_prompt).desired_rows(3))
        .labelled_by(l.id);

    ui.separator();
    egui::ComboBox::from_label("Send with")
        .selected_text(match s.send_key {
            SendKey::Enter => "Enter",
            SendKey::CtrlEnter => "Ctrl+Enter",
        })
        .show_ui(ui, |ui| {
            ui.selectable_value(&mut s.send_key, SendKey::Enter, "Enter");
            ui.selectable_value(&mut s.send_key, SendKey::CtrlEnter, "Ctrl+Enter");
        });
}
