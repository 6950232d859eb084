//! The HTTP endpoints: health, models, chat and plain completions (whole or streamed as
//! server-sent events ending in `data: [DONE]`), and the steering of a running request (end its
//! thinking now, or cancel it) by its completion id.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::json;

use super::auth::ApiKey;
use super::engine::{Engine, EngineEvent, Job};
use super::error::ApiError;
use super::request::{parse_chat, parse_completion, Parsed};
use super::response::{chunk, full, json, usage_chunk, Meta, Piece};
use super::thinking::{EFFORT, MAX_NAMES};
use crate::generate::{Delta, Generation, SeqControl, SeqEvent};

/// A body larger than this is not even drained: the connection is dropped after the 413.
const DRAIN_CAP: usize = 64 << 20;

/// What the handlers share.
pub struct AppState {
    pub engine: Engine,
    pub key: Option<ApiKey>,
    pub body_limit: usize,
    /// Requests running or queued, by completion id: what steering reaches.
    pub running: Mutex<HashMap<String, SeqControl>>,
    pub started: u64,
}

pub type Shared = Arc<AppState>;

impl AppState {
    fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match &self.key {
            None => Ok(()),
            Some(k) => {
                let h = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
                if k.accepts(h) {
                    Ok(())
                } else {
                    Err(ApiError::unauthorized())
                }
            }
        }
    }
}

/// A running request's entry in [`AppState::running`]; dropping it (the request answered, or
/// its client gone) cancels the request and removes the entry.
struct Registered {
    app: Shared,
    id: String,
    control: SeqControl,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.control.cancel.cancel();
        if let Ok(mut m) = self.app.running.lock() {
            m.remove(&self.id);
        }
    }
}

pub fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub async fn health(State(app): State<Shared>) -> Response {
    json(StatusCode::OK, &json!({"status": "ok", "model": app.engine.served.id}))
}

pub async fn models(State(app): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(e) = app.authorize(&headers) {
        return e.into_response();
    }
    let s = &app.engine.served;
    let effort: serde_json::Map<String, serde_json::Value> =
        EFFORT.iter().map(|(k, n)| (k.to_string(), json!(n))).collect();
    json(
        StatusCode::OK,
        &json!({
            "object": "list",
            "data": [{
                "id": s.id,
                "object": "model",
                "created": app.started,
                "owned_by": "s1-studio",
                "s1": {
                    "context": s.context,
                    "max_tokens_limit": s.max_tokens_limit,
                    "thinking_format": s.format,
                    "reasoning_effort_max_thinking_tokens": effort,
                    "max_thinking_names": MAX_NAMES,
                },
            }],
        }),
    )
}

pub async fn chat_completions(State(app): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    complete(app, headers, body, true).await
}

pub async fn completions(State(app): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    complete(app, headers, body, false).await
}

/// `POST /v1/requests/{id}/end_thinking`: the running request ends its thinking now, with the
/// forced end the maximum would append, and answers.
pub async fn end_thinking(State(app): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    steer(app, headers, id, "end_thinking", |c| c.answer_now.request())
}

/// `POST /v1/requests/{id}/cancel`: the running request stops where it is.
pub async fn cancel(State(app): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    steer(app, headers, id, "cancel", |c| c.cancel.cancel())
}

fn steer(app: Shared, headers: HeaderMap, id: String, what: &str, act: impl Fn(&SeqControl)) -> Response {
    if let Err(e) = app.authorize(&headers) {
        return e.into_response();
    }
    let found = app.running.lock().ok().and_then(|m| m.get(&id).cloned());
    match found {
        Some(c) => {
            act(&c);
            json(
                StatusCode::OK,
                &json!({"id": id, "object": format!("request.{what}"), "ok": true}),
            )
        }
        None => ApiError::not_found(format!("no running request `{id}`")).into_response(),
    }
}

pub async fn not_found() -> Response {
    ApiError::not_found("no such endpoint: see /v1/models, /v1/chat/completions, /v1/completions, /health")
        .into_response()
}

pub async fn method_not_allowed() -> Response {
    ApiError::method_not_allowed().into_response()
}

/// Reads the body up to `limit` bytes; past it the rest is drained (up to [`DRAIN_CAP`]) so
/// that the client reads the 413 instead of a reset connection.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > DRAIN_CAP) {
        return Err(ApiError::too_large(limit));
    }
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    let mut total = 0usize;
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|e| ApiError::bad_request(format!("reading the body: {e}"), None))?;
        total += piece.len();
        if total > DRAIN_CAP {
            break;
        }
        if total <= limit {
            buf.extend_from_slice(&piece);
        }
    }
    if total > limit {
        Err(ApiError::too_large(limit))
    } else {
        Ok(buf)
    }
}

async fn complete(app: Shared, headers: HeaderMap, body: Body, chat: bool) -> Response {
    match start(app, headers, body, chat).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn start(app: Shared, headers: HeaderMap, body: Body, chat: bool) -> Result<Response, ApiError> {
    app.authorize(&headers)?;
    let bytes = read_body(&headers, body, app.body_limit).await?;
    let served = &app.engine.served;
    let parsed: Parsed = if chat {
        parse_chat(&bytes, served)?
    } else {
        parse_completion(&bytes, served)?
    };
    let meta = Meta {
        id: format!(
            "{}-{:016x}",
            if chat { "chatcmpl" } else { "cmpl" },
            rand::random::<u64>()
        ),
        created: now_s(),
        model: served.id.clone(),
        chat,
    };
    let control = SeqControl::default();
    let guard = Registered {
        app: app.clone(),
        id: meta.id.clone(),
        control: control.clone(),
    };
    if let Ok(mut m) = app.running.lock() {
        m.insert(meta.id.clone(), control.clone());
    }
    // Room for every event a generation of this length can send (about two per token).
    let room = parsed.params.max_new_tokens.unwrap_or(served.context) * 4 + 64;
    let (tx, mut rx) = tokio::sync::mpsc::channel(room);
    app.engine.submit(Job {
        input: parsed.input,
        params: parsed.params,
        control,
        events: tx,
    })?;
    let t0 = Instant::now();
    let first = rx.recv().await;
    if let Some(EngineEvent::Rejected { message, client_fault }) = first {
        return Err(if client_fault {
            ApiError::bad_request(message, Some("invalid_prompt"))
        } else {
            ApiError::internal(message)
        });
    }
    let return_token_ids = parsed.return_token_ids;
    let mut st = Streamed {
        stop: parsed.stop,
        answer: String::new(),
        sent: 0,
        stopped: false,
        control: guard.control.clone(),
        rx,
        meta,
        include_usage: parsed.include_usage,
        _guard: guard,
        pending: VecDeque::new(),
        done: false,
        stream: parsed.stream,
        t0,
        result: None,
    };
    if !parsed.stream {
        st.take(first);
        while !st.done {
            let ev = st.rx.recv().await;
            st.take(ev);
        }
        return match st.result.take() {
            Some(Ok(g)) => {
                let mut v = full(&st.meta, &g);
                // The sampled ids, as vLLM returns them; left out when a stop sequence cut the
                // text (the ids past the cut are not the text's), where a client encodes it.
                if return_token_ids && !st.stopped {
                    v["choices"][0]["token_ids"] = serde_json::json!(g.output_ids);
                }
                Ok(json(StatusCode::OK, &v))
            }
            Some(Err(e)) => Err(e),
            None => Err(ApiError::internal("the engine dropped the request")),
        };
    }
    if chat {
        let role = Event::default().data(chunk(&st.meta, Piece::Role).to_string());
        st.pending.push_back(role);
    }
    st.take(first);
    let events = futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(ev) = st.pending.pop_front() {
                return Some((Ok::<Event, Infallible>(ev), st));
            }
            if st.done {
                return None;
            }
            let ev = st.rx.recv().await;
            st.take(ev);
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}

/// Where the first of the stop sequences starts in `text`, if one is there.
fn stop_at(text: &str, stop: &[String]) -> Option<usize> {
    stop.iter().filter_map(|s| text.find(s.as_str())).min()
}

/// How much of `text` can be streamed while no stop sequence is in it: all but its longest end
/// that could still grow into one (a proper prefix of a stop sequence).
fn safe_len(text: &str, stop: &[String]) -> usize {
    let held = stop
        .iter()
        .filter_map(|s| {
            (1..s.len())
                .rev()
                .find(|&k| s.is_char_boundary(k) && text.ends_with(&s[..k]))
        })
        .max()
        .unwrap_or(0);
    text.len() - held
}

/// One request's events turned into stream chunks (or, not streaming, its result).
struct Streamed {
    /// Stop sequences: the answer is watched for them, cut before the first, and the sequence
    /// cancelled at its next step; streamed, the text that could begin one is held back until
    /// it is known not to.
    stop: Vec<String>,
    /// The answer so far (only kept with stop sequences).
    answer: String,
    /// Of `answer`, the bytes already streamed (the rest is held back while it could be the
    /// start of a stop sequence).
    sent: usize,
    /// A stop sequence was seen: later answer text is dropped.
    stopped: bool,
    control: SeqControl,
    rx: tokio::sync::mpsc::Receiver<EngineEvent>,
    meta: Meta,
    include_usage: bool,
    _guard: Registered,
    pending: VecDeque<Event>,
    done: bool,
    stream: bool,
    t0: Instant,
    result: Option<Result<Generation, ApiError>>,
}

impl Streamed {
    fn push(&mut self, v: serde_json::Value) {
        if self.stream {
            self.pending.push_back(Event::default().data(v.to_string()));
        }
    }

    fn take(&mut self, ev: Option<EngineEvent>) {
        match ev {
            Some(EngineEvent::Admitted) => {}
            Some(EngineEvent::Seq(SeqEvent::Delta(Delta::Thinking(t)))) if !t.is_empty() => {
                self.push(chunk(&self.meta, Piece::Thinking(&t)))
            }
            Some(EngineEvent::Seq(SeqEvent::Delta(Delta::Answer(t)))) if !t.is_empty() => {
                if self.stop.is_empty() {
                    self.push(chunk(&self.meta, Piece::Answer(&t)));
                } else if !self.stopped {
                    self.answer.push_str(&t);
                    let upto = match stop_at(&self.answer, &self.stop) {
                        Some(at) => {
                            self.stopped = true;
                            self.control.cancel.cancel();
                            at
                        }
                        None => safe_len(&self.answer, &self.stop),
                    };
                    self.flush_answer(upto);
                }
            }
            Some(EngineEvent::Seq(SeqEvent::Delta(_))) => {}
            Some(EngineEvent::Seq(SeqEvent::Finished(mut g))) => {
                if !self.stopped {
                    // What was held back could have begun a stop sequence; it did not.
                    self.flush_answer(self.answer.len());
                }
                if let Some(at) = stop_at(&g.answer, &self.stop) {
                    self.stopped = true;
                    g.answer.truncate(at);
                    g.stop_reason = crate::generate::StopReason::EndOfTurn;
                }
                self.push(chunk(&self.meta, Piece::End(&g)));
                if self.include_usage {
                    self.push(usage_chunk(&self.meta, &g));
                }
                eprintln!(
                    "serve: {} done in {:.2}s: {} prompt + {} thinking + {} answer tokens, {} waits, forced end {}, stop {:?}",
                    self.meta.id,
                    self.t0.elapsed().as_secs_f64(),
                    g.prompt_tokens,
                    g.thinking_tokens,
                    g.answer_tokens,
                    g.waits_injected,
                    g.forced_end,
                    g.stop_reason
                );
                self.end(Ok(*g));
            }
            Some(EngineEvent::Seq(SeqEvent::Failed(m))) => self.end(Err(ApiError::internal(m))),
            Some(EngineEvent::Rejected { message, client_fault }) => self.end(Err(if client_fault {
                ApiError::bad_request(message, Some("invalid_prompt"))
            } else {
                ApiError::internal(message)
            })),
            None => self.end(Err(ApiError::internal("the engine dropped the request"))),
        }
    }

    /// Streams the answer held back up to byte `upto`.
    fn flush_answer(&mut self, upto: usize) {
        if upto > self.sent {
            let piece = self.answer[self.sent..upto].to_string();
            self.sent = upto;
            self.push(chunk(&self.meta, Piece::Answer(&piece)));
        }
    }

    fn end(&mut self, result: Result<Generation, ApiError>) {
        if let Err(e) = &result {
            eprintln!("serve: {} failed: {}", self.meta.id, e.message);
            self.push(e.body());
        }
        if self.stream {
            self.pending.push_back(Event::default().data("[DONE]"));
        }
        self.result = Some(result);
        self.done = true;
    }
}

#[cfg(test)]
mod tests {
    use super::safe_len;

    /// The end of a text that could grow into a stop sequence is held back, and only that.
    #[test]
    fn held_back_only_what_could_begin_a_stop_sequence() {
        let stop = vec!["END".to_string(), "ünï".to_string()];
        assert_eq!(safe_len("abc", &stop), 3);
        assert_eq!(safe_len("abcE", &stop), 3);
        assert_eq!(safe_len("abcEN", &stop), 3);
        assert_eq!(safe_len("abcENx", &stop), 6);
        assert_eq!(safe_len("xü", &stop), 1);
        assert_eq!(safe_len("xün", &stop), 1);
        assert_eq!(safe_len("", &stop), 0);
    }
}
