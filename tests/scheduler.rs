//! Continuous batching: sequences admitted at different decode steps, each with its own budget,
//! give exactly what generating each alone gives (greedy); "answer now" ends one sequence's
//! thinking while the others go on; a sink that is gone frees its slot at the next step.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use s1_studio::generate::{
    chat, BudgetConfig, Delta, GenerateParams, Generation, InjectionKind, MaxThinking, Scheduler, SeqControl, SeqEvent,
    SinkFlow,
};
use s1_studio::jobs::CancelToken;
use s1_studio::model::{load_model, ChatMessage, LoadOptions, LoadedModel};

/// What one sequence's sink received.
#[derive(Default)]
struct Seen {
    thinking: String,
    answer: String,
    forced_end_streamed: bool,
    finished: Option<Generation>,
    failed: Option<String>,
    events: usize,
}

type Log = Rc<RefCell<Seen>>;

/// A sink recording into a fresh log; it says "gone" once it has seen `gone_after` events.
fn sink<'s>(gone_after: Option<usize>) -> (Log, s1_studio::generate::Sink<'s>) {
    let log: Log = Rc::default();
    let l = log.clone();
    let sink = Box::new(move |ev: SeqEvent| {
        let mut s = l.borrow_mut();
        s.events += 1;
        match ev {
            SeqEvent::Delta(Delta::Thinking(t)) => s.thinking.push_str(&t),
            SeqEvent::Delta(Delta::Answer(t)) => s.answer.push_str(&t),
            SeqEvent::Delta(Delta::Injected {
                kind: InjectionKind::ForcedEnd,
                ..
            }) => s.forced_end_streamed = true,
            SeqEvent::Delta(_) => {}
            SeqEvent::Finished(g) => s.finished = Some(*g),
            SeqEvent::Failed(e) => s.failed = Some(e),
        }
        match gone_after {
            Some(n) if s.events >= n => SinkFlow::Gone,
            _ => SinkFlow::Continue,
        }
    });
    (log, sink)
}

fn questions(n: usize) -> Vec<Vec<ChatMessage>> {
    let q = [
        "What is 2+3?",
        "Name a prime.",
        "Is 91 prime?",
        "Count to five.",
        "Say hi.",
    ];
    (0..n).map(|i| vec![ChatMessage::new("user", q[i % q.len()])]).collect()
}

fn params(i: usize, max_tokens: usize) -> GenerateParams {
    GenerateParams {
        budget: BudgetConfig {
            max_thinking: MaxThinking::Tokens(5 + 4 * i),
            min_thinking: if i % 2 == 1 { 3 } else { 0 },
            num_ignore: i % 3,
            ..BudgetConfig::default()
        },
        max_new_tokens: Some(max_tokens),
        ..GenerateParams::default()
    }
}

/// Admits sequence i at step 2*i (several join while others run), steps to the end, and
/// compares each with `chat` alone, token for token.
fn staggered_equals_alone(model: &LoadedModel, n: usize, max_tokens: usize) {
    let convs = questions(n);
    let ps: Vec<GenerateParams> = (0..n).map(|i| params(i, max_tokens)).collect();
    let mut sched = Scheduler::new(model, n, None);
    let mut logs = Vec::new();
    let mut step = 0;
    while logs.len() < n || !sched.is_empty() {
        while logs.len() < n && step >= 2 * logs.len() {
            let i = logs.len();
            let (log, s) = sink(None);
            sched.admit_chat(&convs[i], &ps[i], SeqControl::default(), s).unwrap();
            logs.push(log);
        }
        sched.step().unwrap();
        step += 1;
        assert!(step < 10_000, "the scheduler never finished");
    }
    assert!(step > 2 * (n - 1), "every sequence was admitted while others ran");
    let cancel = CancelToken::new();
    for (i, log) in logs.iter().enumerate() {
        let alone = chat(model, &convs[i], &ps[i], &cancel, &mut |_| {}).unwrap();
        let seen = log.borrow();
        let got = seen
            .finished
            .as_ref()
            .unwrap_or_else(|| panic!("sequence {i} did not finish"));
        assert_eq!(got.output_ids, alone.output_ids, "sequence {i}");
        assert_eq!(
            (
                got.thinking_tokens,
                got.waits_injected,
                got.waits_for_min,
                got.forced_end
            ),
            (
                alone.thinking_tokens,
                alone.waits_injected,
                alone.waits_for_min,
                alone.forced_end
            ),
            "sequence {i}"
        );
        assert_eq!(
            (&seen.thinking, &seen.answer),
            (&alone.thinking, &alone.answer),
            "sequence {i}"
        );
    }
}

fn tiny() -> (tempfile::TempDir, LoadedModel) {
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 512);
    let m = load_model(d.path(), &LoadOptions::default()).unwrap();
    (d, m)
}

#[test]
fn staggered_admissions_equal_chat_on_a_tiny_model() {
    let (_d, model) = tiny();
    staggered_equals_alone(&model, 9, 40);
}

#[test]
fn staggered_admissions_equal_chat_on_the_smollm2_gguf() {
    let model = load_model(&common::smollm2_gguf(), &LoadOptions::default()).unwrap();
    staggered_equals_alone(&model, 4, 40);
}

#[test]
fn answer_now_ends_one_sequences_thinking_and_leaves_the_others() {
    let (_d, model) = tiny();
    let convs = questions(2);
    let p = GenerateParams {
        budget: BudgetConfig {
            max_thinking: MaxThinking::Unlimited,
            ..BudgetConfig::default()
        },
        max_new_tokens: Some(60),
        ..GenerateParams::default()
    };
    let cancel = CancelToken::new();
    let alone: Vec<Generation> = convs
        .iter()
        .map(|c| chat(&model, c, &p, &cancel, &mut |_| {}).unwrap())
        .collect();
    assert!(
        alone[0].thinking_tokens > 8,
        "the test needs a long thinking to cut (got {})",
        alone[0].thinking_tokens
    );
    let mut sched = Scheduler::new(&model, 2, None);
    let steered = SeqControl::default();
    let (a, sa) = sink(None);
    let (b, sb) = sink(None);
    sched.admit_chat(&convs[0], &p, steered.clone(), sa).unwrap();
    sched.admit_chat(&convs[1], &p, SeqControl::default(), sb).unwrap();
    for _ in 0..5 {
        sched.step().unwrap();
    }
    steered.answer_now.request();
    while !sched.is_empty() {
        sched.step().unwrap();
    }
    let got = a.borrow().finished.clone().unwrap();
    assert!(got.forced_end && a.borrow().forced_end_streamed);
    assert_eq!(got.thinking_tokens, 5, "five sampled thinking tokens, then the end");
    let shared = got
        .output_ids
        .iter()
        .zip(&alone[0].output_ids)
        .take_while(|(a, b)| a == b)
        .count();
    assert!(
        shared >= 5,
        "the five thinking tokens are those of the run alone ({shared} shared)"
    );
    assert!(got.answer.starts_with("Final Answer:"), "answer: {:?}", got.answer);
    let other = b.borrow().finished.clone().unwrap();
    assert_eq!(other.output_ids, alone[1].output_ids, "the other sequence is untouched");
}

#[test]
fn a_gone_sink_frees_its_slot_at_the_next_step() {
    let (_d, model) = tiny();
    let convs = questions(2);
    let p = params(0, 30);
    let mut sched = Scheduler::new(&model, 1, None);
    let (gone, s) = sink(Some(3));
    sched.admit_chat(&convs[0], &p, SeqControl::default(), s).unwrap();
    assert!(!sched.has_room());
    let mut steps = 0;
    while !sched.is_empty() {
        sched.step().unwrap();
        steps += 1;
    }
    assert!(
        steps <= 4,
        "dropped within a step of the sink leaving (took {steps} steps)"
    );
    assert!(gone.borrow().finished.is_none() && gone.borrow().failed.is_none());
    assert!(sched.has_room());
    let (next, s) = sink(None);
    sched.admit_chat(&convs[1], &p, SeqControl::default(), s).unwrap();
    while !sched.is_empty() {
        sched.step().unwrap();
    }
    let alone = chat(&model, &convs[1], &p, &CancelToken::new(), &mut |_| {}).unwrap();
    assert_eq!(next.borrow().finished.as_ref().unwrap().output_ids, alone.output_ids);
}

#[test]
fn cancel_finishes_a_sequence_as_cancelled() {
    let (_d, model) = tiny();
    let convs = questions(1);
    let p = params(0, 200);
    let mut sched = Scheduler::new(&model, 1, None);
    let control = SeqControl::default();
    let (log, s) = sink(None);
    sched.admit_chat(&convs[0], &p, control.clone(), s).unwrap();
    sched.step().unwrap();
    control.cancel.cancel();
    sched.step().unwrap();
    assert!(sched.is_empty());
    let g = log.borrow().finished.clone().unwrap();
    assert_eq!(g.stop_reason, s1_studio::generate::StopReason::Cancelled);
}
