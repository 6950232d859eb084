//! The one HTTP client for OpenAI-compatible endpoints (vLLM, SGLang, llama.cpp's server, a
//! cloud API, `s1-studio serve`): a JSON POST with a bearer key, retried with exponential
//! backoff on 429, 5xx and connection errors; every error names the URL. Evaluation (budget
//! forcing over `/completions`, [`super::remote`]) and curation (chat attempts, traces, judging)
//! both send through it; it lives here, below curate, so that both layers may use it.

use std::time::Duration;

use serde_json::Value;

use crate::cancel::CancelToken;

/// Where an endpoint is and how to talk to it.
#[derive(Clone)]
pub struct EndpointClient {
    /// e.g. `http://localhost:8000/v1` (no trailing slash).
    pub base_url: String,
    pub api_key: Option<String>,
    /// Retries after the first try (429, 5xx and network errors only).
    pub retries: usize,
    /// The first backoff; doubled on each retry.
    pub backoff: Duration,
    /// For a whole request (a long generation included).
    pub timeout: Duration,
}

impl std::fmt::Debug for EndpointClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointClient")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("retries", &self.retries)
            .field("backoff", &self.backoff)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl EndpointClient {
    pub fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key: None,
            retries: 5,
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(1800),
        }
    }

    /// An agent (connection pool) to share between the threads that send.
    pub fn agent(&self) -> ureq::Agent {
        ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .build()
            .into()
    }

    /// POSTs `body` to `{base_url}{path}` and returns the reply's text on 200. Retries 429, 5xx
    /// and connection errors with backoff (not once `cancel` is set); other statuses fail at
    /// once. Errors name the URL and carry the start of the reply.
    pub fn post(&self, agent: &ureq::Agent, path: &str, body: &Value, cancel: &CancelToken) -> Result<String, String> {
        let url = format!("{}{path}", self.base_url);
        let body = body.to_string();
        let mut wait = self.backoff;
        let mut last = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                if cancel.is_cancelled() {
                    break;
                }
                std::thread::sleep(wait);
                wait *= 2;
            }
            let mut r = agent.post(&url).header("Content-Type", "application/json");
            if let Some(k) = &self.api_key {
                r = r.header("Authorization", &format!("Bearer {k}"));
            }
            let mut resp = match r.send(body.as_str()) {
                Ok(resp) => resp,
                Err(e) => {
                    last = format!("{url}: {e}");
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            let head = || text.chars().take(300).collect::<String>();
            if status == 429 || status >= 500 {
                last = format!("{url}: HTTP {status}: {}", head());
                continue;
            }
            if status != 200 {
                return Err(format!("{url}: HTTP {status}: {}", head()));
            }
            return Ok(text);
        }
        Err(format!("gave up after {} tries: {last}", self.retries + 1))
    }

    /// As [`post`](Self::post), the reply parsed as JSON.
    pub fn post_json(
        &self,
        agent: &ureq::Agent,
        path: &str,
        body: &Value,
        cancel: &CancelToken,
    ) -> Result<Value, String> {
        let text = self.post(agent, path, body, cancel)?;
        serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}{path}: the reply is not JSON ({e}): {}",
                self.base_url,
                text.chars().take(200).collect::<String>()
            )
        })
    }
}
