//! Serving the Chat view's loaded model on localhost: the same routes as `s1-studio serve`, over
//! the model the app already holds (shared with the chat, not loaded twice), started and stopped
//! from the app, with a log of the requests it answered.
//!
//! One named thread (`s1-serve-local`) waits for the model, starts the engine thread on it,
//! binds, reports [`ServerEvent::Listening`] and runs the HTTP side until [`LocalServer::stop`]
//! (or its drop); the events go to the app over a bounded channel, each followed by `notify`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::engine::{Engine, Limits};
use super::handlers::{self, AppState};
use crate::cancel::Notify;
use crate::model::LoadedModel;

/// The limits of a server started from the app: a few requests at once (the chat shares the
/// model and the cores), the model's context, answers of up to 4,096 tokens.
pub const APP_LIMITS: Limits = Limits {
    parallel: 4,
    queue: 64,
    context: None,
    max_tokens_limit: 4096,
};

/// The request bodies a server started from the app takes (as `s1-studio serve`'s default).
const BODY_LIMIT: usize = 1 << 20;

/// One answered request, for the app's log.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestLine {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// Until the response's head (a stream's first event; a whole answer's end).
    pub ms: u64,
    /// Whether the answer is streamed (server-sent events).
    pub streamed: bool,
}

impl std::fmt::Display for RequestLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {} {} ms", self.method, self.path, self.status, self.ms)?;
        if self.streamed {
            f.write_str(" (streamed)")?;
        }
        Ok(())
    }
}

/// What the server reports to the app.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// Serving `model` at `url` (`http://127.0.0.1:PORT`).
    Listening {
        url: String,
        model: String,
    },
    Request(RequestLine),
    /// It could not start (no model, the port taken, …), or stopped with an error.
    Failed(String),
    /// It stopped as asked.
    Stopped,
}

/// The app's end of a server on localhost.
pub struct LocalServer {
    events: Receiver<ServerEvent>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::fmt::Debug for LocalServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalServer")
            .field("running", &self.shutdown.is_some())
            .finish()
    }
}

impl LocalServer {
    /// Starts serving the model that arrives on `model` (the inference worker's lend) on
    /// `127.0.0.1:port` (0: any free port), on its own thread; returns at once.
    pub fn start(
        model: Receiver<Result<Arc<LoadedModel>, String>>,
        port: u16,
        notify: Notify,
    ) -> std::io::Result<Self> {
        let (tx, events) = crossbeam_channel::bounded::<ServerEvent>(256);
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("s1-serve-local".into())
            .spawn(move || {
                let emit = Emit { tx, notify };
                match serve(model, port, stop, &emit) {
                    Ok(()) => emit.send(ServerEvent::Stopped),
                    Err(e) => emit.send(ServerEvent::Failed(format!("{e:#}"))),
                }
            })?;
        Ok(Self {
            events,
            shutdown: Some(shutdown),
        })
    }

    /// The next event, if one is waiting.
    pub fn try_recv(&self) -> Option<ServerEvent> {
        self.events.try_recv().ok()
    }

    /// Blocks for the next event (tests).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<ServerEvent> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Stops taking connections; running requests are cancelled when their connections close,
    /// and the model is released by the server once its engine stops.
    pub fn stop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The event channel and the app's wake-up.
#[derive(Clone)]
struct Emit {
    tx: Sender<ServerEvent>,
    notify: Notify,
}

impl Emit {
    fn send(&self, ev: ServerEvent) {
        match self.tx.try_send(ev) {
            // A full log (the app not drawing): the line is dropped, the server goes on.
            Ok(()) | Err(TrySendError::Full(_)) => (self.notify)(),
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

fn serve(
    model: Receiver<Result<Arc<LoadedModel>, String>>,
    port: u16,
    stop: tokio::sync::oneshot::Receiver<()>,
    emit: &Emit,
) -> anyhow::Result<()> {
    let model = model
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| anyhow::anyhow!("the chat's model worker did not answer"))?
        .map_err(anyhow::Error::msg)?;
    let (engine, _thread) = Engine::start_shared(model, APP_LIMITS)?;
    let state = Arc::new(AppState {
        engine,
        key: None,
        body_limit: BODY_LIMIT,
        running: Default::default(),
        started: handlers::now_s(),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("serve-http")
        .enable_all()
        .build()
        .context("starting the HTTP runtime")?;
    let log = emit.clone();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("port {port} on 127.0.0.1 could not be bound (taken? try another)"))?;
        let addr = listener.local_addr()?;
        emit.send(ServerEvent::Listening {
            url: format!("http://{addr}"),
            model: state.engine.served.id.clone(),
        });
        let app = super::router(state).layer(axum::middleware::from_fn(move |req: Request, next: Next| {
            let log = log.clone();
            async move {
                let (method, path) = (req.method().to_string(), req.uri().path().to_string());
                let started = Instant::now();
                let response: Response = next.run(req).await;
                let streamed = response
                    .headers()
                    .get(axum::http::header::CONTENT_TYPE)
                    .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
                log.send(ServerEvent::Request(RequestLine {
                    method,
                    path,
                    status: response.status().as_u16(),
                    ms: started.elapsed().as_millis() as u64,
                    streamed,
                }));
                response
            }
        }));
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop.await;
            })
            .await
            .context("serving")
    })
}

/// A `curl` line asking the server at `url` for a chat answer under a thinking budget.
pub fn curl_example(url: &str, model: &str) -> String {
    format!(
        "curl {url}/v1/chat/completions -H 'Content-Type: application/json' -d '{{\"model\": \"{model}\", \"messages\": [{{\"role\": \"user\", \"content\": \"How many r are in strawberry?\"}}], \"max_tokens\": 1024, \"max_thinking_tokens\": 512, \"min_thinking_tokens\": 64, \"stream\": true}}'"
    )
}

/// The same request through the `openai` Python client.
pub fn python_example(url: &str, model: &str) -> String {
    format!(
        "from openai import OpenAI\n\
         client = OpenAI(base_url=\"{url}/v1\", api_key=\"none\")\n\
         r = client.chat.completions.create(\n    \
             model=\"{model}\",\n    \
             messages=[{{\"role\": \"user\", \"content\": \"How many r are in strawberry?\"}}],\n    \
             max_tokens=1024,\n    \
             extra_body={{\"max_thinking_tokens\": 512, \"min_thinking_tokens\": 64}},\n\
         )\n\
         print(r.choices[0].message.reasoning_content)\n\
         print(r.choices[0].message.content)"
    )
}
