//! Ready-made starts for a first run: what the Chat view sets up when the demo model arrives (a
//! suggested prompt and a budget preset, so the first reply shows budget forcing at work).

use super::chat_settings::{ChatPreset, ChatSettings, PresetValues};
use super::chat_state::ChatState;

/// The prompt offered with the demo model: short arithmetic, where a thinking budget visibly
/// changes the reply.
pub const DEMO_PROMPT: &str = "A train leaves at 3:15 pm and travels 120 km at 80 km/h. At what time does it arrive?";

/// The preset the demo applies: think at least 32 tokens (one "Wait" if it tries to stop
/// sooner), at most 256, then answer; greedy, so the same prompt gives the same reply.
pub const DEMO_PRESET: &str = "Demo: think 32 to 256 tokens";

/// The demo's thinking and sampling controls.
pub fn demo_preset(s: &ChatSettings) -> ChatPreset {
    let mut values = PresetValues::of(s);
    values.thinking = true;
    values.min_thinking = 32;
    values.max_thinking = 256;
    values.max_unlimited = false;
    values.max_auto = false;
    values.waits = 1;
    values.temperature = 0.0;
    values.max_new_tokens = 512;
    ChatPreset {
        name: DEMO_PRESET.into(),
        values,
    }
}

/// Puts the demo's prompt in an empty input box and saves and applies its preset.
pub fn set_up_demo_chat(state: &mut ChatState, settings: &mut ChatSettings) {
    if state.input.trim().is_empty() {
        state.input = DEMO_PROMPT.into();
    }
    let preset = demo_preset(settings);
    preset.values.apply_to(settings);
    match settings.presets.iter_mut().find(|p| p.name == DEMO_PRESET) {
        Some(p) => *p = preset,
        None => settings.presets.push(preset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_sets_a_prompt_and_a_budget_once() {
        let (mut state, mut settings) = (ChatState::default(), ChatSettings::default());
        set_up_demo_chat(&mut state, &mut settings);
        set_up_demo_chat(&mut state, &mut settings);
        assert_eq!(state.input, DEMO_PROMPT);
        assert_eq!(
            (settings.min_thinking, settings.max_thinking, settings.waits),
            (32, 256, 1)
        );
        assert_eq!(settings.budget_label(), "min 32 · max 256 · 1 waits");
        assert_eq!(settings.presets.len(), 1);
        // A prompt the user typed stays.
        state.input = "mine".into();
        set_up_demo_chat(&mut state, &mut settings);
        assert_eq!(state.input, "mine");
    }
}
