//! Ready-made starts for a first run: what the Chat view sets up when the demo model arrives (a
//! suggested prompt and a budget preset, so the first reply shows budget forcing at work), and
//! the Evaluate view's quick sweep (a few bundled questions at three budgets, minutes on a CPU),
//! and the Train view's 2-minute finetune (`train::quickstart`, with the demo model's tokenizer).

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

/// The Train view's quick start.
pub const QUICK_FINETUNE: &str = "Try a 2-minute finetune";

/// Makes the quick finetune's model, rows and settings on a background thread, in `quickstart`
/// beside the model library (whose demo model lends its tokenizer), and answers with
/// [`TrainCommand::QuickStartReady`].
pub fn prepare_finetune(tx: &super::command::CommandSender) {
    use super::command::TrainCommand;
    use crate::hub::{Library, DEMO_ID};
    super::background::spawn("s1-quickstart", tx, || {
        let lib = Library::default_location();
        let demo = lib.entries().map_err(|e| e.to_string()).and_then(|entries| {
            entries
                .into_iter()
                .find(|e| e.id == DEMO_ID && e.path.is_file())
                .ok_or_else(|| {
                    "Get the demo model first (Chat: \"Get the demo model (98 MB)\"): the tiny model uses its tokenizer"
                        .to_string()
                })
        });
        let dir = lib.dir.with_file_name("quickstart");
        let (_, pool) = crate::curate::steps::import::SAMPLE_POOL[2];
        let r = demo.and_then(|d| crate::train::quickstart::prepare(&dir, &d.path, pool));
        Some(TrainCommand::QuickStartReady(Box::new(r)).into())
    });
}

/// The quick sweep's label in the Evaluate view.
pub const QUICK_SWEEP: &str = "Quick sweep: 6 GSM8K questions at 3 budgets";

/// Fills the Evaluate form for a sweep that ends in minutes on a laptop CPU with a small model:
/// the first 6 questions of the bundled GSM8K test set, thinking budgets 32, 128 and 512,
/// greedy, one sample, all 6 in one batch; `model` (the one loaded in Chat) when given.
pub fn quick_sweep(form: &mut super::eval_state::EvalForm, model: Option<&std::path::Path>) {
    if let Some(m) = model {
        form.model = m.display().to_string();
    }
    form.use_endpoint = false;
    form.preset.clear();
    form.bench = "gsm8k".into();
    form.limit = "6".into();
    form.budgets = "32,128,512".into();
    form.waits = "0".into();
    form.samples = 1;
    form.temperature = 0.0;
    form.max_tokens = "640".into();
    form.batch = 6;
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

    #[test]
    fn the_quick_sweep_fills_the_form() {
        let mut f = super::super::eval_state::EvalForm {
            use_endpoint: true,
            preset: "s1".into(),
            ..Default::default()
        };
        quick_sweep(&mut f, Some(std::path::Path::new("/m/demo.gguf")));
        assert_eq!(
            (f.model.as_str(), f.bench.as_str(), f.limit.as_str()),
            ("/m/demo.gguf", "gsm8k", "6")
        );
        assert_eq!(f.budgets.split(',').count(), 3);
        assert!(!f.use_endpoint && f.preset.is_empty());
        quick_sweep(&mut f, None);
        assert_eq!(f.model, "/m/demo.gguf", "no model given: the form's stays");
    }
}
