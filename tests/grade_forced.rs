//! s1's answer extraction on real forced outputs: SmolLM2-135M-Instruct (GGUF) thinks under a
//! budget of 16 tokens, so its thinking is cut and the answer is forced
//! (`...<|im_start|>answer\nFinal Answer: ...`). The sweep grades the whole continuation, as
//! s1 does, and reads what follows `Final Answer:` for every task kind (MATH500, AIME, GSM8K,
//! multiple choice); today's main read nothing there.

mod common;

use std::process::Command;
use std::sync::OnceLock;

use s1_studio::eval::sweep::continuation;
use s1_studio::generate::{chat, BudgetConfig, GenerateParams, MaxThinking, SamplingParams};
use s1_studio::grade::{grade_with, Extraction, Kind, Verdict};
use s1_studio::jobs::CancelToken;
use s1_studio::model::{load_model, ChatMessage, LoadOptions, LoadedModel};

fn model() -> &'static LoadedModel {
    static M: OnceLock<LoadedModel> = OnceLock::new();
    M.get_or_init(|| load_model(&common::smollm2_gguf(), &LoadOptions::default()).unwrap())
}

const FORCED: &str = "<|im_start|>answer\nFinal Answer:";

/// What follows the forced `Final Answer:`, as s1's regex reads it (leading white space
/// dropped), when nothing in it is boxed.
fn after_final_answer(text: &str) -> Option<String> {
    let (_, rest) = text.rsplit_once(FORCED)?;
    (!rest.contains("\\boxed") && !rest.contains("\\fbox")).then(|| rest.trim_start().to_string())
}

/// The text the sweep grades is the whole continuation: the thinking start, the thinking, the
/// forced answer delimiter with `Final Answer:`, and the answer.
#[test]
fn the_graded_text_is_the_whole_forced_continuation() {
    let m = model();
    let params = GenerateParams {
        sampling: SamplingParams {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            seed: 0,
        },
        budget: BudgetConfig {
            max_thinking: MaxThinking::Tokens(16),
            ..BudgetConfig::default()
        },
        max_new_tokens: Some(48),
        auto_prompt_tokens: None,
    };
    let q = "A cube has side length 100. What is its volume?";
    let gen = chat(
        m,
        &[ChatMessage::new("user", q)],
        &params,
        &CancelToken::new(),
        &mut |_| {},
    )
    .unwrap();
    assert!(gen.forced_end, "a budget of 16 forces the end: {gen:?}");
    assert_eq!(gen.thinking_tokens, 16);
    let text = continuation(m, &gen);
    assert!(text.starts_with("<|im_start|>think"), "{text:?}");
    assert!(text.contains(&gen.thinking), "{text:?}");
    assert!(text.contains(FORCED), "{text:?}");
    assert!(text.ends_with(&gen.answer), "{text:?} / {:?}", gen.answer);
    let want = after_final_answer(&text).expect("no box in this answer");
    assert!(!want.is_empty());
    let g = grade_with(&text, "1000000", Kind::Math, Extraction::S1);
    assert_eq!(g.extracted.as_deref(), Some(want.as_str()), "{text:?}");
}

fn lines(p: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn sweep(bench: &str, limit: &str, out: &std::path::Path) -> Vec<serde_json::Value> {
    let r = Command::new(env!("CARGO_BIN_EXE_s1-studio"))
        .args(["eval", "--model"])
        .arg(common::smollm2_gguf())
        .args(["--bench", bench, "--limit", limit, "--max-thinking", "16"])
        .args(["--max-tokens", "40", "--batch", "4", "--out"])
        .arg(out)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    lines(&out.join("samples.jsonl"))
}

/// Every task kind through `s1-studio eval`: each forced sample's extracted answer is what
/// follows `Final Answer:` (MATH/AIME: the text itself; GSM8K: its number; multiple choice: its
/// letter, `A` when it names none, as s1's GPQA task does).
#[test]
fn forced_answers_of_every_task_kind_are_read() {
    let d = tempfile::tempdir().unwrap();
    let gpqa = d.path().join("gpqa.jsonl");
    let rows = [
        (
            // (worded so that this small model thinks past 16 tokens: its answer is forced)
            "Explain your reasoning step by step. Which gas makes up most of Earth's atmosphere?",
            "Nitrogen",
            "Oxygen",
            "Argon",
            "Helium",
        ),
        (
            "Think carefully and explain in detail. What is the chemical symbol of gold?",
            "Au",
            "Ag",
            "Gd",
            "Go",
        ),
        ("How many protons does a carbon atom have?", "6", "12", "8", "4"),
        (
            "Which planet is closest to the Sun?",
            "Mercury",
            "Venus",
            "Mars",
            "Earth",
        ),
    ];
    let text: String = rows
        .iter()
        .map(|(q, c, i1, i2, i3)| {
            serde_json::json!({"Question": q, "Correct Answer": c, "Incorrect Answer 1": i1,
                "Incorrect Answer 2": i2, "Incorrect Answer 3": i3})
            .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(&gpqa, text).unwrap();
    let mut read = 0;
    for (bench, kind) in [
        ("math500", Kind::Math),
        ("aime24", Kind::Aime),
        ("gsm8k", Kind::Gsm8k),
        (gpqa.to_str().unwrap(), Kind::Mc),
    ] {
        let out = d.path().join(format!("out-{kind:?}"));
        let samples = sweep(bench, "4", &out);
        let forced: Vec<_> = samples.iter().filter(|s| s["forced_end"] == true).collect();
        assert!(!forced.is_empty(), "{bench}: no forced sample: {samples:?}");
        for s in forced {
            let answer = s["answer"].as_str().unwrap();
            assert!(answer.trim_start().starts_with("Final Answer:"), "{s}");
            let text = format!("{FORCED}{}", answer.trim_start().trim_start_matches("Final Answer:"));
            let Some(want) = after_final_answer(&text) else {
                continue;
            };
            let got = s["extracted"].as_str();
            match kind {
                Kind::Math | Kind::Aime => {
                    if want.trim().is_empty() {
                        assert_eq!(got, None, "{s}");
                    } else {
                        assert_eq!(got, Some(want.as_str()), "{s}");
                        read += 1;
                    }
                }
                Kind::Gsm8k => {
                    if let Some(n) = got {
                        assert!(want.replace(',', "").contains(n), "{n} is not in {want:?}: {s}");
                        read += 1;
                    }
                }
                Kind::Mc => {
                    let letter = got.unwrap();
                    let lone = want.trim();
                    if lone.len() == 1 && "ABCDabcd".contains(lone) {
                        assert_eq!(letter, lone.to_ascii_uppercase(), "{s}");
                    }
                    assert!(["A", "B", "C", "D"].contains(&letter), "{s}");
                    let v = s["verdict"].as_str().unwrap();
                    let ok = letter == s["reference"].as_str().unwrap();
                    assert_eq!(v, if ok { "correct" } else { "incorrect" }, "{s}");
                    read += 1;
                }
            }
        }
    }
    assert!(read >= 4, "too few forced answers read: {read}");
    // A forced integer answer of AIME compares as an integer.
    let g = grade_with(
        "<|im_start|>think\nx\n<|im_start|>answer\nFinal Answer: 033",
        "33",
        Kind::Aime,
        Extraction::S1,
    );
    assert_eq!(g.verdict, Verdict::Correct);
}
