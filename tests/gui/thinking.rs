//! The model info line names the thinking format detected for the loaded model, and the Chat
//! view's Auto choice uses it: a tiny random model with Qwen3's real chat template (think tags,
//! enable_thinking) and one with Qwen2.5's (s1's format).

use crate::common;

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

/// The Qwen3 Q4_K_M fixture (converted and quantized by llama.cpp) in the Chat view: it loads
/// from the path field, the model line names its think tags, and a reply thinks in `<think>`
/// for exactly the slider's maximum (the random model never ends on its own), then answers.
#[test]
fn a_qwen3_q4_k_m_gguf_chats_under_the_budget_in_the_app() {
    let gguf = common::fixture("gguf").join("qwen3-Q4_K_M.gguf");
    let mut s = Settings::default();
    s.chat.max_thinking = 8;
    s.chat.min_thinking = 3;
    s.chat.max_new_tokens = 40;
    let mut h = harness(app(s));
    h.ctx.set_missing_glyph_policy(egui::MissingGlyphPolicy::Tofu);
    h.run();
    h.get_by_role_and_label(Role::TextInput, "Path").focus();
    h.run();
    h.get_by_role_and_label(Role::TextInput, "Path")
        .type_text(&gguf.display().to_string());
    h.run();
    h.get_by_label("Load").click();
    step_until(
        &mut h,
        Duration::from_secs(120),
        |_| {},
        |a| !matches!(a.model, ModelStatus::None | ModelStatus::Loading { .. }),
    );
    assert!(
        matches!(h.state().model, ModelStatus::Loaded(_)),
        "{:?}",
        h.state().model
    );
    h.get_by_label_contains("thinking: <think> tags, enable_thinking");
    h.get_by_role_and_label(Role::MultilineTextInput, "Message").focus();
    h.run();
    h.get_by_role_and_label(Role::MultilineTextInput, "Message")
        .type_text("What is 2+2?");
    h.run();
    h.get_by_label("Send").click();
    h.step();
    step_until(&mut h, Duration::from_secs(120), |_| {}, |a| !a.is_generating());
    h.run();
    let Some(s1_studio::generate::conversation::Turn::Assistant(a)) = h.state().chat.conversation.turns.last() else {
        panic!("no reply")
    };
    assert!(a.error.is_none(), "{:?}", a.error);
    assert_eq!(a.thinking_tokens, 8);
    assert!(a.forced_end_at.is_some());
    h.get_by_label_contains("end of thinking forced");
}
