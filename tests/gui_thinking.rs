//! The model info line names the thinking format detected for the loaded model, and the Chat
//! view's Auto choice uses it: a tiny random model with Qwen3's real chat template (think tags,
//! enable_thinking) and one with Qwen2.5's (s1's format).

mod common;

use std::time::Duration;

use common::gui::{app, harness, step_until};
use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use s1_studio::generate::ThinkingFormat;
use s1_studio::model::init::{init_model, InitSpec, TemplateChoice};
use s1_studio::model::Arch;
use s1_studio::ui::{ModelStatus, Settings};

#[test]
fn the_model_line_shows_the_detected_format_and_auto_uses_it() {
    for (template, label, start) in [
        ("Qwen-Qwen3-0.6B", "thinking: <think> tags, enable_thinking)", "<think>"),
        (
            "Qwen-Qwen2.5-7B-Instruct",
            "thinking: s1 (<|im_start|>think))",
            "<|im_start|>think",
        ),
    ] {
        let d = tempfile::tempdir().unwrap();
        let spec = InitSpec {
            arch: Arch::Qwen3,
            hidden: 32,
            layers: 1,
            heads: 4,
            kv_heads: 2,
            intermediate: 64,
            vocab: None,
            tie_embeddings: true,
            max_position_embeddings: 512,
            rope_theta: 1e6,
            seed: 3,
            head_dim: None,
        };
        let tpl = common::real_template(template);
        init_model(&spec, &common::qwen_tokenizer(), &TemplateChoice::File(tpl), d.path()).unwrap();
        let mut h = harness(app(Settings::default()));
        h.run();
        h.get_by_role_and_label(Role::TextInput, "Path").focus();
        h.run();
        h.get_by_role_and_label(Role::TextInput, "Path")
            .type_text(&d.path().display().to_string());
        h.run();
        h.get_by_label("Load").click();
        step_until(
            &mut h,
            Duration::from_secs(120),
            |_| {},
            |a| !matches!(a.model, ModelStatus::None | ModelStatus::Loading { .. }),
        );
        let ModelStatus::Loaded(info) = h.state().model.clone() else {
            panic!("{template}: {:?}", h.state().model)
        };
        h.get_by_label_contains(label);
        let params = h.state().settings.chat.params(Some(&info.thinking));
        assert_eq!(params.budget.format.start, start, "{template}");
        assert_eq!(
            params.budget.format,
            ThinkingFormat::for_style(&info.thinking),
            "{template}"
        );
    }
}
