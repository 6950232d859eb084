//! The tiny Qwen3, R1-distill-Qwen, QwQ and R1-distill-Llama fixtures (tests/fixtures/gguf,
//! written by transformers, converted and quantized by llama.cpp) chat under a thinking budget
//! from their Hugging Face folders and from their Q4_K_M GGUF files, in the library and in the
//! CLI: the format is detected from what each file ships (template and tokenizer), the template's
//! own `<think>` is not doubled, and the budget holds.

mod common;

use std::path::PathBuf;
use std::process::Command;

use s1_studio::generate::{chat, BudgetConfig, GenerateParams, MaxThinking, ThinkingFormat};
use s1_studio::jobs::CancelToken;
use s1_studio::model::{load_model, ChatMessage, LoadOptions, ThinkingKind};

/// (fixture name, the template opens `<think>` itself, it reads `enable_thinking`)
const MODELS: &[(&str, bool, bool)] = &[
    ("qwen3", false, true),
    ("r1-qwen", true, false),
    ("qwq", true, false),
    ("r1-llama", true, false),
];

fn paths(name: &str) -> [PathBuf; 2] {
    let g = common::fixture("gguf");
    [g.join(name), g.join(format!("{name}-Q4_K_M.gguf"))]
}

#[test]
fn each_fixture_chats_with_min_and_max_thinking_from_folder_and_gguf() {
    for &(name, opens, reads) in MODELS {
        for path in paths(name) {
            let what = path.display().to_string();
            let m = load_model(&path, &LoadOptions::default()).unwrap_or_else(|e| panic!("{what}: {e}"));
            let style = m.thinking_style();
            assert_eq!(style.kind, ThinkingKind::ThinkTags, "{what}");
            assert_eq!(
                (style.opens_in_prompt, style.reads_enable_thinking, style.single_token),
                (opens, reads, true),
                "{what}"
            );
            for (min, max) in [(0, 6), (5, 9)] {
                let msgs = [ChatMessage::new("user", "What is 2+2?")];
                let params = GenerateParams {
                    budget: BudgetConfig {
                        min_thinking: min,
                        max_thinking: MaxThinking::Tokens(max),
                        format: ThinkingFormat::for_style(&style),
                        ..Default::default()
                    },
                    max_new_tokens: Some(40),
                    ..Default::default()
                };
                let prompt = s1_studio::generate::build_prompt(&m, &msgs, &params.budget).unwrap();
                let g = chat(&m, &msgs, &params, &CancelToken::new(), &mut |_| {}).unwrap();
                let text = m.tokenizer.decode(&prompt.ids).unwrap() + &m.tokenizer.decode(&g.output_ids).unwrap();
                assert_eq!(text.matches("<think>").count(), 1, "{what}: {text:?}");
                // (A random model may write `</think>` again in its answer; only re-opening is barred.)
                assert!(
                    g.thinking_tokens >= min && g.thinking_tokens <= max,
                    "{what}: {} thinking tokens for [{min}, {max}]",
                    g.thinking_tokens
                );
                // A random model rambles: the maximum ends its thinking, "Final Answer:" follows.
                assert!(g.forced_end, "{what}: {g:?}");
                assert!(text.contains("</think>\nFinal Answer:"), "{what}: {text:?}");
            }
        }
    }
}

#[test]
fn the_cli_detects_the_format_of_a_gguf_and_holds_the_budget() {
    for &(name, _, _) in MODELS {
        let [_, gguf] = paths(name);
        let out = Command::new(env!("CARGO_BIN_EXE_s1-studio"))
            .args(["generate", "--model"])
            .arg(&gguf)
            .args([
                "--prompt",
                "What is 2+2?",
                "--min-thinking",
                "3",
                "--max-thinking",
                "7",
                "--max-tokens",
                "30",
                "--json",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let thinking = v["thinking_tokens"].as_u64().unwrap();
        assert!((3..=7).contains(&thinking), "{name}: {v}");
        assert_eq!(v["format"]["start"], "<think>", "{name}: {v}");
        assert_eq!(v["thinking_style"]["kind"], "think_tags", "{name}: {v}");
    }
}
