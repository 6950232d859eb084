//! The device picker every view that loads a model shows: the devices listed at start (the CPU,
//! and each GPU with its name and free memory in a CUDA build), the chosen one kept in the view's
//! persisted form.

use eframe::egui;

use crate::model::device::{DeviceChoice, DeviceInfo};

/// A "Device" combo box over `devices`; true when the choice changed. Before the list has
/// arrived (or when the saved choice is not in it) the choice is shown as it is spelled.
pub fn device_picker_ui(ui: &mut egui::Ui, id_salt: &str, choice: &mut DeviceChoice, devices: &[DeviceInfo]) -> bool {
    let shown = devices
        .iter()
        .find(|d| d.choice == *choice)
        .map(DeviceInfo::label)
        .unwrap_or_else(|| choice.to_string());
    let before = *choice;
    egui::ComboBox::new(("device", id_salt), "Device")
        .selected_text(shown)
        .show_ui(ui, |ui| {
            if devices.is_empty() {
                ui.selectable_value(choice, DeviceChoice::Cpu, "cpu");
            }
            for d in devices {
                ui.selectable_value(choice, d.choice, d.label());
            }
        })
        .response
        .on_hover_text("Where the model runs (CUDA GPUs when this build has them)");
    *choice != before
}
