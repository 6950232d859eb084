//! The Chat view's persisted controls ([`ChatSettings`]), its runtime state (the conversation,
//! the generation in flight, where the model is) and its logic: [`handle`] carries out a
//! [`ChatCommand`], [`apply_event`] applies what the inference worker reports.

use std::path::PathBuf;

use super::background::{file_dialog, DialogKind};
use super::command::{ChatCommand, CommandSender};
use crate::generate::conversation::{AssistantTurn, Conversation, Turn};
use crate::generate::{AnswerNow, BudgetConfig, GenerateParams, MaxThinking, PastMax, SamplingParams, ThinkingFormat};
use crate::jobs::{CancelToken, InferenceEvent, InferenceHandle, InferenceRequest, ModelInfo};
use crate::model::device::DeviceChoice;
use crate::model::ThinkingStyle;

/// Which key sends a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum SendKey {
    /// Enter sends, Shift+Enter starts a new line.
    #[default]
    Enter,
    /// Ctrl+Enter (Cmd+Enter on macOS) sends, Enter starts a new line.
    CtrlEnter,
}

/// Thinking delimiters to use with a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum FormatChoice {
    /// What the loaded model's template and tokenizer say (think tags for Qwen3, R1 distills
    /// and QwQ; s1's for the rest).
    #[default]
    Auto,
    S1,
    ThinkTags,
}

/// The chat panel's thinking and sampling controls.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ChatSettings {
    pub thinking: bool,
    pub min_thinking: u32,
    /// The slider's value; used when neither `unlimited` nor `auto` is on.
    pub max_thinking: u32,
    pub max_unlimited: bool,
    pub max_auto: bool,
    pub waits: u32,
    pub ignore_str: String,
    pub final_answer: String,
    /// Force the end as soon as ignored ends reach the maximum, instead of s1's hidden rounds.
    pub cut_at_max: bool,
    pub format: FormatChoice,
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u64,
    /// Bound on everything generated per reply.
    pub max_new_tokens: u32,
    pub system_prompt: String,
    pub send_key: SendKey,
    /// Where the model loader puts the model.
    pub device: DeviceChoice,
}

impl Default for ChatSettings {
    fn default() -> Self {
        Self {
            thinking: true,
            min_thinking: 0,
            max_thinking: 1024,
            max_unlimited: false,
            max_auto: false,
            waits: 0,
            ignore_str: "Wait".into(),
            final_answer: "Final Answer:".into(),
            cut_at_max: false,
            format: FormatChoice::Auto,
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
            max_new_tokens: 4096,
            system_prompt: String::new(),
            send_key: SendKey::Enter,
            device: DeviceChoice::Cpu,
        }
    }
}

impl ChatSettings {
    pub fn max_thinking(&self) -> MaxThinking {
        if self.max_auto {
            MaxThinking::Auto
        } else if self.max_unlimited {
            MaxThinking::Unlimited
        } else {
            MaxThinking::Tokens(self.max_thinking as usize)
        }
    }

    /// The generation parameters these controls stand for; `detected` is the loaded model's
    /// thinking style (Auto without one: s1's).
    pub fn params(&self, detected: Option<&ThinkingStyle>) -> GenerateParams {
        let format = match (self.format, detected) {
            (FormatChoice::S1, _) | (FormatChoice::Auto, None) => ThinkingFormat::s1(),
            (FormatChoice::ThinkTags, _) => ThinkingFormat::think_tags(),
            (FormatChoice::Auto, Some(style)) => ThinkingFormat::for_style(style),
        };
        GenerateParams {
            sampling: SamplingParams {
                temperature: self.temperature as f64,
                top_p: self.top_p as f64,
                top_k: 0,
                seed: self.seed,
            },
            budget: BudgetConfig {
                thinking: self.thinking,
                min_thinking: self.min_thinking as usize,
                max_thinking: self.max_thinking(),
                num_ignore: self.waits as usize,
                ignore_str: self.ignore_str.clone(),
                final_answer: self.final_answer.clone(),
                format,
                past_max: if self.cut_at_max { PastMax::Cut } else { PastMax::S1 },
            },
            max_new_tokens: Some(self.max_new_tokens as usize),
            auto_prompt_tokens: None,
        }
    }

    /// A short description of the budget ("min 0 · max 512 · 2 waits").
    pub fn budget_label(&self) -> String {
        if !self.thinking {
            return "thinking off".into();
        }
        let max = match self.max_thinking() {
            MaxThinking::Auto => "auto".to_string(),
            MaxThinking::Unlimited => "unlimited".to_string(),
            MaxThinking::Tokens(n) => n.to_string(),
        };
        format!("min {} · max {max} · {} waits", self.min_thinking, self.waits)
    }
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
    /// Set by "Answer now": the worker ends the thinking with the forced end.
    pub answer_now: AnswerNow,
}

/// Runtime state of the chat view (not persisted).
pub struct ChatState {
    pub conversation: Conversation,
    pub input: String,
    pub path_input: String,
    pub running: Option<Running>,
    pub error: Option<String>,
    next_id: u64,
}

impl Default for ChatState {
    fn default() -> Self {
        Self {
            conversation: Conversation::default(),
            input: String::new(),
            path_input: String::new(),
            running: None,
            error: None,
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
}

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
    pub settings: &'a ChatSettings,
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
        ChatCommand::PickModelFolder => file_dialog(tx, "Open a model folder", DialogKind::Folder, |p| {
            ChatCommand::OpenModel(p).into()
        }),
        ChatCommand::PickModelFile => file_dialog(
            tx,
            "Open a GGUF model",
            DialogKind::File(Some(("GGUF", &["gguf"]))),
            |p| ChatCommand::OpenModel(p).into(),
        ),
        ChatCommand::Send => {
            let text = state.input.trim().to_string();
            if text.is_empty() || state.is_generating() || !matches!(model, ModelStatus::Loaded(_)) {
                return;
            }
            state.input.clear();
            state.conversation.turns.push(Turn::User(text));
            start_generation(state, settings, model, inference);
        }
        ChatCommand::Stop => {
            if let Some(r) = &state.running {
                r.cancel.cancel();
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
        }
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
        recent_models,
        model,
        ..
    } = cx;
    match ev {
        InferenceEvent::LoadStarted { path } => {
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
            }
        }
        InferenceEvent::GenFailed { id, error } => {
            if Some(id) == state.running_id() {
                if let Some(a) = state.conversation.last_assistant_mut() {
                    a.error = Some(error.clone());
                }
                state.error = Some(error);
                state.running = None;
            }
        }
    }
}
