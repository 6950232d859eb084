//! Views whose capabilities have not landed yet: an honest empty state, not a mock.

use eframe::egui;

fn empty_state_ui(ui: &mut egui::Ui, title: &str, body: &str, headless: &str) {
    egui::CentralPanel::default().show(ui, |ui| {
        ui.vertical_centered(|ui| {
            ui.add_space(80.0);
            ui.heading(title);
            ui.add_space(8.0);
            ui.label(body);
            ui.add_space(8.0);
            ui.weak(headless);
        });
    });
}

pub fn curate_ui(ui: &mut egui::Ui) {
    empty_state_ui(
        ui,
        "Curation is not built yet",
        "This view will take a question pool through the s1 funnel (quality, difficulty, length, domains) to a 1K set.",
        "Until then there is nothing to curate here; the engine and chat work today.",
    );
}
