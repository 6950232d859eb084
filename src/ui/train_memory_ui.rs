//! The Train view's memory line: what the run will hold (weights, gradients, AdamW moments and
//! one micro-batch's activations, [`crate::train::memory::estimate`]) beside what the chosen
//! device has free, in red with the setting to lower when it does not fit, as the run itself
//! would refuse.

use eframe::egui;

use super::command::{CommandSender, TrainCommand};
use super::system_monitor::SystemSample;
use super::train_state::TrainState;
use crate::model::device::{DeviceChoice, DeviceInfo};
use crate::train::memory::estimate;
use crate::train::TrainSettings;

/// Bytes the chosen device has free: the system's available memory for the CPU; a GPU's free
/// memory from the footer's sampler, else from the device list read at start.
pub fn device_free(
    device: DeviceChoice,
    system: Option<&SystemSample>,
    devices: &[DeviceInfo],
) -> Option<(u64, String)> {
    match device {
        DeviceChoice::Cpu => system.map(|s| {
            (
                s.system_total.saturating_sub(s.system_used),
                "RAM available".to_string(),
            )
        }),
        DeviceChoice::Cuda(i) => {
            let sampled = system
                .and_then(|s| s.gpus.as_ref().ok())
                .and_then(|g| g.iter().find(|g| g.index as usize == i))
                .map(|g| g.total.saturating_sub(g.used));
            let listed = devices
                .iter()
                .find(|d| d.choice == device)
                .and_then(|d| d.memory)
                .map(|(free, _)| free);
            sampled.or(listed).map(|f| (f, format!("free on GPU {i}")))
        }
    }
}

/// Draws the line (asking for the model's config when it has not been read for this path).
pub fn memory_line_ui(
    ui: &mut egui::Ui,
    state: &TrainState,
    form: &TrainSettings,
    system: Option<&SystemSample>,
    devices: &[DeviceInfo],
    tx: &CommandSender,
) {
    if form.model.as_os_str().is_empty() {
        return;
    }
    let cfg = match &state.model_config {
        Some((p, r)) if *p == form.model => r,
        _ => {
            if state.reading_config.is_none() {
                tx.send(TrainCommand::ReadModelConfig);
            }
            ui.weak("Memory: reading the model's config…");
            return;
        }
    };
    let cfg = match cfg {
        Ok(c) => c,
        Err(e) => {
            ui.weak(format!("Memory: no estimate ({e})"));
            return;
        }
    };
    let e = estimate(cfg, form);
    let gb = |b: u64| b as f64 / 1e9;
    let need = format!("Memory ≈ {:.1} GB", gb(e.total()));
    let parts = format!(
        "{:.1} GB weights + gradients + AdamW moments, {:.1} GB activations of one micro-batch",
        gb(e.state),
        gb(e.activations)
    );
    match device_free(form.device, system, devices) {
        None => {
            ui.label(need)
                .on_hover_text(format!("{parts}; the device's free memory is not known yet"));
        }
        Some((free, what)) => match e.refusal(free, form) {
            None => {
                ui.label(format!("{need} · {:.1} GB {what}", gb(free)))
                    .on_hover_text(parts);
            }
            Some(why) => {
                ui.colored_label(
                    ui.visuals().error_fg_color,
                    format!("{need} · {:.1} GB {what}: will not fit", gb(free)),
                )
                .on_hover_text(parts);
                ui.colored_label(ui.visuals().error_fg_color, why);
            }
        },
    }
}
