//! Where curation's model calls go: a local model through the engine (batched), or any
//! OpenAI-compatible chat endpoint (vLLM, a cloud reasoning model, a cluster's gateway) with a
//! concurrency limit and retries with exponential backoff. Results come back one by one, as each
//! finishes, so the caller can commit each as it arrives.

use std::time::Duration;

use crossbeam_channel::bounded;
use serde_json::{json, Value};

use crate::cancel::CancelToken;
use crate::eval::endpoint::EndpointClient;
use crate::generate::{chat_batch, BudgetConfig, GenerateParams, MaxThinking, SamplingParams};
use crate::model::{ChatMessage, LoadedModel};

/// One prompt.
#[derive(Debug, Clone)]
pub struct Request {
    /// A system message before the user's (s1's judge sends its grading prompt so).
    pub system: Option<String>,
    pub user: String,
    pub max_tokens: usize,
    pub temperature: f64,
    /// Let a local model think first (its chat template's thinking delimiters); off, it answers
    /// directly. Endpoints decide for themselves.
    pub thinking: bool,
}

/// A model's reply: its thinking (when the model or server separates it) and its answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completion {
    pub thinking: Option<String>,
    pub text: String,
}

pub trait Backend: Send + Sync {
    /// The model's name as stored with its results.
    fn name(&self) -> String;
    /// Runs `requests`, calling `done(i, result)` as each finishes (in any order). Stops early
    /// when `cancel` is set; returns the number finished.
    fn run(
        &self,
        requests: &[Request],
        cancel: &CancelToken,
        done: &mut dyn FnMut(usize, Result<Completion, String>) -> anyhow::Result<()>,
    ) -> anyhow::Result<usize>;
}

/// Splits `<think>...</think>` off a reply that carries its thinking inline.
pub fn split_thinking(text: &str) -> Completion {
    if let Some(end) = text.find("</think>") {
        let head = &text[..end];
        let thinking = head.strip_prefix("<think>").unwrap_or(head).trim();
        return Completion {
            thinking: (!thinking.is_empty()).then(|| thinking.to_string()),
            text: text[end + "</think>".len()..].trim().to_string(),
        };
    }
    Completion {
        thinking: None,
        text: text.to_string(),
    }
}

/// An OpenAI-compatible `/chat/completions` endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// e.g. `http://localhost:8000/v1`
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
    pub concurrency: usize,
    /// Retries after the first try (429, 5xx and network errors only).
    pub retries: usize,
    /// The first backoff; doubled on each retry.
    pub backoff: Duration,
    pub timeout: Duration,
}

impl Endpoint {
    pub fn new(base_url: &str, model: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key: None,
            model: model.to_string(),
            concurrency: 8,
            retries: 5,
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(1800),
        }
    }

    /// The shared endpoint client ([`crate::eval::endpoint`]) with this endpoint's settings.
    fn client(&self) -> EndpointClient {
        EndpointClient {
            base_url: self.base_url.clone(),
            api_key: self.api_key.clone(),
            retries: self.retries,
            backoff: self.backoff,
            timeout: self.timeout,
        }
    }

    fn agent(&self) -> ureq::Agent {
        self.client().agent()
    }

    /// One request with retries.
    pub fn complete(&self, agent: &ureq::Agent, req: &Request, cancel: &CancelToken) -> Result<Completion, String> {
        let mut messages = Vec::new();
        if let Some(system) = &req.system {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.push(json!({"role": "user", "content": req.user}));
        let body = json!({
            "model": self.model,
            "messages": messages,
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
        });
        let text = self.client().post(agent, "/chat/completions", &body, cancel)?;
        parse_reply(&text).map_err(|e| format!("{}/chat/completions: {e}", self.base_url))
    }
}

/// A chat-completions reply: `choices[0].message.content`, with the thinking from
/// `reasoning_content` / `reasoning` (vLLM, DeepSeek) or inline `<think>` tags.
pub fn parse_reply(text: &str) -> Result<Completion, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("reply is not JSON ({e})"))?;
    let msg = v.pointer("/choices/0/message").ok_or_else(|| {
        format!(
            "reply without choices[0].message: {}",
            text.chars().take(200).collect::<String>()
        )
    })?;
    let content = msg.get("content").and_then(Value::as_str).unwrap_or("");
    let reasoning = ["reasoning_content", "reasoning"]
        .iter()
        .find_map(|k| msg.get(*k).and_then(Value::as_str))
        .filter(|s| !s.trim().is_empty());
    Ok(match reasoning {
        Some(r) => Completion {
            thinking: Some(r.to_string()),
            text: content.to_string(),
        },
        None => split_thinking(content),
    })
}

impl Backend for Endpoint {
    fn name(&self) -> String {
        self.model.clone()
    }

    fn run(
        &self,
        requests: &[Request],
        cancel: &CancelToken,
        done: &mut dyn FnMut(usize, Result<Completion, String>) -> anyhow::Result<()>,
    ) -> anyhow::Result<usize> {
        let (job_tx, job_rx) = bounded::<usize>(self.concurrency.max(1));
        // A worker with a result waits while the results are not read yet (this thread never
        // blocks on sending, so it always reads on).
        let (res_tx, res_rx) = bounded::<(usize, Result<Completion, String>)>(self.concurrency.max(1));
        let agent = self.agent();
        let mut finished = 0;
        std::thread::scope(|s| -> anyhow::Result<()> {
            for w in 0..self.concurrency.max(1) {
                let (job_rx, res_tx, agent) = (job_rx.clone(), res_tx.clone(), agent.clone());
                std::thread::Builder::new()
                    .name(format!("endpoint-{w}"))
                    .spawn_scoped(s, move || {
                        for i in job_rx {
                            if cancel.is_cancelled() {
                                break;
                            }
                            let r = self.complete(&agent, &requests[i], cancel);
                            if res_tx.send((i, r)).is_err() {
                                break;
                            }
                        }
                    })?;
            }
            drop(res_tx);
            drop(job_rx);
            let mut next = 0;
            let mut outstanding = 0;
            let mut failed: Option<anyhow::Error> = None;
            loop {
                // Keep the workers fed without blocking on a full queue.
                while next < requests.len() && !cancel.is_cancelled() && failed.is_none() {
                    match job_tx.try_send(next) {
                        Ok(()) => {
                            next += 1;
                            outstanding += 1;
                        }
                        Err(_) => break,
                    }
                }
                if outstanding == 0 {
                    break;
                }
                match res_rx.recv_timeout(Duration::from_millis(100)) {
                    Ok((i, r)) => {
                        outstanding -= 1;
                        if failed.is_none() {
                            match done(i, r) {
                                Ok(()) => finished += 1,
                                Err(e) => failed = Some(e),
                            }
                        }
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                }
            }
            drop(job_tx);
            failed.map_or(Ok(()), Err)
        })?;
        Ok(finished)
    }
}

/// Which model a step uses: an endpoint, or a local model loaded on `device` (opened on the
/// step's thread) when the step starts.
#[derive(Debug, Clone)]
pub enum ModelChoice {
    Endpoint(Endpoint),
    Local {
        path: std::path::PathBuf,
        batch: usize,
        device: crate::model::DeviceChoice,
        /// None: the checkpoint's own.
        dtype: Option<candle_core::DType>,
    },
}

impl ModelChoice {
    pub fn name(&self) -> String {
        match self {
            ModelChoice::Endpoint(e) => e.model.clone(),
            ModelChoice::Local { path, .. } => local_name(path),
        }
    }

    /// The backend (loads a local model).
    pub fn open(&self) -> anyhow::Result<Box<dyn Backend>> {
        Ok(match self {
            ModelChoice::Endpoint(e) => Box::new(e.clone()),
            ModelChoice::Local {
                path,
                batch,
                device,
                dtype,
            } => {
                let opts = crate::model::LoadOptions {
                    device: device.open()?,
                    dtype: *dtype,
                    dequantize: false,
                };
                let model = crate::model::load_model(path, &opts)
                    .map_err(|e| anyhow::anyhow!("loading {}: {e}", path.display()))?;
                Box::new(Local {
                    model,
                    name: local_name(path),
                    batch: (*batch).max(1),
                })
            }
        })
    }
}

/// A local model's name in results: its folder's or file's name.
pub fn local_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// An engine generation as a completion: its thinking when the template separated it, else any
/// inline `<think>` block of the answer.
fn completion(g: &crate::generate::Generation) -> Completion {
    let thinking = g.thinking.trim();
    if thinking.is_empty() {
        split_thinking(g.answer.trim())
    } else {
        Completion {
            thinking: Some(thinking.to_string()),
            text: g.answer.trim().to_string(),
        }
    }
}

/// A local model through the engine, `batch` prompts at a time.
pub struct Local {
    pub model: LoadedModel,
    pub name: String,
    pub batch: usize,
}

impl Backend for Local {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn run(
        &self,
        requests: &[Request],
        cancel: &CancelToken,
        done: &mut dyn FnMut(usize, Result<Completion, String>) -> anyhow::Result<()>,
    ) -> anyhow::Result<usize> {
        let mut finished = 0;
        for (c, chunk) in requests.chunks(self.batch.max(1)).enumerate() {
            if cancel.is_cancelled() {
                break;
            }
            let convs: Vec<Vec<ChatMessage>> = chunk
                .iter()
                .map(|r| {
                    let mut c: Vec<ChatMessage> = r.system.iter().map(|s| ChatMessage::new("system", s)).collect();
                    c.push(ChatMessage::new("user", &r.user));
                    c
                })
                .collect();
            let params: Vec<GenerateParams> = chunk
                .iter()
                .map(|r| GenerateParams {
                    sampling: SamplingParams {
                        temperature: r.temperature,
                        ..Default::default()
                    },
                    budget: BudgetConfig {
                        thinking: r.thinking,
                        max_thinking: MaxThinking::Unlimited,
                        ..Default::default()
                    },
                    max_new_tokens: Some(r.max_tokens),
                    auto_prompt_tokens: None,
                })
                .collect();
            let base = c * self.batch.max(1);
            match chat_batch(&self.model, &convs, &params, cancel) {
                Ok(gens) => {
                    for (j, g) in gens.into_iter().enumerate() {
                        done(base + j, Ok(completion(&g)))?;
                        finished += 1;
                    }
                }
                Err(e) if chunk.len() == 1 => done(base, Err(e.to_string()))?,
                Err(_) => {
                    // One prompt can fail a batch (e.g. longer than the context): run them one by
                    // one so only that one fails.
                    for j in 0..chunk.len() {
                        if cancel.is_cancelled() {
                            break;
                        }
                        match chat_batch(&self.model, &convs[j..j + 1], &params[j..j + 1], cancel) {
                            Ok(mut g) => {
                                done(base + j, Ok(completion(&g.remove(0))))?;
                                finished += 1;
                            }
                            Err(e) => done(base + j, Err(e.to_string()))?,
                        }
                    }
                }
            }
        }
        Ok(finished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_with_separate_or_inline_thinking() {
        let r = parse_reply(r#"{"choices":[{"message":{"content":"42","reasoning_content":"hmm"}}]}"#).unwrap();
        assert_eq!((r.thinking.as_deref(), r.text.as_str()), (Some("hmm"), "42"));
        let r = parse_reply(r#"{"choices":[{"message":{"content":"<think>a\nb</think>\n\nSo 7."}}]}"#).unwrap();
        assert_eq!((r.thinking.as_deref(), r.text.as_str()), (Some("a\nb"), "So 7."));
        let r = parse_reply(r#"{"choices":[{"message":{"content":"plain"}}]}"#).unwrap();
        assert_eq!((r.thinking, r.text.as_str()), (None, "plain"));
        assert!(parse_reply(r#"{"error":"x"}"#).unwrap_err().contains("choices"));
    }
}
