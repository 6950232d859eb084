//! "Serve on localhost" in the Chat view: the loaded tiny model behind the OpenAI API, driven
//! through the panel's widgets; the panel's own Python example run with the real `openai` client;
//! the chat still answering while it serves; loading another model ends the server.

use crate::common;

use std::time::Duration;

use common::gui::{app, harness, step_until};
use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use s1_studio::serve::local::python_example;
use s1_studio::ui::chat_serve::ServeStatus;
use s1_studio::ui::{ModelStatus, Settings, StudioApp};

const LONG: Duration = Duration::from_secs(120);

type H = egui_kittest::Harness<'static, StudioApp>;

fn type_into(h: &mut H, role: Role, label: &str, text: &str) {
    h.get_by_role_and_label(role, label).focus();
    h.run();
    h.get_by_role_and_label(role, label).type_text(text);
    h.run();
}

fn load(h: &mut H, dir: &std::path::Path) {
    h.state_mut().chat.path_input = dir.display().to_string();
    h.run();
    h.get_by_label("Load").click();
    h.step();
    step_until(
        h,
        LONG,
        |_| {},
        |a| matches!(a.model, ModelStatus::Loaded(_) | ModelStatus::Failed { .. }),
    );
    assert!(
        matches!(h.state().model, ModelStatus::Loaded(_)),
        "{:?}",
        h.state().model
    );
}

fn listening(a: &StudioApp) -> Option<(String, String)> {
    match &a.chat.serve.status {
        ServeStatus::Listening { url, model } => Some((url.clone(), model.clone())),
        _ => None,
    }
}

fn post(url: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let mut r = agent
        .post(format!("{url}/v1/chat/completions"))
        .send_json(body)
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = r.status().as_u16();
    (
        status,
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap(),
    )
}

#[test]
fn serve_the_loaded_model_from_the_chat_view() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    common::tiny_qwen(&a, 4096);
    common::tiny_qwen(&b, 4096);
    let mut h = harness(app(Settings::default()));
    h.ctx.set_missing_glyph_policy(egui::MissingGlyphPolicy::Tofu);
    h.run();

    // Before a model is loaded the panel opens, but Start is disabled.
    h.get_by_label("Serve on localhost").click();
    h.run();
    assert!(h.state().chat.serve.open);
    h.get_by_label("Start serving").click();
    h.run();
    assert!(!h.state().chat.serve.is_running(), "started without a model");

    load(&mut h, &a);

    // A port that is not a number is refused, naming the field.
    h.state_mut().chat.serve.port_input = "80x".into();
    h.get_by_label("Start serving").click();
    h.step();
    h.step();
    match &h.state().chat.serve.status {
        ServeStatus::Failed(e) => assert!(e.contains("port") && e.contains("80x"), "{e}"),
        s => panic!("a bad port gave {s:?}"),
    }

    // Port 0: any free one; the URL appears once it listens.
    h.state_mut().chat.serve.port_input = "0".into();
    h.get_by_label("Start serving").click();
    step_until(
        &mut h,
        LONG,
        |_| {},
        |a| listening(a).is_some() || matches!(a.chat.serve.status, ServeStatus::Failed(_)),
    );
    let (url, model) = listening(h.state()).unwrap_or_else(|| panic!("{:?}", h.state().chat.serve.status));
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(model, "a");
    h.run();
    h.get_by_label("Copy URL");
    h.get_by_label("Copy Python");

    // A request through the API, with a thinking budget: answered, and logged in the panel.
    let (status, body) = post(
        &url,
        serde_json::json!({
            "model": model,
            "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 40,
            "max_thinking_tokens": 16,
            "temperature": 0,
        }),
    );
    assert_eq!(status, 200, "{body}");
    let usage = &body["usage"];
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0, "{body}");
    assert!(
        usage["completion_tokens_details"]["reasoning_tokens"].as_u64().unwrap() <= 16 + 1,
        "{body}"
    );
    step_until(&mut h, LONG, |_| {}, |a| !a.chat.serve.log.is_empty());
    let line = h.state().chat.serve.log[0].to_string();
    assert!(line.starts_with("POST /v1/chat/completions 200"), "{line}");

    // The panel's own Python example, run as printed with the real `openai` client (its
    // budgets, on a random model that rarely stops: up to 1,024 tokens).
    let py = common::server::python_with_openai();
    let out = std::process::Command::new(py)
        .args(["-c", &python_example(&url, &model)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the panel's Python example failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    step_until(&mut h, LONG, |_| {}, |a| a.chat.serve.log.len() >= 2);

    // The chat keeps working on the shared model while it serves.
    type_into(&mut h, Role::MultilineTextInput, "Message", "Hello");
    h.get_by_label("Send").click();
    h.step();
    step_until(&mut h, LONG, |_| {}, |a| !a.chat.is_generating());
    assert!(h.state().chat.error.is_none(), "{:?}", h.state().chat.error);

    // Loading another model ends the server, saying why; its port closes.
    load(&mut h, &b);
    step_until(&mut h, LONG, |_| {}, |a| !a.chat.serve.is_running());
    match &h.state().chat.serve.status {
        ServeStatus::Ended(why) => assert!(why.contains("another model"), "{why}"),
        s => panic!("after loading another model: {s:?}"),
    }
    let port = url.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(start.elapsed() < LONG, "port {port} still open after the server ended");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Serve the new model, then Stop.
    h.state_mut().chat.serve.port_input = "0".into();
    h.get_by_label("Start serving").click();
    step_until(
        &mut h,
        LONG,
        |_| {},
        |a| listening(a).is_some() || matches!(a.chat.serve.status, ServeStatus::Failed(_)),
    );
    assert_eq!(listening(h.state()).map(|l| l.1), Some("b".to_string()));
    h.run();
    h.get_by_label("Stop serving").click();
    h.step();
    step_until(&mut h, LONG, |_| {}, |a| !a.chat.serve.is_running());
    assert_eq!(h.state().chat.serve.status, ServeStatus::Off);
}
