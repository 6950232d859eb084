//! The desktop app (egui/eframe on wgpu). The only module that knows egui.

//!
//! Layers inside: `command` (what views ask for) and `background` (one-off threads) at the
//! bottom; each view's `*_state.rs` (state, persisted form, logic) under its `*_ui.rs` (drawing);
//! `settings` gathers the forms; `app` is the shell over all of them. No view file imports `app`.

pub mod app;
pub mod background;
pub mod chat_library;
pub mod chat_serve;
pub mod chat_serve_ui;
pub mod chat_settings;
pub mod chat_sidebar_ui;
pub mod chat_state;
pub mod chat_store;
pub mod chat_ui;
pub mod command;
pub mod curate_form;
pub mod curate_pick;
pub mod curate_state;
pub mod curate_table_ui;
pub mod curate_ui;
pub mod device_picker_ui;
pub mod dialog_note_ui;
pub mod eval_state;
pub mod eval_ui;
pub mod first_run;
pub mod model_library_state;
pub mod model_library_ui;
pub mod pool_map_colours;
pub mod pool_map_density;
pub mod pool_map_gpu;
pub mod pool_map_splat;
pub mod pool_map_state;
pub mod pool_map_steps_ui;
pub mod pool_map_ui;
pub mod settings;
pub mod shell_ui;
pub mod system_monitor;
pub mod thinking_controls_ui;
pub mod train_export_ui;
pub mod train_memory_ui;
pub mod train_runs_ui;
pub mod train_state;
pub mod train_ui;

pub use app::StudioApp;
pub use chat_state::ModelStatus;
pub use command::{AppCommand, ChatCommand, Command, CurateCommand, EvalCommand, LibraryCommand, TrainCommand};
pub use settings::Settings;

/// What to do when the window opens (from `s1-studio ui --model … --view …`).
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    pub model: Option<std::path::PathBuf>,
    pub view: Option<String>,
    pub workspace: Option<std::path::PathBuf>,
}

/// Opens the studio window.
pub fn run_app(start: StartOptions) -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        renderer: eframe::Renderer::Wgpu,
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("s1-studio")
            .with_inner_size([1280.0, 820.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        "s1-studio",
        options,
        Box::new(|cc| {
            let mut settings = StudioApp::load_settings(cc.storage);
            cc.egui_ctx.set_theme(settings.theme.preference());
            if let Some(v) = start.view.as_deref().and_then(settings::View::parse) {
                settings.view = v;
            }
            if let Some(w) = start.workspace {
                settings.workspace = Some(w);
            }
            let ctx = cc.egui_ctx.clone();
            let mut app = StudioApp::new(settings, std::sync::Arc::new(move || ctx.request_repaint()))?;
            if let Some(dir) = eframe::storage_dir("s1-studio") {
                app.command(ChatCommand::SetConversationsDir(dir.join("conversations")));
            }
            if let Some(m) = start.model {
                if start.view.is_none() {
                    app.settings.view = settings::View::Chat;
                }
                app.command(ChatCommand::OpenModel(m));
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("could not open the window: {e}"))
}

#[cfg(test)]
mod tests {
    /// The layers inside `ui`: no file but `mod.rs` imports the shell (`app`), and `command`,
    /// the bottom, imports no other file of `ui`. (Text check over the sources, as the crate's
    /// layering test does between modules.)
    #[test]
    fn view_files_never_import_the_shell() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ui");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !name.ends_with(".rs") || name == "mod.rs" || name == "app.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for bad in ["super::app", "ui::app", "StudioApp"] {
                assert!(
                    !text.contains(bad),
                    "{name} mentions `{bad}`: views get their own state, not the app"
                );
            }
            if name == "command.rs" {
                assert!(!text.contains("use super::"), "command.rs is the bottom of ui");
            }
            checked += 1;
        }
        assert!(checked >= 12, "only {checked} files checked");
    }
}
