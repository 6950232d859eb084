//! "Try a 2-minute finetune" headless: the tiny model and rows made from a GGUF's tokenizer and
//! the bundled sample pool train to the end, and the checkpoint loads for chat.

mod common;

use s1_studio::cancel::CancelToken;
use s1_studio::train::{quickstart, TrainEvent, TrainOutcome};

#[test]
fn the_quick_finetune_runs_to_a_checkpoint_that_loads() {
    let d = tempfile::tempdir().unwrap();
    let gguf = common::fixture("gguf").join("r1-qwen-Q4_0.gguf");
    let (_, pool) = s1_studio::curate::steps::import::SAMPLE_POOL[2];
    let s = quickstart::prepare(d.path(), &gguf, pool).unwrap();
    let rows = std::fs::read_to_string(&s.data).unwrap();
    assert_eq!(rows.lines().count(), quickstart::ROWS);
    let mut losses = Vec::new();
    let outcome = s1_studio::train::run(&s, &CancelToken::new(), &mut |e| {
        if let TrainEvent::Step(r) = e {
            losses.push(r.loss);
        }
    });
    let TrainOutcome::Done {
        final_checkpoint,
        steps,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(steps, losses.len());
    assert_eq!(steps, 60, "12 rows, 4 a step, 20 epochs");
    let (first, last) = (losses[0], losses[losses.len() - 1]);
    assert!(last < first, "the loss fell: {first} -> {last} ({losses:?})");
    s1_studio::model::load_model(&final_checkpoint, &Default::default()).unwrap();
}
