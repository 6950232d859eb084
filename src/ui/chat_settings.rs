//! The Chat view's persisted controls: the thinking and sampling settings ([`ChatSettings`]),
//! what they mean for a generation, and named presets of them (saved with the settings).

use crate::generate::{BudgetConfig, GenerateParams, MaxThinking, PastMax, SamplingParams, ThinkingFormat};
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
    /// Named presets of the thinking and sampling controls.
    pub presets: Vec<ChatPreset>,
    /// The conversation open at exit (its id in the conversation store), reopened at start.
    pub open_conversation: Option<String>,
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
            presets: Vec::new(),
            open_conversation: None,
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

/// The controls a preset keeps: thinking and sampling (not the system prompt, the send key or
/// the device, which belong to the user or the machine rather than to a way of generating).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PresetValues {
    pub thinking: bool,
    pub min_thinking: u32,
    pub max_thinking: u32,
    pub max_unlimited: bool,
    pub max_auto: bool,
    pub waits: u32,
    pub ignore_str: String,
    pub final_answer: String,
    pub cut_at_max: bool,
    pub format: FormatChoice,
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u64,
    pub max_new_tokens: u32,
}

impl Default for PresetValues {
    fn default() -> Self {
        Self::of(&ChatSettings::default())
    }
}

impl PresetValues {
    /// The preset part of `s`.
    pub fn of(s: &ChatSettings) -> Self {
        Self {
            thinking: s.thinking,
            min_thinking: s.min_thinking,
            max_thinking: s.max_thinking,
            max_unlimited: s.max_unlimited,
            max_auto: s.max_auto,
            waits: s.waits,
            ignore_str: s.ignore_str.clone(),
            final_answer: s.final_answer.clone(),
            cut_at_max: s.cut_at_max,
            format: s.format,
            temperature: s.temperature,
            top_p: s.top_p,
            seed: s.seed,
            max_new_tokens: s.max_new_tokens,
        }
    }

    /// Sets these values in `s`, leaving the rest of it alone.
    pub fn apply_to(&self, s: &mut ChatSettings) {
        let v = self.clone();
        s.thinking = v.thinking;
        s.min_thinking = v.min_thinking;
        s.max_thinking = v.max_thinking;
        s.max_unlimited = v.max_unlimited;
        s.max_auto = v.max_auto;
        s.waits = v.waits;
        s.ignore_str = v.ignore_str;
        s.final_answer = v.final_answer;
        s.cut_at_max = v.cut_at_max;
        s.format = v.format;
        s.temperature = v.temperature;
        s.top_p = v.top_p;
        s.seed = v.seed;
        s.max_new_tokens = v.max_new_tokens;
    }
}

/// A named set of thinking and sampling controls.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ChatPreset {
    pub name: String,
    pub values: PresetValues,
}

impl Default for ChatPreset {
    fn default() -> Self {
        Self {
            name: "preset".into(),
            values: PresetValues::default(),
        }
    }
}

impl ChatSettings {
    /// Saves the current controls as the preset `name` (trimmed), replacing one of that name.
    /// An empty name is refused.
    pub fn save_preset(&mut self, name: &str) -> Result<(), String> {
        let name = name.trim();
        if name.is_empty() {
            return Err("give the preset a name first".into());
        }
        let preset = ChatPreset {
            name: name.to_string(),
            values: PresetValues::of(self),
        };
        match self.presets.iter_mut().find(|p| p.name == name) {
            Some(p) => *p = preset,
            None => self.presets.push(preset),
        }
        Ok(())
    }

    /// Sets the controls of the preset `name`.
    pub fn apply_preset(&mut self, name: &str) -> Result<(), String> {
        let values = self
            .presets
            .iter()
            .find(|p| p.name == name.trim())
            .map(|p| p.values.clone())
            .ok_or_else(|| format!("no preset is named \"{}\"", name.trim()))?;
        values.apply_to(self);
        Ok(())
    }

    /// Deletes the preset `name`.
    pub fn delete_preset(&mut self, name: &str) -> Result<(), String> {
        let before = self.presets.len();
        self.presets.retain(|p| p.name != name.trim());
        if self.presets.len() == before {
            return Err(format!("no preset is named \"{}\"", name.trim()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preset_keeps_thinking_and_sampling_and_leaves_the_rest() {
        let mut s = ChatSettings {
            min_thinking: 64,
            waits: 3,
            temperature: 0.7,
            system_prompt: "Be brief.".into(),
            ..Default::default()
        };
        s.save_preset(" careful ").unwrap();
        s.min_thinking = 0;
        s.waits = 0;
        s.temperature = 0.0;
        s.system_prompt = "Be long.".into();
        s.apply_preset("careful").unwrap();
        assert_eq!((s.min_thinking, s.waits, s.temperature), (64, 3, 0.7));
        assert_eq!(s.system_prompt, "Be long.");
        // Saving under the same name replaces it; deleting removes it.
        s.waits = 5;
        s.save_preset("careful").unwrap();
        assert_eq!(s.presets.len(), 1);
        assert_eq!(s.presets[0].values.waits, 5);
        assert!(s.save_preset("  ").is_err());
        s.delete_preset("careful").unwrap();
        assert!(s.presets.is_empty());
        assert!(s.apply_preset("careful").unwrap_err().contains("careful"));
    }
}
