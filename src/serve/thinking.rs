//! The thinking controls of a request, under the names clients already send, turned into one
//! [`BudgetConfig`]:
//! - maximum: `max_thinking_tokens` (s1-studio), `thinking_budget_tokens` (llama.cpp) or
//!   `thinking_token_budget` (vLLM); several may be given only if they agree;
//! - `reasoning_effort`: `none` (no thinking) or `minimal`/`low`/`medium`/`high`, mapped to the
//!   maxima of [`EFFORT`] (the server states them in `/v1/models`); not with an explicit maximum;
//! - minimum: `min_thinking_tokens` (an earlier end of thinking is replaced by the ignore string);
//! - `thinking_n_ignore` (s1's number of "Wait"s), `thinking_ignore_str` (default "Wait"),
//!   `thinking_budget_message` (the forced-end text, default s1's "Final Answer:"),
//!   `thinking_past_max` (`s1` or `cut`);
//! - `chat_template_kwargs.enable_thinking`: false answers directly.
//!
//! Conflicts (minimum above maximum, a minimum or Waits with thinking off, disagreeing maxima)
//! and negative numbers are 400s naming the field.

use super::error::ApiError;
use super::fields::{boolean, nested, string, uint, Object};
use crate::generate::{BudgetConfig, MaxThinking, PastMax, ThinkingFormat};

/// `reasoning_effort` -> the maximum thinking tokens it stands for.
pub const EFFORT: &[(&str, usize)] = &[("minimal", 128), ("low", 512), ("medium", 2048), ("high", 8192)];

/// The names of the maximum, in the order they are read.
pub const MAX_NAMES: &[&str] = &["max_thinking_tokens", "thinking_budget_tokens", "thinking_token_budget"];

/// The budget a request asks for. `thinking_by_default`: whether thinking is on when the
/// request says nothing about it (chat: yes; plain completions: only if a control is given).
pub fn budget(obj: &Object, format: &ThinkingFormat, thinking_by_default: bool) -> Result<BudgetConfig, ApiError> {
    let mut max: Option<(&str, usize)> = None;
    for name in MAX_NAMES {
        if let Some(n) = uint(obj, name)? {
            match max {
                Some((first, m)) if m != n => {
                    return Err(ApiError::invalid(
                        *name,
                        format!("`{first}` ({m}) and `{name}` ({n}) disagree: give one maximum"),
                    ))
                }
                _ => max = Some((name, n)),
            }
        }
    }
    let effort = string(obj, "reasoning_effort")?;
    let mut off_by_effort = false;
    if let Some(e) = effort {
        if let Some((name, _)) = max {
            return Err(ApiError::invalid(
                "reasoning_effort",
                format!("give either `reasoning_effort` or `{name}`, not both"),
            ));
        }
        if e == "none" {
            off_by_effort = true;
        } else {
            let Some(&(_, n)) = EFFORT.iter().find(|(k, _)| *k == e) else {
                return Err(ApiError::invalid(
                    "reasoning_effort",
                    format!("`reasoning_effort` must be none, minimal, low, medium or high (got `{e}`)"),
                ));
            };
            max = Some(("reasoning_effort", n));
        }
    }
    let min = uint(obj, "min_thinking_tokens")?;
    let n_ignore = uint(obj, "thinking_n_ignore")?;
    let enable = match nested(obj, "chat_template_kwargs")? {
        Some(kw) => boolean(kw, "enable_thinking")
            .map_err(|e| ApiError::invalid("chat_template_kwargs.enable_thinking", e.message))?,
        None => None,
    };
    let asked = max.is_some() || min.is_some() || n_ignore.is_some() || effort.is_some();
    let thinking = !off_by_effort && enable.unwrap_or(thinking_by_default || asked);
    if !thinking {
        for (name, v) in [("min_thinking_tokens", min), ("thinking_n_ignore", n_ignore)] {
            if v.is_some_and(|v| v > 0) {
                return Err(ApiError::invalid(
                    name,
                    format!("`{name}` asks for thinking, but thinking is off for this request"),
                ));
            }
        }
    }
    let min = min.unwrap_or(0);
    if let Some((name, m)) = max {
        if min > m {
            return Err(ApiError::invalid(
                "min_thinking_tokens",
                format!("`min_thinking_tokens` ({min}) is above the maximum `{name}` ({m})"),
            ));
        }
    }
    let past_max = match string(obj, "thinking_past_max")? {
        None => PastMax::S1,
        Some(s) => s
            .parse()
            .map_err(|e: String| ApiError::invalid("thinking_past_max", e))?,
    };
    let defaults = BudgetConfig::default();
    Ok(BudgetConfig {
        thinking,
        min_thinking: min,
        max_thinking: max.map_or(MaxThinking::Unlimited, |(_, n)| MaxThinking::Tokens(n)),
        num_ignore: n_ignore.unwrap_or(0),
        ignore_str: string(obj, "thinking_ignore_str")?.map_or(defaults.ignore_str, str::to_string),
        final_answer: string(obj, "thinking_budget_message")?.map_or(defaults.final_answer, str::to_string),
        format: format.clone(),
        past_max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::fields::object;

    fn parse(s: &str, default_on: bool) -> Result<BudgetConfig, ApiError> {
        budget(&object(s.as_bytes()).unwrap(), &ThinkingFormat::s1(), default_on)
    }

    #[test]
    fn every_name_of_the_maximum_is_read() {
        for name in MAX_NAMES {
            let b = parse(&format!(r#"{{"{name}": 40}}"#), true).unwrap();
            assert_eq!(b.max_thinking, MaxThinking::Tokens(40), "{name}");
        }
        let b = parse(r#"{"max_thinking_tokens": 40, "thinking_token_budget": 40}"#, true).unwrap();
        assert_eq!(b.max_thinking, MaxThinking::Tokens(40));
        let e = parse(r#"{"max_thinking_tokens": 40, "thinking_token_budget": 41}"#, true).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("thinking_token_budget"));
    }

    #[test]
    fn s1s_controls_are_read() {
        let b = parse(
            r#"{"min_thinking_tokens": 10, "max_thinking_tokens": 20, "thinking_n_ignore": 2,
                "thinking_ignore_str": "Hmm", "thinking_budget_message": "So:", "thinking_past_max": "cut"}"#,
            true,
        )
        .unwrap();
        assert_eq!(
            (
                b.min_thinking,
                b.num_ignore,
                b.ignore_str.as_str(),
                b.final_answer.as_str()
            ),
            (10, 2, "Hmm", "So:")
        );
        assert_eq!(b.past_max, PastMax::Cut);
        assert!(b.thinking);
        let d = parse("{}", true).unwrap();
        assert_eq!(d, BudgetConfig::default(), "no controls: s1's defaults");
    }

    #[test]
    fn conflicts_and_negatives_are_400s() {
        for (body, param) in [
            (
                r#"{"min_thinking_tokens": 30, "max_thinking_tokens": 20}"#,
                "min_thinking_tokens",
            ),
            (r#"{"min_thinking_tokens": -1}"#, "min_thinking_tokens"),
            (r#"{"max_thinking_tokens": -5}"#, "max_thinking_tokens"),
            (r#"{"reasoning_effort": "extreme"}"#, "reasoning_effort"),
            (
                r#"{"reasoning_effort": "low", "thinking_budget_tokens": 9}"#,
                "reasoning_effort",
            ),
            (
                r#"{"min_thinking_tokens": 5, "chat_template_kwargs": {"enable_thinking": false}}"#,
                "min_thinking_tokens",
            ),
            (
                r#"{"thinking_n_ignore": 1, "reasoning_effort": "none"}"#,
                "thinking_n_ignore",
            ),
            (r#"{"thinking_past_max": "later"}"#, "thinking_past_max"),
            (
                r#"{"chat_template_kwargs": {"enable_thinking": "no"}}"#,
                "chat_template_kwargs.enable_thinking",
            ),
        ] {
            let e = parse(body, true).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(e.param.as_deref(), Some(param), "{body}: {}", e.message);
        }
    }

    #[test]
    fn effort_and_enable_thinking() {
        for (name, n) in EFFORT {
            let b = parse(&format!(r#"{{"reasoning_effort": "{name}"}}"#), true).unwrap();
            assert_eq!(b.max_thinking, MaxThinking::Tokens(*n));
        }
        assert!(!parse(r#"{"reasoning_effort": "none"}"#, true).unwrap().thinking);
        let off = parse(r#"{"chat_template_kwargs": {"enable_thinking": false}}"#, true).unwrap();
        assert!(!off.thinking);
        // A plain completion thinks only when asked.
        assert!(!parse("{}", false).unwrap().thinking);
        assert!(parse(r#"{"max_thinking_tokens": 8}"#, false).unwrap().thinking);
        assert!(
            parse(r#"{"chat_template_kwargs": {"enable_thinking": true}}"#, false)
                .unwrap()
                .thinking
        );
    }
}
