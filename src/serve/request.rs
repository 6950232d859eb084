//! A chat or completion request, read and checked before it reaches the engine: the model
//! name, the messages or prompt, `stream`, `max_tokens` within the server's limit, sampling, and
//! the thinking controls ([`super::thinking`]). Options this server cannot honour (several
//! choices, log-probabilities, tools) are 400s rather than silently ignored.

use serde_json::Value;

use super::error::ApiError;
use super::fields::{boolean, float, nested, object, string, uint, Object};
use super::thinking;
use crate::generate::{GenerateParams, SamplingParams, ThinkingFormat};
use crate::model::ChatMessage;

/// What the server serves and allows, as request checking needs it.
#[derive(Debug, Clone)]
pub struct Served {
    /// The model's name in `/v1/models` (its file or folder name).
    pub id: String,
    /// The path it was loaded from: also accepted as its name.
    pub path: String,
    pub format: ThinkingFormat,
    /// Positions per sequence.
    pub context: usize,
    /// The most `max_tokens` a request may ask (and its default).
    pub max_tokens_limit: usize,
}

/// The input of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Chat(Vec<ChatMessage>),
    /// A plain completion's prompt, tokenized as is.
    Text(String),
    /// A plain completion's prompt as token ids (the API's token prompt; s1's loop sends its
    /// rounds so), fed as they are.
    Ids(Vec<u32>),
}

/// A checked request.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub input: Input,
    pub params: GenerateParams,
    pub stream: bool,
    /// `stream_options.include_usage`: a last chunk with the usage and no choices.
    pub include_usage: bool,
    /// Stop sequences: the answer ends before the first (whole completions only).
    pub stop: Vec<String>,
    /// `return_token_ids` (vLLM's): the completion's sampled ids in `choices[0].token_ids`.
    pub return_token_ids: bool,
}

/// `POST /v1/chat/completions`.
pub fn parse_chat(body: &[u8], served: &Served) -> Result<Parsed, ApiError> {
    let obj = object(body)?;
    let messages = messages(&obj)?;
    common(&obj, served, Input::Chat(messages), true)
}

/// `POST /v1/completions`: `prompt` is a string or a list of token ids (or a list of one of
/// either).
pub fn parse_completion(body: &[u8], served: &Served) -> Result<Parsed, ApiError> {
    let obj = object(body)?;
    let input = match obj.get("prompt") {
        Some(Value::Array(a)) if a.len() == 1 && (a[0].is_string() || a[0].is_array()) => prompt(&a[0])?,
        None | Some(Value::Null) => return Err(ApiError::invalid("prompt", "`prompt` is required")),
        Some(v) => prompt(v)?,
    };
    common(&obj, served, input, false)
}

/// One prompt: a non-empty string or a non-empty list of token ids.
fn prompt(v: &Value) -> Result<Input, ApiError> {
    let several = "`prompt` must be one string or one list of token ids (several prompts are not supported)";
    match v {
        Value::String(s) if s.is_empty() => Err(ApiError::invalid("prompt", "`prompt` is empty")),
        Value::String(s) => Ok(Input::Text(s.clone())),
        Value::Array(a) if a.is_empty() => Err(ApiError::invalid("prompt", "`prompt` is empty")),
        Value::Array(a) if a.iter().all(|t| t.is_number()) => a
            .iter()
            .enumerate()
            .map(|(i, t)| {
                t.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| ApiError::invalid("prompt", format!("`prompt`[{i}] is not a token id (got {t})")))
            })
            .collect::<Result<Vec<u32>, _>>()
            .map(Input::Ids),
        Value::Array(_) => Err(ApiError::invalid("prompt", several)),
        _ => Err(ApiError::invalid(
            "prompt",
            "`prompt` must be a string or a list of token ids",
        )),
    }
}

fn common(obj: &Object, served: &Served, input: Input, chat: bool) -> Result<Parsed, ApiError> {
    if let Some(m) = string(obj, "model")? {
        if m != served.id && m != served.path {
            return Err(ApiError::unknown_model(m, &served.id));
        }
    }
    if uint(obj, "n")?.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid("n", "only `n` = 1 is supported"));
    }
    let stop = stop_strings(obj)?;
    if boolean(obj, "logprobs").ok().flatten() == Some(true) || obj.get("top_logprobs").is_some_and(|v| !v.is_null()) {
        return Err(ApiError::invalid("logprobs", "log-probabilities are not supported"));
    }
    if obj
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        return Err(ApiError::invalid("tools", "tools are not supported"));
    }
    let mut max_tokens = None;
    for name in ["max_tokens", "max_completion_tokens"] {
        if let Some(n) = uint(obj, name)? {
            if n == 0 {
                return Err(ApiError::invalid(name, format!("`{name}` must be at least 1")));
            }
            if n > served.max_tokens_limit {
                return Err(ApiError::invalid(
                    name,
                    format!(
                        "`{name}` ({n}) is over this server's limit of {}",
                        served.max_tokens_limit
                    ),
                ));
            }
            if max_tokens.is_some_and(|m| m != n) {
                return Err(ApiError::invalid(
                    name,
                    "`max_tokens` and `max_completion_tokens` disagree",
                ));
            }
            max_tokens = Some(n);
        }
    }
    let stream = boolean(obj, "stream")?.unwrap_or(false);
    let include_usage = match nested(obj, "stream_options")? {
        Some(o) => boolean(o, "include_usage")?.unwrap_or(false),
        None => false,
    };
    let sampling = SamplingParams {
        // OpenAI's default temperature is 1.
        temperature: float(obj, "temperature", 0.0, 2.0)?.unwrap_or(1.0),
        top_p: match float(obj, "top_p", 0.0, 1.0)? {
            Some(p) if p <= 0.0 => return Err(ApiError::invalid("top_p", "`top_p` must be above 0")),
            Some(p) => p,
            None => 1.0,
        },
        top_k: top_k(obj)?,
        seed: match uint(obj, "seed")? {
            Some(s) => s as u64,
            None => rand::random(),
        },
    };
    let budget = thinking::budget(obj, &served.format, chat)?;
    let return_token_ids = boolean(obj, "return_token_ids")?.unwrap_or(false);
    if return_token_ids && (chat || stream) {
        return Err(ApiError::invalid(
            "return_token_ids",
            "`return_token_ids` is supported on whole (not streamed) /v1/completions",
        ));
    }
    Ok(Parsed {
        input,
        params: GenerateParams {
            sampling,
            budget,
            max_new_tokens: Some(max_tokens.unwrap_or(served.max_tokens_limit)),
            auto_prompt_tokens: None,
        },
        stream,
        include_usage,
        stop,
        return_token_ids,
    })
}

/// `top_k`: a whole number; 0 and -1 (vLLM's "all") keep every token.
fn top_k(obj: &Object) -> Result<usize, ApiError> {
    match obj.get("top_k") {
        Some(v) if v.as_i64() == Some(-1) => Ok(0),
        _ => Ok(uint(obj, "top_k")?.unwrap_or(0)),
    }
}

/// `stop`: a string or a list of up to 4 non-empty strings (OpenAI's rule). The answer ends
/// before the first of them (not included), as s1's loop with vLLM needs for its end-of-thinking
/// delimiters.
fn stop_strings(obj: &Object) -> Result<Vec<String>, ApiError> {
    let list: Vec<String> = match obj.get("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::invalid("stop", "`stop` must be a string or a list of strings"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::invalid(
                "stop",
                "`stop` must be a string or a list of strings",
            ))
        }
    };
    if list.len() > 4 {
        return Err(ApiError::invalid("stop", "`stop` takes at most 4 sequences"));
    }
    if list.iter().any(String::is_empty) {
        return Err(ApiError::invalid("stop", "`stop` sequences must not be empty"));
    }
    Ok(list)
}

/// `messages`: a non-empty list of `{role, content}`; content is a string, a list of text parts,
/// or null (an assistant turn). `developer` is the system role.
fn messages(obj: &Object) -> Result<Vec<ChatMessage>, ApiError> {
    let list = match obj.get("messages") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(Value::Array(_)) => return Err(ApiError::invalid("messages", "`messages` is empty")),
        None | Some(Value::Null) => return Err(ApiError::invalid("messages", "`messages` is required")),
        Some(_) => return Err(ApiError::invalid("messages", "`messages` must be a list")),
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let at = |what: &str| ApiError::invalid(format!("messages[{i}]"), format!("messages[{i}]: {what}"));
        let m = m.as_object().ok_or_else(|| at("must be an object"))?;
        let role = match m.get("role").and_then(Value::as_str) {
            Some("developer") | Some("system") => "system",
            Some(r @ ("user" | "assistant" | "tool")) => r,
            Some(r) => return Err(at(&format!("unknown role `{r}`"))),
            None => return Err(at("`role` is required")),
        };
        let content = match m.get("content") {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => String::new(),
            Some(Value::Array(parts)) => {
                let mut text = String::new();
                for p in parts {
                    match (
                        p.get("type").and_then(Value::as_str),
                        p.get("text").and_then(Value::as_str),
                    ) {
                        (Some("text"), Some(t)) => text.push_str(t),
                        (t, _) => {
                            return Err(at(&format!(
                                "only text content parts are supported (got {})",
                                t.unwrap_or("a part without a type")
                            )))
                        }
                    }
                }
                text
            }
            Some(_) => return Err(at("`content` must be a string or a list of text parts")),
        };
        out.push(ChatMessage::new(role, content));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::MaxThinking;

    fn served() -> Served {
        Served {
            id: "tiny".into(),
            path: "/m/tiny".into(),
            format: ThinkingFormat::s1(),
            context: 512,
            max_tokens_limit: 256,
        }
    }

    #[test]
    fn a_chat_request_becomes_messages_and_params() {
        let p = parse_chat(
            br#"{"model": "tiny", "messages": [{"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "!"}]}],
                "temperature": 0, "max_tokens": 30, "stream": true, "stream_options": {"include_usage": true},
                "seed": 3, "max_thinking_tokens": 12, "min_thinking_tokens": 4}"#,
            &served(),
        )
        .unwrap();
        assert_eq!(
            p.input,
            Input::Chat(vec![
                ChatMessage::new("system", "Be brief."),
                ChatMessage::new("user", "Hi!")
            ])
        );
        assert!(p.stream && p.include_usage);
        assert_eq!(p.params.max_new_tokens, Some(30));
        assert_eq!((p.params.sampling.temperature, p.params.sampling.seed), (0.0, 3));
        assert_eq!(p.params.budget.max_thinking, MaxThinking::Tokens(12));
        assert_eq!(p.params.budget.min_thinking, 4);
        // The path names the model too; no max_tokens: the server's limit.
        let p = parse_chat(
            br#"{"model": "/m/tiny", "messages": [{"role": "user", "content": "x"}]}"#,
            &served(),
        )
        .unwrap();
        assert_eq!(p.params.max_new_tokens, Some(256));
        assert_eq!(p.params.sampling.temperature, 1.0);
    }

    #[test]
    fn bad_requests_name_what_is_wrong() {
        let cases: &[(&[u8], u16, Option<&str>)] = &[
            (b"{not json", 400, None),
            (br#"{"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}"#, 404, Some("model")),
            (br#"{"messages": []}"#, 400, Some("messages")),
            (br#"{"messages": [{"role": "wizard", "content": "x"}]}"#, 400, Some("messages[0]")),
            (br#"{"messages": [{"role": "user", "content": "x"}], "max_tokens": 999}"#, 400, Some("max_tokens")),
            (br#"{"messages": [{"role": "user", "content": "x"}], "max_tokens": -1}"#, 400, Some("max_tokens")),
            (br#"{"messages": [{"role": "user", "content": "x"}], "n": 2}"#, 400, Some("n")),
            (br#"{"messages": [{"role": "user", "content": "x"}], "stop": [""]}"#, 400, Some("stop")),
            (br#"{"messages": [{"role": "user", "content": "x"}], "stop": 3}"#, 400, Some("stop")),
            (br#"{"messages": [{"role": "user", "content": "x"}], "temperature": 3}"#, 400, Some("temperature")),
            (
                br#"{"messages": [{"role": "user", "content": "x"}], "min_thinking_tokens": 9, "thinking_budget_tokens": 3}"#,
                400,
                Some("min_thinking_tokens"),
            ),
        ];
        for (body, status, param) in cases {
            let e = parse_chat(body, &served()).unwrap_err();
            assert_eq!(e.status.as_u16(), *status, "{}", String::from_utf8_lossy(body));
            assert_eq!(e.param.as_deref(), *param, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn a_completion_takes_a_prompt_and_thinks_only_when_asked() {
        let p = parse_completion(br#"{"prompt": "2+2=", "max_tokens": 5}"#, &served()).unwrap();
        assert_eq!(p.input, Input::Text("2+2=".into()));
        assert!(!p.params.budget.thinking);
        let p = parse_completion(br#"{"prompt": ["2+2="], "max_thinking_tokens": 5}"#, &served()).unwrap();
        assert!(p.params.budget.thinking);
        let p = parse_completion(
            br#"{"prompt": [1, 2], "return_token_ids": true, "top_k": -1}"#,
            &served(),
        )
        .unwrap();
        assert_eq!(p.input, Input::Ids(vec![1, 2]));
        assert!(p.return_token_ids);
        assert_eq!(p.params.sampling.top_k, 0);
        assert_eq!(
            parse_completion(br#"{"prompt": [[7]]}"#, &served()).unwrap().input,
            Input::Ids(vec![7])
        );
        for bad in [
            &br#"{"prompt": [1, -2]}"#[..],
            br#"{"prompt": []}"#,
            br#"{"prompt": ["a", "b"]}"#,
            br#"{"prompt": [1, "b"]}"#,
            br#"{"prompt": 5}"#,
            br#"{"max_tokens": 5}"#,
        ] {
            let e = parse_completion(bad, &served()).unwrap_err();
            assert_eq!(e.param.as_deref(), Some("prompt"), "{}", String::from_utf8_lossy(bad));
        }
        let e = parse_completion(br#"{"prompt": "x", "top_k": -2}"#, &served()).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("top_k"));
        let e = parse_completion(
            br#"{"prompt": "x", "stream": true, "return_token_ids": true}"#,
            &served(),
        )
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("return_token_ids"));
    }
}
