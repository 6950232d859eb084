//! The desktop app (egui/eframe on wgpu). The only module that knows egui.

pub mod app;
pub mod chat_ui;
pub mod empty_views;
pub mod settings;
pub mod thinking_controls_ui;

pub use app::{Command, ModelStatus, StudioApp};
pub use settings::Settings;

/// Opens the studio window.
pub fn run_app() -> anyhow::Result<()> {
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
            let settings = StudioApp::load_settings(cc.storage);
            let ctx = cc.egui_ctx.clone();
            let app = StudioApp::new(settings, std::sync::Arc::new(move || ctx.request_repaint()))?;
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("could not open the window: {e}"))
}
