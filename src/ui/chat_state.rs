//! The Chat view's runtime state (the conversation, the saved ones, the generation in flight,
//! where the model is) and its logic: [`handle`] carries out a [`ChatCommand`], [`apply_event`]
//! applies what the inference worker reports. Its persisted controls are in `chat_settings`.

use std::path::PathBuf;

use super::background::{file_dialog_or, DialogKind};
use super::chat_library::Library;
use super::chat_serve::ServeState;
pub use super::chat_settings::{ChatPreset, ChatSettings, FormatChoice, PresetValues, SendKey};
use super::chat_store::ConversationStore;
use super::command::{ChatCommand, CommandSender};
use crate::generate::conversation::{AssistantTurn, Conversation, Turn};
use crate::generate::AnswerNow;
use crate::jobs::{CancelToken, InferenceEvent, InferenceHandle, InferenceRequest, ModelInfo};

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
    /// Set by "Answer now": the worker ends the thinking with the forced end.
    pub answer_now: AnswerNow,
}

/// Runtime state of the chat view (not persisted).
pub struct ChatState {
    /// The open conversation.
    pub conversation: Conversation,
    /// The saved conversations (the sidebar).
    pub library: Library,
    pub input: String,
    pub path_input: String,
    pub running: Option<Running>,
    pub error: Option<String>,
    /// The title being typed while renaming the open conversation.
    pub rename_draft: Option<String>,
    /// Delete was clicked once: the sidebar asks to confirm.
    pub confirm_delete: bool,
    /// The preset name field.
    pub preset_name: String,
    /// The model's file dialog could not open (said beside the Path field; cleared on a load).
    pub dialog_error: Option<String>,
    /// Focus the Path field in the next frame (its dialog could not open).
    pub focus_path: bool,
    /// "Serve on localhost": the loaded model behind the OpenAI-compatible API.
    pub serve: ServeState,
    next_id: u64,
}

impl Default for ChatState {
    fn default() -> Self {
        Self {
            conversation: Conversation::default(),
            library: Library::default(),
            input: String::new(),
            path_input: String::new(),
            running: None,
            error: None,
            rename_draft: None,
            confirm_delete: false,
            preset_name: String::new(),
            dialog_error: None,
            focus_path: false,
            serve: ServeState::default(),
            next_id: 1,
        }
    }
}

impl ChatState {
    pub fn is_generating(&self) -> bool {
        self.running.is_some()
    }

    fn running_id(&self) -> Option<u64> {
        self.running.as_ref().map(|r| r.id)
    }

    /// Whether the reply being generated is still thinking (what "Answer now" can end).
    pub fn is_thinking(&self) -> bool {
        self.is_generating()
            && matches!(self.conversation.turns.last(), Some(Turn::Assistant(a))
                if a.answer.is_empty() && a.forced_end_at.is_none() && a.thinking_tokens > 0)
    }
}

/// Saves the open conversation (off the UI thread) and remembers it as the one to reopen.
fn save(state: &mut ChatState, settings: &mut ChatSettings) {
    match state.library.save_current(&state.conversation) {
        Ok(()) => {
            if state.library.current_is_saved() {
                settings.open_conversation = Some(state.library.current.clone());
            }
        }
        Err(e) => state.library.problems.push(e),
    }
}

/// The reason a conversation cannot be switched, deleted or started now.
const BUSY: &str = "stop the generation first";

/// Models opened before, most recent first, at most this many.
pub const RECENT_MAX: usize = 8;

/// Puts `path` first in the recent-models list.
pub fn remember_model(recent: &mut Vec<PathBuf>, path: PathBuf) {
    recent.retain(|p| p != &path);
    recent.insert(0, path);
    recent.truncate(RECENT_MAX);
}

/// What the chat logic reads and changes.
pub struct ChatCx<'a> {
    pub state: &'a mut ChatState,
    pub settings: &'a mut ChatSettings,
    pub recent_models: &'a mut Vec<PathBuf>,
    pub model: &'a mut ModelStatus,
    pub inference: &'a InferenceHandle,
    pub tx: &'a CommandSender,
}

/// Carries out a Chat-view command.
pub fn handle(c: ChatCommand, cx: ChatCx<'_>) {
    let ChatCx {
        state,
        settings,
        model,
        inference,
        tx,
        ..
    } = cx;
    match c {
        ChatCommand::OpenModel(path) => {
            state.path_input = path.display().to_string();
            state.dialog_error = None;
            if state.is_generating() {
                state.error = Some("stop the generation before loading another model".into());
                return;
            }
            *model = ModelStatus::Loading {
                path: path.clone(),
                fraction: 0.0,
                stage: "queued".into(),
            };
            if !inference.send(InferenceRequest::Load {
                path: path.clone(),
                device: settings.device,
            }) {
                *model = ModelStatus::Failed {
                    path,
                    error: "the inference worker has stopped".into(),
                };
            }
        }
        ChatCommand::OpenDemo(path) => {
            super::first_run::set_up_demo_chat(state, settings);
            tx.send(ChatCommand::OpenModel(path));
        }
        ChatCommand::PickModelFolder => file_dialog_or(
            tx,
            "Open a model folder",
            DialogKind::Folder,
            |p| ChatCommand::OpenModel(p).into(),
            |msg| ChatCommand::DialogFailed(msg).into(),
        ),
        ChatCommand::PickModelFile => file_dialog_or(
            tx,
            "Open a GGUF model",
            DialogKind::File(Some(("GGUF", &["gguf"]))),
            |p| ChatCommand::OpenModel(p).into(),
            |msg| ChatCommand::DialogFailed(msg).into(),
        ),
        ChatCommand::DialogFailed(msg) => {
            state.dialog_error = Some(msg);
            state.focus_path = true;
        }
        ChatCommand::Send => {
            let text = state.input.trim().to_string();
            if text.is_empty() || state.is_generating() || !matches!(model, ModelStatus::Loaded(_)) {
                return;
            }
            state.input.clear();
            state.conversation.turns.push(Turn::User(text));
            save(state, settings);
            start_generation(state, settings, model, inference);
        }
        ChatCommand::Stop => {
            if let Some(r) = &state.running {
                r.cancel.cancel();
            }
        }
        ChatCommand::AnswerNow => {
            if let Some(r) = &state.running {
                r.answer_now.request();
            }
        }
        ChatCommand::Regenerate => {
            if state.is_generating() || !matches!(model, ModelStatus::Loaded(_)) {
                return;
            }
            if state.conversation.pop_assistant() {
                start_generation(state, settings, model, inference);
            }
        }
        ChatCommand::Clear => {
            if let Some(r) = state.running.take() {
                r.cancel.cancel();
            }
            state.conversation = Conversation::default();
            state.error = None;
            save(state, settings);
        }
        ChatCommand::ServeStart => {
            if matches!(model, ModelStatus::Loaded(_)) {
                state.serve.start(inference, tx);
            }
        }
        ChatCommand::ServeStop => state.serve.stop(),
        c => conversations_and_presets(c, state, settings, tx),
    }
}

/// The sidebar's and the presets' commands.
fn conversations_and_presets(c: ChatCommand, state: &mut ChatState, settings: &mut ChatSettings, tx: &CommandSender) {
    let busy = state.is_generating();
    match c {
        ChatCommand::NewConversation | ChatCommand::OpenConversation(_) if busy => state.error = Some(BUSY.into()),
        ChatCommand::NewConversation => {
            state.library.start_new();
            state.conversation = Conversation::default();
            settings.open_conversation = None;
            state.error = None;
        }
        ChatCommand::OpenConversation(id) => {
            if let Some(c) = state.library.open(&id) {
                state.conversation = c;
                settings.open_conversation = Some(id);
                state.error = None;
                state.rename_draft = None;
                state.confirm_delete = false;
            }
        }
        ChatCommand::RenameConversation { id, title } => match state.library.rename(&id, &title) {
            Ok(()) => state.rename_draft = None,
            Err(e) => state.error = Some(e),
        },
        ChatCommand::DeleteConversation(id) if busy && id == state.library.current => state.error = Some(BUSY.into()),
        ChatCommand::DeleteConversation(id) => {
            state.confirm_delete = false;
            match state.library.delete(&id) {
                Ok(true) => {
                    state.library.start_new();
                    state.conversation = Conversation::default();
                    settings.open_conversation = None;
                }
                Ok(false) => {}
                Err(e) => state.library.problems.push(e),
            }
        }
        ChatCommand::SetConversationsDir(dir) => match ConversationStore::open(dir, tx) {
            Ok(store) => {
                state.library.store = Some(store);
                state.library.loaded = false;
            }
            Err(e) => state.library.problems.push(e),
        },
        ChatCommand::ConversationsRead { conversations, errors } => {
            state.library.merge_read(conversations, errors);
            // Reopen the conversation that was open at exit, unless one has begun meanwhile.
            if let Some(id) = settings.open_conversation.clone() {
                if state.conversation.turns.is_empty() && !busy && id != state.library.current {
                    if let Some(c) = state.library.open(&id) {
                        state.conversation = c;
                    }
                }
            }
        }
        ChatCommand::StoreFailed(e) => state.library.problems.push(e),
        ChatCommand::SavePreset(name) => match settings.save_preset(&name) {
            Ok(()) => state.preset_name = name.trim().to_string(),
            Err(e) => state.error = Some(e),
        },
        ChatCommand::ApplyPreset(name) => match settings.apply_preset(&name) {
            Ok(()) => state.preset_name = name,
            Err(e) => state.error = Some(e),
        },
        ChatCommand::DeletePreset(name) => match settings.delete_preset(&name) {
            Ok(()) => state.preset_name.clear(),
            Err(e) => state.error = Some(e),
        },
        _ => {}
    }
}

fn start_generation(state: &mut ChatState, settings: &ChatSettings, model: &ModelStatus, inference: &InferenceHandle) {
    let detected = match model {
        ModelStatus::Loaded(i) => Some(&i.thinking),
        _ => None,
    };
    let params = settings.params(detected);
    let messages = state.conversation.messages(Some(&settings.system_prompt));
    let id = state.next_id;
    state.next_id += 1;
    let cancel = CancelToken::new();
    let answer_now = AnswerNow::new();
    state.conversation.turns.push(Turn::Assistant(
        AssistantTurn::new(settings.budget_label()).with_waits_asked(settings.waits as usize),
    ));
    state.error = None;
    let sent = inference.send(InferenceRequest::Generate {
        id,
        messages,
        params: Box::new(params),
        cancel: cancel.clone(),
        answer_now: answer_now.clone(),
    });
    if sent {
        state.running = Some(Running { id, cancel, answer_now });
    } else {
        state.error = Some("the inference worker has stopped".into());
    }
}

/// Applies one event of the inference worker (load progress, streamed deltas, the end).
pub fn apply_event(ev: InferenceEvent, cx: ChatCx<'_>) {
    let ChatCx {
        state,
        settings,
        recent_models,
        model,
        ..
    } = cx;
    match ev {
        InferenceEvent::LoadStarted { path } => {
            state
                .serve
                .end("stopped: another model is loading (serve it once it is loaded)");
            *model = ModelStatus::Loading {
                path,
                fraction: 0.0,
                stage: "starting".into(),
            }
        }
        InferenceEvent::LoadProgress { fraction, stage } => {
            if let ModelStatus::Loading { path, .. } = model {
                *model = ModelStatus::Loading {
                    path: path.clone(),
                    fraction,
                    stage,
                };
            }
        }
        InferenceEvent::Loaded(info) => {
            remember_model(recent_models, info.path.clone());
            *model = ModelStatus::Loaded(info);
        }
        InferenceEvent::LoadFailed { path, error } => *model = ModelStatus::Failed { path, error },
        InferenceEvent::GenStarted { .. } => {}
        InferenceEvent::Delta { id, delta } => {
            if Some(id) == state.running_id() {
                if let Some(a) = state.conversation.last_assistant_mut() {
                    a.apply(&delta);
                }
            }
        }
        InferenceEvent::GenFinished { id, generation } => {
            if Some(id) == state.running_id() {
                if let Some(a) = state.conversation.last_assistant_mut() {
                    a.finish(&generation);
                }
                state.running = None;
                save(state, settings);
            }
        }
        InferenceEvent::GenFailed { id, error } => {
            if Some(id) == state.running_id() {
                if let Some(a) = state.conversation.last_assistant_mut() {
                    a.error = Some(error.clone());
                }
                state.error = Some(error);
                state.running = None;
                save(state, settings);
            }
        }
    }
}
