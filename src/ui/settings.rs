//! What the user expects back next launch, persisted through eframe's storage. Runtime handles
//! (the worker, channels, the conversation) live in `StudioApp`, never here.

use std::path::PathBuf;

use crate::generate::{BudgetConfig, GenerateParams, MaxThinking, PastMax, SamplingParams, ThinkingFormat};

/// The four views of the studio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum View {
    Curate,
    Train,
    #[default]
    Chat,
    Evaluate,
}

impl View {
    pub const ALL: [View; 4] = [View::Curate, View::Train, View::Chat, View::Evaluate];

    pub fn label(self) -> &'static str {
        match self {
            View::Curate => "Curate",
            View::Train => "Train",
            View::Chat => "Chat",
            View::Evaluate => "Evaluate",
        }
    }

    /// The view named `s` (any case), as the command line spells it.
    pub fn parse(s: &str) -> Option<View> {
        View::ALL.into_iter().find(|v| v.label().eq_ignore_ascii_case(s))
    }
}

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
    /// Think tags when the model's template uses them, else s1's.
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

    /// The generation parameters these controls stand for; `think_tags` says what the loaded
    /// model's template uses.
    pub fn params(&self, think_tags: bool) -> GenerateParams {
        let format = match self.format {
            FormatChoice::S1 => ThinkingFormat::s1(),
            FormatChoice::ThinkTags => ThinkingFormat::think_tags(),
            FormatChoice::Auto if think_tags => ThinkingFormat::think_tags(),
            FormatChoice::Auto => ThinkingFormat::s1(),
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
    pub const RECENT_MAX: usize = 8;
    pub const RUNS_MAX: usize = 20;

    pub fn remember_run(&mut self, out: PathBuf) {
        self.train_runs.retain(|p| p != &out);
        self.train_runs.push(out);
        let n = self.train_runs.len();
        if n > Self::RUNS_MAX {
            self.train_runs.drain(..n - Self::RUNS_MAX);
        }
    }

    pub fn remember_model(&mut self, path: PathBuf) {
        self.recent_models.retain(|p| p != &path);
        self.recent_models.insert(0, path);
        self.recent_models.truncate(Self::RECENT_MAX);
    }
}
