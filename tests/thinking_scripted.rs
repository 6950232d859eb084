//! Budget forcing with think-tag formats against scripted models (the tests/budget_forcing.rs
//! pattern), for the known bugs of think-tag models: a template that already opened `<think>`,
//! a model that re-opens thinking in the answer, and delimiters of several tokens, which a real
//! tokenizer may merge with their neighbours (`>\n\n`, `.</`). Two codecs: a toy one (with and
//! without `<think>`/`</think>` as single tokens) and the real Qwen tokenizer without its
//! `<think>` tokens (as Qwen2.5's, which spells them `</`, `think`, `>`).

mod common;

use std::collections::VecDeque;

use common::scripted::{ScriptedModel, ToyCodec};
use s1_studio::generate::{
    generate, BudgetConfig, Codec, GenerateParams, Generation, InjectionKind, MaxThinking, Prompt, ThinkingFormat,
};
use s1_studio::jobs::CancelToken;
use s1_studio::model::TextTokenizer;

const BASE: &[&str] = &[
    "<|im_end|>",
    "\n",
    "Wait",
    "Final",
    " Answer",
    ":",
    "a",
    "b",
    "c",
    "d",
    " 42",
    "x",
    "y",
    ".",
    "</",
    "<",
    "think",
    ">",
    ">\n\n",
    ".</",
    "\n\n",
];

/// The toy codec; `tags`: `<think>` and `</think>` are tokens of their own.
fn toy(tags: bool) -> ToyCodec {
    let mut codec = ToyCodec::from_vocab(BASE);
    if tags {
        codec.vocab.extend(["<think>", "</think>"]);
    }
    codec
}

struct Run {
    gen: Generation,
    /// What the model holds after the prompt, decoded.
    held: String,
    injected: Vec<(InjectionKind, usize)>,
    /// The streamed thinking and answer.
    streamed: (String, String),
}

/// A script step: text the model emits as tokens (each token of its encoding a step), or
/// `"want=>instead"`: the model wants `want` (one token) and says `instead` when it is banned.
fn script(codec: &dyn Codec, steps: &[&str]) -> VecDeque<(u32, Option<u32>)> {
    let mut out = VecDeque::new();
    for s in steps {
        match s.split_once("=>") {
            Some((want, instead)) => {
                let w = codec.encode(want).unwrap();
                let i = codec.encode(instead).unwrap();
                assert_eq!((w.len(), i.len()), (1, 1), "{s}: one token each");
                out.push_back((w[0], Some(i[0])));
            }
            None => out.extend(codec.encode(s).unwrap().into_iter().map(|id| (id, None))),
        }
    }
    out
}

/// Runs `steps` after a prompt that ends with `<think>\n` when `opened`.
fn run_codec(codec: &dyn Codec, vocab: usize, eos: u32, steps: &[&str], budget: BudgetConfig, opened: bool) -> Run {
    let mut model = ScriptedModel::new(script(codec, steps), vocab, eos);
    let prompt_text = if opened { "x<think>\n" } else { "x" };
    let prompt = Prompt {
        ids: codec.encode(prompt_text).unwrap(),
        has_thinking_start: opened,
    };
    let params = GenerateParams {
        budget,
        max_new_tokens: Some(200),
        ..Default::default()
    };
    let (mut t, mut a, mut inj) = (String::new(), String::new(), Vec::new());
    let gen = generate(
        &mut model,
        codec,
        &prompt,
        &[eos],
        (vocab - 1) as u32,
        &params,
        &CancelToken::new(),
        &mut |ev| match ev {
            s1_studio::generate::StreamEvent::Thinking(d) => t.push_str(d),
            s1_studio::generate::StreamEvent::Answer(d) => a.push_str(d),
            s1_studio::generate::StreamEvent::Injected { injection, .. } => {
                inj.push((injection.kind, injection.at_thinking_token))
            }
            s1_studio::generate::StreamEvent::Counts { .. } => {}
        },
    )
    .unwrap();
    let held = codec.decode(&model.held[prompt.ids.len()..]).unwrap();
    Run {
        gen,
        held,
        injected: inj,
        streamed: (t, a),
    }
}

fn run(tags: bool, steps: &[&str], budget: BudgetConfig, opened: bool) -> Run {
    let codec = toy(tags);
    let eos = codec.encode("<|im_end|>").unwrap()[0];
    let vocab = codec.vocab.len();
    run_codec(&codec, vocab, eos, steps, budget, opened)
}

fn tags(min: usize, max: MaxThinking) -> BudgetConfig {
    BudgetConfig {
        min_thinking: min,
        max_thinking: max,
        format: ThinkingFormat::think_tags(),
        ..Default::default()
    }
}

#[test]
fn a_template_that_opened_think_gets_no_second_one() {
    for single in [true, false] {
        let r = run(
            single,
            &["a", "b", "</think>", "\n\n", " 42", "<|im_end|>"],
            tags(0, MaxThinking::Unlimited),
            true,
        );
        assert_eq!(r.held, "ab</think>\n\n 42", "single-token tags: {single}");
        assert_eq!(r.gen.thinking, "ab");
        assert_eq!(r.gen.thinking_tokens, 2);
        assert_eq!(r.injected, vec![(InjectionKind::AnswerStart, 2)]);
    }
}

#[test]
fn thinking_off_on_an_opened_template_closes_the_block_at_once() {
    for single in [true, false] {
        let off = BudgetConfig {
            thinking: false,
            ..tags(0, MaxThinking::Unlimited)
        };
        let r = run(single, &[" 42", "<|im_end|>"], off, true);
        // Qwen3's own empty block: `<think>\n` (the template's) `\n</think>\n\n`.
        assert_eq!(r.held, "\n</think>\n\n 42", "single-token tags: {single}");
        assert_eq!((r.gen.thinking_tokens, r.gen.answer.as_str()), (0, " 42"));
        assert!(!r.gen.forced_end);
        // Maximum 0 with think tags is thinking off: the same, without "Final Answer:".
        let r = run(single, &[" 42", "<|im_end|>"], tags(0, MaxThinking::Tokens(0)), true);
        assert_eq!(r.held, "\n</think>\n\n 42", "single-token tags: {single}");
        assert_eq!(r.gen.answer, " 42");
        // Not opened by the template: nothing to close, the model answers directly.
        let r = run(single, &[" 42", "<|im_end|>"], tags(0, MaxThinking::Tokens(0)), false);
        assert_eq!(r.held, " 42");
    }
}

#[test]
fn a_one_token_start_is_banned_in_the_answer() {
    // After a natural end: the model wants to think again and must answer instead.
    let r = run(
        true,
        &["a", "</think>", "<think>=>b", " 42", "<|im_end|>"],
        tags(0, MaxThinking::Unlimited),
        false,
    );
    assert_eq!(r.held, "<think>a</think>b 42");
    assert_eq!(r.gen.answer, "b 42");
    // After a forced end.
    let r = run(
        true,
        &["a", "b", "c", "<think>=>d", " 42", "<|im_end|>"],
        tags(0, MaxThinking::Tokens(2)),
        false,
    );
    assert!(r.gen.forced_end);
    assert_eq!(r.held, "<think>ab\n</think>\nFinal Answer:cd 42");
    // With thinking off (Qwen3's enable_thinking=false prompt, or a plain think-tag model).
    let off = BudgetConfig {
        thinking: false,
        ..tags(0, MaxThinking::Unlimited)
    };
    let r = run(true, &["<think>=>y", " 42", "<|im_end|>"], off, false);
    assert_eq!(r.held, "y 42");
    // s1's format leaves its answer alone (its recipe does not guard it).
    assert!(!ThinkingFormat::s1().reopen_banned);
}

#[test]
fn a_several_token_start_in_the_answer_is_dropped_and_its_first_token_banned() {
    let r = run(
        false,
        &["a", "</think>", "x", "<", "think", ">", "<=>y", " 42", "<|im_end|>"],
        tags(0, MaxThinking::Unlimited),
        false,
    );
    assert_eq!(r.held, "<think>a</think>xy 42");
    assert_eq!(r.gen.answer, "xy 42");
    assert_eq!(r.streamed.1, "xy 42", "the dropped start never reaches the stream");
    assert_eq!(r.gen.answer_tokens, 3);
    // Right at the start of the answer (the rewind goes back into the answer delimiter), and a
    // near miss ("<" "x") that is kept.
    let r = run(
        false,
        &["a", "</think>", "<", "think", ">", "<=>y", "<", "x", "<|im_end|>"],
        tags(0, MaxThinking::Unlimited),
        false,
    );
    assert_eq!(r.held, "<think>a</think>y<x");
    assert_eq!(r.gen.answer, "y<x");
}

#[test]
fn a_several_token_end_merged_with_what_follows_ends_the_thinking() {
    // `>\n\n` is one token: the end's token sequence never appears, its text does.
    let r = run(
        false,
        &["a", "</", "think", ">\n\n", " 42", "<|im_end|>"],
        tags(0, MaxThinking::Unlimited),
        false,
    );
    assert_eq!(r.gen.thinking, "a");
    assert_eq!(r.held, "<think>a</think> 42");
    assert_eq!(r.gen.answer, " 42");
    assert_eq!(r.streamed.0, "a", "partial delimiters never reach the stream");
    // Merged with what precedes: `.</` keeps its `.` as thinking.
    let r = run(
        false,
        &["a", ".</", "think", ">", " 42", "<|im_end|>"],
        tags(0, MaxThinking::Unlimited),
        false,
    );
    assert_eq!(r.gen.thinking, "a.");
    assert_eq!(r.gen.thinking_tokens, 2);
    assert_eq!(r.held, "<think>a.</think> 42");
}

#[test]
fn min_thinking_ignores_merged_ends_and_max_forces_the_end() {
    let steps = [
        "a",
        "</",
        "think",
        ">\n\n",
        "b",
        ".</",
        "think",
        ">",
        "c",
        "</",
        "think",
        ">\n\n",
        " 42",
        "<|im_end|>",
    ];
    let r = run(false, &steps, tags(5, MaxThinking::Unlimited), false);
    // a, Wait, b . Wait -> 5 thinking tokens with the second Wait; c is the sixth.
    assert_eq!(r.gen.thinking, "aWaitb.Waitc");
    assert_eq!(r.gen.waits_injected, 2);
    assert_eq!(r.gen.thinking_tokens, 6);
    assert_eq!(r.held, "<think>aWaitb.Waitc</think> 42");
    assert_eq!(
        r.injected,
        vec![
            (InjectionKind::ThinkingStart, 0),
            (InjectionKind::Ignore, 1),
            (InjectionKind::Ignore, 4),
            (InjectionKind::AnswerStart, 6)
        ]
    );
    // The maximum, with the end's pieces held back: they count towards it.
    let r = run(
        false,
        &["a", "b", "c", "d", " 42", "<|im_end|>"],
        tags(0, MaxThinking::Tokens(3)),
        false,
    );
    assert!(r.gen.forced_end);
    assert_eq!(r.gen.thinking_tokens, 3);
    assert_eq!(r.held, "<think>abc\n</think>\nFinal Answer:d 42");
}

/// The real Qwen tokenizer without `<think>`/`</think>` as added tokens (Qwen2.5's spelling).
fn qwen_without_tags() -> TextTokenizer {
    let dir = tempfile::tempdir().unwrap();
    let src = common::qwen_tokenizer();
    let mut tok: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&src).unwrap()).unwrap();
    tok["added_tokens"]
        .as_array_mut()
        .unwrap()
        .retain(|t| !t["content"].as_str().unwrap_or_default().contains("think>"));
    std::fs::write(dir.path().join("tokenizer.json"), tok.to_string()).unwrap();
    std::fs::copy(
        src.with_file_name("tokenizer_config.json"),
        dir.path().join("tokenizer_config.json"),
    )
    .unwrap();
    TextTokenizer::from_hf_folder(dir.path()).unwrap().0
}

#[test]
fn the_real_qwen_tokenizer_merges_and_splits_the_tags() {
    let tok = qwen_without_tags();
    assert!(
        tok.encode("</think>").unwrap().len() > 1,
        "several tokens without the added ones"
    );
    assert_eq!(
        tok.encode("</think>\n\n").unwrap().len(),
        tok.encode("</think>").unwrap().len(),
        "the tokenizer merges `>` with the blank line"
    );
    let eos = tok.token_to_id("<|im_end|>").unwrap();
    let vocab = tok.max_token_id as usize + 1;
    // The model writes its thinking and `</think>\n\n` as the tokenizer spells that text,
    // twice before the minimum, with `.</` once; then re-opens thinking in the answer.
    let steps = [
        "Let me see.</think>\n\n",
        " So",
        "</think>\n\n",
        " Right",
        "</think>\n\nThe answer is 4. <think>",
        "<|im_end|>",
    ];
    let r = run_codec(&tok, vocab, eos, &steps, tags(8, MaxThinking::Unlimited), false);
    assert_eq!(r.gen.waits_injected, 2, "{:?}", r.gen);
    assert_eq!(r.gen.thinking, "Let me see.Wait SoWait Right");
    assert!(
        r.held.starts_with("<think>Let me see.Wait SoWait Right</think>"),
        "{:?}",
        r.held
    );
    assert_eq!(r.held.matches("<think>").count(), 1, "no second <think>: {:?}", r.held);
    assert!(!r.gen.answer.contains("<think>"), "{:?}", r.gen.answer);
    assert!(r.gen.answer.starts_with("The answer is 4."), "{:?}", r.gen.answer);
    // The template opened `<think>\n` (R1, QwQ) and thinking is off: closed at once.
    let off = BudgetConfig {
        thinking: false,
        ..tags(0, MaxThinking::Unlimited)
    };
    let r = run_codec(&tok, vocab, eos, &["4", "<|im_end|>"], off, true);
    assert_eq!(r.held, "\n</think>\n\n4");
    // The maximum forces the end with the several-token delimiter.
    let r = run_codec(
        &tok,
        vocab,
        eos,
        &["one two three four five six", "<|im_end|>"],
        tags(0, MaxThinking::Tokens(4)),
        false,
    );
    assert!(r.gen.forced_end);
    assert_eq!(r.gen.thinking_tokens, 4);
    assert_eq!(r.gen.thinking, "one two three four");
    assert!(
        r.held.starts_with("<think>one two three four\n</think>\nFinal Answer:"),
        "{:?}",
        r.held
    );
}
