//! What a path's field shows when its file dialog could not open (the message comes from
//! [`super::background::file_dialog_or`]'s failure callback): the message beside the field in the
//! error colour, and the field takes the focus once, so the path can be typed at once. The
//! workspace field, the Train view's paths and Chat's model path share it.

use eframe::egui;

/// Gives `r` the focus when `focus` is set, and clears it (the focus is asked for once).
pub fn focus_once(r: &egui::Response, focus: &mut bool) {
    if std::mem::take(focus) {
        r.request_focus();
    }
}

/// Gives `r` the focus when `focus` names `which` (the field's path), and clears it.
pub fn focus_when<T: PartialEq>(r: &egui::Response, focus: &mut Option<T>, which: T) {
    if focus.as_ref() == Some(&which) {
        r.request_focus();
        *focus = None;
    }
}

/// The message beside the field, if any.
pub fn note_ui(ui: &mut egui::Ui, msg: Option<&str>) {
    if let Some(m) = msg {
        ui.colored_label(ui.visuals().error_fg_color, m);
    }
}
