//! The JSON the server answers: whole completions, stream chunks and the parts they share
//! (`usage` with `completion_tokens_details.reasoning_tokens`, and the `s1` object telling what
//! budget forcing did). The thinking travels apart from the answer as `reasoning_content`, as
//! vLLM and DeepSeek send it.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::generate::{Generation, StopReason};

/// A JSON answer with its status.
pub fn json(status: StatusCode, value: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

/// What every answer of one request repeats.
#[derive(Debug, Clone)]
pub struct Meta {
    pub id: String,
    pub created: u64,
    pub model: String,
    /// Chat (`chat.completion`) or plain completion (`text_completion`).
    pub chat: bool,
}

/// OpenAI's `finish_reason`: the end of the turn is `stop`, the token limit `length`.
pub fn finish_reason(reason: StopReason) -> &'static str {
    match reason {
        StopReason::EndOfTurn | StopReason::Cancelled => "stop",
        StopReason::MaxTokens => "length",
    }
}

/// `completion_tokens` counts every token after the prompt (delimiters and injections too: what
/// `max_tokens` bounds); `reasoning_tokens` the thinking alone.
pub fn usage(g: &Generation) -> Value {
    let completion = g.output_ids.len();
    json!({
        "prompt_tokens": g.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": g.prompt_tokens + completion,
        "completion_tokens_details": {"reasoning_tokens": g.thinking_tokens},
    })
}

/// What budget forcing did: s1-studio's extension of the answer.
pub fn s1(g: &Generation) -> Value {
    json!({
        "thinking_tokens": g.thinking_tokens,
        "answer_tokens": g.answer_tokens,
        "waits_injected": g.waits_injected,
        "waits_for_min": g.waits_for_min,
        "forced_end": g.forced_end,
        "thinking_cut": g.thinking_cut,
        "max_thinking": g.max_thinking,
        "stop_reason": g.stop_reason,
        "injections": g.injections,
        "prefill_s": g.prefill_s,
        "decode_s": g.decode_s,
        "tokens_per_s": g.tokens_per_s,
    })
}

/// A whole (not streamed) completion.
pub fn full(m: &Meta, g: &Generation) -> Value {
    let choice = if m.chat {
        json!({
            "index": 0,
            "message": {"role": "assistant", "content": g.answer, "reasoning_content": g.thinking},
            "finish_reason": finish_reason(g.stop_reason),
            "logprobs": null,
        })
    } else {
        json!({
            "index": 0,
            "text": g.answer,
            "reasoning_content": g.thinking,
            "finish_reason": finish_reason(g.stop_reason),
            "logprobs": null,
        })
    };
    json!({
        "id": m.id,
        "object": if m.chat { "chat.completion" } else { "text_completion" },
        "created": m.created,
        "model": m.model,
        "choices": [choice],
        "usage": usage(g),
        "s1": s1(g),
    })
}

/// A piece of a stream.
#[derive(Debug, Clone, Copy)]
pub enum Piece<'a> {
    /// The chat stream's first chunk: the role.
    Role,
    Thinking(&'a str),
    Answer(&'a str),
    /// The last chunk with choices: why it ended, the usage and the `s1` object.
    End(&'a Generation),
}

/// A stream chunk.
pub fn chunk(m: &Meta, piece: Piece<'_>) -> Value {
    let (delta, finish) = match piece {
        Piece::Role => (json!({"role": "assistant", "content": ""}), None),
        Piece::Thinking(t) => (json!({"reasoning_content": t}), None),
        Piece::Answer(t) => (json!({"content": t}), None),
        Piece::End(g) => (json!({}), Some(finish_reason(g.stop_reason))),
    };
    let choice = if m.chat {
        json!({"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null})
    } else {
        json!({
            "index": 0,
            "text": delta.get("content").and_then(Value::as_str).unwrap_or(""),
            "reasoning_content": delta.get("reasoning_content"),
            "finish_reason": finish,
            "logprobs": null,
        })
    };
    let mut c = json!({
        "id": m.id,
        "object": if m.chat { "chat.completion.chunk" } else { "text_completion" },
        "created": m.created,
        "model": m.model,
        "choices": [choice],
    });
    if let Piece::End(g) = piece {
        c["usage"] = usage(g);
        c["s1"] = s1(g);
    }
    c
}

/// `stream_options.include_usage`'s last chunk: no choices, the usage.
pub fn usage_chunk(m: &Meta, g: &Generation) -> Value {
    json!({
        "id": m.id,
        "object": if m.chat { "chat.completion.chunk" } else { "text_completion" },
        "created": m.created,
        "model": m.model,
        "choices": [],
        "usage": usage(g),
        "s1": s1(g),
    })
}
