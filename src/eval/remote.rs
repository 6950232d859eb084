//! Budget forcing over an OpenAI-compatible `/completions` endpoint, as s1's own loop runs it
//! with vLLM (lm-evaluation-harness fork, `vllm_causallms.py`, `_model_generate`), on token ids:
//!
//! 1. the chat template is applied here, with the model's own tokenizer and template (the
//!    `tokenizer=` argument of s1's runs), tokenized, and the thinking start's ids appended;
//! 2. thinking runs with `max_tokens` = the budget and the end-of-thinking delimiters as `stop`;
//! 3. while Waits remain (or the minimum is not reached) and a round ended on its own, its ids
//!    (a trailing delimiter stripped) and the ignore string's ids are appended and the thinking
//!    continues, each round with the budget as its own `max_tokens`; the whole thinking is then
//!    cut to the budget's ids;
//! 4. a round that ran out gets the forced end (a newline unless the thinking ends with one, the
//!    answer delimiter, "Final Answer:"), a natural end the answer delimiter; the answer runs
//!    to the end of the turn.
//!
//! Each prompt goes as token ids ([`PromptForm::Ids`]; text for servers that refuse them), so the
//! server continues exactly the ids the local engine would. A round's sampled ids are the ones
//! the server returns (`token_ids`, vLLM's `return_token_ids`), else its text encoded by the
//! local tokenizer, which for a model's own greedy text is almost always the same ids.

use serde_json::{json, Map, Value};

use super::endpoint::EndpointClient;
use super::remote_request::{self, PromptForm};
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
    /// How prompts travel (token ids unless the server refuses them).
    pub prompts: PromptForm,
    /// Fields added to (or, `null`, removed from) every request ([`remote_request::body`]).
    pub params: Map<String, Value>,
}

impl EvalEndpoint {
    /// An endpoint with the defaults: token-id prompts, no extra fields.
    pub fn new(client: EndpointClient, model: &str, tokenizer: &std::path::Path, concurrency: usize) -> Self {
        Self {
            client,
            model: model.to_string(),
            tokenizer: tokenizer.to_path_buf(),
            concurrency,
            prompts: PromptForm::default(),
            params: Map::new(),
        }
    }
}

/// An endpoint with the model's text side, ready to run s1's loop.
pub struct RemoteModel {
    pub endpoint: EvalEndpoint,
    pub tokenizer: TextTokenizer,
    pub template: ChatTemplate,
    pub thinking: ThinkingStyle,
}

/// One `/completions` reply: its text, its sampled ids and whether it ran out of `max_tokens`;
/// `retokenized`: its prompt went as text that does not tokenize to the loop's ids.
struct Round {
    text: String,
    ids: Vec<u32>,
    length: bool,
    retokenized: bool,
}

/// What [`RemoteModel::generate`] made: the generation, its continuation as the grader reads
/// it, and whether a text prompt drifted from the loop's ids ([`Round`]).
pub struct RemoteGeneration {
    pub generation: Generation,
    pub continuation: String,
    pub retokenized: bool,
}

/// A prompt as it grows round by round: its ids and the same as text.
#[derive(Clone, Default)]
struct Sent {
    ids: Vec<u32>,
    text: String,
}

impl Sent {
    fn push(&mut self, ids: &[u32], text: &str) {
        self.ids.extend_from_slice(ids);
        self.text.push_str(text);
    }

    fn joined(&self, more: &Sent) -> Sent {
        let mut s = self.clone();
        s.push(&more.ids, &more.text);
        s
    }
}

/// The ids of the loop's fixed pieces.
struct Pieces {
    start: Sent,
    ignore: Sent,
    answer: Sent,
    forced: Sent,
    newline: Sent,
    stops: Vec<Vec<u32>>,
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
        self.encode(text).map(|ids| ids.len())
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        self.tokenizer.encode(text).map_err(|e| e.to_string())
    }

    /// The prompt's ids as the local engine feeds them (BOS first when the tokenizer asks).
    pub fn prompt_ids(&self, prompt: &str) -> Result<Vec<u32>, String> {
        self.tokenizer.encode_with_bos(prompt).map_err(|e| e.to_string())
    }

    fn piece(&self, text: &str) -> Result<Sent, String> {
        Ok(Sent {
            ids: self.encode(text)?,
            text: text.to_string(),
        })
    }

    fn pieces(&self, start: &str, budget: &BudgetConfig) -> Result<Pieces, String> {
        let f = &budget.format;
        Ok(Pieces {
            start: self.piece(start)?,
            ignore: self.piece(&budget.ignore_str)?,
            answer: self.piece(&f.answer_start)?,
            forced: self.piece(&format!("{}\n{}", f.answer_start, budget.final_answer))?,
            newline: self.piece("\n")?,
            stops: f.end.iter().map(|e| self.encode(e)).collect::<Result<_, _>>()?,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn round(
        &self,
        agent: &ureq::Agent,
        prompt: &Sent,
        max_tokens: Option<usize>,
        stop: &[String],
        stops: &[Vec<u32>],
        sampling: &SamplingParams,
        cancel: &CancelToken,
    ) -> Result<Round, String> {
        let (prompt_value, retokenized) = match self.endpoint.prompts {
            PromptForm::Ids => (json!(prompt.ids), false),
            PromptForm::Text => (json!(prompt.text), self.prompt_ids(&prompt.text)? != prompt.ids),
        };
        let body = remote_request::body(
            &self.endpoint.model,
            prompt_value,
            max_tokens,
            stop,
            sampling,
            &self.endpoint.params,
        );
        let url = format!("{}/completions", self.endpoint.client.base_url);
        let v = self
            .endpoint
            .client
            .post_json(agent, "/completions", &body, cancel)
            .map_err(|e| match self.endpoint.prompts {
                // llama-cpp-python's server answers a token prompt with 500 and a validation
                // error on `prompt`; others with 400 or 422.
                PromptForm::Ids if e.contains("prompt") => {
                    format!("{e}\n(if this server does not take token-id prompts, try --endpoint-prompts text)")
                }
                _ => e,
            })?;
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
        let ids =
            match remote_request::reply_ids(choice, self.tokenizer.max_token_id).map_err(|e| format!("{url}: {e}"))? {
                Some(ids) => remote_request::strip_stop(ids, stops),
                None => self.encode(text)?,
            };
        Ok(Round {
            text: text.to_string(),
            ids,
            length: choice.get("finish_reason").and_then(Value::as_str) == Some("length"),
            retokenized,
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
    ) -> Result<RemoteGeneration, String> {
        let t0 = std::time::Instant::now();
        let f = &budget.format;
        let (prompt_text, start) = self.prompt(user, budget)?;
        let prompt = Sent {
            ids: self.prompt_ids(&prompt_text)?,
            text: prompt_text,
        };
        let prompt_tokens = prompt.ids.len();
        let p = self.pieces(&start, budget)?;
        let max = match budget.max_thinking {
            MaxThinking::Tokens(n) => Some(n),
            MaxThinking::Unlimited => None,
            MaxThinking::Auto => {
                let room = max_new.ok_or("an `auto` thinking budget needs a bound on the tokens (--max-tokens)")?;
                let used = auto_prompt.unwrap_or(prompt_tokens) + p.start.ids.len() + p.forced.ids.len() + 100;
                Some(room.saturating_sub(used))
            }
        };
        if !budget.thinking {
            let r = self.round(agent, &prompt, max_new, &[], &[], sampling, cancel)?;
            let gen = generation(GenParts {
                prompt_tokens,
                answer_tokens: r.ids.len(),
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
            return Ok(RemoteGeneration {
                generation: gen,
                continuation: r.text,
                retokenized: r.retokenized,
            });
        }
        let head = prompt.joined(&p.start);
        let mut thinking = Sent::default();
        let (mut waits, mut waits_for_min, mut used) = (0, 0, 0usize);
        let mut retokenized = false;
        let left = |used: usize| max_new.map(|m| m.saturating_sub(used));
        let length = loop {
            let round_max = match (max, left(used)) {
                (Some(m), Some(l)) => Some(m.min(l)),
                (m, l) => m.or(l),
            };
            let r = self.round(
                agent,
                &head.joined(&thinking),
                round_max,
                &f.end,
                &p.stops,
                sampling,
                cancel,
            )?;
            used += r.ids.len();
            retokenized |= r.retokenized;
            thinking.push(&r.ids, &r.text);
            if r.length || cancel.is_cancelled() {
                break true;
            }
            let below_min = thinking.ids.len() < budget.min_thinking;
            let room = left(used).is_none_or(|l| l > 0);
            if room && (waits < budget.num_ignore || below_min) {
                if waits >= budget.num_ignore {
                    waits_for_min += 1;
                }
                waits += 1;
                thinking.push(&p.ignore.ids, &p.ignore.text);
                continue;
            }
            break false;
        };
        // s1 cuts the whole thinking's ids to the budget after its rounds.
        let mut thinking_cut = false;
        if let Some(m) = max {
            if thinking.ids.len() > m {
                thinking.ids.truncate(m);
                thinking.text = self.tokenizer.decode(&thinking.ids).map_err(|e| e.to_string())?;
            }
            // As the local engine reports it: the thinking reached the maximum after an ignored
            // end (s1's hidden rounds past it), whether or not a round then ended exactly there.
            thinking_cut = waits > 0 && thinking.ids.len() >= m;
        }
        let thinking_tokens = thinking.ids.len();
        let end = if length {
            let mut end = Sent::default();
            if !thinking.text.ends_with('\n') {
                end.push(&p.newline.ids, &p.newline.text);
            }
            end.joined(&p.forced)
        } else {
            p.answer.clone()
        };
        let answer_prompt = head.joined(&thinking).joined(&end);
        let answer_max = left(thinking_tokens + end.ids.len() + p.start.ids.len());
        if answer_max == Some(0) {
            let gen = generation(GenParts {
                prompt_tokens,
                thinking: thinking.text.clone(),
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
            return Ok(RemoteGeneration {
                generation: gen,
                continuation: format!("{start}{}{}", thinking.text, end.text),
                retokenized,
            });
        }
        let r = self.round(agent, &answer_prompt, answer_max, &[], &[], sampling, cancel)?;
        let prefix = if length { budget.final_answer.as_str() } else { "" };
        let gen = generation(GenParts {
            prompt_tokens,
            thinking: thinking.text.clone(),
            answer: format!("{prefix}{}", r.text),
            thinking_tokens,
            answer_tokens: r.ids.len(),
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
        Ok(RemoteGeneration {
            generation: gen,
            continuation: format!("{start}{}{}{}", thinking.text, end.text, r.text),
            retokenized: retokenized || r.retokenized,
        })
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
