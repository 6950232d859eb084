//! End to end: a tiny Qwen2 (real Qwen tokenizer) fine-tuned on s1K-format rows; the loss falls,
//! every step is logged, checkpoints are complete Hugging Face folders the engine loads, and a
//! run stopped mid-way and resumed gives the uninterrupted run's losses.

mod common;

use std::path::Path;

use s1_studio::jobs::CancelToken;
use s1_studio::model::{load_model, LoadOptions};
use s1_studio::train::{run, StepRecord, TrainEvent, TrainOutcome, TrainSettings};

fn settings(dir: &Path, out: &str) -> TrainSettings {
    let mut s = TrainSettings::s1(dir.join("model"), dir.join("rows.jsonl"), dir.join(out));
    s.epochs = 2;
    s.lr = 2e-3;
    s.batch = 2;
    s.grad_accum = 2;
    s.block_size = 128;
    s.save_every = 2;
    s.save_total_limit = 0;
    s
}

fn losses(events: &[TrainEvent]) -> Vec<(usize, f64)> {
    events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Step(r) => Some((r.step, r.loss)),
            _ => None,
        })
        .collect()
}

#[test]
fn trains_logs_checkpoints_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::tiny_qwen(&d.join("model"), 256);
    common::sum_rows(&d.join("rows.jsonl"), 12);

    // The uninterrupted run: 12 rows, global batch 4 -> 3 steps per epoch, 6 steps.
    let s = settings(d, "full");
    let mut events = Vec::new();
    let out = run(&s, &CancelToken::new(), &mut |e| events.push(e));
    let TrainOutcome::Done {
        final_checkpoint,
        steps,
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(steps, 6);
    assert!(matches!(events.last(), Some(TrainEvent::Finished(_))));
    let full = losses(&events);
    assert_eq!(
        full.iter().map(|l| l.0).collect::<Vec<_>>(),
        (1..=6).collect::<Vec<_>>()
    );
    assert!(full[5].1 < full[0].1 - 0.2, "the loss did not fall: {full:?}");
    // trainer_log.jsonl: one object per step with every field.
    let log = std::fs::read_to_string(d.join("full/trainer_log.jsonl")).unwrap();
    let records: Vec<StepRecord> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 6);
    assert_eq!(records[0].lr, 0.0, "warmup starts at 0");
    assert!(records
        .iter()
        .all(|r| r.total_steps == 6 && r.grad_norm > 0.0 && r.tokens_per_s > 0.0));
    assert!((records[5].epoch - 2.0).abs() < 1e-9);
    // The checkpoint is a complete Hugging Face folder that the engine loads and runs.
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
    ] {
        assert!(
            final_checkpoint.join(f).exists(),
            "{f} missing from {}",
            final_checkpoint.display()
        );
    }
    let m = load_model(&final_checkpoint, &LoadOptions::default()).unwrap();
    assert_eq!(m.decoder.config().num_layers, 2);
    let leftovers: Vec<_> = std::fs::read_dir(d.join("full"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary folders left: {leftovers:?}");

    // Stop after step 5 (checkpoints at 2, 3 = end of epoch 1, and 4), then resume from 4:
    // steps 5 and 6 again (mid-epoch, step 5 already logged once), with the same losses.
    let s = settings(d, "resumed");
    let cancel = CancelToken::new();
    let mut first = Vec::new();
    let out = run(&s, &cancel, &mut |e| {
        if matches!(&e, TrainEvent::Step(r) if r.step == 5) {
            cancel.cancel();
        }
        first.push(e)
    });
    assert!(matches!(out, TrainOutcome::Stopped { step: 5, .. }), "{out:?}");
    // What a kill mid-save leaves: a hidden partial folder (never under a checkpoint's name),
    // and a folder without trainer_state.json. Resume ignores both.
    std::fs::create_dir_all(d.join("resumed/.checkpoint-6.partial")).unwrap();
    std::fs::write(d.join("resumed/.checkpoint-6.partial/trainer_state.json"), "{").unwrap();
    std::fs::create_dir_all(d.join("resumed/checkpoint-9")).unwrap();
    let mut s = s;
    s.resume = true;
    let mut second = Vec::new();
    let out = run(&s, &CancelToken::new(), &mut |e| second.push(e));
    assert!(matches!(out, TrainOutcome::Done { steps: 6, .. }), "{out:?}");
    assert!(second.iter().any(|e| matches!(
        e,
        TrainEvent::Started {
            resumed_from: Some(4),
            ..
        }
    )));
    let resumed = losses(&second);
    assert_eq!(resumed.iter().map(|l| l.0).collect::<Vec<_>>(), vec![5, 6]);
    for ((step, a), (_, b)) in resumed.iter().zip(&full[4..]) {
        assert!(
            (a - b).abs() <= 1e-6 * b.abs(),
            "step {step}: resumed loss {a} vs uninterrupted {b}"
        );
    }
    // The log of the resumed run has each step once.
    let log = std::fs::read_to_string(d.join("resumed/trainer_log.jsonl")).unwrap();
    let steps: Vec<usize> = log
        .lines()
        .map(|l| serde_json::from_str::<StepRecord>(l).unwrap().step)
        .collect();
    assert_eq!(steps, (1..=6).collect::<Vec<_>>());
}

#[test]
fn bad_inputs_fail_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::tiny_qwen(&d.join("model"), 256);
    std::fs::write(
        d.join("rows.jsonl"),
        "{\"question\": \"Q\", \"thinking_trajectories\": [\"t\"]}\n",
    )
    .unwrap();
    let out = run(&settings(d, "o"), &CancelToken::new(), &mut |_| {});
    let TrainOutcome::Failed(e) = out else {
        panic!("{out:?}")
    };
    assert!(e.contains("rows.jsonl:1") && e.contains("attempt"), "{e}");
    let mut s = settings(d, "o");
    s.model = d.join("nope");
    let TrainOutcome::Failed(e) = run(&s, &CancelToken::new(), &mut |_| {}) else {
        panic!()
    };
    assert!(e.contains("nope"), "{e}");
    // An empty dataset, a block size smaller than every prompt, a folder without weights.
    std::fs::write(d.join("rows.jsonl"), "\n").unwrap();
    let TrainOutcome::Failed(e) = run(&settings(d, "o"), &CancelToken::new(), &mut |_| {}) else {
        panic!()
    };
    assert!(e.contains("rows.jsonl") && e.contains("no rows"), "{e}");
    common::sum_rows(&d.join("rows.jsonl"), 4);
    let mut s = settings(d, "o");
    s.block_size = 8;
    let TrainOutcome::Failed(e) = run(&s, &CancelToken::new(), &mut |_| {}) else {
        panic!()
    };
    assert!(e.contains("block size of 8") && e.contains("--block-size"), "{e}");
    std::fs::create_dir_all(d.join("empty")).unwrap();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(d.join("model").join(f), d.join("empty").join(f)).unwrap();
    }
    let mut s = settings(d, "o");
    s.model = d.join("empty");
    let TrainOutcome::Failed(e) = run(&s, &CancelToken::new(), &mut |_| {}) else {
        panic!()
    };
    assert!(e.contains("empty") && e.contains("safetensors"), "{e}");
    let mut s = settings(d, "o");
    s.grad_accum = 0;
    let TrainOutcome::Failed(e) = run(&s, &CancelToken::new(), &mut |_| {}) else {
        panic!()
    };
    assert!(e.contains("grad-accum"), "{e}");
}

#[test]
fn lora_run_saves_a_peft_adapter_that_the_engine_loads_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::tiny_qwen(&d.join("model"), 256);
    common::sum_rows(&d.join("rows.jsonl"), 12);
    let mut s = settings(d, "lora");
    s.lora = Some(s1_studio::train::LoraSettings::new(4));
    let mut events = Vec::new();
    let out = run(&s, &CancelToken::new(), &mut |e| events.push(e));
    let TrainOutcome::Done { final_checkpoint, .. } = out else {
        panic!("{out:?}")
    };
    let (params, trainable) = events
        .iter()
        .find_map(|e| match e {
            TrainEvent::Started {
                parameters, trainable, ..
            } => Some((*parameters, *trainable)),
            _ => None,
        })
        .unwrap();
    // 2 layers x 7 modules x (A + B) of rank 4.
    assert!(trainable < params / 10, "{trainable} of {params}");
    assert!(final_checkpoint.join("adapter_config.json").exists());
    assert!(final_checkpoint.join("adapter_model.safetensors").exists());
    assert!(!final_checkpoint.join("model.safetensors").exists());
    let full = losses(&events);
    assert!(full[5].1 < full[0].1, "{full:?}");
    // The engine chats with base + adapter from the adapter folder alone.
    let m = load_model(&final_checkpoint, &LoadOptions::default()).unwrap();
    assert!(!m.decoder.has_lora(), "merged at load");
    // Resume from the mid-run adapter checkpoint gives the same losses.
    std::fs::remove_dir_all(&final_checkpoint).unwrap();
    std::fs::remove_dir_all(d.join("lora/checkpoint-5")).ok();
    let mut s2 = s.clone();
    s2.resume = true;
    let mut again = Vec::new();
    let out = run(&s2, &CancelToken::new(), &mut |e| again.push(e));
    assert!(matches!(out, TrainOutcome::Done { .. }), "{out:?}");
    let resumed = losses(&again);
    assert_eq!(resumed.first().map(|l| l.0), Some(5), "{resumed:?}");
    for ((step, a), (_, b)) in resumed.iter().zip(&full[4..]) {
        assert!((a - b).abs() <= 1e-6 * b.abs(), "step {step}: {a} vs {b}");
    }
}

/// Recipe item 10: train until the loss is small, then the engine's generate (with s1's think /
/// answer delimiters) reproduces the training answers.
#[test]
fn after_training_generate_reproduces_training_answers_in_the_think_answer_format() {
    use s1_studio::generate::{chat, GenerateParams, MaxThinking, SamplingParams};
    use s1_studio::model::init::{init_model, InitSpec, TemplateChoice};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec = InitSpec {
        arch: s1_studio::model::Arch::Qwen2,
        hidden: 64,
        layers: 2,
        heads: 4,
        kv_heads: 2,
        intermediate: 128,
        vocab: None,
        // An untied head: more room to memorise in a model this small.
        tie_embeddings: false,
        max_position_embeddings: 256,
        rope_theta: 1e6,
        seed: 0,
        head_dim: None,
    };
    init_model(
        &spec,
        &common::qwen_tokenizer(),
        &TemplateChoice::Qwen25,
        &d.join("model"),
    )
    .unwrap();
    let words = [
        "apple", "river", "stone", "cloud", "maple", "tiger", "piano", "lemon", "ocean", "eagle", "candle", "forest",
        "violet", "rocket", "silver", "garden", "planet", "spider", "winter", "island", "copper", "falcon", "meadow",
        "rabbit",
    ];
    let spelled = |w: &str| w.chars().map(|c| c.to_string()).collect::<Vec<_>>().join(" ");
    let text: String = words
        .iter()
        .map(|w| {
            let row = serde_json::json!({
                "question": format!("Spell the word {w}."),
                "thinking_trajectories": [format!("The word is {w}."), format!("{}.", spelled(w))],
                "attempt": spelled(w).to_uppercase(),
            });
            format!("{row}\n")
        })
        .collect();
    std::fs::write(d.join("rows.jsonl"), text).unwrap();
    let mut s = TrainSettings::s1(d.join("model"), d.join("rows.jsonl"), d.join("out"));
    s.epochs = 60;
    s.lr = 1e-2;
    s.warmup_ratio = 0.02;
    s.batch = 8;
    s.grad_accum = 1;
    s.block_size = 128;
    s.save_total_limit = 1;
    let mut last = f64::NAN;
    let out = run(&s, &CancelToken::new(), &mut |e| {
        if let TrainEvent::Step(r) = e {
            last = r.loss;
        }
    });
    let TrainOutcome::Done { final_checkpoint, .. } = out else {
        panic!("{out:?}")
    };
    assert!(last < 0.3, "the loss is still {last}");
    let m = load_model(&final_checkpoint, &LoadOptions::default()).unwrap();
    let params = GenerateParams {
        sampling: SamplingParams::default(),
        budget: s1_studio::generate::BudgetConfig {
            max_thinking: MaxThinking::Tokens(40),
            ..Default::default()
        },
        max_new_tokens: Some(80),
        auto_prompt_tokens: None,
    };
    let mut right = Vec::new();
    for w in words {
        let msg = [s1_studio::model::ChatMessage::new(
            "user",
            format!("Spell the word {w}."),
        )];
        let g = chat(&m, &msg, &params, &CancelToken::new(), &mut |_| {}).unwrap();
        assert!(g.thinking.contains("The word is"), "{w}: thinking {:?}", g.thinking);
        if g.answer.trim() == format!("Answer: {}", spelled(w).to_uppercase()) {
            right.push(w);
        }
    }
    eprintln!(
        "final loss {last:.3}; exact training answers for {} of {}: {right:?}",
        right.len(),
        words.len()
    );
    assert!(
        right.len() * 4 >= words.len(),
        "only {right:?} reproduced their training answer"
    );
}
