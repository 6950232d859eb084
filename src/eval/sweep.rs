//! A sweep: every question of a benchmark under every budget setting (and K samples each),
//! generated through the engine's budget forcing, graded offline, and appended to
//! samples.jsonl as each finishes, so a rerun resumes where the last one stopped.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::bench::Benchmark;
use crate::generate::{chat, BudgetConfig, GenerateParams, MaxThinking, SamplingParams};
use crate::grade::{grade, Verdict};
use crate::jobs::CancelToken;
use crate::model::{ChatMessage, LoadedModel};

/// One budget setting of the sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub max_thinking: MaxThinking,
    pub waits: usize,
    pub min_thinking: usize,
}

impl Setting {
    /// The setting's name in samples and metrics, e.g. `max=512 waits=0`.
    pub fn key(&self) -> String {
        let max = match self.max_thinking {
            MaxThinking::Tokens(n) => n.to_string(),
            MaxThinking::Auto => "auto".into(),
            MaxThinking::Unlimited => "unlimited".into(),
        };
        format!("max={max} waits={}", self.waits)
    }
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
    Ok(max
        .iter()
        .flat_map(|&m| {
            waits.iter().map(move |&w| Setting {
                max_thinking: m,
                waits: w,
                min_thinking,
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
    pub min_thinking: usize,
    /// The thinking budget in force (None: unlimited).
    pub max_thinking: Option<usize>,
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
}

/// Progress of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    /// Samples found in samples.jsonl from an earlier run.
    pub resumed: usize,
}

/// Reads samples.jsonl; a line that does not parse (a write cut off by a kill) is skipped.
pub fn read_samples(path: &Path) -> std::io::Result<Vec<Sample>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

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
        for q in questions {
            for k in 0..cfg.samples {
                if done.contains(&(setting.key(), q.id.clone(), k)) {
                    continue;
                }
                if cancel.is_cancelled() {
                    return Ok(all);
                }
                let params = GenerateParams {
                    sampling: SamplingParams {
                        temperature: cfg.temperature,
                        top_p: cfg.top_p,
                        top_k: 0,
                        seed: cfg.seed.wrapping_add(k as u64),
                    },
                    budget: BudgetConfig {
                        min_thinking: setting.min_thinking,
                        max_thinking: setting.max_thinking,
                        num_ignore: setting.waits,
                        ..BudgetConfig::default()
                    },
                    max_new_tokens: cfg.max_new_tokens,
                };
                let messages = [ChatMessage::new("user", &q.question)];
                let gen = chat(model, &messages, &params, cancel, &mut |_| {})
                    .map_err(|e| format!("question {}: {e}", q.id))?;
                if cancel.is_cancelled() {
                    return Ok(all); // a cut-off generation is not a sample
                }
                let g = grade(&format!("<|im_start|>answer\n{}", gen.answer), &q.reference, bench.kind);
                let s = Sample {
                    setting: setting.key(),
                    question_id: q.id.clone(),
                    sample: k,
                    prompt: q.question.clone(),
                    thinking: gen.thinking,
                    answer: gen.answer,
                    extracted: g.extracted,
                    reference: g.reference,
                    verdict: g.verdict,
                    thinking_tokens: gen.thinking_tokens,
                    answer_tokens: gen.answer_tokens,
                    waits_injected: gen.waits_injected,
                    forced_end: gen.forced_end,
                    min_thinking: setting.min_thinking,
                    max_thinking: gen.max_thinking,
                };
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
