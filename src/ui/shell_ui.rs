//! The shell's own widgets, drawn from what the shell passes in: the view tabs (each with its
//! shortcut, and a dot while a job runs there, its progress in the tooltip), the shortcuts
//! themselves (never while a text field has the focus), the theme switch, and the footer's
//! readings of the machine (RAM, and GPU memory and utilisation where NVML can be read).

use eframe::egui::{self, Key, KeyboardShortcut, Modifiers, RichText};

use super::chat_state::ChatState;
use super::command::View;
use super::curate_state::CurateState;
use super::eval_state::{eta_text, EvalState};
use super::settings::Theme;
use super::system_monitor::SystemSample;
use super::train_state::TrainState;
use crate::model::device::{DeviceChoice, DeviceInfo};

/// Ctrl+1..4 (Cmd on macOS) open the views in tab order.
pub fn view_shortcut(v: View) -> KeyboardShortcut {
    let key = match v {
        View::Curate => Key::Num1,
        View::Train => Key::Num2,
        View::Chat => Key::Num3,
        View::Evaluate => Key::Num4,
    };
    KeyboardShortcut::new(Modifiers::COMMAND, key)
}

/// The view whose shortcut was pressed this frame (the key is consumed). None while a text
/// field has the focus: there the keys belong to the typing.
pub fn view_from_shortcut(ctx: &egui::Context) -> Option<View> {
    if ctx.text_edit_focused() {
        return None;
    }
    ctx.input_mut(|i| View::ALL.into_iter().find(|v| i.consume_shortcut(&view_shortcut(*v))))
}

/// What runs in `view` now, as its tab's tooltip says it ("Training: step 3 of 10 · about
/// 12 s left"); None when nothing runs there.
pub fn job_line(
    view: View,
    train: &TrainState,
    eval: &EvalState,
    curate: &CurateState,
    chat: &ChatState,
) -> Option<String> {
    match view {
        View::Train => train.is_running().then(|| match train.records.last() {
            Some(r) => format!(
                "Training: step {} of {} · {}",
                r.step,
                r.total_steps,
                eta_text(std::time::Duration::from_secs_f64(r.remaining.max(0.0)))
            ),
            None => "Training: starting (reading the data, loading the model)".into(),
        }),
        View::Evaluate => eval.is_running().then(|| {
            let mut s = match eval.progress {
                Some(p) => format!("Evaluating: {} of {} samples", p.done, p.total),
                None => "Evaluating: starting".into(),
            };
            if let Some(eta) = eval.eta() {
                s += &format!(" · {}", eta_text(eta));
            }
            s
        }),
        View::Curate => curate.is_running().then(|| {
            let step = curate.running.unwrap_or("a step");
            match curate.progress {
                (done, total) if total > 0 => format!("Curating: {step}, {done} of {total}"),
                _ => format!("Curating: {step}"),
            }
        }),
        View::Chat => chat.is_generating().then(|| "Generating a reply".to_string()),
    }
}

/// One view's tab: "Train", or "Train •" while `job` runs there; the tooltip gives the
/// shortcut and the job. True when clicked.
pub fn view_tab_ui(ui: &mut egui::Ui, view: View, selected: bool, job: Option<&str>) -> bool {
    let shortcut = ui.ctx().format_shortcut(&view_shortcut(view));
    let mut tip = format!("{} ({shortcut})", view.label());
    let r = match job {
        Some(job) => {
            tip = format!("{tip}\n{job}: click to go there");
            let mut text = egui::text::LayoutJob::default();
            let style = ui.style().clone();
            let font = egui::FontSelection::Style(egui::TextStyle::Button);
            RichText::new(format!("{} ", view.label())).append_to(&mut text, &style, font.clone(), egui::Align::Center);
            let size = egui::TextStyle::Button.resolve(&style).size * 1.5;
            // Larger than the text, but on the text's line height: the tab bar keeps its height.
            let line = ui.text_style_height(&egui::TextStyle::Button);
            RichText::new("•")
                .size(size)
                .line_height(Some(line))
                .color(ui.visuals().warn_fg_color)
                .append_to(&mut text, &style, font, egui::Align::Center);
            ui.selectable_label(selected, text)
        }
        None => ui.selectable_label(selected, view.label()),
    };
    r.on_hover_text(tip).clicked()
}

/// The light/dark switch (and "follow the desktop"), a small "Theme" menu in the footer;
/// changes `theme` in place.
pub fn theme_switch_ui(ui: &mut egui::Ui, theme: &mut Theme) {
    egui::ComboBox::new("theme", "Theme")
        .selected_text(theme.label())
        .show_ui(ui, |ui| {
            for t in Theme::ALL {
                let tip = match t {
                    Theme::System => "Light or dark as the desktop is set (dark where it says nothing)",
                    Theme::Light => "Dark text on a light background",
                    Theme::Dark => "Light text on a dark background",
                };
                ui.selectable_value(theme, t, t.label()).on_hover_text(tip);
            }
        })
        .response
        .on_hover_text("Light, dark, or as the desktop is set; kept for the next start");
}

/// Why the footer shows no GPU.
fn no_gpu_reason(sample: Option<&SystemSample>, devices: &[DeviceInfo]) -> String {
    let cuda = devices.iter().any(|d| d.choice != DeviceChoice::Cpu);
    if !cfg!(feature = "cuda") {
        "This build has no CUDA support (built without `--features cuda`): everything runs on the CPU.".into()
    } else if devices.is_empty() {
        "The devices are still being listed.".into()
    } else if !cuda {
        "No CUDA device was found (no NVIDIA GPU, or its driver is missing).".into()
    } else {
        match sample.map(|s| &s.gpus) {
            None => "The GPU has not been read yet.".into(),
            Some(Err(e)) => format!("GPU memory and utilisation cannot be shown: {e}."),
            Some(Ok(_)) => "NVML lists no GPU.".into(),
        }
    }
}

/// The footer's machine readings: RAM always; each GPU's memory and utilisation where this
/// build uses CUDA and NVML can be read, else "No GPU" with the reason in its tooltip.
pub fn machine_ui(ui: &mut egui::Ui, sample: Option<&SystemSample>, failed: Option<&str>, devices: &[DeviceInfo]) {
    let cuda = devices.iter().any(|d| d.choice != DeviceChoice::Cpu);
    let gpus = sample
        .and_then(|s| s.gpus.as_ref().ok())
        .filter(|g| cuda && !g.is_empty());
    match gpus {
        Some(gpus) => {
            for g in gpus.iter().rev() {
                ui.label(g.text()).on_hover_text(format!(
                    "{}: memory in use of its total (every process's), and the share of the last \
                     second a kernel ran; read through NVML every second",
                    g.name
                ));
            }
        }
        None => {
            ui.weak("No GPU").on_hover_text(no_gpu_reason(sample, devices));
        }
    }
    ui.separator();
    match (sample, failed) {
        (Some(s), _) => {
            ui.label(s.ram_text()).on_hover_text(
                "This app's resident memory, and the system's memory in use of its total; read every second",
            );
        }
        (None, Some(e)) => {
            ui.weak("RAM: not read").on_hover_text(e);
        }
        (None, None) => {
            ui.weak("RAM: reading…");
        }
    }
}
