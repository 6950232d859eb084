//! `s1-studio serve`: an OpenAI-compatible HTTP server (axum on tokio) over the batched engine,
//! with minimum and maximum thinking per request.
//!
//! - `GET /health`, `GET /v1/models` (the model, its context, the token limit, the thinking
//!   format and what each `reasoning_effort` means), `POST /v1/chat/completions` and
//!   `POST /v1/completions`, whole or streamed (SSE ending in `data: [DONE]`);
//! - thinking controls per request ([`thinking`]); the thinking comes apart as
//!   `reasoning_content`, `usage.completion_tokens_details.reasoning_tokens` counts it, and an
//!   `s1` object says what budget forcing did (Waits injected, forced end, …);
//! - `POST /v1/requests/{id}/end_thinking` (id: the completion's `id`) ends a running request's
//!   thinking now; `POST /v1/requests/{id}/cancel` stops it;
//! - one engine thread owns the model ([`engine`]): requests share decode steps (continuous
//!   batching), wait in a bounded queue (full: 503), and leave when their client does;
//! - safe by default: loopback unless an API key is set, the key checked in constant time and
//!   never printed, a body limit (413) and a `max_tokens` limit, every error in OpenAI's shape.

pub mod auth;
pub mod engine;
pub mod error;
pub mod fields;
pub mod handlers;
pub mod local;
pub mod request;
pub mod response;
pub mod thinking;

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use axum::routing::{get, post};
use axum::Router;

use auth::ApiKey;
use engine::{Engine, EngineOptions};
use handlers::{AppState, Shared};

/// How to serve.
#[derive(Clone)]
pub struct ServeOptions {
    pub engine: EngineOptions,
    pub host: String,
    /// 0: any free port (the one taken is printed).
    pub port: u16,
    pub api_key: Option<String>,
    /// The largest request body, in bytes.
    pub body_limit: usize,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("engine", &self.engine)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("body_limit", &self.body_limit)
            .finish()
    }
}

/// The routes over a shared state.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/health", get(handlers::health))
        .route("/v1/models", get(handlers::models))
        .route("/v1/chat/completions", post(handlers::chat_completions))
        .route("/v1/completions", post(handlers::completions))
        .route("/v1/requests/{id}/end_thinking", post(handlers::end_thinking))
        .route("/v1/requests/{id}/cancel", post(handlers::cancel))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .with_state(state)
}

/// Loads the model, binds, prints `listening on http://HOST:PORT` on stdout, and serves until
/// Ctrl-C.
pub fn run(opts: ServeOptions) -> anyhow::Result<()> {
    auth::check_host(&opts.host, opts.api_key.is_some()).map_err(anyhow::Error::msg)?;
    if opts.api_key.as_deref() == Some("") {
        anyhow::bail!("--api-key is empty");
    }
    let (engine, _thread) = Engine::start(opts.engine.clone())?;
    let state = Arc::new(AppState {
        engine,
        key: opts.api_key.as_deref().map(ApiKey::new),
        body_limit: opts.body_limit,
        running: Default::default(),
        started: handlers::now_s(),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("serve-http")
        .enable_all()
        .build()
        .context("starting the HTTP runtime")?;
    let host = opts.host.trim_start_matches('[').trim_end_matches(']').to_string();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind((host.as_str(), opts.port))
            .await
            .with_context(|| format!("binding {}:{}", opts.host, opts.port))?;
        let addr = listener.local_addr()?;
        let served = &state.engine.served;
        println!(
            "s1-studio serve: {} listening on http://{addr} (OpenAI API at http://{addr}/v1; context {}, max_tokens up to {}, thinking {}…{}{})",
            served.id,
            served.context,
            served.max_tokens_limit,
            served.format.start,
            served.format.answer_start,
            if state.key.is_some() { ", API key required" } else { "" }
        );
        let _ = std::io::stdout().flush();
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("serving")
    })
}
