//! s1's training data, exactly: the assistant text as data/tokenization.py writes it, and the
//! ids and loss mask of real s1K questions against tests/fixtures/trl_mask.json, which
//! scripts/make_trl_mask_fixture.py made with transformers' apply_chat_template (Qwen2.5's
//! template), the tokenizer call of TRL 0.12's SFTTrainer and TRL's own
//! DataCollatorForCompletionOnlyLM, with the real Qwen tokenizer of ../shared/data.

mod common;

use std::path::Path;

use s1_studio::model::chat_template::QWEN25_TEMPLATE;
use s1_studio::model::tokenizer::TextTokenizer;
use s1_studio::model::ChatTemplate;
use s1_studio::train::data::{pad_id, py_strip, MicroBatch, Renderer, S1Row, IGNORE};
use s1_studio::train::mask::LossMask;

fn row(trajectories: &[&str], attempt: &str) -> S1Row {
    S1Row {
        question: "Q".into(),
        trajectories: trajectories.iter().map(|t| t.to_string()).collect(),
        attempt: attempt.into(),
        line: 1,
    }
}

/// The answer part after `<|im_start|>answer\n`.
fn answer(r: &S1Row) -> String {
    let t = r.assistant_text();
    t.split_once("<|im_start|>answer\n").unwrap().1.to_string()
}

#[test]
fn assistant_text_strips_the_answer_after_the_prefix() {
    // s1: answer = "Answer: " + attempt (no "Answer:" in it), then answer.strip().
    assert_eq!(answer(&row(&["t"], "  42  \n")), "Answer:   42");
    assert_eq!(answer(&row(&["t"], "\n\n42")), "Answer: \n\n42");
    assert_eq!(answer(&row(&["t"], "42\n")), "Answer: 42");
    // An attempt with "Answer:" is kept as it is, and stripped.
    assert_eq!(
        answer(&row(&["t"], "\n  So.\nFinal Answer: 7 \n")),
        "So.\nFinal Answer: 7"
    );
    // Only the exact "Answer:" counts.
    assert_eq!(answer(&row(&["t"], "answer: 7")), "Answer: answer: 7");
    assert_eq!(answer(&row(&["t"], "ANSWER: 7")), "Answer: ANSWER: 7");
    // Trajectories: joined by newlines, the whole stripped once (inner whitespace kept).
    assert_eq!(
        row(&["  first  ", "", "second\n\n"], "x").assistant_text(),
        "<|im_start|>think\nfirst  \n\nsecond\n<|im_start|>answer\nAnswer: x"
    );
    // Python's strip also takes the separators U+001C..U+001F and Unicode spaces.
    assert_eq!(py_strip("\u{1c}\u{3000} a \u{85}\u{1f}"), "a");
    assert_eq!(answer(&row(&["t"], "7\u{1f}")), "Answer: 7");
}

fn shared(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(rel)
}

/// The studio's rendering of the fixture's s1K rows, with the real tokenizer and Qwen2.5's
/// template, against what s1's code made of them: the text, every id and every label.
#[test]
fn s1k_rows_match_trl_token_for_token() {
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::fixture("trl_mask.json")).unwrap()).unwrap();
    let (tokenizer, _) = TextTokenizer::from_hf_folder(&shared("tokenizer/qwen3")).unwrap();
    let template = ChatTemplate::new(QWEN25_TEMPLATE, None, Some("<|im_end|>")).unwrap();
    let renderer = Renderer {
        tokenizer: &tokenizer,
        template: &template,
        block_size: fixture["block_size"].as_u64().unwrap() as usize,
        mask: LossMask::Completion,
    };
    // The questions are the real s1K ones.
    let s1k: Vec<serde_json::Value> = std::fs::read_to_string(shared("s1k/s1K_questions_solutions.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rows = fixture["rows"].as_array().unwrap();
    assert!(rows.len() >= 3);
    let pad = pad_id(&tokenizer);
    for f in rows {
        let id = f["s1k_id"].as_u64().unwrap() as usize;
        assert_eq!(f["question"], s1k[id]["question"], "s1K row {id}");
        let r = S1Row {
            question: f["question"].as_str().unwrap().into(),
            trajectories: f["trajectories"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string())
                .collect(),
            attempt: f["attempt"].as_str().unwrap().into(),
            line: id + 1,
        };
        let (text, _) = renderer.render(&r).unwrap();
        assert_eq!(text, f["text"].as_str().unwrap(), "s1K row {id}: text");
        let ex = renderer.example(&r).unwrap();
        let want_ids: Vec<u32> = f["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(ex.ids, want_ids, "s1K row {id}: ids");
        let labels: Vec<i64> = f["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let want_mask: Vec<bool> = labels.iter().map(|&l| l != -100).collect();
        let first_diff = ex.loss.iter().zip(&want_mask).position(|(a, b)| a != b);
        assert!(
            ex.loss.len() == want_mask.len() && first_diff.is_none(),
            "s1K row {id}: loss mask differs from TRL's at token {first_diff:?} of {} (TRL {} trained, studio {})",
            ex.ids.len(),
            want_mask.iter().filter(|&&b| b).count(),
            ex.loss.iter().filter(|&&b| b).count()
        );
        // The last two trained tokens are <|im_end|> and the newline after it.
        let n = ex.ids.len();
        assert_eq!(tokenizer.decode(&ex.ids[n - 2..]).unwrap(), "<|im_end|>\n");
        assert!(ex.in_loss(n - 1) && ex.in_loss(n - 2));
        // The micro-batch's targets are the labels shifted by one, as transformers shifts them.
        let b = MicroBatch::new(&[&ex], pad);
        for p in 0..n {
            let want = match labels.get(p + 1) {
                Some(&l) if l >= 0 => l as u32,
                _ => IGNORE,
            };
            assert_eq!(b.targets[p], want, "s1K row {id}: target at {p}");
        }
        // The `turn` option differs only by that newline.
        let turn = Renderer {
            mask: LossMask::Turn,
            ..renderer
        };
        let t = turn.example(&r).unwrap();
        assert_eq!(t.loss_tokens() + 1, ex.loss_tokens(), "s1K row {id}: turn mask");
        assert!(!t.in_loss(n - 1));
    }
}
