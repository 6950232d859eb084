//! Training data in the s1K schema: rows read from JSONL, JSON or Parquet, rendered with the
//! model's chat template as s1's data/tokenization.py renders them, tokenized, truncated to the
//! block size, the loss mask set (see [`super::mask`]), and cut into right-padded micro-batches
//! in a seeded order.

use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::Value;

use super::mask::{self, LossMask};
use crate::model::{ChatMessage, ChatTemplate, TextTokenizer};

/// Marks a position whose next-token target is not in the loss.
pub const IGNORE: u32 = u32::MAX;

/// Which columns hold the question, the thinking trace and the attempt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TraceColumns {
    /// Detect from the first row: s1K's `thinking_trajectories` + `attempt`, else s1K-1.1's
    /// `deepseek_thinking_trajectory` + `deepseek_attempt` (what s1.1 trained on).
    Auto,
    /// s1K: `thinking_trajectories` (a list of strings) + `attempt`.
    S1k,
    /// s1K-1.1, the DeepSeek-R1 traces: `deepseek_thinking_trajectory` + `deepseek_attempt`.
    Deepseek,
    /// s1K-1.1, the Gemini traces: `gemini_thinking_trajectory` + `gemini_attempt`.
    Gemini,
    /// Any other file: the trace column (a string or a list of strings) and the attempt column.
    Custom { trace: String, attempt: String },
}

impl TraceColumns {
    /// Parses `auto`, `s1k`, `deepseek`, `gemini` or `TRACE_COLUMN:ATTEMPT_COLUMN`.
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auto" => Self::Auto,
            "s1k" => Self::S1k,
            "deepseek" => Self::Deepseek,
            "gemini" => Self::Gemini,
            other => match other.split_once(':') {
                Some((t, a)) if !t.is_empty() && !a.is_empty() => Self::Custom {
                    trace: t.into(),
                    attempt: a.into(),
                },
                _ => {
                    return Err(format!(
                        "unknown trace columns '{s}': use auto, s1k, deepseek, gemini or TRACE_COLUMN:ATTEMPT_COLUMN"
                    ))
                }
            },
        })
    }

    fn columns(&self) -> Option<(&str, &str)> {
        match self {
            Self::Auto => None,
            Self::S1k => Some(("thinking_trajectories", "attempt")),
            Self::Deepseek => Some(("deepseek_thinking_trajectory", "deepseek_attempt")),
            Self::Gemini => Some(("gemini_thinking_trajectory", "gemini_attempt")),
            Self::Custom { trace, attempt } => Some((trace, attempt)),
        }
    }
}

/// Errors reading or rendering training data; each names the file and, where there is one, the row.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Row {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
}

/// One s1K row: the question, its thinking trace(s) and the attempt (the answer written after).
#[derive(Debug, Clone, PartialEq)]
pub struct S1Row {
    pub question: String,
    pub trajectories: Vec<String>,
    pub attempt: String,
    /// 1-based line (JSONL) or index + 1 (JSON array) in the source file.
    pub line: usize,
}

impl S1Row {
    /// The assistant turn as s1's data/tokenization.py (`process_cot_example`) writes it:
    /// `<|im_start|>think\n` + the trajectories joined by newlines and stripped +
    /// `\n<|im_start|>answer\n` + the answer, where the answer is `Answer: ` + attempt unless the
    /// attempt already contains `Answer:`, stripped after that prefix is added (so an attempt
    /// " 128" gives "Answer:  128", not "Answer: 128").
    pub fn assistant_text(&self) -> String {
        let thinking = self.trajectories.join("\n");
        let answer = if self.attempt.contains("Answer:") {
            self.attempt.clone()
        } else {
            format!("Answer: {}", self.attempt)
        };
        format!(
            "<|im_start|>think\n{}\n<|im_start|>answer\n{}",
            py_strip(&thinking),
            py_strip(&answer)
        )
    }
}

/// Python's `str.strip()` with no argument (s1's tokenization.py strips with it).
pub use crate::pytext::strip as py_strip;

/// Reads rows from a `.jsonl` file (one object per line), a `.json` file (an array of objects) or a
/// `.parquet` file (e.g. the curation export, or a Hugging Face `datasets` file).
pub fn read_rows(path: &Path, columns: &TraceColumns) -> Result<Vec<S1Row>, DataError> {
    let row_err = |line: usize, message: String| DataError::Row {
        path: path.into(),
        line,
        message,
    };
    let mut objects: Vec<(usize, serde_json::Map<String, Value>)> = Vec::new();
    let mut bad: Option<DataError> = None;
    crate::data::read::for_each_row(path, |row| match row {
        Ok(r) => {
            objects.push((r.line, r.columns));
            true
        }
        Err(e) => {
            bad = Some(row_err(e.line, e.message));
            false
        }
    })
    .map_err(|e| DataError::File {
        path: path.into(),
        message: match e {
            crate::data::read::ReadError::File { message, .. } => message,
        },
    })?;
    if let Some(e) = bad {
        return Err(e);
    }
    let Some((_, first)) = objects.first() else {
        return Err(DataError::File {
            path: path.into(),
            message: "no rows".into(),
        });
    };
    let (trace_col, attempt_col) = match columns.columns() {
        Some(c) => (c.0.to_string(), c.1.to_string()),
        None => {
            let auto = [TraceColumns::S1k, TraceColumns::Deepseek, TraceColumns::Gemini]
                .into_iter()
                .find_map(|c| {
                    c.columns()
                        .filter(|(t, _)| first.contains_key(*t))
                        .map(|(t, a)| (t.to_string(), a.to_string()))
                });
            auto.ok_or_else(|| DataError::File {
                path: path.into(),
                message: format!(
                    "no thinking-trace column: expected s1K's `thinking_trajectories` or s1K-1.1's \
                     `deepseek_thinking_trajectory` / `gemini_thinking_trajectory` (found: {}); \
                     name the columns with --trace-columns TRACE:ATTEMPT",
                    first.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            })?
        }
    };
    let mut rows = Vec::with_capacity(objects.len());
    for (line, o) in objects {
        let text_field = |name: &str| -> Result<String, DataError> {
            match o.get(name) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(Value::Null) | None => Err(row_err(line, format!("missing `{name}`"))),
                Some(other) => Err(row_err(line, format!("`{name}` is not a string but {}", kind(other)))),
            }
        };
        let question = text_field("question")?;
        let trajectories = match o.get(&trace_col) {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(row_err(
                        line,
                        format!("`{trace_col}` holds {} instead of strings", kind(other)),
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(Value::Null) | None => return Err(row_err(line, format!("missing `{trace_col}`"))),
            Some(other) => return Err(row_err(line, format!("`{trace_col}` is {}", kind(other)))),
        };
        if trajectories.iter().all(|t| t.trim().is_empty()) {
            return Err(row_err(line, format!("`{trace_col}` is empty")));
        }
        let attempt = text_field(&attempt_col)?;
        rows.push(S1Row {
            question,
            trajectories,
            attempt,
            line,
        });
    }
    Ok(rows)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A tokenized example: the ids and which of them are trained on.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub ids: Vec<u32>,
    /// Whether token `i` is a target of the loss (predicted from the logits at `i - 1`), as the
    /// [`LossMask`] chose.
    pub loss: Vec<bool>,
    /// Tokens of the rendered prompt, through the generation prompt (`<|im_start|>assistant\n`).
    pub prompt_tokens: usize,
    /// Tokens cut off by the block size.
    pub truncated: usize,
    pub line: usize,
}

impl Example {
    /// Whether token `i` is in the loss.
    pub fn in_loss(&self, i: usize) -> bool {
        self.loss.get(i).copied().unwrap_or(false)
    }

    /// Tokens that are targets (the first token never is: nothing predicts it).
    pub fn loss_tokens(&self) -> usize {
        self.loss.iter().skip(1).filter(|&&b| b).count()
    }

    /// The first trained token and one past the last (equal when none is trained).
    pub fn loss_span(&self) -> (usize, usize) {
        let start = self.loss.iter().position(|&b| b).unwrap_or(self.ids.len());
        let end = self.loss.iter().rposition(|&b| b).map_or(start, |e| e + 1);
        (start, end)
    }
}

/// Renders and tokenizes rows for a model.
pub struct Renderer<'a> {
    pub tokenizer: &'a TextTokenizer,
    pub template: &'a ChatTemplate,
    pub block_size: usize,
    pub mask: LossMask,
}

impl Renderer<'_> {
    /// The full conversation text (user turn, assistant turn) and the generation prompt before
    /// the assistant's text, both through the model's chat template.
    pub fn render(&self, row: &S1Row) -> Result<(String, String), String> {
        let user = ChatMessage::new("user", row.question.clone());
        let full = self
            .template
            .render(
                &[user.clone(), ChatMessage::new("assistant", row.assistant_text())],
                false,
                None,
            )
            .map_err(|e| format!("chat template: {e}"))?;
        let prompt = self
            .template
            .render(&[user], true, None)
            .map_err(|e| format!("chat template: {e}"))?;
        if !full.starts_with(&prompt) {
            return Err(
                "the chat template renders the conversation so that it does not start with its own \
                        generation prompt; cannot tell the assistant part apart"
                    .into(),
            );
        }
        Ok((full, prompt))
    }

    /// Tokenizes one row (as s1's SFTTrainer: the whole text, cut to the block size) and sets
    /// the loss mask on the cut ids. [`LossMask::Completion`] runs TRL's completion-only rule
    /// with the templates s1 uses for the model family (other templates: from the end of the
    /// generation prompt to the end); [`LossMask::Turn`] trains from the end of the generation
    /// prompt through the first end-of-turn token.
    pub fn example(&self, row: &S1Row) -> Result<Example, String> {
        let (full, prompt) = self.render(row)?;
        // Only what the block can use is encoded: a 200 MB row must not reach the tokenizer.
        let limit = self.tokenizer.chars_for_tokens(self.block_size);
        let (full, prompt) = (cut_chars(&full, limit), cut_chars(&prompt, limit));
        let mut ids = self.tokenizer.encode(full).map_err(|e| e.to_string())?;
        let prompt_ids = self.tokenizer.encode(prompt).map_err(|e| e.to_string())?;
        if ids.len() < prompt_ids.len() || ids[..prompt_ids.len()] != prompt_ids[..] {
            return Err("the prompt tokenizes differently inside the full conversation".into());
        }
        let prompt_tokens = prompt_ids.len();
        let truncated = ids.len().saturating_sub(self.block_size);
        ids.truncate(self.block_size);
        let loss = match self.mask {
            LossMask::Completion => {
                let pad = mask::trl_pad(self.tokenizer);
                match mask::trl_templates(prompt) {
                    Some((instruction, response)) => {
                        let enc = |t: &str| self.tokenizer.encode(t).map_err(|e| e.to_string());
                        mask::completion_only(&ids, &enc(instruction)?, &enc(response)?, pad)
                    }
                    None => (0..ids.len())
                        .map(|i| i >= prompt_tokens && Some(ids[i]) != pad)
                        .collect(),
                }
            }
            LossMask::Turn => {
                let eot = &self.tokenizer.special.eos_ids;
                let end = ids
                    .iter()
                    .skip(prompt_tokens)
                    .position(|id| eot.contains(id))
                    .map_or(ids.len(), |p| prompt_tokens + p + 1);
                (0..ids.len()).map(|i| i >= prompt_tokens && i < end).collect()
            }
        };
        Ok(Example {
            ids,
            loss,
            prompt_tokens,
            truncated,
            line: row.line,
        })
    }
}

/// The pad token: `<|fim_pad|>` where the tokenizer has it (as s1 sets it, so that `<|im_end|>` is
/// never padding), else the configured pad token unless it ends a turn, else id 0. Padded
/// positions are out of the loss by position, so the id only has to be valid.
pub fn pad_id(tokenizer: &TextTokenizer) -> u32 {
    if let Some(id) = tokenizer.token_to_id("<|fim_pad|>") {
        return id;
    }
    tokenizer
        .special
        .pad
        .as_deref()
        .and_then(|p| tokenizer.token_to_id(p))
        .filter(|id| !tokenizer.special.eos_ids.contains(id))
        .unwrap_or(0)
}

/// A right-padded micro-batch with next-token targets.
#[derive(Debug, Clone, PartialEq)]
pub struct MicroBatch {
    pub rows: usize,
    pub seq: usize,
    /// `rows * seq` input ids.
    pub ids: Vec<u32>,
    /// `rows * seq` targets: the id the logits at this position must predict, or [`IGNORE`].
    pub targets: Vec<u32>,
    /// Positions with a target.
    pub loss_tokens: usize,
}

impl MicroBatch {
    /// Positions of row `r` with a target.
    pub fn row_loss_tokens(&self, r: usize) -> usize {
        self.targets
            .get(r * self.seq..(r + 1) * self.seq)
            .map_or(0, |t| t.iter().filter(|&&t| t != IGNORE).count())
    }
}

impl MicroBatch {
    /// Pads `examples` to the longest of them with `pad`; the target at position `p` is token
    /// `p + 1` when that token is in the loss.
    pub fn new(examples: &[&Example], pad: u32) -> Self {
        let seq = examples.iter().map(|e| e.ids.len()).max().unwrap_or(0);
        let rows = examples.len();
        let mut ids = vec![pad; rows * seq];
        let mut targets = vec![IGNORE; rows * seq];
        let mut loss_tokens = 0;
        for (r, e) in examples.iter().enumerate() {
            ids[r * seq..r * seq + e.ids.len()].copy_from_slice(&e.ids);
            for p in 0..e.ids.len().saturating_sub(1) {
                if e.in_loss(p + 1) {
                    targets[r * seq + p] = e.ids[p + 1];
                    loss_tokens += 1;
                }
            }
        }
        Self {
            rows,
            seq,
            ids,
            targets,
            loss_tokens,
        }
    }
}

/// The order of examples for every optimizer step: `epochs` passes, each a seeded shuffle, cut
/// into global batches. The last batch of an epoch, when short, is completed with the epoch's
/// first examples (again from its start while short) under `fill_last`, as s1 gets from
/// accelerate's `even_batches` when 1,000 examples are sharded over 16 GPUs; else it stays short.
pub fn schedule(n: usize, epochs: usize, global_batch: usize, seed: u64, fill_last: bool) -> Vec<Vec<usize>> {
    let global_batch = global_batch.max(1);
    let mut steps = Vec::new();
    for epoch in 0..epochs {
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed.wrapping_add(epoch as u64));
        order.shuffle(&mut rng);
        for chunk in order.chunks(global_batch) {
            let mut step = chunk.to_vec();
            if fill_last {
                step.extend(order.iter().cycle().take(global_batch - chunk.len()));
            }
            steps.push(step);
        }
    }
    steps
}

/// Steps per epoch for `n` examples.
pub fn steps_per_epoch(n: usize, global_batch: usize) -> usize {
    n.div_ceil(global_batch.max(1))
}

/// The first `max` characters of `s` (all of it when shorter).
pub fn cut_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
