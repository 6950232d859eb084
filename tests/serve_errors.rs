//! `s1-studio serve` under bad input: malformed JSON, an unknown model, a 10 MB body, min above
//! max, a wrong key, unknown routes: each a 4xx in OpenAI's error shape, and the server goes on
//! serving. Also: the key never reaches the log, a public address without a key is refused, and
//! a raw stream ends in `data: [DONE]`. The openai-client cases need a Python with `openai`.

mod common;

use common::server::Server;
use serde_json::{json, Value};

/// The error body's four fields, with the status.
fn openai_error(status: u16, body: &str, want_status: u16) -> Value {
    assert_eq!(status, want_status, "{body}");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    let e = &v["error"];
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(e["type"].is_string(), "{body}");
    assert!(e.get("param").is_some() && e.get("code").is_some(), "{body}");
    v
}

fn still_serves(server: &Server, model: &str) {
    let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3});
    let (status, text) = server.post("/v1/chat/completions", body.to_string().as_bytes());
    assert_eq!(status, 200, "{text}");
}

#[test]
fn bad_requests_get_openai_errors_and_the_server_goes_on() {
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 512);
    let key = "test-key-5f1c";
    let server = Server::start(d.path(), &["--api-key", key, "--max-tokens-limit", "64"]);
    let model = d.path().file_name().unwrap().to_str().unwrap().to_string();
    still_serves(&server, &model);

    let (s, b) = server.post("/v1/chat/completions", b"{\"model\": ");
    let v = openai_error(s, &b, 400);
    assert_eq!(v["error"]["code"], "invalid_json");
    still_serves(&server, &model);

    let big = vec![b' '; 10 << 20];
    let (s, b) = server.post("/v1/chat/completions", &big);
    openai_error(s, &b, 413);
    still_serves(&server, &model);

    let over = json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 65});
    let (s, b) = server.post("/v1/chat/completions", over.to_string().as_bytes());
    assert_eq!(openai_error(s, &b, 400)["error"]["param"], "max_tokens");

    let neg = json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "min_thinking_tokens": -3});
    let (s, b) = server.post("/v1/chat/completions", neg.to_string().as_bytes());
    assert_eq!(openai_error(s, &b, 400)["error"]["param"], "min_thinking_tokens");

    let (s, b) = server.post("/v1/no/such/route", b"{}");
    openai_error(s, &b, 404);
    let (s, b) = server.get("/v1/chat/completions");
    openai_error(s, &b, 405);
    // Without the key, nothing but /health.
    let (s, b) = server.get("/v1/models");
    openai_error(s, &b, 401);
    still_serves(&server, &model);

    // The same through the openai client: its exceptions, with the status and the JSON.
    let r = server.client("errors", json!({"model": model}));
    for (case, status, class) in [
        ("unknown_model", 404, "NotFoundError"),
        ("min_above_max", 400, "BadRequestError"),
        ("wrong_key", 401, "AuthenticationError"),
    ] {
        assert_eq!(r[case]["status"], status, "{case}: {r}");
        assert_eq!(r[case]["class"], class, "{case}: {r}");
        assert!(r[case]["body"]["error"]["message"].is_string(), "{case}: {r}");
    }
    assert_eq!(r["min_above_max"]["body"]["error"]["param"], "min_thinking_tokens");
    still_serves(&server, &model);
    assert!(
        !server.log().contains(key),
        "the key reached the log:\n{}",
        server.log()
    );
}

#[test]
fn a_raw_stream_ends_with_done() {
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 512);
    let server = Server::start(d.path(), &[]);
    let body = json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "stream": true,
                      "stream_options": {"include_usage": true}});
    let (s, text) = server.post("/v1/chat/completions", body.to_string().as_bytes());
    assert_eq!(s, 200);
    let events: Vec<&str> = text
        .split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"), "{text}");
    let usage: Value = serde_json::from_str(events[events.len() - 2]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 4);
}

#[test]
fn a_public_address_without_a_key_is_refused_at_start() {
    let d = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_s1-studio"))
        .args(["serve", "--model"])
        .arg(d.path())
        .args(["--host", "0.0.0.0", "--port", "0"])
        .env_remove("S1_API_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without an API key"), "{err}");
}

#[test]
fn a_full_queue_is_a_503_and_a_cancelled_request_frees_its_slot() {
    use std::io::{BufRead, BufReader};
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 4096);
    let server = Server::start(d.path(), &["--parallel", "1", "--queue", "1"]);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    // A long request holds the only slot.
    let long = json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3500, "stream": true,
                      "min_thinking_tokens": 3000});
    let resp = agent
        .post(format!("{}/v1/chat/completions", server.base))
        .send_json(&long)
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut lines = BufReader::new(resp.into_body().into_reader()).lines();
    let first = lines.next().unwrap().unwrap();
    let chunk: Value = serde_json::from_str(first.strip_prefix("data: ").unwrap()).unwrap();
    let id = chunk["id"].as_str().unwrap().to_string();
    // Two short ones: one waits in the queue (room for one), the other is turned away.
    let short = json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4});
    let sent: Vec<_> = (0..2)
        .map(|i| {
            let (agent, url, body) = (
                agent.clone(),
                format!("{}/v1/chat/completions", server.base),
                short.clone(),
            );
            std::thread::Builder::new()
                .name(format!("short-{i}"))
                .spawn(move || {
                    let mut r = agent.post(url).send_json(&body).unwrap();
                    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
                })
                .unwrap()
        })
        .collect();
    // The turned-away one answers at once; then the long one is cancelled by its id.
    let t0 = std::time::Instant::now();
    while !sent.iter().any(|h| h.is_finished()) {
        assert!(t0.elapsed().as_secs() < 60, "neither short request was answered");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (s, b) = server.post(&format!("/v1/requests/{id}/cancel"), b"");
    assert_eq!(s, 200, "{b}");
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(
        rest.iter().any(|l| l == "data: [DONE]"),
        "the cancelled stream ends with [DONE]"
    );
    let mut results: Vec<(u16, String)> = sent.into_iter().map(|h| h.join().unwrap()).collect();
    results.sort();
    assert_eq!(
        results[0].0, 200,
        "the queued request ran once the slot was free: {}",
        results[0].1
    );
    let v = openai_error(results[1].0, &results[1].1, 503);
    assert_eq!(v["error"]["code"], "server_busy");
}

/// The key read from --api-key-file (never on the command line, so not in the process list);
/// an unreadable or empty file stops the server at start, naming the file.
#[test]
fn the_key_from_a_file() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("m");
    common::tiny_qwen(&model, 256);
    let key_file = d.path().join("key");
    std::fs::write(&key_file, "file-key-91ab\n").unwrap();
    let mut server = Server::start(&model, &["--api-key-file", key_file.to_str().unwrap()]);
    let (s, b) = server.get("/v1/models");
    openai_error(s, &b, 401);
    server.key = "file-key-91ab".into();
    still_serves(&server, "m");

    for (file, want) in [
        (d.path().join("missing"), "missing"),
        (d.path().join("empty"), "first line is empty"),
    ] {
        if want != "missing" {
            std::fs::write(&file, "\n").unwrap();
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_s1-studio"))
            .args(["serve", "--port", "0", "--model"])
            .arg(&model)
            .arg("--api-key-file")
            .arg(&file)
            .env_remove("S1_API_KEY")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains("--api-key-file") && err.contains(&file.display().to_string()) && err.contains(want),
            "{err}"
        );
    }
}
