//! `eval` through an OpenAI-compatible endpoint (s1's budget-forcing loop over `/completions`):
//! against `s1-studio serve` on SmolLM2, the same greedy samples as the local engine; against a
//! mock endpoint, the loop's requests, retries, resume and clear errors.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::mock_endpoint::MockEndpoint;
use common::server::Server;
use s1_studio::cancel::CancelToken;
use s1_studio::eval::endpoint::EndpointClient;
use s1_studio::eval::remote::EvalEndpoint;
use s1_studio::eval::remote_request::PromptForm;
use s1_studio::eval::sweep::{self, Sample, SweepConfig};
use s1_studio::eval::{self, EvalRequest};
use s1_studio::grade::Extraction;

fn bench(dir: &Path, questions: &[(&str, &str)]) -> String {
    let path = dir.join("bench.jsonl");
    let lines: Vec<String> = questions
        .iter()
        .map(|(q, a)| serde_json::json!({"question": q, "answer": a}).to_string())
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    path.display().to_string()
}

fn request(model: &Path, bench: &str, out: &Path, max: &[&str], waits: &[&str]) -> EvalRequest {
    let max: Vec<String> = max.iter().map(|s| s.to_string()).collect();
    let waits: Vec<String> = waits.iter().map(|s| s.to_string()).collect();
    EvalRequest {
        model: model.to_path_buf(),
        bench: bench.to_string(),
        kind: None,
        config: SweepConfig {
            settings: sweep::settings_from_lists(&max, &waits, 0).unwrap(),
            limit: None,
            samples: 1,
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
            max_new_tokens: Some(128),
            batch: 2,
            extraction: Extraction::S1,
        },
        out: out.to_path_buf(),
        device: s1_studio::model::DeviceChoice::Cpu,
        dtype: None,
        endpoint: None,
    }
}

fn endpoint(url: &str, tokenizer: &Path, retries: usize) -> EvalEndpoint {
    let mut client = EndpointClient::new(url);
    client.retries = retries;
    client.backoff = Duration::from_millis(5);
    let mut e = EvalEndpoint::new(client, "m", tokenizer, 2);
    // The mock answers by the prompt's text; the real servers below take token ids.
    e.prompts = PromptForm::Text;
    e
}

fn run(req: &EvalRequest) -> Result<Vec<Sample>, String> {
    eval::run(req, &CancelToken::new(), &mut |_| {})?;
    Ok(sweep::read_samples(&req.samples_path()).unwrap())
}

fn by_key(mut v: Vec<Sample>) -> Vec<Sample> {
    v.sort_by(|a, b| (&a.setting, &a.question_id).cmp(&(&b.setting, &b.question_id)));
    v
}

/// A tiny model folder: only its tokenizer and template are read over an endpoint.
fn tiny(dir: &Path) -> PathBuf {
    let m = dir.join("tiny");
    common::tiny_qwen(&m, 256);
    m
}

#[test]
fn served_greedy_samples_equal_the_local_engines() {
    let gguf = common::smollm2_gguf();
    let dir = tempfile::tempdir().unwrap();
    let b = bench(dir.path(), &[("What is 2 + 3?", "5"), ("What is 10 - 4?", "6")]);
    let local = request(&gguf, &b, &dir.path().join("local"), &["16", "64"], &["0", "1"]);
    let local_samples = by_key(run(&local).unwrap());
    let server = Server::start(&gguf, &[]);
    let mut remote = request(&gguf, &b, &dir.path().join("remote"), &["16", "64"], &["0", "1"]);
    let served_id = gguf.file_name().unwrap().to_string_lossy().into_owned();
    let mut ep = endpoint(&format!("{}/v1", server.base), &gguf, 0);
    ep.model = served_id.clone();
    ep.prompts = PromptForm::Ids;
    remote.endpoint = Some(ep);
    let remote_samples = by_key(run(&remote).unwrap_or_else(|e| panic!("{e}\nserver log:\n{}", server.log())));
    assert_eq!(local_samples.len(), 8);
    assert_same_samples(&local_samples, &remote_samples);
    assert!(
        remote_samples.iter().any(|s| s.forced_end),
        "a budget of 16 forces the end"
    );
    assert!(
        remote_samples.iter().any(|s| s.waits_injected == 1),
        "some thinking ended on its own and was continued"
    );
    for f in ["metrics.json", "scaling.svg"] {
        assert!(dir.path().join("remote").join(f).exists(), "{f}");
    }
    let metrics = std::fs::read_to_string(dir.path().join("remote/metrics.json")).unwrap();
    assert!(metrics.contains(&server.base), "the endpoint is named: {metrics}");

    // Curation's attempts take the same server (its chat endpoint, thinking apart).
    use s1_studio::curate::backend::{Backend, Endpoint, Request};
    let mut ep = Endpoint::new(&format!("{}/v1", server.base), &served_id);
    ep.concurrency = 2;
    ep.retries = 0;
    let reqs: Vec<Request> = ["What is 2 + 3?", "Name a prime number."]
        .iter()
        .map(|q| Request {
            system: None,
            user: q.to_string(),
            max_tokens: 24,
            temperature: 0.0,
            thinking: true,
        })
        .collect();
    let mut got = vec![None; 2];
    let n = ep
        .run(&reqs, &CancelToken::new(), &mut |i, r| {
            got[i] = Some(r);
            Ok(())
        })
        .unwrap();
    assert_eq!(n, 2);
    for r in got {
        let c = r
            .unwrap()
            .unwrap_or_else(|e| panic!("{e}\nserver log:\n{}", server.log()));
        assert!(
            !c.text.is_empty() || c.thinking.is_some(),
            "an attempt came back empty: {c:?}"
        );
    }
}

/// The same samples, field by field, in the same order.
fn assert_same_samples(local: &[Sample], remote: &[Sample]) {
    assert_eq!(local.len(), remote.len());
    for (l, r) in local.iter().zip(remote) {
        let at = format!("{} / {}", l.setting, l.question_id);
        assert_eq!((&l.setting, &l.question_id), (&r.setting, &r.question_id));
        assert_eq!(l.prompt, r.prompt, "{at}");
        assert_eq!(l.thinking, r.thinking, "{at}: thinking");
        assert_eq!(l.thinking_tokens, r.thinking_tokens, "{at}: thinking tokens");
        assert_eq!(l.forced_end, r.forced_end, "{at}: forced end");
        assert_eq!(l.waits_injected, r.waits_injected, "{at}: waits");
        assert_eq!(l.thinking_cut, r.thinking_cut, "{at}: thinking cut");
        assert_eq!(l.answer, r.answer, "{at}: answer");
        assert_eq!(l.extracted, r.extracted, "{at}");
        assert_eq!(l.verdict, r.verdict, "{at}");
    }
}

/// The mock "thinks" until a stop, then answers after the answer delimiter.
fn thinker(calls: Arc<AtomicUsize>, fail_first: usize) -> Arc<common::mock_endpoint::Handler> {
    Arc::new(move |p: &str| {
        if calls.fetch_add(1, Ordering::SeqCst) < fail_first {
            return Err(503);
        }
        Ok(if p.ends_with("<|im_start|>answer") {
            "\nThe answer is \\boxed{4}.".to_string()
        } else if p.ends_with("Final Answer:") {
            " \\boxed{4}".to_string()
        } else {
            " two and two make four".to_string()
        })
    })
}

#[test]
fn s1s_loop_over_an_endpoint_waits_forces_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny(dir.path());
    let b = bench(dir.path(), &[("What is 2 + 2?", "4")]);
    let calls = Arc::new(AtomicUsize::new(0));
    let mock = MockEndpoint::start(Duration::ZERO, thinker(calls.clone(), 0));
    // 100 tokens: the thinking ends on its own, once ignored ("Wait"); 3 tokens: it runs out.
    let mut req = request(&model, &b, &dir.path().join("o"), &["100", "3"], &["1"]);
    req.endpoint = Some(endpoint(&mock.url, &model, 0));
    let s = by_key(run(&req).unwrap());
    let (short, long) = (&s[1], &s[0]);
    assert_eq!(long.setting, "max=100 waits=1");
    assert_eq!(long.waits_injected, 1);
    assert!(!long.forced_end);
    assert_eq!(long.thinking, " two and two make fourWait two and two make four");
    assert_eq!(long.verdict, s1_studio::grade::Verdict::Correct, "{long:?}");
    assert_eq!(short.setting, "max=3 waits=1");
    assert!(
        short.forced_end && short.answer.starts_with("Final Answer:"),
        "{short:?}"
    );
    assert_eq!(short.waits_injected, 0, "a round that ran out is not continued");
    assert!(short.thinking_tokens <= 3, "cut to the budget: {short:?}");
    let prompts = mock.prompts();
    let first = &prompts[0];
    assert!(
        first.contains("What is 2 + 2?") && first.ends_with("<|im_start|>think"),
        "{first}"
    );
    assert!(prompts.iter().any(|p| p.ends_with("fourWait")), "{prompts:?}");
    assert!(
        prompts
            .iter()
            .any(|p| p.ends_with("\n<|im_start|>answer\nFinal Answer:")),
        "{prompts:?}"
    );
}

#[test]
fn five_hundreds_are_retried_and_a_rerun_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny(dir.path());
    let b = bench(dir.path(), &[("What is 2 + 2?", "4"), ("What is 1 + 3?", "4")]);
    let calls = Arc::new(AtomicUsize::new(0));
    let mock = MockEndpoint::start(Duration::ZERO, thinker(calls.clone(), 2));
    let out = dir.path().join("o");
    let mut req = request(&model, &b, &out, &["100"], &["0"]);
    req.config.limit = Some(1);
    req.endpoint = Some(endpoint(&mock.url, &model, 3));
    let first = run(&req).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].verdict, s1_studio::grade::Verdict::Correct);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2 + 2,
        "two 503s, then thinking and answer"
    );
    // The rerun over both questions asks only for the second.
    req.config.limit = None;
    let all = run(&req).unwrap();
    assert_eq!(all.len(), 2);
    let prompts = mock.prompts();
    assert_eq!(prompts.iter().filter(|p| p.contains("What is 2 + 2?")).count(), 2);
    assert_eq!(prompts.iter().filter(|p| p.contains("What is 1 + 3?")).count(), 2);
}

#[test]
fn a_failing_endpoint_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny(dir.path());
    let b = bench(dir.path(), &[("What is 2 + 2?", "4")]);
    let mock = MockEndpoint::start(Duration::ZERO, Arc::new(|_: &str| Err(500)));
    let mut req = request(&model, &b, &dir.path().join("o"), &["100"], &["0"]);
    req.endpoint = Some(endpoint(&mock.url, &model, 1));
    let e = run(&req).unwrap_err();
    assert!(
        e.contains(&format!("{}/completions", mock.url)) && e.contains("HTTP 500") && e.contains("2 tries"),
        "{e}"
    );
    // Nothing listens: a connection error, named by URL.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/v1");
    req.endpoint = Some(endpoint(&url, &model, 0));
    let e = run(&req).unwrap_err();
    assert!(e.contains(&format!("{url}/completions")), "{e}");
    // A tokenizer path that is not there is named before any request.
    req.endpoint = Some(endpoint(&url, &dir.path().join("nope"), 0));
    let e = run(&req).unwrap_err();
    assert!(e.contains("nope"), "{e}");
}

/// A Python with llama-cpp-python's server (S1_PYTHON, else python3). Panics saying how to get one.
fn python_with_llama_cpp_server() -> String {
    let py = std::env::var("S1_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&py)
        .args(["-c", "import llama_cpp.server, uvicorn, sse_starlette"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "this test needs llama.cpp's server from PyPI in S1_PYTHON={py}: \
         `pip install 'llama-cpp-python[server]==0.3.16'`, or run scripts/test.sh, which installs it"
    );
    py
}

/// llama.cpp's server (llama-cpp-python's, from PyPI) takes s1's loop and gives the local
/// engine's greedy samples on the same file. The file is SmolLM2-135M-Instruct with its weights
/// written out in F32 by llama.cpp's own quantizer, and the server keeps its KV cache in F32:
/// on the Q4_1 file llama.cpp rounds activations to 8 bits for its 4-bit dot products and keeps
/// an F16 cache, each rounding differently from this engine (logits within ~1 of each other:
/// tests/gguf_smollm2.rs), so greedy decoding parts at the first near-tie; in F32 both engines
/// compute the same sums in different orders. The loop's own defaults make llama.cpp sample as
/// s1's vLLM did (its server's repeat penalty of 1.1 off). This server takes prompts as text
/// only, which it tokenizes again: a sample whose round prompts do not tokenize back to the
/// loop's ids (SmolLM2, untrained on s1's format, writes `er` after `<|im_start|>think`, or a
/// space before the forced newline) is marked `retokenized`; every other sample must be the
/// local engine's, and most must be checkable.
#[test]
fn llama_cpp_servers_greedy_samples_equal_the_local_engines() {
    let py = python_with_llama_cpp_server();
    let dir = tempfile::tempdir().unwrap();
    let f32_gguf = dir.path().join("SmolLM2-135M-Instruct.F32.gguf");
    let quantize = "import ctypes, sys, llama_cpp\n\
        p = llama_cpp.llama_model_quantize_default_params()\n\
        p.ftype = 0  # LLAMA_FTYPE_ALL_F32\n\
        p.allow_requantize = True\n\
        sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(p)))";
    let out = std::process::Command::new(&py)
        .args(["-c", quantize])
        .arg(common::smollm2_gguf())
        .arg(&f32_gguf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "llama.cpp's quantizer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = common::free_port();
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let mut server = std::process::Command::new(&py)
        .args(["-m", "llama_cpp.server", "--model"])
        .arg(&f32_gguf)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--n_ctx", "2048", "--n_threads", "2", "--type_k", "0", "--type_v", "0"])
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let server_log = || std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
    let url = format!("http://127.0.0.1:{port}/v1");
    let t0 = std::time::Instant::now();
    loop {
        if ureq::get(format!("{url}/models")).call().is_ok() {
            break;
        }
        if let Ok(Some(status)) = server.try_wait() {
            panic!("llama.cpp's server exited ({status}):\n{}", server_log());
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "llama.cpp's server did not answer:\n{}",
            server_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _server = Kill(server);
    // Eight GSM8K questions; budgets that force the end, and one continued past an end.
    let gsm8k = std::fs::read_to_string("assets/eval/gsm8k_test.jsonl").unwrap();
    let qs: Vec<(String, String)> = gsm8k
        .lines()
        .take(8)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["question"].as_str().unwrap().to_string(),
                v["answer"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = qs.iter().map(|(q, a)| (q.as_str(), a.as_str())).collect();
    let b = bench(dir.path(), &refs);
    let local = request(&f32_gguf, &b, &dir.path().join("local"), &["48"], &["0", "1"]);
    let local_samples = by_key(run(&local).unwrap());
    let mut remote = request(&f32_gguf, &b, &dir.path().join("remote"), &["48"], &["0", "1"]);
    remote.endpoint = Some(endpoint(&url, &f32_gguf, 0));
    let remote_samples = by_key(run(&remote).unwrap_or_else(|e| panic!("{e}\nserver log:\n{}", server_log())));
    assert_eq!(local_samples.len(), 16);
    assert_eq!(remote_samples.len(), 16);
    let (l, r): (Vec<Sample>, Vec<Sample>) = local_samples
        .into_iter()
        .zip(remote_samples)
        .filter(|(_, r)| !r.retokenized)
        .unzip();
    eprintln!("{} of 16 samples kept the loop's ids through the text prompts", r.len());
    assert!(r.len() >= 10, "only {} of 16 samples could be compared", r.len());
    assert_same_samples(&l, &r);
    assert!(r.iter().any(|s| s.forced_end), "a budget of 48 forces some ends");

    // Token-id prompts are refused by this server, with a hint to send text.
    let mut ids = request(&f32_gguf, &b, &dir.path().join("ids"), &["48"], &["0"]);
    let mut ep = endpoint(&url, &f32_gguf, 0);
    ep.prompts = PromptForm::Ids;
    ids.endpoint = Some(ep);
    let e = run(&ids).unwrap_err();
    assert!(e.contains("--endpoint-prompts text"), "{e}");
}
