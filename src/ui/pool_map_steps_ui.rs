//! Step 6 of the Curate view's steps panel: the map's step (which vectors: TF-IDF, the loaded
//! model or a model file), its progress, and the switch between the pool's table and its map;
//! and the map panel's switch between the embedders the workspace holds vectors of.

use std::path::Path;

use eframe::egui;

use super::command::{CommandSender, CurateCommand};
use super::curate_form::{CurateForm, MapVectors};
use super::curate_pick::StepResult;
use super::curate_state::CurateState;
use super::curate_table_ui::result_label;
use crate::curate::backend::local_name;
use crate::curate::steps::map::{MapEmbedder, MapOptions};
use crate::curate::steps::report::thousands;
use crate::curate::steps::Step;

/// The map's button label (its step's result is shown under it).
pub const MAP_BUTTON: &str = "Draw the map";

/// What the map's button does, for its hover text.
const MAP_HINT: &str = "vectors of the questions without one (the chosen embedder), then the layout when they changed (seed 0); a model's map replaces TF-IDF's on screen";

/// Step 6: the choice of vectors, the map's step, and the table/map switch.
pub fn map_steps_ui(
    ui: &mut egui::Ui,
    st: &mut CurateState,
    form: &mut CurateForm,
    loaded: Option<&Path>,
    running: bool,
    tx: &CommandSender,
) {
    ui.separator();
    ui.heading("6. Map");
    ui.horizontal(|ui| {
        let label = ui.label("Vectors");
        let shown = match (form.map_embedder, loaded) {
            (MapVectors::LoadedModel, Some(p)) => format!("Loaded model ({})", local_name(p)),
            (v, _) => v.label().to_string(),
        };
        egui::ComboBox::from_id_salt("map-vectors")
            .selected_text(shown)
            .show_ui(ui, |ui| {
                for v in MapVectors::ALL {
                    ui.selectable_value(&mut form.map_embedder, v, v.label());
                }
            })
            .response
            .labelled_by(label.id)
            .on_hover_text("TF-IDF: instant, by shared words; a model: the mean of its last hidden states (256 tokens of each question), by meaning, minutes on a CPU; the model loaded in Chat is shared, not loaded again");
    });
    if form.map_embedder == MapVectors::ModelPath {
        ui.horizontal(|ui| {
            let l = ui.label("Map model");
            ui.add(egui::TextEdit::singleline(&mut form.map_model).desired_width(170.0))
                .labelled_by(l.id)
                .on_hover_text("a Hugging Face folder or a .gguf; runs on the device of step 3's local model");
        });
    }
    ui.horizontal(|ui| {
        let label = if st.map.shown { "Show the table" } else { "Show the map" };
        if ui
            .button(label)
            .on_hover_text("every question as a point: what the pool covers and where the selection sits")
            .clicked()
        {
            st.map.shown = !st.map.shown;
        }
        draw_button_ui(ui, st, form.map_request(loaded), running, tx);
    });
    map_progress_ui(ui, st);
    if let Some(r) = st.results.get(MAP_BUTTON) {
        result_label(ui, r);
    }
}

/// The map step's progress while it runs (questions embedded, then laid out).
pub fn map_progress_ui(ui: &mut egui::Ui, st: &CurateState) {
    if st.running_from == Some(MAP_BUTTON) {
        let (d, t) = st.progress;
        ui.add(
            egui::ProgressBar::new(if t > 0 { d as f32 / t as f32 } else { 0.0 })
                .text(format!("map: {} / {} questions", thousands(d), thousands(t)))
                .desired_width(260.0),
        );
    }
}

/// Starts the map step as `request` says, or shows why it cannot.
pub fn draw_button_ui(
    ui: &mut egui::Ui,
    st: &mut CurateState,
    request: Result<Step, String>,
    running: bool,
    tx: &CommandSender,
) {
    if ui
        .add_enabled(!running, egui::Button::new(MAP_BUTTON))
        .on_hover_text(MAP_HINT)
        .clicked()
    {
        match request {
            Ok(step) => {
                tx.send(CurateCommand::Start {
                    step: Box::new(step),
                    button: MAP_BUTTON,
                });
            }
            Err(message) => {
                st.results.insert(MAP_BUTTON, StepResult::failed(&message, Vec::new()));
                st.error = Some(message);
            }
        }
    }
}

/// The map's switch between the embedders the workspace holds vectors of (each with its question
/// count): choosing one runs the map step on its stored vectors on the curation thread, which
/// shows its stored layout or, when there is none yet, lays them out first (the progress bar
/// above the map); this thread only sends the step.
pub fn embedder_switch_ui(ui: &mut egui::Ui, st: &CurateState, width: f32, tx: &CommandSender) {
    let Some(snap) = &st.snapshot else { return };
    if snap.embedders.iter().all(|e| e.vectors == 0) {
        return;
    }
    let shown = snap.map.as_ref().map_or("", |m| m.embedder.as_str());
    let mut chosen: Option<(String, u64)> = None;
    ui.add_enabled_ui(!st.is_running(), |ui| {
        let label = ui.label("Embedder");
        egui::ComboBox::from_id_salt("map-embedder")
            .selected_text(shown)
            .width(width)
            .truncate()
            .show_ui(ui, |ui| {
                for e in snap.embedders.iter().filter(|e| e.vectors > 0) {
                    if ui.selectable_label(e.name == shown, e.describe()).clicked() && e.name != shown {
                        chosen = Some((e.name.clone(), e.seed()));
                    }
                }
            })
            .response
            .labelled_by(label.id)
            .on_hover_text("the stored vectors the map is laid out from: TF-IDF's, or a model's (step 6 makes them); one not laid out yet is laid out when chosen");
    });
    if let Some((name, seed)) = chosen {
        tx.send(CurateCommand::Start {
            step: Box::new(Step::Map(MapOptions {
                embedder: MapEmbedder::Stored(name),
                seed,
                ..MapOptions::default()
            })),
            button: MAP_BUTTON,
        });
    }
}
