//! How a model thinks, read from what it ships: its chat template and its tokenizer. The
//! template is rendered (generation prompt on, with and without `enable_thinking`, and over a
//! conversation whose assistant turn holds a think block) so that the test is what the model
//! will actually see, not a substring of the template's source.
//!
//! - Think tags (`<think>` … `</think>`): Qwen3, the DeepSeek-R1 distills, QwQ. R1 distills and
//!   QwQ open `<think>\n` themselves at the end of the generation prompt; Qwen3 reads
//!   `enable_thinking` and, with false, writes an empty `<think>\n\n</think>\n\n`.
//! - s1's `<|im_start|>think` … `<|im_start|>answer`: s1 and s1.1 ship Qwen2.5's ChatML template,
//!   which knows nothing of thinking; every ChatML template without think tags gets s1's format.
//! - Plain: any other template (no think tags, not ChatML); s1's format is still what budget
//!   forcing appends when asked to think.

use super::chat_template::{ChatMessage, ChatTemplate};
use super::loader::LoadedModel;
use super::tokenizer::TextTokenizer;

/// The kind of thinking delimiters a model was trained with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThinkingKind {
    /// `<think>` … `</think>` (Qwen3, R1 distills, QwQ).
    ThinkTags,
    /// s1's `<|im_start|>think` … `<|im_start|>answer` (a ChatML template without think tags).
    S1,
    /// Neither: no think tags and not ChatML.
    Plain,
}

/// What detection found about a model's thinking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ThinkingStyle {
    pub kind: ThinkingKind,
    /// The generation prompt already ends with the thinking start (R1 distills, QwQ: `<think>\n`).
    pub opens_in_prompt: bool,
    /// The template renders differently with `enable_thinking` false (Qwen3: an empty think
    /// block after the generation prompt).
    pub reads_enable_thinking: bool,
    /// The delimiters are one token each (`<think>`/`</think>`, or `<|im_start|>`, as special
    /// or added tokens); false: the tokenizer spells them in several tokens.
    pub single_token: bool,
}

/// The think-tag delimiters.
pub const THINK_START: &str = "<think>";
pub const THINK_END: &str = "</think>";

fn single(tokenizer: &TextTokenizer, text: &str) -> bool {
    tokenizer.encode(text).is_ok_and(|ids| ids.len() == 1)
}

impl ThinkingStyle {
    /// Detects the style from `template` and `tokenizer`. A template that fails to render the
    /// probes is judged by its source alone.
    pub fn detect(template: &ChatTemplate, tokenizer: &TextTokenizer) -> Self {
        let user = [ChatMessage::new("user", "What is 1+1?")];
        let on = template.render(&user, true, Some(true)).ok();
        let off = template.render(&user, true, Some(false)).ok();
        let history = [
            ChatMessage::new("user", "What is 1+1?"),
            ChatMessage::new("assistant", "<think>\nREASONING\n</think>\n\nTWO"),
            ChatMessage::new("user", "And 2+2?"),
        ];
        let past = template.render(&history, true, Some(true)).ok();
        let source = template.source();
        let opens_in_prompt = on.as_deref().is_some_and(|s| s.trim_end().ends_with(THINK_START));
        let reads_enable_thinking = matches!((&on, &off), (Some(a), Some(b)) if a != b);
        // Qwen3 with thinking off, or a template that drops the reasoning of past turns.
        let closes_when_off = off.as_deref().is_some_and(|s| s.contains(THINK_END));
        let strips_reasoning = past
            .as_deref()
            .is_some_and(|s| s.contains("TWO") && !s.contains("REASONING"));
        let tags_in_vocab = tokenizer.token_to_id(THINK_START).is_some() && tokenizer.token_to_id(THINK_END).is_some();
        let rendered = on.is_some();
        let think_tags = opens_in_prompt
            || closes_when_off
            || (strips_reasoning && source.contains(THINK_END))
            || (!rendered && source.contains(THINK_START) && tags_in_vocab);
        let chatml = on
            .as_deref()
            .map_or(source.contains("<|im_start|>"), |s| s.contains("<|im_start|>assistant"));
        let kind = if think_tags {
            ThinkingKind::ThinkTags
        } else if chatml {
            ThinkingKind::S1
        } else {
            ThinkingKind::Plain
        };
        let single_token = match kind {
            ThinkingKind::ThinkTags => single(tokenizer, THINK_START) && single(tokenizer, THINK_END),
            _ => single(tokenizer, "<|im_start|>"),
        };
        Self {
            kind,
            opens_in_prompt,
            reads_enable_thinking,
            single_token,
        }
    }

    /// A short description for the model info line ("<think> tags, opened by the template").
    pub fn label(&self) -> String {
        let mut s = match self.kind {
            ThinkingKind::ThinkTags => "<think> tags".to_string(),
            ThinkingKind::S1 => "s1 (<|im_start|>think)".to_string(),
            ThinkingKind::Plain => "no thinking format (s1's used)".to_string(),
        };
        if self.opens_in_prompt {
            s.push_str(", opened by the template");
        }
        if self.reads_enable_thinking {
            s.push_str(", enable_thinking");
        }
        if !self.single_token {
            s.push_str(", multi-token delimiters");
        }
        s
    }
}

impl LoadedModel {
    /// This model's thinking style, as detected at load.
    pub fn thinking_style(&self) -> ThinkingStyle {
        self.thinking
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(name: &str) -> ChatTemplate {
        // The four think-tag templates ship in assets/; Qwen2.5-7B-Instruct's is a test fixture.
        let root = env!("CARGO_MANIFEST_DIR");
        let shipped = format!("{root}/assets/chat_templates/{name}.jinja");
        let path = if std::path::Path::new(&shipped).exists() {
            shipped
        } else {
            format!("{root}/tests/fixtures/templates/{name}.jinja")
        };
        let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        ChatTemplate::new(&src, Some("<｜begin▁of▁sentence｜>"), Some("<|im_end|>")).unwrap()
    }

    /// The real Qwen3 tokenizer, or the same without `<think>`/`</think>` as added tokens (as
    /// Qwen2.5's, which spells them in several tokens).
    fn tokenizer(with_tags: bool) -> TextTokenizer {
        let dir = tempfile::tempdir().unwrap();
        let shared = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/tokenizer/qwen3");
        let mut tok: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{shared}/tokenizer.json")).unwrap()).unwrap();
        if !with_tags {
            let added = tok["added_tokens"].as_array_mut().unwrap();
            added.retain(|t| !t["content"].as_str().unwrap().contains("think>"));
        }
        std::fs::write(dir.path().join("tokenizer.json"), tok.to_string()).unwrap();
        std::fs::copy(
            format!("{shared}/tokenizer_config.json"),
            dir.path().join("tokenizer_config.json"),
        )
        .unwrap();
        TextTokenizer::from_hf_folder(dir.path()).unwrap().0
    }

    #[test]
    fn detects_each_real_template() {
        let tags = tokenizer(true);
        let plain_vocab = tokenizer(false);
        let cases = [
            ("Qwen-Qwen3-0.6B", ThinkingKind::ThinkTags, false, true),
            ("Qwen-QwQ-32B", ThinkingKind::ThinkTags, true, false),
            (
                "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B",
                ThinkingKind::ThinkTags,
                true,
                false,
            ),
            (
                "deepseek-ai-DeepSeek-R1-Distill-Llama-8B",
                ThinkingKind::ThinkTags,
                true,
                false,
            ),
            ("Qwen-Qwen2.5-7B-Instruct", ThinkingKind::S1, false, false),
        ];
        for (name, kind, opens, reads) in cases {
            let t = template(name);
            let s = ThinkingStyle::detect(&t, &tags);
            assert_eq!(
                (s.kind, s.opens_in_prompt, s.reads_enable_thinking),
                (kind, opens, reads),
                "{name}"
            );
            assert!(
                s.single_token,
                "{name}: the Qwen3 tokenizer has the delimiters as tokens"
            );
            let m = ThinkingStyle::detect(&t, &plain_vocab);
            assert_eq!(m.kind, kind, "{name}: the kind does not depend on the vocabulary");
            assert_eq!(
                m.single_token,
                kind != ThinkingKind::ThinkTags,
                "{name}: without added tokens <think> takes several"
            );
        }
    }

    #[test]
    fn every_real_template_renders_its_generation_prompt() {
        for name in [
            "Qwen-Qwen3-0.6B",
            "Qwen-QwQ-32B",
            "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B",
            "deepseek-ai-DeepSeek-R1-Distill-Llama-8B",
            "Qwen-Qwen2.5-7B-Instruct",
        ] {
            let t = template(name);
            let msgs = [
                ChatMessage::new("system", "Be brief."),
                ChatMessage::new("user", "Hi"),
                ChatMessage::new("assistant", "<think>\nhmm\n</think>\n\nHello!"),
                ChatMessage::new("user", "2+2?"),
            ];
            for et in [None, Some(true), Some(false)] {
                let s = t.render(&msgs, true, et).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(s.contains("2+2?") && s.contains("Hello!"), "{name}: {s}");
            }
        }
        let qwq = template("Qwen-QwQ-32B")
            .render(&[ChatMessage::new("user", "Hi")], true, None)
            .unwrap();
        assert!(qwq.ends_with("<|im_start|>assistant\n<think>\n"), "{qwq:?}");
        let r1 = template("deepseek-ai-DeepSeek-R1-Distill-Llama-8B")
            .render(&[ChatMessage::new("user", "Hi")], true, None)
            .unwrap();
        assert!(r1.ends_with("<｜Assistant｜><think>\n"), "{r1:?}");
    }

    #[test]
    fn plain_and_fallback_templates() {
        let tags = tokenizer(true);
        let chatml = ChatTemplate::new(super::super::chat_template::CHATML_TEMPLATE, None, None).unwrap();
        assert_eq!(ThinkingStyle::detect(&chatml, &tags).kind, ThinkingKind::S1);
        let plain = ChatTemplate::new(
            "{% for m in messages %}### {{ m.role }}: {{ m.content }}\n{% endfor %}### assistant:",
            None,
            None,
        )
        .unwrap();
        let s = ThinkingStyle::detect(&plain, &tags);
        assert_eq!(s.kind, ThinkingKind::Plain);
        assert!(!s.opens_in_prompt && !s.reads_enable_thinking);
    }
}
