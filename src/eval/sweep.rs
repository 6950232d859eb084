//! A sweep: every question of a benchmark under every budget setting (and K samples each),
//! generated through the engine's budget forcing, graded offline, and appended to
//! samples.jsonl as each finishes, so a rerun resumes where the last one stopped.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::benchmarks::{Benchmark, Question};
pub use super::continuation::{continuation, graded_text};
use crate::cancel::CancelToken;
use crate::generate::{chat, chat_batch, BudgetConfig, GenerateParams, MaxThinking, SamplingParams, ThinkingFormat};
use crate::grade::{grade_with, Extraction, Verdict};
use crate::model::{ChatMessage, LoadedModel};

/// How a setting holds thinking to its budget (S1_RECIPE.md §5: budget forcing and the
/// baselines it is compared with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// s1's budget forcing: the end of thinking forced at the budget, "Wait" for the waits.
    Forcing,
    /// Token-conditional control: "Think for up to N tokens." after the question; the thinking
    /// capped at `auto` only, as s1 ran it.
    TokenPrompt,
    /// Rejection sampling: generate until the thinking ends on its own within N tokens (its end
    /// token counted, as s1 counts it), at most `tries` times (the last try is kept when none
    /// fits; s1 has no limit).
    Rejection { tries: usize },
}

/// The ignore string s1's budget forcing appends by default (its `thinking_n_ignore_str`).
pub const WAIT: &str = "Wait";

/// One budget setting of the sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub max_thinking: MaxThinking,
    pub waits: usize,
    pub min_thinking: usize,
    pub method: Method,
    /// Appended in place of an ignored end of thinking ("Wait"; s1's ablations also ran "Hmm",
    /// "Alternatively" and no string at all).
    pub ignore_str: String,
}

impl Setting {
    /// The setting's name in samples and metrics, e.g. `max=512 waits=0`, `prompt max=512`,
    /// `reject max=512`.
    pub fn key(&self) -> String {
        let max = match self.max_thinking {
            MaxThinking::Tokens(n) => n.to_string(),
            MaxThinking::Auto => "auto".into(),
            MaxThinking::Unlimited => "unlimited".into(),
        };
        match self.method {
            // "Wait" is the default and keeps the short name.
            Method::Forcing if self.ignore_str != WAIT && (self.waits > 0 || self.min_thinking > 0) => {
                let ignore = if self.ignore_str.is_empty() {
                    "none"
                } else {
                    self.ignore_str.as_str()
                };
                format!("max={max} waits={} ignore={ignore}", self.waits)
            }
            Method::Forcing => format!("max={max} waits={}", self.waits),
            Method::TokenPrompt => format!("prompt max={max}"),
            Method::Rejection { .. } => format!("reject max={max}"),
        }
    }

    /// The series a setting's point belongs to in plots.
    pub fn series(key: &str) -> &'static str {
        if key.starts_with("prompt ") {
            "token-conditional prompt"
        } else if key.starts_with("reject ") {
            "rejection sampling"
        } else {
            "budget forcing"
        }
    }
}

/// The baseline settings for the numeric budgets of `max`: one per method in `methods`.
pub fn baseline_settings(max: &[MaxThinking], methods: &[Method]) -> Vec<Setting> {
    methods
        .iter()
        .flat_map(|&method| {
            max.iter().filter_map(move |&m| {
                matches!(m, MaxThinking::Tokens(_)).then_some(Setting {
                    max_thinking: m,
                    waits: 0,
                    min_thinking: 0,
                    method,
                    ignore_str: WAIT.into(),
                })
            })
        })
        .collect()
}

/// `v` without repeats, in first-seen order.
fn unique<T: PartialEq>(v: Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(v.len());
    for x in v {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

/// The settings of a sweep from its lists (every budget with every waits count); errors name
/// the bad entry.
pub fn settings_from_lists(max: &[String], waits: &[String], min_thinking: usize) -> Result<Vec<Setting>, String> {
    let max: Vec<MaxThinking> = max
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<MaxThinking>().map_err(|e| format!("budgets: {e}")))
        .collect::<Result<_, _>>()?;
    let waits: Vec<usize> = waits
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| format!("waits: `{s}` is not a number")))
        .collect::<Result<_, _>>()?;
    if max.is_empty() || waits.is_empty() {
        return Err("empty sweep: give at least one thinking budget and one waits count".into());
    }
    // A value listed twice is one setting (twice, it would be generated twice).
    let (max, waits) = (unique(max), unique(waits));
    Ok(max
        .iter()
        .flat_map(|&m| {
            waits.iter().map(move |&w| Setting {
                max_thinking: m,
                waits: w,
                min_thinking,
                method: Method::Forcing,
                ignore_str: WAIT.into(),
            })
        })
        .collect())
}

/// One generated and graded sample (a line of samples.jsonl).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub setting: String,
    pub question_id: String,
    /// Which of the K samples of this question and setting.
    pub sample: usize,
    pub prompt: String,
    pub thinking: String,
    pub answer: String,
    pub extracted: Option<String>,
    pub reference: String,
    pub verdict: Verdict,
    pub thinking_tokens: usize,
    pub answer_tokens: usize,
    pub waits_injected: usize,
    pub forced_end: bool,
    /// The thinking was cut at the maximum after s1's hidden rounds past it.
    #[serde(default)]
    pub thinking_cut: bool,
    /// How the answer was read (`s1` or `lenient`); samples.jsonl files written before it was
    /// recorded lack it (read back as `s1`).
    #[serde(default)]
    pub extraction: Extraction,
    pub min_thinking: usize,
    /// The thinking budget in force, or the one asked for by a baseline (None: unlimited).
    pub max_thinking: Option<usize>,
    /// Generations made for this sample (rejection sampling: up to its tries).
    #[serde(default = "one")]
    pub attempts: usize,
    /// Generated over an endpoint that was sent text prompts, and some round's text did not
    /// tokenize back to the ids s1's loop built (a delimiter merging with the sampled text
    /// beside it): from that round on, the sample may differ from the loop on token ids.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retokenized: bool,
}

fn one() -> usize {
    1
}

/// What a sweep runs besides the model and the benchmark.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    pub settings: Vec<Setting>,
    /// Questions used (the first N); None: all.
    pub limit: Option<usize>,
    /// Samples per question and setting.
    pub samples: usize,
    pub temperature: f64,
    pub top_p: f64,
    pub seed: u64,
    pub max_new_tokens: Option<usize>,
    /// Sequences generated at once (budget forcing and the token-conditional prompt; rejection
    /// sampling runs one at a time).
    pub batch: usize,
    /// How answers are read before they are compared (s1's by default).
    pub extraction: Extraction,
}

/// Progress of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    /// Samples found in samples.jsonl from an earlier run.
    pub resumed: usize,
}

/// The prompt text, budget and tries of a setting for question `q`, in `format` (the one
/// detected for the model: [`ThinkingFormat::detect`]).
pub(super) fn plan(
    setting: &Setting,
    q: &Question,
    format: &ThinkingFormat,
) -> (String, BudgetConfig, usize, Option<usize>) {
    let budget_n = match setting.max_thinking {
        MaxThinking::Tokens(n) => Some(n),
        _ => None,
    };
    match setting.method {
        Method::Forcing => (
            q.question.clone(),
            BudgetConfig {
                min_thinking: setting.min_thinking,
                max_thinking: setting.max_thinking,
                num_ignore: setting.waits,
                ignore_str: setting.ignore_str.clone(),
                format: format.clone(),
                ..BudgetConfig::default()
            },
            1,
            budget_n,
        ),
        // s1 (commands.sh "Token-conditional control") caps the thinking at `auto`.
        Method::TokenPrompt => (
            format!("{}\n\nThink for up to {} tokens.", q.question, budget_n.unwrap_or(0)),
            BudgetConfig {
                max_thinking: MaxThinking::Auto,
                format: format.clone(),
                ..BudgetConfig::default()
            },
            1,
            budget_n,
        ),
        // s1 (vllm_causallms.py, `rejection_sample`) generates the thinking with
        // `max_tokens` = budget + 1 and keeps it when it ended within the budget, its end token
        // counted: here, the budget forces an end at N and a try fits when it ended on its own
        // before N thinking tokens.
        Method::Rejection { tries } => (
            q.question.clone(),
            BudgetConfig {
                max_thinking: budget_n.map_or(MaxThinking::Unlimited, MaxThinking::Tokens),
                format: format.clone(),
                ..BudgetConfig::default()
            },
            tries.max(1),
            budget_n,
        ),
    }
}

/// Whether a try of rejection sampling fits its budget (s1: the thinking and its end token,
/// at most N tokens).
pub(super) fn fits(gen: &crate::generate::Generation, budget_n: Option<usize>) -> bool {
    thinking_fits(gen.forced_end, gen.thinking_tokens, budget_n)
}

fn thinking_fits(forced_end: bool, thinking_tokens: usize, budget_n: Option<usize>) -> bool {
    budget_n.is_none_or(|n| !forced_end && thinking_tokens < n)
}

/// The prompt length s1's `auto` budget subtracts: the longest of the setting's prompts (lm-eval
/// hands vLLM all of a task's prompts at once); `None` when the setting has no `auto` budget.
/// `lengths` keeps each prompt text's token count, so settings that share prompts render them once.
fn longest_prompt(
    model: &LoadedModel,
    setting: &Setting,
    questions: &[Question],
    lengths: &mut HashMap<String, usize>,
) -> Result<Option<usize>, String> {
    let mut longest = None;
    let format = ThinkingFormat::detect(model);
    for q in questions {
        let (text, budget, _, _) = plan(setting, q, &format);
        if budget.max_thinking != MaxThinking::Auto {
            return Ok(None);
        }
        let n = match lengths.get(&text) {
            Some(&n) => n,
            None => {
                let prompt = crate::generate::build_prompt(model, &[ChatMessage::new("user", &text)], &budget)
                    .map_err(|e| format!("question {}: {e}", q.id))?;
                lengths.insert(text, prompt.ids.len());
                prompt.ids.len()
            }
        };
        longest = longest.max(Some(n));
    }
    Ok(longest)
}

pub(super) fn params(
    cfg: &SweepConfig,
    budget: &BudgetConfig,
    k: usize,
    attempt: usize,
    auto_prompt: Option<usize>,
) -> GenerateParams {
    GenerateParams {
        sampling: SamplingParams {
            temperature: cfg.temperature,
            top_p: cfg.top_p,
            top_k: 0,
            // Each try of each sample draws differently (with a temperature above 0).
            seed: cfg.seed.wrapping_add(k as u64).wrapping_add(1_000_003 * attempt as u64),
        },
        budget: budget.clone(),
        max_new_tokens: cfg.max_new_tokens,
        auto_prompt_tokens: auto_prompt,
    }
}

/// Grades a generation into a sample: s1 grades the whole `continuation`, thinking included
/// (its extraction then reads the part after the last answer delimiter).
#[allow(clippy::too_many_arguments)]
pub(super) fn graded(
    bench: &Benchmark,
    cfg: &SweepConfig,
    setting: &Setting,
    q: &Question,
    k: usize,
    prompt: String,
    (gen, continuation): (crate::generate::Generation, String),
    budget_n: Option<usize>,
    attempts: usize,
) -> Sample {
    let g = grade_with(&continuation, &q.reference, bench.kind, cfg.extraction);
    Sample {
        setting: setting.key(),
        question_id: q.id.clone(),
        sample: k,
        prompt,
        thinking: gen.thinking,
        answer: gen.answer,
        extracted: g.extracted,
        reference: g.reference,
        verdict: g.verdict,
        thinking_tokens: gen.thinking_tokens,
        answer_tokens: gen.answer_tokens,
        waits_injected: gen.waits_injected,
        forced_end: gen.forced_end,
        thinking_cut: gen.thinking_cut,
        extraction: cfg.extraction,
        min_thinking: setting.min_thinking,
        max_thinking: match setting.method {
            Method::Forcing => gen.max_thinking,
            _ => budget_n,
        },
        attempts,
        retokenized: false,
    }
}

/// Generates and grades sample `k` of question `q` under `setting`, alone.
#[allow(clippy::too_many_arguments)]
fn sample(
    model: &LoadedModel,
    bench: &Benchmark,
    cfg: &SweepConfig,
    setting: &Setting,
    q: &Question,
    k: usize,
    auto_prompt: Option<usize>,
    cancel: &CancelToken,
) -> Result<Sample, String> {
    let (prompt, budget, tries, budget_n) = plan(setting, q, &ThinkingFormat::detect(model));
    let messages = [ChatMessage::new("user", &prompt)];
    let mut attempts = 0;
    let gen = loop {
        attempts += 1;
        let p = params(cfg, &budget, k, attempts - 1, auto_prompt);
        let gen = chat(model, &messages, &p, cancel, &mut |_| {}).map_err(|e| format!("question {}: {e}", q.id))?;
        if tries == 1 || fits(&gen, budget_n) || attempts >= tries || cancel.is_cancelled() {
            break gen;
        }
    };
    let text = graded_text(continuation(model, &gen), &budget.format);
    Ok(graded(
        bench,
        cfg,
        setting,
        q,
        k,
        prompt,
        (gen, text),
        budget_n,
        attempts,
    ))
}

/// Generates and grades several samples of one setting at once.
fn sample_batch(
    model: &LoadedModel,
    bench: &Benchmark,
    cfg: &SweepConfig,
    setting: &Setting,
    items: &[(&Question, usize)],
    auto_prompt: Option<usize>,
    cancel: &CancelToken,
) -> Result<Vec<Sample>, String> {
    let format = ThinkingFormat::detect(model);
    let plans: Vec<_> = items.iter().map(|(q, _)| plan(setting, q, &format)).collect();
    let convs: Vec<Vec<ChatMessage>> = plans.iter().map(|p| vec![ChatMessage::new("user", &p.0)]).collect();
    let ps: Vec<GenerateParams> = items
        .iter()
        .zip(&plans)
        .map(|((_, k), p)| params(cfg, &p.1, *k, 0, auto_prompt))
        .collect();
    let gens = chat_batch(model, &convs, &ps, cancel).map_err(|e| format!("question {}: {e}", items[0].0.id))?;
    Ok(items
        .iter()
        .zip(plans)
        .zip(gens)
        .map(|(((q, k), p), gen)| {
            let text = graded_text(continuation(model, &gen), &p.1.format);
            graded(bench, cfg, setting, q, *k, p.0, (gen, text), p.3, 1)
        })
        .collect())
}

/// Reads samples.jsonl; a line that does not parse (a write cut off by a kill) is skipped.
pub fn read_samples(path: &Path) -> std::io::Result<Vec<Sample>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Generates the samples of one chunk of a setting's pending (question, sample) pairs.
pub type ChunkFn<'a> = dyn FnMut(&Setting, &[(&Question, usize)]) -> Result<Vec<Sample>, String> + 'a;

/// Runs the sweep into `out_dir/samples.jsonl`, skipping samples already there; returns every
/// sample of this sweep (earlier and new). Stops early, keeping what finished, when cancelled.
pub fn run(
    model: &LoadedModel,
    bench: &Benchmark,
    cfg: &SweepConfig,
    out_dir: &Path,
    cancel: &CancelToken,
    on_progress: &mut dyn FnMut(Progress, Option<&Sample>),
) -> Result<Vec<Sample>, String> {
    let questions = &bench.questions[..cfg.limit.unwrap_or(usize::MAX).min(bench.questions.len())];
    let mut prompt_lengths = HashMap::new();
    let width = |setting: &Setting| match setting.method {
        Method::Rejection { .. } => 1,
        _ => cfg.batch.max(1),
    };
    run_with(
        bench,
        cfg,
        out_dir,
        cancel,
        on_progress,
        &width,
        &mut |setting, chunk| {
            let auto_prompt = longest_prompt(model, setting, questions, &mut prompt_lengths)?;
            if chunk.len() == 1 {
                Ok(vec![sample(
                    model,
                    bench,
                    cfg,
                    setting,
                    chunk[0].0,
                    chunk[0].1,
                    auto_prompt,
                    cancel,
                )?])
            } else {
                sample_batch(model, bench, cfg, setting, chunk, auto_prompt, cancel)
            }
        },
    )
}

/// The sweep's bookkeeping whatever generates: the samples already in `out_dir/samples.jsonl`
/// skipped, the pending ones handed to `generate` in chunks of `width(setting)`, each new
/// sample appended (and flushed) as its chunk finishes.
pub fn run_with(
    bench: &Benchmark,
    cfg: &SweepConfig,
    out_dir: &Path,
    cancel: &CancelToken,
    on_progress: &mut dyn FnMut(Progress, Option<&Sample>),
    width: &dyn Fn(&Setting) -> usize,
    generate: &mut ChunkFn<'_>,
) -> Result<Vec<Sample>, String> {
    if cfg.settings.is_empty() {
        return Err("the sweep has no settings".into());
    }
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let path: PathBuf = out_dir.join("samples.jsonl");
    let earlier = read_samples(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let questions = &bench.questions[..cfg.limit.unwrap_or(usize::MAX).min(bench.questions.len())];
    let wanted: HashSet<(String, String, usize)> = cfg
        .settings
        .iter()
        .flat_map(|s| {
            questions
                .iter()
                .flat_map(move |q| (0..cfg.samples).map(move |k| (s.key(), q.id.clone(), k)))
        })
        .collect();
    let mut all: Vec<Sample> = earlier
        .into_iter()
        .filter(|s| wanted.contains(&(s.setting.clone(), s.question_id.clone(), s.sample)))
        .collect();
    let done: HashSet<(String, String, usize)> = all
        .iter()
        .map(|s| (s.setting.clone(), s.question_id.clone(), s.sample))
        .collect();
    let mut progress = Progress {
        done: done.len(),
        total: wanted.len(),
        resumed: done.len(),
    };
    on_progress(progress, None);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // A line cut off by a kill has no newline: end it, so the next sample starts a line.
    let cut = std::fs::read(&path)
        .map(|b| b.last().is_some_and(|&c| c != b'\n'))
        .unwrap_or(false);
    if cut {
        writeln!(file).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    for setting in &cfg.settings {
        let pending: Vec<(&Question, usize)> = questions
            .iter()
            .flat_map(|q| (0..cfg.samples).map(move |k| (q, k)))
            .filter(|(q, k)| !done.contains(&(setting.key(), q.id.clone(), *k)))
            .collect();
        if pending.is_empty() {
            continue;
        }
        for chunk in pending.chunks(width(setting).max(1)) {
            if cancel.is_cancelled() {
                return Ok(all);
            }
            let new = generate(setting, chunk)?;
            if cancel.is_cancelled() {
                return Ok(all); // cut-off generations are not samples
            }
            for s in new {
                let line = serde_json::to_string(&s).map_err(|e| e.to_string())?;
                writeln!(file, "{line}")
                    .and_then(|_| file.flush())
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                progress.done += 1;
                on_progress(progress, Some(&s));
                all.push(s);
            }
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_try_fits_as_s1_counts_it() {
        // s1: max_tokens = N + 1, kept when the thinking and its end token are at most N.
        assert!(thinking_fits(false, 99, Some(100)));
        assert!(
            !thinking_fits(false, 100, Some(100)),
            "100 thinking tokens + the end = 101"
        );
        assert!(
            !thinking_fits(true, 100, Some(100)),
            "forced at the budget: did not end on its own"
        );
        assert!(thinking_fits(false, 5000, None));
    }

    #[test]
    fn baselines_use_s1s_budgets() {
        let q = Question {
            id: "q".into(),
            question: "1+1?".into(),
            reference: "2".into(),
        };
        let prompt = |method| Setting {
            max_thinking: MaxThinking::Tokens(2048),
            waits: 0,
            min_thinking: 0,
            method,
            ignore_str: WAIT.into(),
        };
        let (text, budget, _, n) = plan(&prompt(Method::TokenPrompt), &q, &ThinkingFormat::s1());
        assert_eq!(text, "1+1?\n\nThink for up to 2048 tokens.");
        assert_eq!(
            budget.max_thinking,
            MaxThinking::Auto,
            "commands.sh: max_tokens_thinking=auto"
        );
        assert_eq!(n, Some(2048));
        let (_, budget, tries, _) = plan(&prompt(Method::Rejection { tries: 3 }), &q, &ThinkingFormat::s1());
        assert_eq!(budget.max_thinking, MaxThinking::Tokens(2048));
        assert_eq!(tries, 3);
    }
}
