//! `s1-studio bench serve`: this server against llama-cpp-python's own server
//! (`python -m llama_cpp.server`) on the same GGUF, in the same run: aggregate streamed tokens/s
//! and median time to first token at 1, 4 and 16 concurrent streams (each stream sends its
//! requests one after the other). Both get the same greedy chat requests with thinking off
//! (llama.cpp's server has no budget forcing) and the same `max_tokens`; a token is a streamed
//! chunk with text, counted the same way for both.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};

use super::median;

#[derive(Debug, Args)]
pub struct ServeBenchArgs {
    /// The GGUF both servers serve
    #[arg(long, default_value = "models/SmolLM2-135M-Instruct.Q4_1.gguf")]
    gguf: PathBuf,
    /// Concurrent streams
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    streams: Vec<usize>,
    /// Requests each stream sends, one after the other
    #[arg(long, default_value_t = 2)]
    requests: usize,
    /// max_tokens of every request
    #[arg(long, default_value_t = 64)]
    max_tokens: usize,
    /// Threads for llama.cpp (default: the machine's cores)
    #[arg(long)]
    threads: Option<usize>,
    /// Python with llama-cpp-python[server]
    #[arg(long, env = "S1_BENCH_PYTHON", default_value = "python3")]
    python: String,
    /// Only this server (no baseline)
    #[arg(long)]
    no_baseline: bool,
    /// Write the results as JSON here too
    #[arg(long)]
    json: Option<PathBuf>,
}

/// A server process, killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_ready(base: &str, proc: &mut Proc, what: &str) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    while t0.elapsed() < Duration::from_secs(180) {
        if let Some(status) = proc.0.try_wait()? {
            bail!("{what} exited ({status}) before it was ready");
        }
        if agent
            .get(format!("{base}/v1/models"))
            .call()
            .is_ok_and(|r| r.status() == 200)
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("{what} was not ready after 180 s")
}

fn start_ours(a: &ServeBenchArgs, parallel: usize) -> anyhow::Result<(Proc, String)> {
    let port = free_port()?;
    let child = Command::new(std::env::current_exe()?)
        .args(["serve", "--model"])
        .arg(&a.gguf)
        .args(["--port", &port.to_string(), "--parallel", &parallel.to_string()])
        .env_remove("S1_API_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting s1-studio serve")?;
    let mut p = Proc(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base, &mut p, "s1-studio serve")?;
    Ok((p, base))
}

fn start_llamacpp(a: &ServeBenchArgs) -> anyhow::Result<(Proc, String)> {
    let port = free_port()?;
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let child = Command::new(&a.python)
        .args(["-m", "llama_cpp.server", "--model"])
        .arg(&a.gguf)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--n_ctx", "2048", "--n_threads", &threads.to_string()])
        // Its default cuts a running stream when the next request arrives: queue them instead.
        .args(["--interrupt_requests", "False"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {} -m llama_cpp.server", a.python))?;
    let mut p = Proc(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(
        &base,
        &mut p,
        "llama_cpp.server (pip install 'llama-cpp-python[server]')",
    )?;
    Ok((p, base))
}

/// One streamed request: (time to the first text chunk, text chunks).
fn one_stream(agent: &ureq::Agent, base: &str, body: &Value) -> anyhow::Result<(f64, usize)> {
    let t0 = Instant::now();
    let resp = agent
        .post(format!("{base}/v1/chat/completions"))
        .send_json(body)
        .context("sending a request")?;
    if resp.status() != 200 {
        bail!("status {}", resp.status());
    }
    let reader = BufReader::new(resp.into_body().into_reader());
    let (mut ttft, mut tokens, mut done) = (None, 0usize, false);
    for line in reader.lines() {
        let line = line?;
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data.trim() == "[DONE]" {
            done = true;
            break;
        }
        let v: Value = serde_json::from_str(data).context("a stream chunk")?;
        let d = &v["choices"][0]["delta"];
        let text = [d["content"].as_str(), d["reasoning_content"].as_str()]
            .into_iter()
            .flatten()
            .any(|t| !t.is_empty());
        if text {
            tokens += 1;
            ttft.get_or_insert_with(|| t0.elapsed().as_secs_f64());
        }
    }
    if !done {
        bail!("the stream ended without [DONE]");
    }
    Ok((ttft.unwrap_or(f64::NAN), tokens))
}

/// `streams` threads each sending `requests` requests: (aggregate tokens/s, median TTFT s).
fn measure(base: &str, streams: usize, a: &ServeBenchArgs) -> anyhow::Result<(f64, f64)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into();
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for s in 0..streams {
        let (agent, base) = (agent.clone(), base.to_string());
        let (requests, max_tokens) = (a.requests, a.max_tokens);
        let model = crate::serve::engine::model_id(&a.gguf);
        let h = std::thread::Builder::new().name(format!("bench-stream-{s}")).spawn(
            move || -> anyhow::Result<Vec<(f64, usize)>> {
                (0..requests)
                    .map(|r| {
                        let body = json!({
                            "model": model,
                            "messages": [{"role": "user", "content":
                                format!("Tell me a long story about robot number {}.", s * 100 + r)}],
                            "max_tokens": max_tokens,
                            "temperature": 0,
                            "stream": true,
                            "chat_template_kwargs": {"enable_thinking": false},
                        });
                        one_stream(&agent, &base, &body)
                    })
                    .collect()
            },
        )?;
        handles.push(h);
    }
    let mut ttfts = Vec::new();
    let mut tokens = 0;
    for h in handles {
        let r = h.join().map_err(|_| anyhow::anyhow!("a stream thread panicked"))??;
        for (t, n) in r {
            ttfts.push(t);
            tokens += n;
        }
    }
    Ok((tokens as f64 / t0.elapsed().as_secs_f64(), median(&mut ttfts)))
}

pub fn run(a: ServeBenchArgs) -> anyhow::Result<()> {
    if !a.gguf.exists() {
        bail!("{} not found: bash scripts/fetch-test-models.sh", a.gguf.display());
    }
    let parallel = a.streams.iter().copied().max().unwrap_or(1);
    let mut rows = Vec::new();
    // One server at a time, so that neither steals the other's cores.
    {
        let (_ours, base) = start_ours(&a, parallel)?;
        measure(&base, 1, &a).context("warm-up")?;
        for &s in &a.streams {
            rows.push((s, measure(&base, s, &a).context("s1-studio serve")?, None));
        }
    }
    if !a.no_baseline {
        let (_theirs, base) = start_llamacpp(&a)?;
        measure(&base, 1, &a).context("warm-up")?;
        for row in &mut rows {
            row.2 = Some(measure(&base, row.0, &a).context("llama_cpp.server")?);
        }
    }
    println!(
        "bench serve: {} (greedy chat, thinking off, max_tokens {}, {} requests per stream)",
        a.gguf.display(),
        a.max_tokens,
        a.requests
    );
    println!(
        "{:>7}  {:>12}  {:>10}  {:>12}  {:>10}  {:>9}  {:>10}",
        "streams", "ours tok/s", "ours TTFT", "llama tok/s", "llama TTFT", "tok/s x", "TTFT ratio"
    );
    let mut out = Vec::new();
    for (s, (tps, ttft), base) in &rows {
        let (btps, bttft) = base.unwrap_or((f64::NAN, f64::NAN));
        println!(
            "{:>7}  {:>12.1}  {:>9.0}ms  {:>12.1}  {:>9.0}ms  {:>8.2}x  {:>10.2}",
            s,
            tps,
            ttft * 1e3,
            btps,
            bttft * 1e3,
            tps / btps,
            ttft / bttft
        );
        out.push(json!({
            "streams": s, "tokens_per_s": tps, "ttft_s": ttft,
            "llamacpp_tokens_per_s": btps, "llamacpp_ttft_s": bttft,
            "speedup": tps / btps, "ttft_ratio": ttft / bttft,
        }));
    }
    println!("(tok/s x: ours over llama.cpp's, higher is better; TTFT ratio: ours over theirs, lower is better)");
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_string_pretty(&Value::Array(out))?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
