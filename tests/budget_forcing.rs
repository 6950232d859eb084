//! Budget forcing against a scripted model: a fake logits source that replays a token script,
//! and a toy tokenizer in which `</think>` takes three tokens.

mod common;

use common::scripted::{ScriptedModel, ToyCodec};
use s1_studio::generate::{
    generate, generate_steered, AnswerNow, BudgetConfig, BudgetError, GenerateError, GenerateParams, Generation,
    InjectionKind, MaxThinking, PastMax, Prompt, StopReason, StreamEvent, ThinkingFormat,
};
use s1_studio::jobs::CancelToken;

const VOCAB: &[&str] = &[
    "<|im_start|>",
    "<|im_end|>",
    "think",
    "answer",
    "\n",
    "Wait",
    "Final",
    " Answer",
    ":",
    "a",
    "b",
    "c",
    "d",
    "e",
    " 42",
    "</",
    ">",
    "<think>",
    "x",
    "Hmm",
    " ",
    "<|endoftext|>",
    "OOV",
];

struct Run {
    gen: Generation,
    held: Vec<String>,
    thinking_deltas: String,
    answer_deltas: String,
    injected: Vec<(InjectionKind, usize)>,
}

fn run_with(
    script: &[&str],
    budget: BudgetConfig,
    max_new: Option<usize>,
    cancel: &CancelToken,
) -> Result<Run, GenerateError> {
    run_params(
        script,
        GenerateParams {
            budget,
            max_new_tokens: max_new,
            ..Default::default()
        },
        cancel,
    )
}

/// "first|second" -> (first, second); a special token's own bars are not separators.
fn split_step(step: &str) -> (&str, Option<&str>) {
    let first_len = if step.starts_with("<|") {
        step.find("|>").map_or(step.len(), |i| i + 2)
    } else {
        step.find('|').unwrap_or(step.len())
    };
    let (first, rest) = step.split_at(first_len);
    (first, rest.strip_prefix('|'))
}

/// Runs `script`, whose steps may name a runner-up after a `|` ("<|im_start|>|b": the model
/// wants to end, and says "b" when ending is banned).
fn run_params(script: &[&str], params: GenerateParams, cancel: &CancelToken) -> Result<Run, GenerateError> {
    let codec = ToyCodec::from_vocab(VOCAB);
    let eos = codec.id("<|im_end|>");
    let steps: Vec<(&str, Option<&str>)> = script.iter().map(|s| split_step(s)).collect();
    // Two rows past the toy tokenizer, like Qwen2.5's padded embedding.
    let mut model = ScriptedModel::new(
        steps.iter().map(|s| (codec.id(s.0), s.1.map(|r| codec.id(r)))),
        VOCAB.len() + 2,
        eos,
    );
    let prompt = Prompt {
        ids: codec.ids(&["<|im_start|>", "x", "<|im_end|>"]),
        has_thinking_start: false,
    };
    let (mut t, mut a, mut inj) = (String::new(), String::new(), Vec::new());
    let gen = generate(
        &mut model,
        &codec,
        &prompt,
        &[eos, codec.id("<|endoftext|>")],
        (VOCAB.len() - 1) as u32,
        &params,
        cancel,
        &mut |ev| match ev {
            StreamEvent::Thinking(d) => t.push_str(d),
            StreamEvent::Answer(d) => a.push_str(d),
            StreamEvent::Injected { injection: i, .. } => inj.push((i.kind, i.at_thinking_token)),
            StreamEvent::Counts { .. } => {}
        },
    )?;
    let held = model.held[prompt.ids.len()..]
        .iter()
        .map(|&i| VOCAB[i as usize].to_string())
        .collect();
    Ok(Run {
        gen,
        held,
        thinking_deltas: t,
        answer_deltas: a,
        injected: inj,
    })
}

fn run(script: &[&str], budget: BudgetConfig) -> Run {
    run_with(script, budget, None, &CancelToken::new()).unwrap()
}

fn s1(min: usize, max: MaxThinking, ignores: usize) -> BudgetConfig {
    BudgetConfig {
        min_thinking: min,
        max_thinking: max,
        num_ignore: ignores,
        ..Default::default()
    }
}

fn held(r: &Run) -> String {
    r.held.concat()
}

#[test]
fn early_end_injects_wait_repeatedly_until_the_minimum() {
    let script = [
        "a",
        "<|im_start|>",
        "b",
        "<|im_start|>",
        "c",
        "<|im_start|>",
        "\n",
        " 42",
        "<|im_end|>",
    ];
    let r = run(&script, s1(5, MaxThinking::Unlimited, 0));
    // a, Wait, b, Wait, c: five thinking tokens; the third end comes after the minimum.
    assert_eq!(r.gen.thinking, "aWaitbWaitc");
    assert_eq!(r.gen.thinking_tokens, 5);
    assert_eq!(r.gen.waits_injected, 2);
    assert_eq!(r.gen.waits_for_min, 2, "no Waits setting: all are the minimum's");
    assert!(!r.gen.forced_end);
    assert_eq!(r.gen.answer, "\n 42");
    assert_eq!(r.gen.stop_reason, StopReason::EndOfTurn);
    // The model never keeps the ends it tried: its sequence is the forced one.
    assert_eq!(held(&r), "<|im_start|>thinkaWaitbWaitc<|im_start|>answer\n 42");
    assert_eq!(
        r.injected,
        vec![
            (InjectionKind::ThinkingStart, 0),
            (InjectionKind::Ignore, 1),
            (InjectionKind::Ignore, 3),
            (InjectionKind::AnswerStart, 5)
        ]
    );
    assert_eq!(r.thinking_deltas, r.gen.thinking);
    assert_eq!(r.answer_deltas, r.gen.answer);
}

#[test]
fn num_ignore_suppresses_the_end_that_many_times() {
    let script = [
        "a",
        "<|im_start|>",
        "b",
        "<|im_start|>",
        "c",
        "<|im_start|>",
        " 42",
        "<|im_end|>",
    ];
    let r = run(&script, s1(0, MaxThinking::Unlimited, 2));
    assert_eq!(r.gen.thinking, "aWaitbWaitc");
    assert_eq!(r.gen.waits_injected, 2);
    assert_eq!(r.gen.waits_for_min, 0);
    assert_eq!(held(&r), "<|im_start|>thinkaWaitbWaitc<|im_start|>answer 42");
}

#[test]
fn natural_end_after_the_minimum_appends_the_answer_delimiter() {
    let r = run(
        &["a", "b", "c", "<|im_start|>", "\n", " 42", "<|im_end|>"],
        s1(2, MaxThinking::Tokens(10), 0),
    );
    assert_eq!(r.gen.thinking, "abc");
    assert_eq!(r.gen.waits_injected, 0);
    assert!(!r.gen.forced_end);
    assert_eq!(held(&r), "<|im_start|>thinkabc<|im_start|>answer\n 42");
    assert_eq!(r.gen.answer, "\n 42");
}

#[test]
fn budget_reached_mid_thinking_forces_the_end_and_final_answer() {
    let r = run(
        &["a", "b", "c", "d", "e", " 42", "<|im_end|>"],
        s1(0, MaxThinking::Tokens(3), 0),
    );
    assert_eq!(r.gen.thinking, "abc");
    assert_eq!(r.gen.thinking_tokens, 3);
    assert!(r.gen.forced_end);
    // A newline first, since the thinking does not end with one (s1's rule).
    assert_eq!(held(&r), "<|im_start|>thinkabc\n<|im_start|>answer\nFinal Answer:de 42");
    assert_eq!(r.gen.answer, "Final Answer:de 42");
    assert_eq!(
        r.gen.answer_tokens, 3,
        "the injected prefix is not counted as generated"
    );
    assert_eq!(r.injected.last(), Some(&(InjectionKind::ForcedEnd, 3)));
}

#[test]
fn forced_end_after_a_newline_adds_no_second_newline() {
    let r = run(&["a", "\n", "c", " 42", "<|im_end|>"], s1(0, MaxThinking::Tokens(2), 0));
    assert_eq!(held(&r), "<|im_start|>thinka\n<|im_start|>answer\nFinal Answer:c 42");
}

#[test]
fn budget_zero_skips_thinking() {
    let r = run(&[" 42", "<|im_end|>"], s1(0, MaxThinking::Tokens(0), 0));
    assert_eq!(r.gen.thinking_tokens, 0);
    assert_eq!(r.gen.thinking, "");
    assert!(r.gen.forced_end);
    assert_eq!(held(&r), "<|im_start|>think\n<|im_start|>answer\nFinal Answer: 42");
    assert_eq!(r.gen.answer, "Final Answer: 42");
}

#[test]
fn min_above_max_is_a_clear_error() {
    let err = run_with(&["a"], s1(10, MaxThinking::Tokens(5), 0), None, &CancelToken::new())
        .err()
        .unwrap();
    assert!(matches!(
        err,
        GenerateError::Budget(BudgetError::MinAboveMax { min: 10, max: 5 })
    ));
    assert_eq!(
        err.to_string(),
        "the minimum thinking (10 tokens) is above the maximum (5 tokens)"
    );
}

#[test]
fn end_of_turn_during_thinking_ends_thinking_or_is_ignored() {
    // Past the minimum: treated as the end of thinking (s1 lists <|im_end|> among its thinking stops).
    let r = run(
        &["a", "<|im_end|>", " 42", "<|im_end|>"],
        s1(0, MaxThinking::Unlimited, 0),
    );
    assert_eq!(held(&r), "<|im_start|>thinka<|im_start|>answer 42");
    assert_eq!(r.gen.answer, " 42");
    // Before the minimum: replaced by the ignore string like any end.
    let r = run(
        &["a", "<|endoftext|>", "b", "<|im_start|>", " 42", "<|im_end|>"],
        s1(3, MaxThinking::Unlimited, 0),
    );
    assert_eq!(r.gen.thinking, "aWaitb");
    assert_eq!(held(&r), "<|im_start|>thinkaWaitb<|im_start|>answer 42");
}

#[test]
fn multi_token_delimiter_is_held_back_and_rewound() {
    let fmt = ThinkingFormat::think_tags();
    let budget = BudgetConfig {
        min_thinking: 4,
        format: fmt,
        ..Default::default()
    };
    // "</" "x" is a near miss (kept as thinking); "</" "think" ">" is the end, tried too early.
    let script = [
        "a",
        "</",
        "x",
        "</",
        "think",
        ">",
        "b",
        "</",
        "think",
        ">",
        "\n",
        " 42",
        "<|im_end|>",
    ];
    let r = run(&script, budget);
    assert_eq!(r.gen.thinking, "a</xWaitb");
    assert_eq!(r.gen.waits_injected, 1);
    assert_eq!(held(&r), "<think>a</xWaitb</think>\n 42");
    assert_eq!(
        r.thinking_deltas, "a</xWaitb",
        "partial delimiters never reach the stream"
    );
    assert_eq!(r.gen.answer, "\n 42");
}

#[test]
fn ids_past_the_tokenizer_are_never_fed_back() {
    let codec = ToyCodec::from_vocab(VOCAB);
    // The scripted logits peak on ids the tokenizer does not know (rows past the vocabulary).
    let oov = VOCAB.len() as u32; // first padded row
    let mut model = ScriptedModel::new(
        [oov, oov + 1, codec.id("<|im_start|>")].map(|id| (id, None)),
        VOCAB.len() + 2,
        codec.id("<|im_end|>"),
    );
    let prompt = Prompt {
        ids: codec.ids(&["x"]),
        has_thinking_start: false,
    };
    let params = GenerateParams {
        budget: s1(0, MaxThinking::Tokens(4), 0),
        ..Default::default()
    };
    let gen = generate(
        &mut model,
        &codec,
        &prompt,
        &[codec.id("<|im_end|>")],
        (VOCAB.len() - 1) as u32,
        &params,
        &CancelToken::new(),
        &mut |_| {},
    )
    .unwrap();
    assert!(
        model.held.iter().all(|&id| (id as usize) < VOCAB.len()),
        "{:?}",
        model.held
    );
    assert!(gen.output_ids.iter().all(|&id| (id as usize) < VOCAB.len()));
}

#[test]
fn thinking_off_answers_directly() {
    let budget = BudgetConfig {
        thinking: false,
        ..Default::default()
    };
    let r = run(&[" 42", "<|im_end|>"], budget);
    assert_eq!(held(&r), " 42");
    assert_eq!(r.gen.thinking_tokens, 0);
    assert_eq!(r.gen.answer, " 42");
}

#[test]
fn auto_budget_is_s1s_formula() {
    // s1 (vllm_causallms.py): auto = max_gen_toks - longest prompt - thinking start - forced
    // end ("<|im_start|>answer\nFinal Answer:") - 100 = 120 - 3 - 2 - 6 - 100 = 9.
    let script: Vec<&str> = std::iter::repeat_n("a", 40).chain([" 42", "<|im_end|>"]).collect();
    let r = run_with(&script, s1(0, MaxThinking::Auto, 0), Some(120), &CancelToken::new()).unwrap();
    assert_eq!(r.gen.max_thinking, Some(9));
    assert_eq!(r.gen.thinking_tokens, 9);
    assert!(r.gen.forced_end);
    // lm-eval hands vLLM a task's prompts at once: the longest one counts (here 10 tokens).
    let params = GenerateParams {
        budget: s1(0, MaxThinking::Auto, 0),
        max_new_tokens: Some(120),
        auto_prompt_tokens: Some(10),
        ..Default::default()
    };
    let r = run_params(&script, params, &CancelToken::new()).unwrap();
    assert_eq!(r.gen.max_thinking, Some(2));
    // Without a token limit the context is the limit: context - prompt - 2 - 6 - 100.
    let r = run_with(&script, s1(0, MaxThinking::Auto, 0), None, &CancelToken::new()).unwrap();
    assert_eq!(r.gen.max_thinking, Some(4096 - 3 - 108));
}

#[test]
fn max_new_tokens_and_cancel_stop_generation() {
    let script: Vec<&str> = std::iter::repeat_n("a", 50).collect();
    let r = run_with(&script, s1(0, MaxThinking::Unlimited, 0), Some(10), &CancelToken::new()).unwrap();
    assert_eq!(r.gen.stop_reason, StopReason::MaxTokens);
    assert_eq!(r.gen.output_ids.len(), 10);
    let cancel = CancelToken::new();
    cancel.cancel();
    let r = run_with(&script, s1(0, MaxThinking::Unlimited, 0), None, &cancel).unwrap();
    assert_eq!(r.gen.stop_reason, StopReason::Cancelled);
}

#[test]
fn cut_at_max_forces_the_end_when_the_ignore_string_fills_the_budget() {
    // Not s1's loop (PastMax::Cut): the ignore string fills the budget, the end is forced at once.
    let script = ["a", "<|im_start|>", " 42", "<|im_end|>"];
    let budget = BudgetConfig {
        past_max: PastMax::Cut,
        ..s1(0, MaxThinking::Tokens(2), 5)
    };
    let r = run(&script, budget);
    assert!(!r.gen.thinking_cut);
    assert_eq!(r.gen.thinking, "aWait");
    assert_eq!(r.gen.thinking_tokens, 2);
    assert_eq!(r.gen.waits_injected, 1);
    assert!(r.gen.forced_end);
    assert_eq!(held(&r), "<|im_start|>thinkaWait\n<|im_start|>answer\nFinal Answer: 42");
}

// s1's loop with ignores (vllm_causallms.py, `thinking_n_ignore`): N ignores mean N + 1 rounds,
// each run with `min_tokens=1` and a `max_tokens` of its own; the joined thinking is cut at the
// maximum afterwards, and ended as the last round ended.

#[test]
fn empty_ignore_string_drops_the_end_n_times_then_answers() {
    // s1 without `thinking_n_ignore_str`: the end token is dropped and generation goes on; the
    // next token may not be an end (so the runner-up is taken). Two ignores, three ends.
    let script = [
        "a",
        "<|im_start|>|b",
        "c",
        "<|im_start|>|d",
        "e",
        "<|im_start|>",
        " 42",
        "<|im_end|>",
    ];
    let budget = BudgetConfig {
        ignore_str: String::new(),
        ..s1(0, MaxThinking::Unlimited, 2)
    };
    let r = run(&script, budget);
    assert_eq!(r.gen.thinking, "abcde");
    assert_eq!(r.gen.waits_injected, 2);
    assert_eq!(r.gen.stop_reason, StopReason::EndOfTurn);
    assert_eq!(held(&r), "<|im_start|>thinkabcde<|im_start|>answer 42");
    assert_eq!(r.gen.answer, " 42");
}

#[test]
fn the_token_after_an_ignore_may_not_end_the_thinking() {
    // vLLM's min_tokens=1 in the round after "Wait": the model's wish to end at once is refused
    // and does not use up an ignore.
    let script = [
        "a",
        "<|im_start|>",
        "<|im_start|>|b",
        "<|im_start|>",
        " 42",
        "<|im_end|>",
    ];
    let r = run(&script, s1(0, MaxThinking::Unlimited, 1));
    assert_eq!(r.gen.thinking, "aWaitb");
    assert_eq!(r.gen.waits_injected, 1);
    assert_eq!(held(&r), "<|im_start|>thinkaWaitb<|im_start|>answer 42");
}

#[test]
fn the_first_thinking_token_may_not_end_it_when_ignores_are_set() {
    // s1 runs its first round with min_tokens=1 too.
    let script = [
        "<|im_start|>|a",
        "<|im_start|>",
        "b",
        "<|im_start|>",
        " 42",
        "<|im_end|>",
    ];
    let r = run(&script, s1(0, MaxThinking::Unlimited, 1));
    assert_eq!(r.gen.thinking, "aWaitb");
    // Without ignores nothing is banned: the end comes at once.
    let r = run(
        &["<|im_start|>|a", " 42", "<|im_end|>"],
        s1(0, MaxThinking::Unlimited, 0),
    );
    assert_eq!(r.gen.thinking, "");
    assert_eq!(held(&r), "<|im_start|>think<|im_start|>answer 42");
}

#[test]
fn past_the_max_after_an_ignore_the_round_goes_on_and_a_natural_end_is_kept() {
    // Budget 4, one ignore. Round 0: "ab", end -> "Wait". Round 1 (its own budget of 4): "c"
    // fills the budget, "d", "e" go on unseen, then the model ends: s1 cuts the thinking to 4
    // tokens and, since the round ended naturally, appends the answer delimiter alone.
    let script = [
        "a",
        "b",
        "<|im_start|>",
        "c",
        "d",
        "e",
        "<|im_start|>",
        " 42",
        "<|im_end|>",
    ];
    let r = run(&script, s1(0, MaxThinking::Tokens(4), 1));
    assert_eq!(r.gen.thinking, "abWaitc");
    assert_eq!(r.gen.thinking_tokens, 4);
    assert!(!r.gen.forced_end);
    assert!(r.gen.thinking_cut);
    assert_eq!(held(&r), "<|im_start|>thinkabWaitc<|im_start|>answer 42");
    assert_eq!(r.gen.answer, " 42");
    assert_eq!(r.thinking_deltas, "abWaitc", "the hidden tokens never reach the stream");
    assert_eq!(r.injected.last(), Some(&(InjectionKind::AnswerStart, 4)));
    // With PastMax::Cut the end is forced at the budget instead.
    let budget = BudgetConfig {
        past_max: PastMax::Cut,
        ..s1(0, MaxThinking::Tokens(4), 1)
    };
    let r = run(&script, budget);
    assert!(r.gen.forced_end);
    assert!(held(&r).starts_with("<|im_start|>thinkabWaitc\n<|im_start|>answer\nFinal Answer:d"));
}

#[test]
fn past_the_max_a_round_that_runs_out_is_forced_with_s1s_newline_rule() {
    // Round 1 runs out of its own budget (4 tokens: c d e + one more) unseen; the end is forced
    // after the cut thinking. s1 adds the newline unless the *uncut* text ends with one.
    for (last, expect) in [
        ("x", "<|im_start|>thinkabWaitc\n<|im_start|>answer\nFinal Answer: 42"),
        ("\n", "<|im_start|>thinkabWaitc<|im_start|>answer\nFinal Answer: 42"),
    ] {
        let script = ["a", "b", "<|im_start|>", "c", "d", "e", last, " 42", "<|im_end|>"];
        let r = run(&script, s1(0, MaxThinking::Tokens(4), 1));
        assert_eq!(r.gen.thinking, "abWaitc");
        assert!(r.gen.forced_end);
        assert!(r.gen.thinking_cut);
        assert_eq!(held(&r), expect);
        assert_eq!(r.gen.answer, "Final Answer: 42");
    }
}

#[test]
fn past_the_max_the_remaining_ignores_run_unseen() {
    // Two ignores, budget 3: "a", end -> "Wait"; "b" fills the budget; round 1 ends ("c", end)
    // -> a hidden "Wait"; round 2 ends naturally: the answer delimiter after "aWaitb".
    let script = [
        "a",
        "<|im_start|>",
        "b",
        "c",
        "<|im_start|>",
        "<|im_start|>|d",
        "<|im_start|>",
        " 42",
        "<|im_end|>",
    ];
    let r = run(&script, s1(0, MaxThinking::Tokens(3), 2));
    assert_eq!(r.gen.thinking, "aWaitb");
    assert_eq!(r.gen.waits_injected, 2);
    assert!(r.gen.thinking_cut);
    assert!(!r.gen.forced_end);
    assert_eq!(held(&r), "<|im_start|>thinkaWaitb<|im_start|>answer 42");
}

#[test]
fn an_ignore_string_that_fills_the_budget_lets_the_next_round_decide() {
    // Budget 2: "a" + "Wait" fill it; round 1 runs out unseen ("b", "c"): forced end after "aWait".
    let script = ["a", "<|im_start|>", "b", "c", " 42", "<|im_end|>"];
    let r = run(&script, s1(0, MaxThinking::Tokens(2), 1));
    assert_eq!(r.gen.thinking, "aWait");
    assert_eq!(r.gen.thinking_tokens, 2);
    assert!(r.gen.forced_end);
    assert_eq!(held(&r), "<|im_start|>thinkaWait\n<|im_start|>answer\nFinal Answer: 42");
}

#[test]
fn waits_past_the_setting_are_the_minimums() {
    let script = [
        "a",
        "<|im_start|>",
        "b",
        "<|im_start|>",
        "c",
        "<|im_start|>",
        "d",
        "<|im_start|>",
        " 42",
        "<|im_end|>",
    ];
    // Waits 1 and a minimum of 6: the first ignored end is the setting's, the next two only
    // the minimum's; the fourth end comes after the minimum.
    let r = run(&script, s1(6, MaxThinking::Unlimited, 1));
    assert_eq!(r.gen.thinking, "aWaitbWaitcWaitd");
    assert_eq!((r.gen.waits_injected, r.gen.waits_for_min), (3, 2));
}

/// "Answer now" set from the stream after `after` thinking tokens (as the chat's button does
/// from the UI thread): the thinking ends there with s1's forced end, the minimum overridden.
#[test]
fn answer_now_ends_the_thinking_with_the_forced_end() {
    let codec = ToyCodec::from_vocab(VOCAB);
    let eos = codec.id("<|im_end|>");
    let script = ["a", "b", "c", "d", " 42", "<|im_end|>"];
    let mut model = ScriptedModel::new(script.iter().map(|s| (codec.id(s), None)), VOCAB.len() + 2, eos);
    let prompt = Prompt {
        ids: codec.ids(&["<|im_start|>", "x", "<|im_end|>"]),
        has_thinking_start: false,
    };
    let params = GenerateParams {
        budget: s1(50, MaxThinking::Unlimited, 2),
        ..Default::default()
    };
    let answer_now = AnswerNow::new();
    let flag = answer_now.clone();
    let mut answer = String::new();
    let gen = generate_steered(
        &mut model,
        &codec,
        &prompt,
        &[eos],
        (VOCAB.len() - 1) as u32,
        &params,
        &CancelToken::new(),
        &answer_now,
        &mut |ev| match ev {
            StreamEvent::Counts { thinking: 3, .. } => flag.request(),
            StreamEvent::Answer(d) => answer.push_str(d),
            _ => {}
        },
    )
    .unwrap();
    assert_eq!(gen.thinking, "abc");
    assert_eq!(gen.thinking_tokens, 3);
    assert!(gen.forced_end);
    assert_eq!(gen.waits_injected, 0);
    let forced = gen.injections.last().unwrap();
    assert_eq!((forced.kind, forced.at_thinking_token), (InjectionKind::ForcedEnd, 3));
    // The model holds the forced end after "abc" and answers after "Final Answer:"; the
    // scripted "d" offered when the flag was seen was never sampled.
    let held: String = model.held[prompt.ids.len()..]
        .iter()
        .map(|&i| VOCAB[i as usize])
        .collect();
    assert_eq!(held, "<|im_start|>thinkabc\n<|im_start|>answer\nFinal Answer: 42");
    assert_eq!(answer, "Final Answer: 42");
    assert_eq!(gen.stop_reason, StopReason::EndOfTurn);
}
