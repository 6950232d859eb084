//! The chat panel, driven through its widgets in a headless egui_kittest harness, with a tiny
//! random model made by `init-model` (the real Qwen tokenizer).

use crate::common;

use std::time::Duration;

use common::gui::{app, harness, step_until};
use egui::accesskit::Role;
use egui_kittest::kittest::{NodeT, Queryable};
use s1_studio::generate::conversation::Turn;
use s1_studio::generate::StopReason;
use s1_studio::ui::{ModelStatus, Settings, StudioApp};

const LONG: Duration = Duration::from_secs(120);

fn loaded_harness(dir: &std::path::Path, settings: Settings) -> egui_kittest::Harness<'static, StudioApp> {
    common::tiny_qwen(dir, 4096);
    let mut h = harness(app(settings));
    // A random model writes any token of Qwen's vocabulary (CJK, rare symbols); the app draws
    // what no font has as a box, as it does outside tests.
    h.ctx.set_missing_glyph_policy(egui::MissingGlyphPolicy::Tofu);
    h.run();
    type_into(&mut h, Role::TextInput, "Path", &dir.display().to_string());
    h.run();
    h.get_by_label("Load").click();
    step_until(
        &mut h,
        LONG,
        |_| {},
        |a| matches!(a.model, ModelStatus::Loaded(_) | ModelStatus::Failed { .. }),
    );
    assert!(
        matches!(h.state().model, ModelStatus::Loaded(_)),
        "{:?}",
        h.state().model
    );
    h
}

/// Focuses a text field by its label and types into it, as a user does.
fn type_into(h: &mut egui_kittest::Harness<'static, StudioApp>, role: Role, label: &str, text: &str) {
    h.get_by_role_and_label(role, label).focus();
    h.run();
    h.get_by_role_and_label(role, label).type_text(text);
    h.run();
}

fn send(h: &mut egui_kittest::Harness<'static, StudioApp>, text: &str) {
    type_into(h, Role::MultilineTextInput, "Message", text);
    h.run();
    h.get_by_label("Send").click();
    h.step();
}

fn last_answer(app: &StudioApp) -> Option<s1_studio::generate::conversation::AssistantTurn> {
    match app.chat.conversation.turns.last() {
        Some(Turn::Assistant(a)) => Some(a.clone()),
        _ => None,
    }
}

/// The number in the thinking header ("Thinking… 12 tokens" / "Thinking (12 tokens)").
fn thinking_counter(h: &egui_kittest::Harness<'static, StudioApp>) -> Option<usize> {
    let labels: Vec<String> = h
        .query_all_by_label_contains("Thinking")
        .filter_map(|n| n.accesskit_node().label())
        .filter(|l| l.ends_with("tokens") || l.ends_with("tokens)"))
        .collect();
    let label = labels.last()?;
    label
        .split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())?
        .parse()
        .ok()
}

#[test]
fn open_type_send_and_the_answer_appears() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Settings::default();
    s.chat.max_thinking = 16;
    s.chat.max_new_tokens = 48;
    let mut h = loaded_harness(d.path(), s);
    send(&mut h, "What is 2+2?");
    assert!(h.state().is_generating());
    step_until(&mut h, LONG, |_| {}, |a| !a.is_generating());
    h.run();
    let a = last_answer(h.state()).unwrap();
    assert!(a.error.is_none(), "{:?}", a.error);
    assert!(!a.answer.trim().is_empty());
    // The answer is on screen, the user's message too (and the sidebar's title, taken from
    // it), and the thinking is set apart.
    h.get_by_label(a.answer.trim_start());
    assert_eq!(h.query_all_by_label("What is 2+2?").count(), 2);
    assert_eq!(thinking_counter(&h), Some(a.thinking_tokens));
    // The budget forced the end of this rambling random model, and the panel says so.
    assert!(a.forced_end_at.is_some());
    h.get_by_label_contains("end of thinking forced");
    // The recent-models list remembers it.
    assert_eq!(
        h.state().settings.recent_models.first().map(|p| p.as_path()),
        Some(d.path())
    );
}

#[test]
fn thinking_counter_never_passes_the_maximum() {
    let d = tempfile::tempdir().unwrap();
    let n = 24;
    let mut s = Settings::default();
    s.chat.max_thinking = n;
    s.chat.max_new_tokens = 200;
    s.chat.temperature = 0.9;
    let mut h = loaded_harness(d.path(), s);
    send(&mut h, "Think about primes.");
    let mut seen = Vec::new();
    step_until(
        &mut h,
        LONG,
        |h| {
            if let Some(c) = thinking_counter(h) {
                seen.push(c);
            }
        },
        |a| !a.is_generating(),
    );
    h.run();
    seen.extend(thinking_counter(&h));
    assert!(!seen.is_empty(), "the thinking counter never showed");
    assert!(seen.iter().all(|&c| c <= n as usize), "counter passed {n}: {seen:?}");
    assert_eq!(
        *seen.last().unwrap(),
        n as usize,
        "the random model thinks until the budget cuts it"
    );
}

#[test]
fn stop_ends_generation() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Settings::default();
    s.chat.max_unlimited = true;
    s.chat.max_new_tokens = 100_000;
    let mut h = loaded_harness(d.path(), s);
    send(&mut h, "Count forever.");
    step_until(
        &mut h,
        LONG,
        |_| {},
        |a| last_answer(a).is_some_and(|t| t.thinking_tokens > 20),
    );
    h.get_by_label("Stop").click();
    step_until(&mut h, LONG, |_| {}, |a| !a.is_generating());
    h.run();
    let a = last_answer(h.state()).unwrap();
    assert_eq!(a.stop_reason, Some(StopReason::Cancelled));
    assert!(a.thinking_tokens < 5_000);
    h.get_by_label_contains("stopped");
    // Regenerate runs again with the current budget.
    h.state_mut().settings.chat.max_unlimited = false;
    h.state_mut().settings.chat.max_thinking = 5;
    h.run();
    h.get_by_label("Regenerate").click();
    step_until(&mut h, LONG, |_| {}, |a| !a.is_generating());
    let a = last_answer(h.state()).unwrap();
    assert_eq!(a.thinking_tokens, 5);
    assert_eq!(
        h.state().chat.conversation.turns.len(),
        2,
        "regenerate replaces the last answer"
    );
    h.get_by_label("Clear conversation").click();
    h.run();
    assert!(h.state().chat.conversation.turns.is_empty());
}

/// An in-memory stand-in for eframe's settings file.
#[derive(Default)]
struct MemStorage(std::collections::HashMap<String, String>);

impl eframe::Storage for MemStorage {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.into(), value);
    }
    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }
    fn flush(&mut self) {}
}

#[test]
fn settings_survive_a_restart() {
    let mut h = harness(app(Settings::default()));
    h.run();
    h.get_by_label("Unlimited").click();
    h.run();
    type_into(&mut h, Role::TextInput, "Ignore string", ", hmm");
    h.get_by_label("Train").click();
    h.run();
    let mut storage = MemStorage::default();
    eframe::App::save(h.state_mut(), &mut storage);
    drop(h);

    let restored = StudioApp::load_settings(Some(&storage));
    assert!(restored.chat.max_unlimited);
    assert_eq!(restored.chat.ignore_str, "Wait, hmm");
    let mut h = harness(app(restored));
    h.run();
    // The Train view is open again; back in Chat, the controls show the saved values.
    h.get_by_label("Fine-tune");
    h.get_by_label("Chat").click();
    h.run();
    assert_eq!(
        h.get_by_label("Unlimited").accesskit_node().toggled(),
        Some(egui::accesskit::Toggled::True)
    );
    assert_eq!(
        h.get_by_role_and_label(Role::TextInput, "Ignore string")
            .accesskit_node()
            .value()
            .as_deref(),
        Some("Wait, hmm")
    );
}

#[test]
fn a_bad_model_path_shows_a_clear_error() {
    let mut h = harness(app(Settings::default()));
    h.run();
    type_into(&mut h, Role::TextInput, "Path", "/no/such/model");
    h.run();
    h.get_by_label("Load").click();
    step_until(&mut h, LONG, |_| {}, |a| matches!(a.model, ModelStatus::Failed { .. }));
    h.run();
    h.get_by_label_contains("Could not load /no/such/model");
}

/// Steps until the reply has thought more than `n` tokens.
fn until_thinking(h: &mut egui_kittest::Harness<'static, StudioApp>, n: usize) {
    step_until(
        h,
        LONG,
        |_| {},
        |a| last_answer(a).is_some_and(|t| t.thinking_tokens > n),
    );
}

#[test]
fn esc_stops_generation() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Settings::default();
    s.chat.max_unlimited = true;
    s.chat.max_new_tokens = 100_000;
    let mut h = loaded_harness(d.path(), s);
    send(&mut h, "Count forever.");
    until_thinking(&mut h, 10);
    assert!(h.state().is_generating());
    h.key_press(egui::Key::Escape);
    step_until(&mut h, LONG, |_| {}, |a| !a.is_generating());
    let a = last_answer(h.state()).unwrap();
    assert_eq!(a.stop_reason, Some(StopReason::Cancelled));
    assert!(a.thinking_tokens < 5_000);
}

#[test]
fn the_rate_and_the_first_token_time_are_live_mid_generation() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Settings::default();
    s.chat.max_unlimited = true;
    s.chat.max_new_tokens = 100_000;
    let mut h = loaded_harness(d.path(), s);
    send(&mut h, "Count forever.");
    until_thinking(&mut h, 12);
    h.step();
    assert!(h.state().is_generating());
    let a = last_answer(h.state()).unwrap();
    assert!(a.tokens_per_s > 0.0, "{}", a.tokens_per_s);
    let ttft = a.first_token_s.expect("a first token time");
    assert!(ttft > 0.0 && ttft < 120.0, "{ttft}");
    // The figures under the reply say so while it streams.
    let node = h.get_by_label_contains("tokens/s");
    let figures = node.accesskit_node().value().unwrap_or_default().to_string();
    assert!(!figures.contains(" 0.0 tokens/s"), "{figures}");
    assert!(figures.contains("first token"), "{figures}");
    h.get_by_label("Stop").click();
    step_until(&mut h, LONG, |_| {}, |a| !a.is_generating());
}

#[test]
fn waits_of_the_minimum_are_shown_apart_from_the_setting() {
    use s1_studio::generate::conversation::AssistantTurn;
    use s1_studio::generate::{Delta, InjectionKind};
    let mut h = harness(app(Settings::default()));
    // A reply under "Waits 2" whose minimum asked for three more ignored ends, as the
    // inference worker streams it (the scripted engine test counts the same split).
    let mut a = AssistantTurn::new("min 40 · max 100 · 2 waits").with_waits_asked(2);
    for at in 0..5 {
        a.apply(&Delta::Injected {
            kind: InjectionKind::Ignore,
            at_thinking_token: at * 3,
            text: "Wait".into(),
        });
        a.apply(&Delta::Thinking("Wait, so".into()));
    }
    a.stop_reason = Some(StopReason::EndOfTurn);
    h.state_mut()
        .chat
        .conversation
        .turns
        .push(Turn::User("Think hard.".into()));
    h.state_mut().chat.conversation.turns.push(Turn::Assistant(a));
    h.run();
    h.get_by_label_contains("2 waits + 3 for the minimum");
}

#[test]
fn answer_now_ends_the_thinking_with_the_forced_end() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Settings::default();
    s.chat.max_unlimited = true;
    s.chat.min_thinking = 200;
    s.chat.max_new_tokens = 400;
    let mut h = loaded_harness(d.path(), s);
    send(&mut h, "Think, then answer when asked.");
    until_thinking(&mut h, 8);
    h.step();
    h.get_by_label("Answer now").click();
    step_until(&mut h, LONG, |_| {}, |a| !a.is_generating());
    h.run();
    let a = last_answer(h.state()).unwrap();
    let at = a.forced_end_at.expect("the end of thinking was forced");
    assert!((8..200).contains(&at), "forced at {at}, below the minimum of 200");
    assert_eq!(a.thinking_tokens, at);
    assert!(a.answer.trim_start().starts_with("Final Answer:"), "{:?}", a.answer);
    h.get_by_label_contains("end of thinking forced");
}

#[test]
fn a_conversation_survives_a_restart() {
    use s1_studio::ui::ChatCommand;
    let d = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let mut s = Settings::default();
    s.chat.max_thinking = 8;
    s.chat.max_new_tokens = 24;
    let mut h = loaded_harness(d.path(), s);
    h.state_mut()
        .command(ChatCommand::SetConversationsDir(store.path().to_path_buf()));
    step_until(&mut h, LONG, |_| {}, |a| a.chat.library.loaded);
    send(&mut h, "Remember 17.");
    step_until(&mut h, LONG, |_| {}, |a| !a.is_generating());
    h.run();
    // Renamed in the sidebar.
    h.get_by_label("Rename").click();
    h.run();
    h.get_by_role_and_label(Role::TextInput, "Title");
    h.state_mut().chat.rename_draft = Some("Seventeen".into());
    h.run();
    h.get_by_label("Save title").click();
    h.run();
    let id = h.state().chat.library.current.clone();
    let file = store.path().join(format!("{id}.json"));
    step_until(
        &mut h,
        LONG,
        |_| {},
        |_| std::fs::read_to_string(&file).is_ok_and(|t| t.contains("Seventeen")),
    );
    // Compared as saved (the live rate's starting point is not kept).
    let json = |t: &[Turn]| serde_json::to_string(t).unwrap();
    let turns = json(&h.state().chat.conversation.turns);
    assert_eq!(h.state().chat.conversation.turns.len(), 2);
    std::fs::write(store.path().join("zz-broken.json"), "{ not json").unwrap();
    let mut storage = MemStorage::default();
    eframe::App::save(h.state_mut(), &mut storage);
    drop(h);

    let mut h = harness(app(StudioApp::load_settings(Some(&storage))));
    h.state_mut()
        .command(ChatCommand::SetConversationsDir(store.path().to_path_buf()));
    step_until(&mut h, LONG, |_| {}, |a| a.chat.library.loaded);
    h.run();
    // The open conversation is back, listed under its title; the broken file is reported.
    assert_eq!(json(&h.state().chat.conversation.turns), turns);
    h.get_by_label("Remember 17.");
    h.get_by_label("Seventeen");
    h.get_by_label_contains("zz-broken.json");
    // A new conversation, then back to the saved one from the sidebar.
    h.get_by_label("New conversation").click();
    h.run();
    assert!(h.state().chat.conversation.turns.is_empty());
    h.get_by_label("Seventeen").click();
    h.run();
    assert_eq!(json(&h.state().chat.conversation.turns), turns);
    // Delete asks first, then removes the file; the broken one is left alone.
    h.get_by_label("Delete").click();
    h.run();
    h.get_by_label("Delete for good").click();
    h.run();
    step_until(&mut h, LONG, |_| {}, |_| !file.exists());
    assert!(h.state().chat.conversation.turns.is_empty());
    assert!(store.path().join("zz-broken.json").exists());
}

#[test]
fn a_preset_round_trips() {
    let mut h = harness(app(Settings::default()));
    h.run();
    h.state_mut().settings.chat.waits = 3;
    h.state_mut().settings.chat.min_thinking = 64;
    h.state_mut().settings.chat.temperature = 0.6;
    type_into(&mut h, Role::TextInput, "Preset name", "careful");
    h.get_by_label("Save preset").click();
    h.run();
    assert_eq!(h.state().settings.chat.presets.len(), 1);
    let mut storage = MemStorage::default();
    eframe::App::save(h.state_mut(), &mut storage);
    drop(h);

    let mut restored = StudioApp::load_settings(Some(&storage));
    restored.chat.waits = 0;
    restored.chat.min_thinking = 0;
    restored.chat.temperature = 0.0;
    let mut h = harness(app(restored));
    h.run();
    h.get_by_label("careful").click();
    h.run();
    let c = &h.state().settings.chat;
    assert_eq!((c.waits, c.min_thinking, c.temperature), (3, 64, 0.6));
    h.get_by_label("Delete preset").click();
    h.run();
    assert!(h.state().settings.chat.presets.is_empty());
}
