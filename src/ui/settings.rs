//! What the user expects back next launch, persisted through eframe's storage: each view's form
//! (kept beside its view) gathered in one struct. Runtime handles (the worker, channels, the
//! conversation) live in the app shell, never here.

use std::path::PathBuf;

pub use super::chat_state::{ChatSettings, FormatChoice, SendKey};
pub use super::command::View;

/// Everything persisted between launches.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    pub view: View,
    /// The project folder (pools, runs and results land here).
    pub workspace: Option<PathBuf>,
    /// Most recent first.
    pub recent_models: Vec<PathBuf>,
    pub chat: ChatSettings,
    /// The Train view's form.
    pub train: crate::train::TrainSettings,
    /// Output folders of runs started from the Train view, oldest first.
    pub train_runs: Vec<PathBuf>,
    /// The Train view's Slurm login node over SSH.
    pub train_ssh: super::train_export_ui::SshForm,
    /// The Evaluate view's form.
    pub eval: super::eval_state::EvalForm,
    /// The Curate view's form.
    pub curate: super::curate_state::CurateForm,
    /// Light, dark, or as the desktop is (applied at start and when changed).
    pub theme: Theme,
}

/// The colour scheme the user chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Theme {
    /// As the desktop says (dark where it says nothing).
    #[default]
    System,
    Light,
    Dark,
}

impl Theme {
    pub const ALL: [Theme; 3] = [Theme::System, Theme::Light, Theme::Dark];

    pub fn label(self) -> &'static str {
        match self {
            Theme::System => "Follow system",
            Theme::Light => "Light",
            Theme::Dark => "Dark",
        }
    }

    /// egui's preference for this choice.
    pub fn preference(self) -> eframe::egui::ThemePreference {
        use eframe::egui::ThemePreference;
        match self {
            Theme::System => ThemePreference::System,
            Theme::Light => ThemePreference::Light,
            Theme::Dark => ThemePreference::Dark,
        }
    }
}

impl Settings {
    pub const RECENT_MAX: usize = super::chat_state::RECENT_MAX;
    pub const RUNS_MAX: usize = super::train_state::RUNS_MAX;

    pub fn remember_run(&mut self, out: PathBuf) {
        super::train_state::remember_run(&mut self.train_runs, out);
    }

    pub fn remember_model(&mut self, path: PathBuf) {
        super::chat_state::remember_model(&mut self.recent_models, path);
    }
}
