//! Thinking formats end to end: tiny random models (init-model) carrying each real chat
//! template (assets/chat_templates, from llama.cpp) and the real Qwen tokenizer, with and
//! without `<think>`/`</think>` as tokens of their own, loaded with `load_model` and run through
//! `chat` and the CLI's `generate` under min and max thinking. A random model never ends its
//! thinking by itself, so the maximum forces the end; a second kind of model always samples the
//! end of turn (every layer's output projections zeroed, every embedding row the same, an
//! untied head that scores only `<|im_end|>`), so it tries to end its thinking at once and the
//! minimum answers with "Wait".

mod common;

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use s1_studio::generate::{build_prompt, chat, BudgetConfig, GenerateParams, Generation, MaxThinking, ThinkingFormat};
use s1_studio::jobs::CancelToken;
use s1_studio::model::init::{init_model, InitSpec, TemplateChoice};
use s1_studio::model::{load_model, Arch, ChatMessage, LoadOptions, LoadedModel, ThinkingKind};

fn template(name: &str) -> PathBuf {
    common::real_template(name)
}

/// The Qwen tokenizer in `dir`: the real one, or without `<think>`/`</think>` as added tokens.
fn tokenizer_in(dir: &Path, tags: bool) -> PathBuf {
    let src = common::qwen_tokenizer();
    if tags {
        return src;
    }
    let mut tok: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&src).unwrap()).unwrap();
    tok["added_tokens"]
        .as_array_mut()
        .unwrap()
        .retain(|t| !t["content"].as_str().unwrap_or_default().contains("think>"));
    std::fs::create_dir_all(dir).unwrap();
    let out = dir.join("tokenizer.json");
    std::fs::write(&out, tok.to_string()).unwrap();
    std::fs::copy(
        src.with_file_name("tokenizer_config.json"),
        dir.join("tokenizer_config.json"),
    )
    .unwrap();
    out
}

/// A tiny random model with `template` and the Qwen tokenizer (with or without the tags).
fn tiny(dir: &Path, arch: Arch, template_name: &str, tags: bool) -> PathBuf {
    let tok = tokenizer_in(&dir.join("tok"), tags);
    let spec = InitSpec {
        arch,
        hidden: 32,
        layers: 2,
        heads: 4,
        kv_heads: 2,
        intermediate: 64,
        vocab: None,
        tie_embeddings: false,
        max_position_embeddings: 2048,
        rope_theta: 1e6,
        seed: 11,
        head_dim: None,
    };
    let out = dir.join("model");
    init_model(&spec, &tok, &TemplateChoice::File(template(template_name)), &out).unwrap();
    out
}

/// Rewrites the model in `folder` so that it always samples `<|im_end|>`: the residual stream
/// is the token's embedding (output projections zeroed), which is the same for every token,
/// and the head scores that embedding for `<|im_end|>` only.
fn always_end_of_turn(folder: &Path, end: u32) {
    let path = folder.join("model.safetensors");
    let mut w = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    for (name, t) in w.iter_mut() {
        if name.ends_with("o_proj.weight") || name.ends_with("down_proj.weight") {
            *t = t.zeros_like().unwrap();
        }
    }
    let norm = w["model.norm.weight"].clone();
    w.insert("model.norm.weight".into(), norm.ones_like().unwrap());
    let emb = w["model.embed_tokens.weight"].clone();
    w.insert("model.embed_tokens.weight".into(), emb.ones_like().unwrap());
    let head = w["lm_head.weight"].clone();
    let (rows, cols) = head.dims2().unwrap();
    let mut data = vec![0f32; rows * cols];
    data[end as usize * cols..(end as usize + 1) * cols].fill(1.0);
    w.insert(
        "lm_head.weight".into(),
        Tensor::from_vec(data, (rows, cols), &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&w, &path).unwrap();
}

fn load(folder: &Path) -> LoadedModel {
    load_model(folder, &LoadOptions::default()).unwrap()
}

fn budget(model: &LoadedModel, thinking: bool, min: usize, max: MaxThinking) -> BudgetConfig {
    BudgetConfig {
        thinking,
        min_thinking: min,
        max_thinking: max,
        format: ThinkingFormat::for_style(&model.thinking_style()),
        ..Default::default()
    }
}

/// The prompt and the whole output as text, and the generation.
fn run(model: &LoadedModel, b: BudgetConfig, max_new: usize) -> (String, String, Generation) {
    let msgs = [ChatMessage::new("user", "What is 2+2?")];
    let prompt = build_prompt(model, &msgs, &b).unwrap();
    let params = GenerateParams {
        budget: b,
        max_new_tokens: Some(max_new),
        ..Default::default()
    };
    let gen = chat(model, &msgs, &params, &CancelToken::new(), &mut |_| {}).unwrap();
    let p = model.tokenizer.decode(&prompt.ids).unwrap();
    let out = model.tokenizer.decode(&gen.output_ids).unwrap();
    (p, out, gen)
}

/// (template, architecture, the template opens `<think>` itself)
const THINK_TEMPLATES: &[(&str, Arch, bool)] = &[
    ("Qwen-Qwen3-0.6B", Arch::Qwen3, false),
    ("Qwen-QwQ-32B", Arch::Qwen2, true),
    ("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", Arch::Qwen2, true),
    ("deepseek-ai-DeepSeek-R1-Distill-Llama-8B", Arch::Llama, true),
];

#[test]
fn max_thinking_and_thinking_off_with_each_real_template() {
    for &(name, arch, opens) in THINK_TEMPLATES {
        for tags in [true, false] {
            let d = tempfile::tempdir().unwrap();
            let m = load(&tiny(d.path(), arch, name, tags));
            let style = m.thinking_style();
            let what = format!("{name} (single-token tags: {tags})");
            assert_eq!(style.kind, ThinkingKind::ThinkTags, "{what}");
            assert_eq!(style.opens_in_prompt, opens, "{what}");
            assert_eq!(style.single_token, tags, "{what}");
            // Max thinking: the end is forced at 6 tokens; one `<think>` in all.
            let (p, out, gen) = run(&m, budget(&m, true, 2, MaxThinking::Tokens(6)), 24);
            assert!(gen.forced_end, "{what}: {out:?}");
            assert_eq!(gen.thinking_tokens, 6, "{what}: {out:?}");
            let assistant = &p[p.rfind("What is 2+2?").unwrap()..];
            assert_eq!(
                format!("{assistant}{out}").matches("<think>").count(),
                1,
                "{what}: {assistant:?} + {out:?}"
            );
            assert_eq!(out.starts_with("<think>"), !opens, "{what}: {out:?}");
            assert!(
                out.contains("</think>\nFinal Answer:"),
                "{what}: the forced end: {out:?}"
            );
            // Thinking off, and max thinking 0: the template's own empty block (Qwen3) or the
            // opened block closed at once (R1 distills, QwQ); no "Final Answer:".
            for b in [
                budget(&m, false, 0, MaxThinking::Unlimited),
                budget(&m, true, 0, MaxThinking::Tokens(0)),
            ] {
                let (p, out, gen) = run(&m, b, 8);
                assert_eq!(gen.thinking_tokens, 0, "{what}");
                assert!(!gen.forced_end && !out.contains("Final Answer"), "{what}: {out:?}");
                let whole = format!("{p}{out}");
                let tail = &whole[whole.rfind("What is 2+2?").unwrap()..];
                assert_eq!(tail.matches("<think>").count(), 1, "{what}: {tail:?}");
                assert!(tail.contains("<think>\n\n</think>\n\n"), "{what}: {tail:?}");
                if opens {
                    assert!(out.starts_with("\n</think>\n\n"), "{what}: {out:?}");
                } else {
                    assert!(
                        p.ends_with("<think>\n\n</think>\n\n"),
                        "{what}: enable_thinking=false: {p:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn min_thinking_waits_with_each_real_template() {
    for &(name, arch, opens) in THINK_TEMPLATES {
        for tags in [true, false] {
            let d = tempfile::tempdir().unwrap();
            let folder = tiny(d.path(), arch, name, tags);
            let end = load(&folder).tokenizer.token_to_id("<|im_end|>").unwrap();
            always_end_of_turn(&folder, end);
            let m = load(&folder);
            let what = format!("{name} (single-token tags: {tags})");
            // The model tries to end at once every time: "Wait"; the token after it may not end
            // the thinking (s1's min_tokens=1), so the model says "!" (id 0: all else scores 0);
            // "Wait" again; past the minimum of 3 its end is the natural one.
            let (_, out, gen) = run(&m, budget(&m, true, 3, MaxThinking::Tokens(10)), 40);
            assert_eq!(gen.thinking, "Wait!Wait!", "{what}: {out:?}");
            assert_eq!((gen.thinking_tokens, gen.waits_injected), (4, 2), "{what}");
            assert!(!gen.forced_end, "{what}");
            let start = if opens { "" } else { "<think>" };
            assert_eq!(out, format!("{start}Wait!Wait!</think>"), "{what}");
        }
    }
}

#[test]
fn s1_template_keeps_s1s_format() {
    let d = tempfile::tempdir().unwrap();
    let m = load(&tiny(d.path(), Arch::Qwen2, "Qwen-Qwen2.5-7B-Instruct", true));
    let style = m.thinking_style();
    assert_eq!(style.kind, ThinkingKind::S1);
    assert_eq!(ThinkingFormat::for_style(&style), ThinkingFormat::s1());
    let (p, out, gen) = run(&m, budget(&m, true, 0, MaxThinking::Tokens(5)), 20);
    assert!(p.ends_with("<|im_start|>assistant\n"), "{p:?}");
    assert!(out.starts_with("<|im_start|>think"), "{out:?}");
    assert!(out.contains("\n<|im_start|>answer\nFinal Answer:"), "{out:?}");
    assert_eq!(gen.thinking_tokens, 5);
    // s1's maximum 0 keeps its rule: the start, then the forced end at once.
    let (_, out, _) = run(&m, budget(&m, true, 0, MaxThinking::Tokens(0)), 6);
    assert!(
        out.starts_with("<|im_start|>think\n<|im_start|>answer\nFinal Answer:"),
        "{out:?}"
    );
}

fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_s1-studio"))
}

/// The CLI's `generate --format auto` (the default) picks the detected format, and
/// `--min-thinking`/`--max-thinking` work with each real template; `--format s1` overrides.
#[test]
fn cli_generate_detects_the_format_of_each_real_template() {
    for &(name, arch, opens) in THINK_TEMPLATES {
        let d = tempfile::tempdir().unwrap();
        let folder = tiny(d.path(), arch, name, true);
        let gen = |extra: &[&str]| -> serde_json::Value {
            let r = bin()
                .args(["generate", "--model"])
                .arg(&folder)
                .args(["--prompt", "What is 2+2?", "--max-tokens", "24", "--json"])
                .args(extra)
                .output()
                .unwrap();
            assert!(r.status.success(), "{name}: {}", String::from_utf8_lossy(&r.stderr));
            serde_json::from_slice(&r.stdout).unwrap()
        };
        let v = gen(&["--min-thinking", "2", "--max-thinking", "5"]);
        assert_eq!(v["thinking_style"]["kind"], "think_tags", "{name}: {v}");
        assert_eq!(v["thinking_style"]["opens_in_prompt"], opens, "{name}");
        assert_eq!(v["format"]["start"], "<think>", "{name}");
        assert_eq!(v["thinking_tokens"], 5, "{name}: {v}");
        assert_eq!(v["forced_end"], true, "{name}");
        let m = load(&folder);
        let ids: Vec<u32> = serde_json::from_value(v["output_ids"].clone()).unwrap();
        let out = m.tokenizer.decode(&ids).unwrap();
        assert_eq!(out.starts_with("<think>"), !opens, "{name}: {out:?}");
        assert!(out.contains("</think>\nFinal Answer:"), "{name}: {out:?}");
        let off = gen(&["--no-think"]);
        let ids: Vec<u32> = serde_json::from_value(off["output_ids"].clone()).unwrap();
        let out = m.tokenizer.decode(&ids).unwrap();
        assert_eq!(out.starts_with("\n</think>\n\n"), opens, "{name}: {out:?}");
        let s1 = gen(&["--format", "s1", "--max-thinking", "3"]);
        assert_eq!(
            s1["format"]["start"], "<|im_start|>think",
            "{name}: an explicit format wins"
        );
    }
}

/// `eval` uses the detected format: on a Qwen3-template model a budget of 0 is thinking off
/// (the template's empty think block; no forced end), where s1's format would force the end at
/// once; a budget of 4 forces `</think>` at 4 tokens.
#[test]
fn eval_uses_the_detected_format() {
    let d = tempfile::tempdir().unwrap();
    let folder = tiny(d.path(), Arch::Qwen3, "Qwen-Qwen3-0.6B", true);
    let out = d.path().join("eval");
    let r = bin()
        .args(["eval", "--model"])
        .arg(&folder)
        .args([
            "--bench",
            "gsm8k",
            "--limit",
            "2",
            "--max-thinking",
            "0,4",
            "--waits",
            "0",
        ])
        .args(["--max-tokens", "16", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let samples: Vec<serde_json::Value> = std::fs::read_to_string(out.join("samples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(samples.len(), 4);
    for s in &samples {
        let zero = s["setting"].as_str().unwrap().starts_with("max=0 ");
        assert_eq!(s["forced_end"], !zero, "{s}");
        assert_eq!(s["thinking_tokens"], if zero { 0 } else { 4 }, "{s}");
        assert_eq!(s["answer"].as_str().unwrap().starts_with("Final Answer:"), !zero, "{s}");
    }
}
