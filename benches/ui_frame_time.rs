//! Frame time of the studio while a generation streams into the chat panel (target: 8 ms or
//! less on a 2-core machine). Headless egui_kittest harness: each frame runs the app's logic,
//! layout and tessellation-free UI pass; painting on a GPU comes on top in the real window.
//!
//!     cargo bench --bench ui_frame_time [-- MODEL]     (default: the SmolLM2 demo GGUF)

use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use s1_studio::ui::{ModelStatus, Settings, StudioApp};

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn main() {
    let model = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/models/SmolLM2-135M-Instruct.Q4_1.gguf").into());
    let mut s = Settings::default();
    s.chat.max_unlimited = true;
    s.chat.max_new_tokens = std::env::var("S1_BENCH_TOKENS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    s.chat.waits = 2;
    s.chat.temperature = 0.7;
    let app = StudioApp::new(s, std::sync::Arc::new(|| {})).expect("app");
    let mut h = Harness::<StudioApp>::builder()
        .with_size(egui::vec2(1280.0, 820.0))
        .build_ui_state(|ui, app: &mut StudioApp| app.show(ui), app);
    h.ctx.set_missing_glyph_policy(egui::MissingGlyphPolicy::Tofu);
    h.run();
    h.state_mut().chat.path_input = model.clone();
    h.run();
    h.get_by_label("Load").click();
    while !matches!(h.state().model, ModelStatus::Loaded(_) | ModelStatus::Failed { .. }) {
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    if let ModelStatus::Failed { error, .. } = &h.state().model {
        panic!("{model}: {error}");
    }
    h.get_by_role_and_label(Role::MultilineTextInput, "Message").focus();
    h.run();
    h.get_by_role_and_label(Role::MultilineTextInput, "Message")
        .type_text("Explain why the sky is blue.");
    h.run();
    h.get_by_label("Send").click();
    h.step();
    assert!(h.state().is_generating(), "the message was not sent");
    let mut steps = Vec::new();
    let mut logic = Vec::new();
    let start = Instant::now();
    while h.state().is_generating() {
        let t = Instant::now();
        h.step();
        steps.push(t.elapsed());
        logic.extend(h.state().frame_times.last().copied());
        // A 60 Hz display: the UI wakes at most every ~16 ms; here every 4 ms to stress it.
        std::thread::sleep(Duration::from_millis(4));
    }
    let wall = start.elapsed();
    let turn = match h.state().chat.conversation.turns.last() {
        Some(s1_studio::generate::conversation::Turn::Assistant(a)) => a.clone(),
        _ => panic!("no answer"),
    };
    steps.sort();
    logic.sort();
    println!(
        "streamed {} thinking + {} answer tokens in {:.1} s ({:.1} tokens/s while the UI ran {} frames)",
        turn.thinking_tokens,
        turn.answer_tokens,
        wall.as_secs_f64(),
        turn.tokens_per_s,
        steps.len()
    );
    for (name, v) in [
        ("harness frame (kittest step)", &steps),
        ("app logic + layout (StudioApp::show)", &logic),
    ] {
        println!(
            "{name:<38} median {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            percentile(v, 0.5),
            percentile(v, 0.95),
            percentile(v, 0.99),
            percentile(v, 1.0)
        );
    }
}
