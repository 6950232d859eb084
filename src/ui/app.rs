//! The app shell: the views' states beside the persisted settings, one logic step per frame
//! before any drawing (worker events drained under a small time budget, queued commands carried
//! out, derived state refreshed), the navigation and status bars, the drawing dispatch to the
//! view on show, and `eframe::App`. Views never see this struct: each gets its own state, its
//! persisted form and a [`CommandSender`].

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use eframe::egui;

use super::background;
use super::chat_state::{self, ChatCx, ChatState, ModelStatus};
use super::chat_ui::{self, ChatView};
use super::command::{AppCommand, ChatCommand, Command, CommandSender, View};
use super::curate_state::{self, CurateCx, CurateState};
use super::curate_ui::{self, CurateView};
use super::dialog_note_ui;
use super::eval_state::{self, EvalState};
use super::eval_ui::{self, EvalView};
use super::model_library_state::{self, ModelLibraryState};
use super::model_library_ui;
use super::settings::Settings;
use super::shell_ui;
use super::system_monitor::SystemMonitor;
use super::train_state::{self, TrainCx, TrainState};
use super::train_ui::{self, TrainView};
use crate::jobs::{InferenceHandle, Notify};
use crate::model::device::DeviceInfo;

/// The studio: persisted settings plus runtime handles.
pub struct StudioApp {
    pub settings: Settings,
    pub model: ModelStatus,
    pub chat: ChatState,
    pub train: TrainState,
    pub eval: EvalState,
    pub curate: CurateState,
    /// The model library panel and its download.
    pub library: ModelLibraryState,
    /// The devices this build can use (empty until the device thread has answered).
    pub devices: Vec<DeviceInfo>,
    /// Durations of the last frames' logic and layout, for the frame-time bench.
    pub frame_times: Vec<Duration>,
    pub notice: Option<String>,
    /// The workspace folder as typed in the top bar (used on Enter or "Use").
    pub workspace_input: String,
    /// Why the workspace could not be chosen (the dialog, or the folder), beside the field.
    pub workspace_error: Option<String>,
    /// Focus the workspace field in the next frame (its dialog could not open).
    focus_workspace: bool,
    /// The machine's RAM and GPUs, sampled on their own thread, for the footer.
    pub system: SystemMonitor,
    inference: InferenceHandle,
    tx: CommandSender,
    commands: Receiver<Command>,
}

impl StudioApp {
    /// A studio with `settings`; `notify` wakes the UI when a worker has news.
    pub fn new(settings: Settings, notify: Notify) -> anyhow::Result<Self> {
        let inference = InferenceHandle::spawn(notify.clone())?;
        let (tx, commands) = CommandSender::channel(notify);
        background::list_devices(&tx);
        Ok(Self {
            settings,
            model: ModelStatus::None,
            chat: ChatState::default(),
            train: TrainState::default(),
            eval: EvalState::default(),
            curate: CurateState::default(),
            library: ModelLibraryState::default(),
            devices: Vec::new(),
            frame_times: Vec::new(),
            notice: None,
            workspace_input: String::new(),
            workspace_error: None,
            focus_workspace: false,
            system: SystemMonitor::start(),
            inference,
            tx,
            commands,
        })
    }

    /// Reads settings saved by [`eframe::App::save`] (defaults when there are none).
    pub fn load_settings(storage: Option<&dyn eframe::Storage>) -> Settings {
        storage
            .and_then(|s| eframe::get_value(s, eframe::APP_KEY))
            .unwrap_or_default()
    }

    /// Queues a command (carried out in this frame's or the next frame's logic step).
    pub fn command(&self, c: impl Into<Command>) {
        self.tx.send(c);
    }

    pub fn is_generating(&self) -> bool {
        self.chat.is_generating()
    }

    /// One frame: the logic step, then drawing, then the commands the views sent while drawing
    /// (so a click acts in the frame it happened).
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let start = Instant::now();
        self.logic_step(ui.ctx());

        egui::Panel::top("nav").show(ui, |ui| self.nav_ui(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_ui(ui));
        let tx = &self.tx;
        let devices = &self.devices;
        let s = &mut self.settings;
        match s.view {
            View::Chat => chat_ui::chat_view_ui(
                ui,
                ChatView {
                    state: &mut self.chat,
                    settings: &mut s.chat,
                    recent_models: &s.recent_models,
                    model: &self.model,
                    devices,
                    tx,
                },
            ),
            View::Curate => curate_ui::curate_view_ui(
                ui,
                CurateView {
                    state: &mut self.curate,
                    form: &mut s.curate,
                    workspace: s.workspace.as_deref(),
                    devices,
                    loaded_model: match &self.model {
                        ModelStatus::Loaded(info) => Some(info.path.as_path()),
                        _ => None,
                    },
                    tx,
                },
            ),
            View::Train => train_ui::train_view_ui(
                ui,
                TrainView {
                    state: &mut self.train,
                    form: &mut s.train,
                    ssh: &mut s.train_ssh,
                    devices,
                    system: self.system.last(),
                    tx,
                },
            ),
            View::Evaluate => eval_ui::eval_view_ui(
                ui,
                EvalView {
                    state: &mut self.eval,
                    form: &mut s.eval,
                    devices,
                    loaded_model: match &self.model {
                        ModelStatus::Loaded(info) => Some(info.path.as_path()),
                        _ => None,
                    },
                    tx,
                },
            ),
        }
        model_library_ui::model_library_window_ui(ui.ctx(), &mut self.library, &self.tx);
        self.handle_commands(ui.ctx());
        if self.frame_times.len() >= 240 {
            self.frame_times.drain(..120);
        }
        self.frame_times.push(start.elapsed());
    }

    /// Everything that changes state between frames, before any drawing: the workers' events
    /// (each under a small time budget), files dropped on the window, queued commands (from the
    /// dialog and reader threads too), and derived state (run history, the pool's visible rows).
    pub fn logic_step(&mut self, ctx: &egui::Context) {
        let theme = self.settings.theme.preference();
        if ctx.options(|o| o.theme_preference) != theme {
            ctx.set_theme(theme);
        }
        if let Some(v) = shell_ui::view_from_shortcut(ctx) {
            self.settings.view = v;
        }
        self.drain_inference(Duration::from_millis(4));
        self.chat.serve.drain();
        train_state::update(
            &mut self.train,
            &self.settings.train_runs,
            &self.tx,
            Duration::from_millis(2),
        );
        eval_state::update(&mut self.eval, Duration::from_millis(2));
        model_library_state::update(&mut self.library, &self.tx, Duration::from_millis(2));
        curate_state::update(
            &mut self.curate,
            self.settings.workspace.as_deref(),
            self.settings.view == View::Curate,
            &self.tx,
            Duration::from_millis(2),
        );
        self.take_dropped_files(ctx);
        self.handle_commands(ctx);
    }

    /// Applies inference events until none is left or `budget` has passed.
    pub fn drain_inference(&mut self, budget: Duration) {
        let start = Instant::now();
        while start.elapsed() < budget {
            let Some(ev) = self.inference.try_recv() else { break };
            chat_state::apply_event(ev, self.chat_cx());
        }
    }

    fn chat_cx(&mut self) -> ChatCx<'_> {
        ChatCx {
            state: &mut self.chat,
            settings: &mut self.settings.chat,
            recent_models: &mut self.settings.recent_models,
            model: &mut self.model,
            inference: &self.inference,
            tx: &self.tx,
        }
    }

    /// Carries out the queued commands, each group by its view's handler.
    pub fn handle_commands(&mut self, ctx: &egui::Context) {
        while let Ok(c) = self.commands.try_recv() {
            let s = &mut self.settings;
            match c {
                Command::App(c) => self.handle_app_command(c, ctx),
                Command::Chat(c) => chat_state::handle(c, self.chat_cx()),
                Command::Train(c) => train_state::handle(
                    c,
                    TrainCx {
                        state: &mut self.train,
                        form: &mut s.train,
                        runs: &mut s.train_runs,
                        ssh: &s.train_ssh,
                        tx: &self.tx,
                    },
                ),
                Command::Eval(c) => eval_state::handle(c, &mut self.eval, &mut s.eval, &self.tx),
                Command::Library(c) => model_library_state::handle(c, &mut self.library, &self.tx),
                Command::Curate(c) => curate_state::handle(
                    c,
                    CurateCx {
                        state: &mut self.curate,
                        form: &mut s.curate,
                        workspace: s.workspace.as_deref(),
                        tx: &self.tx,
                        inference: &self.inference,
                    },
                ),
            }
        }
    }

    fn handle_app_command(&mut self, c: AppCommand, ctx: &egui::Context) {
        match c {
            AppCommand::SetView(v) => self.settings.view = v,
            AppCommand::PickWorkspace => background::file_dialog_or(
                &self.tx,
                "Choose the workspace folder",
                background::DialogKind::Folder,
                |p| AppCommand::SetWorkspace(p).into(),
                |msg| AppCommand::WorkspaceDialogFailed(msg).into(),
            ),
            AppCommand::SetWorkspace(p) => background::make_workspace(&self.tx, p),
            AppCommand::WorkspaceReady(Ok(p)) => {
                self.workspace_error = None;
                self.workspace_input.clear();
                self.settings.workspace = Some(p);
            }
            AppCommand::WorkspaceReady(Err(e)) => self.workspace_error = Some(e),
            AppCommand::WorkspaceDialogFailed(e) => {
                self.workspace_error = Some(e);
                self.focus_workspace = true;
            }
            AppCommand::Notice(e) => self.notice = Some(e),
            AppCommand::Copy(text) => ctx.copy_text(text),
            AppCommand::Devices(d) => self.devices = d,
        }
    }

    fn take_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        for p in dropped {
            self.command(ChatCommand::OpenModel(p));
        }
    }

    fn nav_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.heading("s1-studio");
            ui.separator();
            for v in View::ALL {
                let job = (self.settings.view != v)
                    .then(|| shell_ui::job_line(v, &self.train, &self.eval, &self.curate, &self.chat))
                    .flatten();
                if shell_ui::view_tab_ui(ui, v, self.settings.view == v, job.as_deref()) {
                    self.command(AppCommand::SetView(v));
                }
            }
            ui.separator();
            match &self.settings.workspace {
                Some(w) => {
                    ui.label(format!("Workspace: {}", w.display()));
                }
                None => {
                    ui.weak("No workspace folder");
                }
            }
            self.workspace_field_ui(ui);
            if ui.button("Choose workspace…").clicked() {
                self.command(AppCommand::PickWorkspace);
            }
            dialog_note_ui::note_ui(ui, self.workspace_error.as_deref());
        });
    }

    /// The workspace folder typed (it is created off the UI thread, which names the folder when
    /// that fails): where no file dialog can open, the only way to a workspace.
    fn workspace_field_ui(&mut self, ui: &mut egui::Ui) {
        let l = ui.label("Workspace folder");
        let r = ui
            .add(
                egui::TextEdit::singleline(&mut self.workspace_input)
                    .desired_width(220.0)
                    .hint_text("type a folder path"),
            )
            .labelled_by(l.id)
            .on_hover_text("A folder for the curation pool and its annotations; created if missing");
        dialog_note_ui::focus_once(&r, &mut self.focus_workspace);
        let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if ui.button("Use").on_hover_text("Use the folder typed").clicked() || enter {
            let p = self.workspace_input.trim();
            if p.is_empty() {
                self.workspace_error = Some("type a workspace folder first".into());
            } else {
                self.command(AppCommand::SetWorkspace(p.into()));
            }
        }
    }

    /// The footer: the model, a generation, the last notice; on the right the machine's readings
    /// (redrawn each second as the sampler reads them) and the theme.
    fn status_ui(&mut self, ui: &mut egui::Ui) {
        ui.ctx().request_repaint_after(super::system_monitor::SAMPLE_EVERY);
        ui.horizontal(|ui| {
            let failed = self.system.failed.clone();
            let sample = self.system.latest().cloned();
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                shell_ui::theme_switch_ui(ui, &mut self.settings.theme);
                ui.separator();
                shell_ui::machine_ui(ui, sample.as_ref(), failed.as_deref(), &self.devices);
                ui.with_layout(egui::Layout::left_to_right(egui::Align::Center), |ui| {
                    self.status_left_ui(ui);
                });
            });
        });
    }

    /// The footer's left side: the model, a generation, the last notice.
    fn status_left_ui(&mut self, ui: &mut egui::Ui) {
        match &self.model {
            ModelStatus::None => {
                ui.weak("No model loaded");
            }
            ModelStatus::Loading { path, fraction, stage } => {
                ui.spinner();
                ui.add(egui::ProgressBar::new(*fraction).desired_width(160.0).show_percentage());
                ui.label(format!("Loading {}: {stage}", path.display()));
            }
            ModelStatus::Loaded(info) => {
                ui.label(format!(
                    "Model: {} ({}, {:.1}M parameters, context {}, thinking: {})",
                    info.name,
                    info.arch,
                    info.parameters as f64 / 1e6,
                    info.context,
                    info.thinking.label()
                ));
            }
            ModelStatus::Failed { .. } => {
                ui.colored_label(ui.visuals().error_fg_color, "Model failed to load");
            }
        }
        if let Some(r) = &self.chat.running {
            ui.separator();
            ui.spinner();
            ui.label(format!("Generating (job {})", r.id));
        }
        if let Some(n) = &self.notice {
            ui.separator();
            ui.weak(n.as_str());
        }
    }
}

impl eframe::App for StudioApp {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        // The map's pipeline is built for the window's surface format.
        self.curate.map.target_format = frame.wgpu_render_state().map(|r| r.target_format);
        self.show(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.settings);
    }

    fn on_exit(&mut self) {
        if let Some(r) = &self.chat.running {
            r.cancel.cancel();
        }
        if let Some(j) = &self.train.job {
            j.stop();
        }
        if let Some(j) = &self.eval.job {
            j.stop();
        }
        if let Some(j) = &self.curate.job {
            j.stop();
        }
    }
}
