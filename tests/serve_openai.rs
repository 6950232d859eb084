//! `s1-studio serve` driven by the real `openai` Python client: whole and streamed chats and
//! completions, each thinking control, the served greedy result equal to `s1-studio generate`'s,
//! "end thinking now" on a running request, and 256 concurrent streams without an error.
//! Needs a Python with `openai` (S1_PYTHON; scripts/test.sh makes one).

mod common;

use std::process::Command;

use common::server::Server;
use serde_json::{json, Value};

const Q: &str = "What is 2+3?";

fn chat_args(model: &str, max_tokens: usize, extra: Value) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": Q}],
        "temperature": 0,
        "max_tokens": max_tokens,
        "extra_body": extra,
    })
}

/// Runs each set of controls whole and streamed; the two must agree (greedy).
fn both_ways(server: &Server, model: &str, max_tokens: usize, controls: &[Value]) -> Vec<Value> {
    let jobs: Vec<Value> = controls
        .iter()
        .flat_map(|c| {
            let a = chat_args(model, max_tokens, c.clone());
            [json!(["chat", a.clone()]), json!(["chat_stream", a])]
        })
        .collect();
    let out = server.client("many", Value::Array(jobs));
    let out = out.as_array().unwrap();
    controls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (whole, streamed) = (&out[2 * i], &out[2 * i + 1]);
            for k in ["content", "reasoning", "finish_reason"] {
                assert_eq!(whole[k], streamed[k], "{c}: {k}");
            }
            for k in ["thinking_tokens", "answer_tokens", "waits_injected", "forced_end"] {
                assert_eq!(whole["s1"][k], streamed["s1"][k], "{c}: s1.{k}");
            }
            assert_eq!(whole["usage"], streamed["usage"], "{c}: usage");
            assert_eq!(
                whole["usage"]["completion_tokens_details"]["reasoning_tokens"], whole["s1"]["thinking_tokens"],
                "{c}"
            );
            whole.clone()
        })
        .collect()
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn every_thinking_control_whole_and_streamed_on_the_smollm2_gguf() {
    let gguf = common::smollm2_gguf();
    let server = Server::start(&gguf, &[]);
    let model = "SmolLM2-135M-Instruct.Q4_1.gguf";
    let controls = [
        json!({"max_thinking_tokens": 5}),
        json!({"thinking_budget_tokens": 5}),
        json!({"thinking_token_budget": 5}),
        json!({"max_thinking_tokens": 5, "thinking_budget_message": "ANSWER:"}),
        json!({"min_thinking_tokens": 30, "max_thinking_tokens": 60}),
        json!({"thinking_n_ignore": 1, "thinking_ignore_str": "Hmm"}),
        json!({"reasoning_effort": "minimal"}),
        json!({"reasoning_effort": "none"}),
        json!({"chat_template_kwargs": {"enable_thinking": false}}),
    ];
    let r = both_ways(&server, model, 100, &controls);
    // The maximum, under each of its names: the end forced after 5 thinking tokens.
    for (i, g) in r[..3].iter().enumerate() {
        assert_eq!(g["s1"]["forced_end"], true, "{}", controls[i]);
        assert_eq!(n(&g["s1"]["thinking_tokens"]), 5, "{}", controls[i]);
        assert!(g["content"].as_str().unwrap().starts_with("Final Answer:"), "{g}");
        assert_eq!((&g["content"], &g["reasoning"]), (&r[0]["content"], &r[0]["reasoning"]));
    }
    assert!(r[3]["content"].as_str().unwrap().starts_with("ANSWER:"), "{}", r[3]);
    // The minimum: early ends replaced by "Wait" until 30 thinking tokens.
    assert!(n(&r[4]["s1"]["waits_for_min"]) >= 1, "{}", r[4]);
    assert!(n(&r[4]["s1"]["thinking_tokens"]) >= 30, "{}", r[4]);
    assert!(r[4]["reasoning"].as_str().unwrap().contains("Wait"), "{}", r[4]);
    // One ignored end, with our own ignore string.
    assert_eq!(n(&r[5]["s1"]["waits_injected"]), 1, "{}", r[5]);
    assert!(r[5]["reasoning"].as_str().unwrap().contains("Hmm"), "{}", r[5]);
    // reasoning_effort states its budget; none and enable_thinking=false answer directly.
    assert_eq!(n(&r[6]["s1"]["max_thinking"]), 128);
    for g in &r[7..] {
        assert_eq!(g["reasoning"], "", "{g}");
        assert_eq!(n(&g["s1"]["thinking_tokens"]), 0);
        assert!(!g["content"].as_str().unwrap().is_empty(), "{g}");
    }
}

#[test]
fn served_greedy_equals_generate_on_the_smollm2_gguf() {
    let gguf = common::smollm2_gguf();
    let server = Server::start(&gguf, &[]);
    let model = "SmolLM2-135M-Instruct.Q4_1.gguf";
    for (flags, controls) in [
        (
            vec!["--max-thinking", "20", "--min-thinking", "16", "--waits", "1"],
            json!({"max_thinking_tokens": 20, "min_thinking_tokens": 16, "thinking_n_ignore": 1}),
        ),
        (vec!["--max-thinking", "8"], json!({"thinking_budget_tokens": 8})),
        (vec![], json!({})),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_s1-studio"))
            .args(["generate", "--model"])
            .arg(&gguf)
            .args(["--prompt", Q, "--max-tokens", "60", "--json"])
            .args(&flags)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let want: Value = serde_json::from_slice(&out.stdout).unwrap();
        let args = chat_args(model, 60, controls.clone());
        for cmd in ["chat", "chat_stream"] {
            let got = server.client(cmd, args.clone());
            assert_eq!(got["reasoning"], want["thinking"], "{cmd} {controls}");
            assert_eq!(got["content"], want["answer"], "{cmd} {controls}");
            for k in [
                "thinking_tokens",
                "answer_tokens",
                "waits_injected",
                "waits_for_min",
                "forced_end",
                "stop_reason",
                "injections",
            ] {
                assert_eq!(got["s1"][k], want[k], "{cmd} {controls}: {k}");
            }
        }
    }
}

#[test]
fn a_tiny_model_served_whole_streamed_and_as_plain_completions() {
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 512);
    let server = Server::start(d.path(), &[]);
    let model = d.path().file_name().unwrap().to_str().unwrap().to_string();
    let r = both_ways(&server, &model, 24, &[json!({}), json!({"max_thinking_tokens": 4})]);
    assert_eq!(n(&r[1]["s1"]["thinking_tokens"]), 4);
    assert_eq!(r[1]["s1"]["forced_end"], true);
    let jobs = json!([
        ["completion", {"model": model, "prompt": "2+2=", "max_tokens": 6, "temperature": 0}],
        ["completion_stream", {"model": model, "prompt": "2+2=", "max_tokens": 6, "temperature": 0}],
        ["completion", {"model": model, "prompt": "2+2=", "max_tokens": 12, "temperature": 0,
                        "extra_body": {"max_thinking_tokens": 4}}],
    ]);
    let c = server.client("many", jobs);
    assert_eq!(c[0]["content"], c[1]["content"]);
    assert_eq!(
        n(&c[0]["s1"]["thinking_tokens"]),
        0,
        "a plain completion thinks only when asked"
    );
    assert_eq!(n(&c[0]["usage"]["completion_tokens"]), 6);
    assert_eq!(c[0]["finish_reason"], "length");
    assert_eq!(n(&c[2]["s1"]["thinking_tokens"]), 4);
    assert!(!c[2]["reasoning"].as_str().unwrap().is_empty());

    // The same prompt as token ids (the API's token prompt, as s1's loop sends its rounds), with
    // the sampled ids returned (vLLM's `return_token_ids`).
    let (tok, _, _) = s1_studio::model::load_text_side(d.path()).unwrap();
    let ids = tok.encode_with_bos("2+2=").unwrap();
    let post = |prompt: Value| {
        let body = json!({"model": model, "prompt": prompt, "max_tokens": 6, "temperature": 0,
                          "top_k": 0, "return_token_ids": true});
        server.post("/v1/completions", body.to_string().as_bytes())
    };
    let (status, text) = post(json!("2+2="));
    assert_eq!(status, 200, "{text}");
    let by_text: Value = serde_json::from_str(&text).unwrap();
    let (status, text) = post(json!(ids));
    assert_eq!(status, 200, "{text}");
    let by_ids: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(by_ids["choices"][0]["text"], c[0]["content"]);
    assert_eq!(by_ids["choices"][0]["token_ids"], by_text["choices"][0]["token_ids"]);
    let sampled: Vec<u32> = serde_json::from_value(by_ids["choices"][0]["token_ids"].clone()).unwrap();
    assert_eq!(sampled.len(), 6);
    assert_eq!(
        tok.decode(&sampled).unwrap(),
        by_ids["choices"][0]["text"].as_str().unwrap()
    );
    // An id past the vocabulary is the client's fault, named.
    let (status, text) = post(json!([1, tok.max_token_id + 1]));
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("outside the vocabulary"), "{text}");
}

#[test]
fn end_thinking_ends_a_running_requests_thinking() {
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 4096);
    let server = Server::start(d.path(), &[]);
    let model = d.path().file_name().unwrap().to_str().unwrap().to_string();
    // A long thinking (min 3000) that only the request can end.
    let args = json!({
        "model": model,
        "messages": [{"role": "user", "content": Q}],
        "temperature": 0,
        "max_tokens": 3500,
        "extra_body": {"min_thinking_tokens": 3000},
    });
    let r = server.client("end_thinking", args);
    assert_eq!(r["posted"]["status"], 200, "{r}");
    assert_eq!(r["s1"]["forced_end"], true, "{r}");
    assert!(n(&r["s1"]["thinking_tokens"]) < 3000, "{r}");
    assert!(r["content"].as_str().unwrap().starts_with("Final Answer:"), "{r}");
    let (status, body) = server.post("/v1/requests/chatcmpl-0000000000000000/end_thinking", b"");
    assert_eq!(status, 404, "{body}");
}

#[test]
fn two_hundred_fifty_six_concurrent_streams_all_complete() {
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 512);
    let server = Server::start(d.path(), &[]);
    let model = d.path().file_name().unwrap().to_str().unwrap().to_string();
    let r = server.client("concurrent", json!({"model": model, "n": 256, "max_tokens": 8}));
    assert_eq!((n(&r["ok"]), n(&r["n_errors"])), (256, 0), "{r}");
    assert_eq!(server.get("/health").0, 200);
}

/// `stop` sequences, whole and streamed: the answer ends just before the first one (never
/// showing any of it, though a stream may have held back text that could begin one), with
/// finish_reason `stop`, and equals the greedy answer without `stop` cut there.
#[test]
fn stop_sequences_whole_and_streamed() {
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 512);
    let server = Server::start(d.path(), &[]);
    let model = d.path().file_name().unwrap().to_str().unwrap().to_string();
    let controls = json!({"max_thinking_tokens": 4});
    let full = server.client("chat", chat_args(&model, 48, controls.clone()));
    let full = full["content"].as_str().unwrap().to_string();
    let chars: Vec<(usize, char)> = full.char_indices().collect();
    assert!(chars.len() > 12, "too short an answer to cut: {full:?}");
    // Three characters from the middle; the answer must stop at their first occurrence.
    let (a, b) = (chars[chars.len() / 2].0, chars[chars.len() / 2 + 3].0);
    let stop = full[a..b].to_string();
    let want = &full[..full.find(&stop).unwrap()];
    let mut args = chat_args(&model, 48, controls);
    // A second stop sequence that never appears, beginning like the first: held back, then let go.
    args["stop"] = json!([stop, format!("{}\u{1}", &stop[..stop.char_indices().nth(1).unwrap().0])]);
    let out = server.client("many", json!([["chat", args.clone()], ["chat_stream", args]]));
    for (how, r) in [("whole", &out[0]), ("streamed", &out[1])] {
        assert_eq!(r["content"].as_str(), Some(want), "{how}; stop {stop:?} in {full:?}");
        assert_eq!(r["finish_reason"], "stop", "{how}");
    }
}
