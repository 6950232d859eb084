//! Budget forcing over an OpenAI-compatible `/completions` endpoint, as s1's own loop runs it
//! with vLLM (lm-evaluation-harness fork, `vllm_causallms.py`, `_model_generate`):
//!
//! 1. the chat template is applied here, with the model's own tokenizer and template (the
//!    `tokenizer=` argument of s1's runs), and the thinking start appended;
//! 2. thinking runs with `max_tokens` = the budget and the end-of-thinking delimiters as `stop`;
//! 3. while Waits remain (or the minimum is not reached) and a round ended on its own, the ignore
//!    string is appended and the thinking continues, each round with the budget as its own
//!    `max_tokens`; the whole thinking is then cut to the budget (s1 cuts its token ids);
//! 4. a round that ran out gets the forced end (a newline unless the thinking ends with one, the
//!    answer delimiter, "Final Answer:"), a natural end the answer delimiter; the answer runs
//!    to the end of the turn.
//!
//! Tokens are counted with the local tokenizer (the thinking as text, re-encoded), so counts
//! and cuts do not depend on the server's `usage`. Across the HTTP text boundary each round's
//! prompt is text, re-tokenized by the server: when the model's sampled ids are not the ones
//! the tokenizer gives for their text, later rounds can differ from the local engine's (which
//! feeds the sampled ids). The first round is the local engine's token for token.

use serde_json::{json, Value};

use super::endpoint::EndpointClient;
use crate::cancel::CancelToken;
use crate::generate::{BudgetConfig, Generation, MaxThinking, SamplingParams, StopReason, ThinkingFormat};
use crate::model::{ChatMessage, ChatTemplate, TextTokenizer, ThinkingStyle};

/// Where and what to evaluate over an endpoint.
#[derive(Debug, Clone)]
pub struct EvalEndpoint {
    pub client: EndpointClient,
    /// The `model` sent with each request.
    pub model: String,
    /// The model's Hugging Face folder or GGUF file, for its tokenizer and chat template (its
    /// weights are not read).
    pub tokenizer: std::path::PathBuf,
    /// Requests in flight at once.
    pub concurrency: usize,
}

/// An endpoint with the model's text side, ready to run s1's loop.
pub struct RemoteModel {
    pub endpoint: EvalEndpoint,
    pub tokenizer: TextTokenizer,
    pub template: ChatTemplate,
    pub thinking: ThinkingStyle,
}

/// One `/completions` reply: its text and whether it ran out of `max_tokens`.
struct Round {
    text: String,
    length: bool,
    completion_tokens: Option<usize>,
}

impl RemoteModel {
    /// Reads the tokenizer and template (errors name the file).
    pub fn open(endpoint: &EvalEndpoint) -> Result<Self, String> {
        let (tokenizer, template, thinking) = crate::model::load_text_side(&endpoint.tokenizer)
            .map_err(|e| format!("--tokenizer {}: {e}", endpoint.tokenizer.display()))?;
        Ok(Self {
            endpoint: endpoint.clone(),
            tokenizer,
            template,
            thinking,
        })
    }

    /// The thinking format detected from the template and tokenizer.
    pub fn format(&self) -> ThinkingFormat {
        ThinkingFormat::for_style(&self.thinking)
    }

    /// The rendered prompt and the thinking start appended to it ("" when the template opens
    /// thinking itself).
    pub fn prompt(&self, user: &str, budget: &BudgetConfig) -> Result<(String, String), String> {
        let text = self
            .template
            .render(&[ChatMessage::new("user", user)], true, Some(budget.thinking))
            .map_err(|e| e.to_string())?;
        let start = budget.format.start.trim();
        let opened = !budget.thinking || start.is_empty() || text.trim_end().ends_with(start);
        Ok((
            text,
            if opened {
                String::new()
            } else {
                budget.format.start.clone()
            },
        ))
    }

    /// Tokens of `text` by the local tokenizer.
    pub fn count(&self, text: &str) -> Result<usize, String> {
        self.tokenizer
            .encode(text)
            .map(|ids| ids.len())
            .map_err(|e| e.to_string())
    }

    #[allow(clippy::too_many_arguments)]
    fn round(
        &self,
        agent: &ureq::Agent,
        prompt: &str,
        max_tokens: Option<usize>,
        stop: &[String],
        sampling: &SamplingParams,
        cancel: &CancelToken,
    ) -> Result<Round, String> {
        let mut body = json!({
            "model": self.endpoint.model,
            "prompt": prompt,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "seed": sampling.seed,
        });
        if let Some(n) = max_tokens {
            body["max_tokens"] = json!(n);
        }
        if !stop.is_empty() {
            body["stop"] = json!(stop);
        }
        let v = self.endpoint.client.post_json(agent, "/completions", &body, cancel)?;
        let url = format!("{}/completions", self.endpoint.client.base_url);
        let choice = v.pointer("/choices/0").ok_or_else(|| {
            format!(
                "{url}: reply without choices[0]: {}",
                v.to_string().chars().take(200).collect::<String>()
            )
        })?;
        let text = choice
            .get("text")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{url}: choices[0] has no `text`"))?;
        Ok(Round {
            text: text.to_string(),
            length: choice.get("finish_reason").and_then(Value::as_str) == Some("length"),
            completion_tokens: v
                .pointer("/usage/completion_tokens")
                .and_then(Value::as_u64)
                .map(|n| n as usize),
        })
    }

    /// One generation under `budget` (s1's loop), and its continuation as the grader reads it
    /// (thinking start, thinking, end, answer). `max_new`: the bound on all tokens after the
    /// prompt; `auto_prompt`: the longest prompt of the setting, for an `auto` budget.
    #[allow(clippy::too_many_arguments)]
    pub fn generate(
        &self,
        agent: &ureq::Agent,
        user: &str,
        budget: &BudgetConfig,
        sampling: &SamplingParams,
        max_new: Option<usize>,
        auto_prompt: Option<usize>,
        cancel: &CancelToken,
    ) -> Result<(Generation, String), String> {
        let t0 = std::time::Instant::now();
        let f = &budget.format;
        let (prompt, start) = self.prompt(user, budget)?;
        let prompt_tokens = self.count(&prompt)?;
        let forced = format!("{}\n{}", f.answer_start, budget.final_answer);
        let max = match budget.max_thinking {
            MaxThinking::Tokens(n) => Some(n),
            MaxThinking::Unlimited => None,
            MaxThinking::Auto => {
                let room = max_new.ok_or("an `auto` thinking budget needs a bound on the tokens (--max-tokens)")?;
                let used = auto_prompt.unwrap_or(prompt_tokens) + self.count(&start)? + self.count(&forced)? + 100;
                Some(room.saturating_sub(used))
            }
        };
        if !budget.thinking {
            let r = self.round(agent, &prompt, max_new, &[], sampling, cancel)?;
            let gen = generation(GenParts {
                prompt_tokens,
                answer_tokens: r.completion_tokens.map_or_else(|| self.count(&r.text), Ok)?,
                answer: r.text.clone(),
                stop: Some(if r.length {
                    StopReason::MaxTokens
                } else {
                    StopReason::EndOfTurn
                }),
                max,
                t0: Some(t0),
                ..GenParts::default()
            });
            return Ok((gen, r.text));
        }
        let head = format!("{prompt}{start}");
        let mut thinking = String::new();
        let (mut waits, mut waits_for_min, mut used) = (0, 0, 0usize);
        let left = |used: usize| max_new.map(|m| m.saturating_sub(used));
        let length = loop {
            let round_max = match (max, left(used)) {
                (Some(m), Some(l)) => Some(m.min(l)),
                (m, l) => m.or(l),
            };
            let r = self.round(agent, &format!("{head}{thinking}"), round_max, &f.end, sampling, cancel)?;
            used += r.completion_tokens.map_or_else(|| self.count(&r.text), Ok)?;
            thinking.push_str(&r.text);
            if r.length || cancel.is_cancelled() {
                break true;
            }
            let below_min = self.count(&thinking)? < budget.min_thinking;
            let room = left(used).is_none_or(|l| l > 0);
            if room && (waits < budget.num_ignore || below_min) {
                if waits >= budget.num_ignore {
                    waits_for_min += 1;
                }
                waits += 1;
                thinking.push_str(&budget.ignore_str);
                continue;
            }
            break false;
        };
        // s1 cuts the whole thinking to the budget after its rounds.
        let ids = self.tokenizer.encode(&thinking).map_err(|e| e.to_string())?;
        let mut thinking_cut = false;
        if let Some(m) = max {
            if ids.len() > m {
                thinking = self.tokenizer.decode(&ids[..m]).map_err(|e| e.to_string())?;
            }
            // As the local engine reports it: the thinking reached the maximum after an ignored
            // end (s1's hidden rounds past it), whether or not a round then ended exactly there.
            thinking_cut = waits > 0 && ids.len() >= m;
        }
        let thinking_tokens = ids.len().min(max.unwrap_or(usize::MAX));
        let end = if length {
            let nl = if thinking.ends_with('\n') { "" } else { "\n" };
            format!("{nl}{forced}")
        } else {
            f.answer_start.clone()
        };
        let answer_prompt = format!("{head}{thinking}{end}");
        let end_tokens = self.count(&end)?;
        let answer_max = left(thinking_tokens + end_tokens + self.count(&start)?);
        if answer_max == Some(0) {
            let gen = generation(GenParts {
                prompt_tokens,
                thinking: thinking.clone(),
                thinking_tokens,
                waits,
                waits_for_min,
                forced_end: length,
                thinking_cut,
                max,
                stop: Some(StopReason::MaxTokens),
                t0: Some(t0),
                ..GenParts::default()
            });
            return Ok((gen, format!("{start}{thinking}{end}")));
        }
        let r = self.round(agent, &answer_prompt, answer_max, &[], sampling, cancel)?;
        let prefix = if length { budget.final_answer.as_str() } else { "" };
        let gen = generation(GenParts {
            prompt_tokens,
            thinking: thinking.clone(),
            answer: format!("{prefix}{}", r.text),
            thinking_tokens,
            answer_tokens: r.completion_tokens.map_or_else(|| self.count(&r.text), Ok)?,
            waits,
            waits_for_min,
            forced_end: length,
            thinking_cut,
            max,
            stop: Some(if r.length {
                StopReason::MaxTokens
            } else {
                StopReason::EndOfTurn
            }),
            t0: Some(t0),
        });
        Ok((gen, format!("{start}{thinking}{end}{}", r.text)))
    }
}

#[derive(Default)]
struct GenParts {
    prompt_tokens: usize,
    thinking: String,
    answer: String,
    thinking_tokens: usize,
    answer_tokens: usize,
    waits: usize,
    waits_for_min: usize,
    forced_end: bool,
    thinking_cut: bool,
    max: Option<usize>,
    stop: Option<StopReason>,
    t0: Option<std::time::Instant>,
}

fn generation(p: GenParts) -> Generation {
    let secs = p.t0.map_or(0.0, |t| t.elapsed().as_secs_f64());
    let sampled = p.thinking_tokens + p.answer_tokens;
    Generation {
        thinking: p.thinking,
        answer: p.answer,
        prompt_tokens: p.prompt_tokens,
        thinking_tokens: p.thinking_tokens,
        answer_tokens: p.answer_tokens,
        waits_injected: p.waits,
        waits_for_min: p.waits_for_min,
        forced_end: p.forced_end,
        thinking_cut: p.thinking_cut,
        max_thinking: p.max,
        stop_reason: p.stop.unwrap_or(StopReason::EndOfTurn),
        injections: Vec::new(),
        output_ids: Vec::new(),
        prefill_s: 0.0,
        decode_s: secs,
        tokens_per_s: if secs > 0.0 { sampled as f64 / secs } else { 0.0 },
    }
}
