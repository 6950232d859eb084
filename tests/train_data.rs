//! Training data as S1_RECIPE.md §2 says, with the real Qwen tokenizer and Qwen2.5's template:
//! the rendered text, the loss mask token by token, truncation, padding and the seeded order.

mod common;

use s1_studio::model::{load_model, LoadOptions};
use s1_studio::train::data::{pad_id, read_rows, schedule, MicroBatch, Renderer, S1Row, TraceColumns, IGNORE};
use s1_studio::train::mask::LossMask;

fn row() -> S1Row {
    S1Row {
        question: "What is 2 + 3?".into(),
        trajectories: vec!["  Add them.".into(), "2 + 3 = 5.  ".into()],
        attempt: "The answer is \\boxed{5}.".into(),
        line: 1,
    }
}

#[test]
fn assistant_text_follows_the_recipe() {
    let r = row();
    assert_eq!(
        r.assistant_text(),
        "<|im_start|>think\nAdd them.\n2 + 3 = 5.\n<|im_start|>answer\nAnswer: The answer is \\boxed{5}."
    );
    let mut with_answer = row();
    with_answer.attempt = "Final Answer: 5".into();
    assert!(with_answer
        .assistant_text()
        .ends_with("<|im_start|>answer\nFinal Answer: 5"));
}

#[test]
fn loss_mask_covers_exactly_the_assistant_part() {
    let dir = tempfile::tempdir().unwrap();
    common::tiny_qwen(dir.path(), 512);
    let m = load_model(dir.path(), &LoadOptions::default()).unwrap();
    let r = Renderer {
        tokenizer: &m.tokenizer,
        template: &m.template,
        block_size: 4096,
        mask: LossMask::Turn,
    };
    let (full, _) = r.render(&row()).unwrap();
    assert_eq!(
        full,
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n\
         <|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n<|im_start|>think\nAdd them.\n\
         2 + 3 = 5.\n<|im_start|>answer\nAnswer: The answer is \\boxed{5}.<|im_end|>\n"
    );
    let ex = r.example(&row()).unwrap();
    let (loss_start, loss_end) = ex.loss_span();
    let tok = |i: usize| m.tokenizer.id_to_token(ex.ids[i]).unwrap();
    // Token by token: everything up to and including "<|im_start|>assistant\n" is masked ...
    let masked: String = (0..loss_start)
        .map(|i| m.tokenizer.decode(&ex.ids[i..i + 1]).unwrap())
        .collect();
    assert!(masked.ends_with("<|im_start|>assistant\n"), "{masked:?}");
    assert_eq!(tok(loss_start - 3), "<|im_start|>");
    assert_eq!(tok(loss_start - 2), "assistant");
    // ... the first trained token opens the thinking, the last one is the closing <|im_end|>,
    // and (the `turn` mask) the newline the template writes after it is not trained.
    assert_eq!(tok(loss_start), "<|im_start|>");
    assert_eq!(
        m.tokenizer.decode(&ex.ids[loss_start + 1..loss_start + 2]).unwrap(),
        "think"
    );
    assert_eq!(tok(loss_end - 1), "<|im_end|>");
    assert_eq!(loss_end, ex.ids.len() - 1);
    assert_eq!(m.tokenizer.decode(&ex.ids[loss_end..]).unwrap(), "\n");
    let trained: String = (loss_start..loss_end)
        .map(|i| m.tokenizer.decode(&ex.ids[i..i + 1]).unwrap())
        .collect();
    assert_eq!(trained, format!("{}<|im_end|>", row().assistant_text()));
    for i in 0..ex.ids.len() {
        assert_eq!(
            ex.in_loss(i),
            (loss_start..loss_end).contains(&i),
            "token {i} {:?}",
            tok(i)
        );
    }

    // Right padding with <|fim_pad|>; targets shift by one; padding and prompt out of the loss.
    let pad = pad_id(&m.tokenizer);
    assert_eq!(m.tokenizer.id_to_token(pad).as_deref(), Some("<|fim_pad|>"));
    let short = r
        .example(&S1Row {
            question: "Hi".into(),
            ..row()
        })
        .unwrap();
    let b = MicroBatch::new(&[&ex, &short], pad);
    assert_eq!((b.rows, b.seq), (2, ex.ids.len()));
    let s = b.seq;
    assert_eq!(&b.ids[s..s + short.ids.len()], &short.ids[..]);
    assert!(b.ids[s + short.ids.len()..].iter().all(|&i| i == pad));
    for p in 0..s {
        let want = if p + 1 < s && ex.in_loss(p + 1) {
            ex.ids[p + 1]
        } else {
            IGNORE
        };
        assert_eq!(b.targets[p], want, "row 0 position {p}");
    }
    // The end-of-turn token is a target, never padding.
    let eot = m.tokenizer.token_to_id("<|im_end|>").unwrap();
    assert!(b.targets[..s].contains(&eot) && b.targets[s..].contains(&eot));
    assert_eq!(b.loss_tokens, ex.loss_tokens() + short.loss_tokens());
    assert_eq!(
        (b.row_loss_tokens(0), b.row_loss_tokens(1)),
        (ex.loss_tokens(), short.loss_tokens())
    );

    // s1's mask (TRL's completion-only collator) also trains on that newline.
    let trl = Renderer {
        mask: LossMask::Completion,
        ..r
    };
    let c = trl.example(&row()).unwrap();
    assert_eq!(c.ids, ex.ids);
    assert_eq!(c.loss_span(), (loss_start, ex.ids.len()));
    assert_eq!(c.loss_tokens(), ex.loss_tokens() + 1);

    // Truncation to the block size keeps the prompt and cuts the assistant part.
    for mask in [LossMask::Turn, LossMask::Completion] {
        let cut = Renderer {
            block_size: loss_start + 4,
            mask,
            ..r
        };
        let t = cut.example(&row()).unwrap();
        assert_eq!(t.ids.len(), loss_start + 4);
        assert_eq!(t.truncated, ex.ids.len() - t.ids.len());
        assert_eq!(t.loss_span(), (loss_start, loss_start + 4));
    }
}

#[test]
fn reads_s1k_and_s1k_1_1_columns_and_names_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("rows.jsonl");
    std::fs::write(
        &p,
        r#"{"question": "Q1", "solution": "S", "deepseek_thinking_trajectory": "think 1", "deepseek_attempt": "A1", "gemini_thinking_trajectory": "g", "gemini_attempt": "GA"}
{"question": "Q2", "solution": "S", "deepseek_thinking_trajectory": "think 2", "deepseek_attempt": "A2", "gemini_thinking_trajectory": "g2", "gemini_attempt": "GA2"}
"#,
    )
    .unwrap();
    let rows = read_rows(&p, &TraceColumns::Auto).unwrap();
    assert_eq!(rows[1].trajectories, vec!["think 2".to_string()]);
    assert_eq!(rows[1].attempt, "A2");
    let g = read_rows(&p, &TraceColumns::Gemini).unwrap();
    assert_eq!((g[0].trajectories[0].as_str(), g[0].attempt.as_str()), ("g", "GA"));

    std::fs::write(
        &p,
        "{\"question\": \"Q\", \"thinking_trajectories\": [\"t\"], \"attempt\": \"a\"}\n{not json}\n",
    )
    .unwrap();
    let e = read_rows(&p, &TraceColumns::Auto).unwrap_err().to_string();
    assert!(e.contains("rows.jsonl:2") && e.contains("not valid JSON"), "{e}");
    std::fs::write(&p, "{\"question\": \"Q\", \"thinking_trajectories\": [\"t\"]}\n").unwrap();
    let e = read_rows(&p, &TraceColumns::Auto).unwrap_err().to_string();
    assert!(e.contains("rows.jsonl:1") && e.contains("missing `attempt`"), "{e}");
    // A number is taken as its text, as curation takes it; a list where text belongs is refused.
    std::fs::write(
        &p,
        "{\"question\": \"Q\", \"thinking_trajectories\": [\"t\"], \"attempt\": 42}\n",
    )
    .unwrap();
    assert_eq!(read_rows(&p, &TraceColumns::Auto).unwrap()[0].attempt, "42");
    std::fs::write(
        &p,
        "{\"question\": [\"Q\"], \"thinking_trajectories\": [\"t\"], \"attempt\": \"a\"}\n",
    )
    .unwrap();
    let e = read_rows(&p, &TraceColumns::Auto).unwrap_err().to_string();
    assert!(
        e.contains("rows.jsonl:1") && e.contains("`question` is not a string"),
        "{e}"
    );
    // The shared s1K questions have no traces: the error says what is missing and how to map.
    let shared = common::fixture("../../../shared/data/s1k/s1K_questions_solutions.jsonl");
    let e = read_rows(&shared, &TraceColumns::Auto).unwrap_err().to_string();
    assert!(
        e.contains("no thinking-trace column") && e.contains("--trace-columns"),
        "{e}"
    );
}

#[test]
fn order_is_seeded_and_covers_every_example_each_epoch() {
    let a = schedule(10, 2, 4, 42, false);
    assert_eq!(a, schedule(10, 2, 4, 42, false));
    assert_ne!(a, schedule(10, 2, 4, 43, false));
    assert_eq!(a.len(), 6);
    for epoch in a.chunks(3) {
        let mut all: Vec<usize> = epoch.iter().flatten().copied().collect();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }
}

/// s1's last step of an epoch (accelerate's even_batches over 16 GPUs, micro-batch 1): 1,000
/// examples make 63 steps of 16, the 63rd holding the last 8 of the epoch's order and its first 8
/// again; with fewer examples than GPUs the order repeats from its start.
#[test]
fn the_s1_schedule_fills_an_epochs_last_batch_from_its_start() {
    let s = schedule(1000, 5, 16, 42, true);
    assert_eq!(s.len(), 5 * 63);
    assert!(s.iter().all(|b| b.len() == 16));
    for epoch in s.chunks(63) {
        let order: Vec<usize> = epoch[..62]
            .iter()
            .flatten()
            .copied()
            .chain(epoch[62][..8].iter().copied())
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_eq!(&epoch[62][8..], &order[..8]);
    }
    // The same order as the short schedule, only completed.
    let short = schedule(1000, 5, 16, 42, false);
    assert_eq!(short.len(), 5 * 63);
    assert_eq!(&s[62][..8], &short[62][..]);
    let tiny = schedule(3, 1, 8, 1, true);
    assert_eq!(tiny.len(), 1);
    assert_eq!(&tiny[0][3..6], &tiny[0][..3]);
    assert_eq!(&tiny[0][6..], &tiny[0][..2]);
}
