//! One `/completions` request of s1's loop over an endpoint and its reply: the prompt as token
//! ids (as s1 hands vLLM `prompt_token_ids`) or as text, the sampler fields that make any server
//! sample as s1's vLLM runs did, and the sampled ids read back from the reply when the server
//! gives them.

use serde_json::{json, Map, Value};

use crate::generate::SamplingParams;

/// How each round's prompt travels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptForm {
    /// A list of token ids (the OpenAI completions API's token prompt; vLLM, SGLang, llama.cpp's
    /// servers and `s1-studio serve` take it): the server sees exactly the ids s1's loop builds
    /// (the template's, the thinking start's, each round's sampled ids, the ignore string's, the
    /// forced end's), so nothing is re-tokenized across a round's boundary.
    #[default]
    Ids,
    /// The same prompt as text, which the server tokenizes again: for servers that refuse token
    /// prompts. Where the text's tokens are not the ids the loop built (a delimiter merging with
    /// the sampled text after it: `think` + `er` read back as `thinker`), later rounds differ
    /// from the local engine's.
    Text,
}

impl PromptForm {
    pub fn name(self) -> &'static str {
        match self {
            PromptForm::Ids => "ids",
            PromptForm::Text => "text",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "ids" => Ok(PromptForm::Ids),
            "text" => Ok(PromptForm::Text),
            _ => Err(format!("`{s}` is not a prompt form (ids or text)")),
        }
    }
}

/// The fields each request carries so that the server samples as s1's vLLM runs did, whatever
/// its own defaults: no repetition penalty (`repetition_penalty` is vLLM's and SGLang's name,
/// `repeat_penalty` llama.cpp's, whose servers default to 1.1), no min-p (llama.cpp: 0.05),
/// top-k off unless asked (0: vLLM's and llama.cpp's "all"; llama.cpp's default is 40; vLLM
/// before 0.8 wanted -1: `--endpoint-param top_k=-1`),
/// and the sampled token ids in the reply (vLLM's `return_token_ids`). Servers ignore the names
/// they do not know; `extra` (the user's `--endpoint-param`) replaces any of them, and a `null`
/// there removes one.
pub fn body(
    model: &str,
    prompt: Value,
    max_tokens: Option<usize>,
    stop: &[String],
    sampling: &SamplingParams,
    extra: &Map<String, Value>,
) -> Value {
    let mut body = json!({
        "model": model,
        "prompt": prompt,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k,
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "repeat_penalty": 1.0,
        "seed": sampling.seed,
        "return_token_ids": true,
    });
    if let Some(n) = max_tokens {
        body["max_tokens"] = json!(n);
    }
    if !stop.is_empty() {
        body["stop"] = json!(stop);
    }
    if let Some(obj) = body.as_object_mut() {
        for (k, v) in extra {
            if v.is_null() {
                obj.remove(k);
            } else {
                obj.insert(k.clone(), v.clone());
            }
        }
    }
    body
}

/// Reads `KEY=VALUE` (`--endpoint-param`): the value as JSON when it parses (`1.0`, `true`,
/// `null`, `[1,2]`), else as a string.
pub fn parse_param(s: &str) -> Result<(String, Value), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("`{s}` is not KEY=VALUE"))?;
    let k = k.trim();
    if k.is_empty() {
        return Err(format!("`{s}`: the key is empty"));
    }
    if ["model", "prompt"].contains(&k) {
        return Err(format!("`{k}` is set by the loop itself and cannot be replaced"));
    }
    let v = serde_json::from_str(v.trim()).unwrap_or_else(|_| Value::String(v.to_string()));
    Ok((k.to_string(), v))
}

/// The sampled ids a reply carries: `token_ids` (vLLM's `return_token_ids`, `s1-studio serve`),
/// or log-probability tokens written as `token_id:N` (vLLM's `return_tokens_as_token_ids`).
/// None when it carries neither; an error when they are not ids below `vocab` (the tokenizer
/// given is not the served model's).
pub fn reply_ids(choice: &Value, vocab: u32) -> Result<Option<Vec<u32>>, String> {
    let ids: Option<Vec<Option<u32>>> = if let Some(a) = choice.get("token_ids").and_then(Value::as_array) {
        Some(
            a.iter()
                .map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()))
                .collect(),
        )
    } else {
        choice
            .pointer("/logprobs/tokens")
            .and_then(Value::as_array)
            .filter(|a| a.iter().all(|t| t.as_str().is_some_and(|s| s.starts_with("token_id:"))))
            .map(|a| {
                a.iter()
                    .map(|t| {
                        t.as_str()
                            .and_then(|s| s.strip_prefix("token_id:"))
                            .and_then(|n| n.parse().ok())
                    })
                    .collect()
            })
    };
    let Some(ids) = ids else { return Ok(None) };
    let mut out = Vec::with_capacity(ids.len());
    for (i, id) in ids.into_iter().enumerate() {
        match id {
            Some(id) if id <= vocab => out.push(id),
            _ => {
                return Err(format!(
                    "token {i} of the reply's ids is not an id of this tokenizer (0..={vocab}): is --model the \
                     served model's tokenizer?"
                ))
            }
        }
    }
    Ok(Some(out))
}

/// `ids` without a trailing end-of-thinking delimiter: a server that stops on a stop string
/// leaves it out of the text but (vLLM) keeps its tokens in the ids, which s1 strips too.
pub fn strip_stop(mut ids: Vec<u32>, stops: &[Vec<u32>]) -> Vec<u32> {
    for s in stops {
        if !s.is_empty() && ids.ends_with(s) {
            ids.truncate(ids.len() - s.len());
            break;
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_asks_for_s1s_sampler_and_extra_fields_replace_or_remove() {
        let s = SamplingParams::default();
        let mut extra = Map::new();
        extra.insert("repeat_penalty".into(), Value::Null);
        extra.insert("min_p".into(), json!(0.1));
        let b = body("m", json!([1, 2]), Some(5), &["</think>".into()], &s, &extra);
        assert_eq!(b["prompt"], json!([1, 2]));
        assert_eq!(b["top_k"], json!(0));
        assert_eq!(b["repetition_penalty"], json!(1.0));
        assert!(b.get("repeat_penalty").is_none());
        assert_eq!(b["min_p"], json!(0.1));
        assert_eq!(b["max_tokens"], json!(5));
        assert_eq!(b["stop"], json!(["</think>"]));
        let k = SamplingParams {
            top_k: 20,
            ..SamplingParams::default()
        };
        assert_eq!(body("m", json!("x"), None, &[], &k, &Map::new())["top_k"], json!(20));
    }

    #[test]
    fn params_parse_as_json_or_text_and_the_loops_own_are_refused() {
        assert_eq!(
            parse_param("repeat_penalty=1.0").unwrap(),
            ("repeat_penalty".into(), json!(1.0))
        );
        assert_eq!(parse_param("x=null").unwrap().1, Value::Null);
        assert_eq!(parse_param("lora=math").unwrap().1, json!("math"));
        assert!(parse_param("novalue").unwrap_err().contains("KEY=VALUE"));
        assert!(parse_param("=1").unwrap_err().contains("empty"));
        assert!(parse_param("prompt=[1]").unwrap_err().contains("cannot be replaced"));
    }

    #[test]
    fn ids_come_from_token_ids_or_vllms_logprob_tokens_and_are_checked() {
        assert_eq!(reply_ids(&json!({"token_ids": [3, 4]}), 10).unwrap(), Some(vec![3, 4]));
        let lp = json!({"logprobs": {"tokens": ["token_id:7", "token_id:1"]}});
        assert_eq!(reply_ids(&lp, 10).unwrap(), Some(vec![7, 1]));
        let text_tokens = json!({"logprobs": {"tokens": ["He", "llo"]}});
        assert_eq!(reply_ids(&text_tokens, 10).unwrap(), None);
        assert_eq!(reply_ids(&json!({"text": "x"}), 10).unwrap(), None);
        assert!(reply_ids(&json!({"token_ids": [3, 11]}), 10)
            .unwrap_err()
            .contains("token 1"));
        assert!(reply_ids(&json!({"token_ids": [-1]}), 10).is_err());
    }

    #[test]
    fn a_trailing_stop_is_stripped_once() {
        assert_eq!(strip_stop(vec![1, 2, 9, 9], &[vec![9]]), vec![1, 2, 9]);
        assert_eq!(strip_stop(vec![1, 2], &[vec![5, 6], vec![]]), vec![1, 2]);
        assert_eq!(strip_stop(vec![1, 5, 6], &[vec![5, 6]]), vec![1]);
    }
}
