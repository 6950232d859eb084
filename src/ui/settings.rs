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
    /// The Evaluate view's form.
    pub eval: super::eval_state::EvalForm,
    /// The Curate view's form.
    pub curate: super::curate_state::CurateForm,
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
