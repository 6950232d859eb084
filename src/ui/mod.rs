//! The desktop app (egui/eframe on wgpu). The only module that knows egui.

//!
//! Layers inside: `command` (what views ask for) and `background` (one-off threads) at the
//! bottom; each view's `*_state.rs` (state, persisted form, logic) under its `*_ui.rs` (drawing);
//! `settings` gathers the forms; `app` is the shell over all of them. No view file imports `app`.

pub mod app;
pub mod background;
pub mod chat_state;
pub mod chat_ui;
pub mod command;
pub mod curate_state;
pub mod curate_ui;
pub mod device_picker_ui;
pub mod eval_state;
pub mod eval_ui;
pub mod settings;
pub mod thinking_controls_ui;
pub mod train_state;
pub mod train_ui;

pub use app::StudioApp;
pub use chat_state::ModelStatus;
pub use command::{AppCommand, ChatCommand, Command, CurateCommand, EvalCommand, TrainCommand};
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
            if let Some(v) = start.view.as_deref().and_then(settings::View::parse) {
                settings.view = v;
            }
            if let Some(w) = start.workspace {
                settings.workspace = Some(w);
            }
            let ctx = cc.egui_ctx.clone();
            let mut app = StudioApp::new(settings, std::sync::Arc::new(move || ctx.request_repaint()))?;
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
