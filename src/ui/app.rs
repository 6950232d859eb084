//! The app shell: settings apart from runtime handles, commands drained once per frame, events
//! from the inference worker drained under a small time budget.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use eframe::egui;

use super::curate_state::{CuratePath, CurateState};
use super::eval_state::{EvalPath, EvalState};
use super::settings::{Settings, View};
use super::train_state::{TrainPath, TrainState};
use super::{chat_ui, curate_ui, eval_ui, train_ui};
use crate::generate::conversation::{AssistantTurn, Conversation, Turn};
use crate::jobs::{CancelToken, InferenceEvent, InferenceHandle, InferenceRequest, ModelInfo, Notify};

/// What the UI asks for; side effects happen in [`StudioApp::handle_commands`] only.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    SetView(View),
    OpenModel(PathBuf),
    PickModelFolder,
    PickModelFile,
    PickWorkspace,
    SetWorkspace(PathBuf),
    Send,
    Stop,
    Regenerate,
    ClearConversation,
    Copy(String),
    StartTraining { resume: bool },
    StopTraining,
    PickTrainPath(TrainPath),
    SetTrainPath(TrainPath, PathBuf),
    ChatWithCheckpoint(PathBuf),
    PickEvalPath(EvalPath),
    PickCuratePath(CuratePath),
}

/// Where the model is.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelStatus {
    None,
    Loading {
        path: PathBuf,
        fraction: f32,
        stage: String,
    },
    Loaded(ModelInfo),
    Failed {
        path: PathBuf,
        error: String,
    },
}

/// A generation in flight.
pub struct Running {
    pub id: u64,
    pub cancel: CancelToken,
}

/// Runtime state of the chat view.
pub struct ChatState {
    pub conversation: Conversation,
    pub input: String,
    pub path_input: String,
    pub running: Option<Running>,
    pub error: Option<String>,
}

/// The studio: persisted settings plus runtime handles.
pub struct StudioApp {
    pub settings: Settings,
    pub model: ModelStatus,
    pub chat: ChatState,
    commands: Vec<Command>,
    inference: InferenceHandle,
    dialogs: (Sender<DialogResult>, Receiver<DialogResult>),
    next_id: u64,
    /// Durations of the last frames' logic, for the status bar (and the frame-time bench).
    pub frame_times: Vec<Duration>,
    pub notice: Option<String>,
    pub train: TrainState,
    pub eval: EvalState,
    pub curate: CurateState,
    /// Bumped when a new pool snapshot arrives (the table's cache key).
    pub curate_generation: usize,
    pub(super) notify: Notify,
}

#[derive(Debug)]
enum DialogResult {
    Model(Option<PathBuf>),
    Workspace(Option<PathBuf>),
    Train(TrainPath, Option<PathBuf>),
    Eval(EvalPath, Option<PathBuf>),
    Curate(CuratePath, Option<PathBuf>),
}

impl StudioApp {
    /// A studio with `settings`; `notify` wakes the UI when a worker has news.
    pub fn new(settings: Settings, notify: Notify) -> anyhow::Result<Self> {
        let inference = InferenceHandle::spawn(notify.clone())?;
        Ok(Self {
            settings,
            model: ModelStatus::None,
            chat: ChatState {
                conversation: Conversation::default(),
                input: String::new(),
                path_input: String::new(),
                running: None,
                error: None,
            },
            commands: Vec::new(),
            inference,
            dialogs: crossbeam_channel::bounded(4),
            next_id: 1,
            frame_times: Vec::new(),
            notice: None,
            train: TrainState::default(),
            eval: EvalState::default(),
            curate: CurateState::default(),
            curate_generation: 0,
            notify,
        })
    }

    /// Reads settings saved by [`eframe::App::save`] (defaults when there are none).
    pub fn load_settings(storage: Option<&dyn eframe::Storage>) -> Settings {
        storage
            .and_then(|s| eframe::get_value(s, eframe::APP_KEY))
            .unwrap_or_default()
    }

    pub fn command(&mut self, c: Command) {
        self.commands.push(c);
    }

    pub fn is_generating(&self) -> bool {
        self.chat.running.is_some()
    }

    /// One frame: drain events and commands, then draw.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let start = Instant::now();
        self.drain_events(Duration::from_millis(4));
        self.drain_training(Duration::from_millis(2));
        self.drain_eval(Duration::from_millis(2));
        self.drain_curate(Duration::from_millis(2));
        self.drain_dialogs();
        self.take_dropped_files(ui.ctx());
        self.handle_commands(ui.ctx());

        egui::Panel::top("nav").show(ui, |ui| self.nav_ui(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_ui(ui));
        match self.settings.view {
            View::Chat => chat_ui::chat_view_ui(self, ui),
            View::Curate => curate_ui::curate_view_ui(self, ui),
            View::Train => train_ui::train_view_ui(self, ui),
            View::Evaluate => eval_ui::eval_view_ui(self, ui),
        }
        self.handle_commands(ui.ctx());
        if self.frame_times.len() >= 240 {
            self.frame_times.drain(..120);
        }
        self.frame_times.push(start.elapsed());
    }

    fn nav_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.heading("s1-studio");
            ui.separator();
            for v in View::ALL {
                if ui.selectable_label(self.settings.view == v, v.label()).clicked() {
                    self.command(Command::SetView(v));
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
            if ui.button("Choose workspace…").clicked() {
                self.command(Command::PickWorkspace);
            }
        });
    }

    fn status_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
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
                        "Model: {} ({}, {:.1}M parameters, context {})",
                        info.name,
                        info.arch,
                        info.parameters as f64 / 1e6,
                        info.context
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
        });
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
            self.command(Command::OpenModel(p));
        }
    }

    fn drain_dialogs(&mut self) {
        while let Ok(r) = self.dialogs.1.try_recv() {
            match r {
                DialogResult::Model(Some(p)) => self.command(Command::OpenModel(p)),
                DialogResult::Workspace(Some(p)) => self.command(Command::SetWorkspace(p)),
                DialogResult::Train(which, Some(p)) => self.command(Command::SetTrainPath(which, p)),
                DialogResult::Eval(which, Some(p)) => {
                    let f = &mut self.settings.eval;
                    let text = p.display().to_string();
                    match which {
                        EvalPath::ModelFolder | EvalPath::ModelFile => f.model = text,
                        EvalPath::Bench => f.bench = text,
                        EvalPath::Out => f.out = text,
                    }
                }
                DialogResult::Curate(which, Some(p)) => {
                    let f = &mut self.settings.curate;
                    let text = p.display().to_string();
                    match which {
                        CuratePath::Import => f.import_path = text,
                        CuratePath::Tokenizer => f.tokenizer = text,
                        CuratePath::Export => f.export_path = text,
                    }
                }
                DialogResult::Model(None)
                | DialogResult::Curate(_, None)
                | DialogResult::Workspace(None)
                | DialogResult::Train(_, None)
                | DialogResult::Eval(_, None) => {}
            }
        }
    }

    /// Applies worker events until none is left or `budget` has passed.
    pub fn drain_events(&mut self, budget: Duration) {
        let start = Instant::now();
        while start.elapsed() < budget {
            let Some(ev) = self.inference.try_recv() else { break };
            self.apply_event(ev);
        }
    }

    fn running_id(&self) -> Option<u64> {
        self.chat.running.as_ref().map(|r| r.id)
    }

    fn apply_event(&mut self, ev: InferenceEvent) {
        match ev {
            InferenceEvent::LoadStarted { path } => {
                self.model = ModelStatus::Loading {
                    path,
                    fraction: 0.0,
                    stage: "starting".into(),
                }
            }
            InferenceEvent::LoadProgress { fraction, stage } => {
                if let ModelStatus::Loading { path, .. } = &self.model {
                    self.model = ModelStatus::Loading {
                        path: path.clone(),
                        fraction,
                        stage,
                    };
                }
            }
            InferenceEvent::Loaded(info) => {
                self.settings.remember_model(info.path.clone());
                self.model = ModelStatus::Loaded(info);
            }
            InferenceEvent::LoadFailed { path, error } => self.model = ModelStatus::Failed { path, error },
            InferenceEvent::GenStarted { .. } => {}
            InferenceEvent::Delta { id, delta } => {
                if Some(id) == self.running_id() {
                    if let Some(a) = self.chat.conversation.last_assistant_mut() {
                        a.apply(&delta);
                    }
                }
            }
            InferenceEvent::GenFinished { id, generation } => {
                if Some(id) == self.running_id() {
                    if let Some(a) = self.chat.conversation.last_assistant_mut() {
                        a.finish(&generation);
                    }
                    self.chat.running = None;
                }
            }
            InferenceEvent::GenFailed { id, error } => {
                if Some(id) == self.running_id() {
                    if let Some(a) = self.chat.conversation.last_assistant_mut() {
                        a.error = Some(error.clone());
                    }
                    self.chat.error = Some(error);
                    self.chat.running = None;
                }
            }
        }
    }

    fn start_generation(&mut self) {
        let think_tags = matches!(&self.model, ModelStatus::Loaded(i) if i.think_tags);
        let params = self.settings.chat.params(think_tags);
        let system = self.settings.chat.system_prompt.clone();
        let messages = self.chat.conversation.messages(Some(&system));
        let id = self.next_id;
        self.next_id += 1;
        let cancel = CancelToken::new();
        self.chat
            .conversation
            .turns
            .push(Turn::Assistant(AssistantTurn::new(self.settings.chat.budget_label())));
        self.chat.error = None;
        let sent = self.inference.send(InferenceRequest::Generate {
            id,
            messages,
            params: Box::new(params),
            cancel: cancel.clone(),
        });
        if sent {
            self.chat.running = Some(Running { id, cancel });
        } else {
            self.chat.error = Some("the inference worker has stopped".into());
        }
    }

    /// Carries out the queued commands.
    pub fn handle_commands(&mut self, ctx: &egui::Context) {
        for c in std::mem::take(&mut self.commands) {
            match c {
                Command::SetView(v) => self.settings.view = v,
                Command::OpenModel(path) => {
                    self.chat.path_input = path.display().to_string();
                    if self.is_generating() {
                        self.chat.error = Some("stop the generation before loading another model".into());
                        continue;
                    }
                    self.model = ModelStatus::Loading {
                        path: path.clone(),
                        fraction: 0.0,
                        stage: "queued".into(),
                    };
                    if !self.inference.send(InferenceRequest::Load {
                        path: path.clone(),
                        device: crate::model::DeviceChoice::default(),
                    }) {
                        self.model = ModelStatus::Failed {
                            path,
                            error: "the inference worker has stopped".into(),
                        };
                    }
                }
                Command::PickModelFolder
                | Command::PickModelFile
                | Command::PickWorkspace
                | Command::PickTrainPath(_)
                | Command::PickEvalPath(_)
                | Command::PickCuratePath(_) => {
                    let tx = self.dialogs.0.clone();
                    let ctx = ctx.clone();
                    let spawned = std::thread::Builder::new()
                        .name("s1-file-dialog".into())
                        .spawn(move || {
                            let r = match c {
                                Command::PickModelFolder => DialogResult::Model(
                                    rfd::FileDialog::new().set_title("Open a model folder").pick_folder(),
                                ),
                                Command::PickModelFile => DialogResult::Model(
                                    rfd::FileDialog::new()
                                        .set_title("Open a GGUF model")
                                        .add_filter("GGUF", &["gguf"])
                                        .pick_file(),
                                ),
                                Command::PickTrainPath(which) => {
                                    let d = rfd::FileDialog::new();
                                    let p = match which {
                                        TrainPath::Model => d.set_title("Base model folder").pick_folder(),
                                        TrainPath::Data => d
                                            .set_title("Training data (s1K schema)")
                                            .add_filter("s1K rows", &["jsonl", "json", "parquet"])
                                            .pick_file(),
                                        TrainPath::Out => d.set_title("Output folder").pick_folder(),
                                    };
                                    DialogResult::Train(which, p)
                                }
                                Command::PickEvalPath(which) => {
                                    let d = rfd::FileDialog::new();
                                    let p = match which {
                                        EvalPath::ModelFolder => d.set_title("Model folder").pick_folder(),
                                        EvalPath::ModelFile => {
                                            d.set_title("GGUF model").add_filter("GGUF", &["gguf"]).pick_file()
                                        }
                                        EvalPath::Bench => d
                                            .set_title("Benchmark (JSON lines)")
                                            .add_filter("JSON lines", &["jsonl"])
                                            .pick_file(),
                                        EvalPath::Out => d.set_title("Output folder").pick_folder(),
                                    };
                                    DialogResult::Eval(which, p)
                                }
                                Command::PickCuratePath(which) => {
                                    let d = rfd::FileDialog::new();
                                    let p = match which {
                                        CuratePath::Import => d
                                            .set_title("Questions to import")
                                            .add_filter("Datasets", &["jsonl", "json", "parquet"])
                                            .pick_file(),
                                        CuratePath::Tokenizer => d
                                            .set_title("Tokenizer (tokenizer.json)")
                                            .add_filter("tokenizer.json", &["json"])
                                            .pick_file(),
                                        CuratePath::Export => d.set_title("Export as (no extension)").save_file(),
                                    };
                                    DialogResult::Curate(which, p)
                                }
                                _ => DialogResult::Workspace(
                                    rfd::FileDialog::new()
                                        .set_title("Choose the workspace folder")
                                        .pick_folder(),
                                ),
                            };
                            let _ = tx.send(r);
                            ctx.request_repaint();
                        });
                    if spawned.is_err() {
                        self.notice = Some("could not open a file dialog; paste the path instead".into());
                    }
                }
                Command::SetWorkspace(p) => match std::fs::create_dir_all(&p) {
                    Ok(()) => self.settings.workspace = Some(p),
                    Err(e) => self.notice = Some(format!("workspace {}: {e}", p.display())),
                },
                Command::Send => {
                    let text = self.chat.input.trim().to_string();
                    if text.is_empty() || self.is_generating() || !matches!(self.model, ModelStatus::Loaded(_)) {
                        continue;
                    }
                    self.chat.input.clear();
                    self.chat.conversation.turns.push(Turn::User(text));
                    self.start_generation();
                }
                Command::Stop => {
                    if let Some(r) = &self.chat.running {
                        r.cancel.cancel();
                    }
                }
                Command::Regenerate => {
                    if self.is_generating() || !matches!(self.model, ModelStatus::Loaded(_)) {
                        continue;
                    }
                    if self.chat.conversation.pop_assistant() {
                        self.start_generation();
                    }
                }
                Command::ClearConversation => {
                    if let Some(r) = self.chat.running.take() {
                        r.cancel.cancel();
                    }
                    self.chat.conversation = Conversation::default();
                    self.chat.error = None;
                }
                Command::Copy(text) => ctx.copy_text(text),
                c @ (Command::StartTraining { .. }
                | Command::StopTraining
                | Command::SetTrainPath(..)
                | Command::ChatWithCheckpoint(_)) => self.handle_train_command(c),
            }
        }
    }
}

impl eframe::App for StudioApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
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
