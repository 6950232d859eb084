//! The settings of budget forcing: the thinking format, the budget and what happens at its ends.
//! `BudgetConfig::default()` is s1's own behaviour (the lm-evaluation-harness fork's
//! `vllm_causallms.py`); the options that differ from it say so.

use crate::model::{LoadedModel, ThinkingKind, ThinkingStyle};

/// The strings that delimit thinking in a model's chat format.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ThinkingFormat {
    /// Appended after the generation prompt to open thinking.
    pub start: String,
    /// Emitting any of these ends thinking.
    pub end: Vec<String>,
    /// Appended when thinking ends, to open the answer.
    pub answer_start: String,
    /// The thinking start may not appear in the answer: think-tag models re-open `<think>`
    /// after a forced or natural end. A one-token start is banned from the answer's sampling;
    /// a several-token one is dropped when it completes (see [`BudgetForcer`](super::BudgetForcer)).
    /// s1's recipe leaves its answer unguarded, so [`ThinkingFormat::s1`] has it off.
    #[serde(default)]
    pub reopen_banned: bool,
}

impl ThinkingFormat {
    /// s1 / s1.1: `<|im_start|>think` … `<|im_start|>answer`.
    pub fn s1() -> Self {
        Self {
            start: "<|im_start|>think".into(),
            end: vec!["<|im_start|>".into()],
            answer_start: "<|im_start|>answer".into(),
            reopen_banned: false,
        }
    }

    /// DeepSeek-R1 / Qwen3 style: `<think>` … `</think>`.
    pub fn think_tags() -> Self {
        Self {
            start: "<think>".into(),
            end: vec!["</think>".into()],
            answer_start: "</think>".into(),
            reopen_banned: true,
        }
    }

    /// The format of a detected thinking style: think tags for think-tag models, s1's for the
    /// rest (s1 and s1.1 ship Qwen2.5's ChatML template; a plain model gets s1's too).
    pub fn for_style(style: &ThinkingStyle) -> Self {
        match style.kind {
            ThinkingKind::ThinkTags => Self::think_tags(),
            ThinkingKind::S1 | ThinkingKind::Plain => Self::s1(),
        }
    }

    /// The format detected for a loaded model (from its chat template and tokenizer).
    pub fn detect(model: &LoadedModel) -> Self {
        Self::for_style(&model.thinking_style())
    }

    /// s1's own delimiters, whose rules (S1_RECIPE.md) budget forcing keeps unchanged.
    pub fn is_s1(&self) -> bool {
        self.start == Self::s1().start && self.answer_start == Self::s1().answer_start
    }

    /// What closes a thinking block the chat template opened when thinking is off: the empty
    /// block Qwen3's template writes itself (`<think>\n\n</think>\n\n`), after the template's
    /// `<think>\n`.
    pub fn close_at_once(&self) -> String {
        format!("\n{}\n\n", self.answer_start)
    }
}

/// The thinking budget's upper end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MaxThinking {
    Unlimited,
    Tokens(usize),
    /// s1's "auto": max generation tokens - prompt - delimiters - 100 (left for the answer).
    Auto,
}

impl std::str::FromStr for MaxThinking {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "none" | "unlimited" => Ok(Self::Unlimited),
            n => n
                .parse()
                .map(Self::Tokens)
                .map_err(|_| format!("`{n}`: expected a number of tokens, `auto` or `unlimited`")),
        }
    }
}

/// What budget forcing does when the thinking reaches the maximum after an ignored end of
/// thinking. Before any end was ignored both are the same: the end is forced at the maximum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PastMax {
    /// s1's loop: every round after an ignored end runs with a budget of its own (`max_tokens`
    /// = the maximum), so the model goes on past the maximum, unseen; when the rounds are over,
    /// the thinking is cut at the maximum and ended as the last round ended: the answer
    /// delimiter alone if it ended naturally, the forced end ("Final Answer:") if it ran out.
    /// The hidden tokens cost time (up to the maximum per remaining round).
    #[default]
    S1,
    /// Stop at the maximum at once and force the end: no hidden tokens (not s1's behaviour).
    Cut,
}

impl std::str::FromStr for PastMax {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "s1" => Ok(Self::S1),
            "cut" => Ok(Self::Cut),
            o => Err(format!("`{o}`: expected `s1` or `cut`")),
        }
    }
}

/// Settings of budget forcing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct BudgetConfig {
    /// Off: no thinking delimiters are appended and the model answers directly.
    pub thinking: bool,
    /// An end of thinking before this many thinking tokens is ignored (the paper's "extend";
    /// with an empty ignore string the end is banned instead, like vLLM's `min_tokens`).
    pub min_thinking: usize,
    pub max_thinking: MaxThinking,
    /// How many times an end of thinking is ignored (s1's `thinking_n_ignore`): N ignores mean
    /// N + 1 natural ends, then the answer. After each ignore the next token may not end the
    /// thinking (s1 runs each round with vLLM's `min_tokens=1`; so does its first round).
    pub num_ignore: usize,
    /// Appended in place of an ignored end of thinking; empty: the end is dropped and the
    /// model goes on (s1's `thinking_n_ignore` without `thinking_n_ignore_str`).
    pub ignore_str: String,
    /// Appended after the answer delimiter when the budget forces the end.
    pub final_answer: String,
    pub format: ThinkingFormat,
    /// What happens when ignored ends push the thinking to the maximum.
    pub past_max: PastMax,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            thinking: true,
            min_thinking: 0,
            max_thinking: MaxThinking::Unlimited,
            num_ignore: 0,
            ignore_str: "Wait".into(),
            final_answer: "Final Answer:".into(),
            format: ThinkingFormat::s1(),
            past_max: PastMax::S1,
        }
    }
}

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    #[error("the minimum thinking ({min} tokens) is above the maximum ({max} tokens)")]
    MinAboveMax { min: usize, max: usize },
    #[error("the {what} `{text}` is empty or encodes to no tokens")]
    EmptyDelimiter { what: &'static str, text: String },
    #[error("an empty ignore string needs end-of-thinking delimiters of one token each (`{0}` is several)")]
    EmptyIgnoreMultiToken(String),
    #[error("tokenizer: {0}")]
    Codec(String),
}
