//! The model-driven steps: thinking traces, difficulty attempts (graded offline or by an LLM
//! judge) and domain labels. Each works through the questions that still lack its annotation,
//! commits every result the moment it arrives (so a kill loses nothing finished and a rerun
//! resumes), and records failures apart so they can be retried.

use std::path::Path;

use rusqlite::params;

use super::backend::{Backend, Completion, Endpoint, Request};
pub use super::judge::{judge_prompt, judge_verdict, judge_verdict_lenient, JudgeOptions, JUDGE_RETRIES, JUDGE_SYSTEM};
use super::{classify, funnel};
use crate::cancel::CancelToken;
use crate::grade::{self, Kind, Verdict};
use crate::workspace::{now, Workspace};

/// What a step did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepReport {
    /// Questions that needed the annotation when the step started.
    pub pending: usize,
    pub done: usize,
    pub failed: usize,
    /// Already annotated, skipped.
    pub skipped: usize,
    /// Attempts graded neither correct nor incorrect (difficulty only).
    pub undecided: usize,
}

#[derive(Debug, Clone)]
pub struct GenOptions {
    pub max_tokens: usize,
    pub temperature: f64,
    /// At most this many questions this run.
    pub limit: Option<usize>,
}

/// A question's reference answer for grading: its answer, else the last `\boxed{}` of its
/// solution, else the solution.
pub fn reference(answer: Option<&str>, solution: Option<&str>) -> Option<String> {
    answer
        .map(str::to_string)
        .or_else(|| solution.and_then(grade::extract::last_boxed))
        .or_else(|| solution.map(str::to_string))
}

/// Stores a trace (key, trace, attempt, origin, at); its length and grade are measured after.
const SET_TRACE: &str = "UPDATE questions SET trace = ?2, trace_attempt = ?3, trace_origin = ?4, trace_at = ?5,
     trace_tokens = NULL, trace_correct = NULL WHERE key = ?1";

/// Stores a domain (key, code, origin, raw reply, at).
const SET_DOMAIN: &str =
    "UPDATE questions SET domain = ?2, domain_origin = ?3, domain_raw = ?4, domain_at = ?5 WHERE key = ?1";

fn record_failure(ws: &Workspace, step: &str, key: &str, model: &str, message: &str) -> anyhow::Result<()> {
    ws.conn.execute(
        "INSERT INTO failures (step, key, model, message, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![step, key, model, message, now()],
    )?;
    Ok(())
}

struct Pending {
    key: String,
    question: String,
    answer: Option<String>,
    solution: Option<String>,
}

/// The questions `sql` selects (key, question, answer, solution), kept to those in `among` when
/// given, at most `limit` of them.
fn load_pending(
    ws: &Workspace,
    sql: &str,
    params: impl rusqlite::Params,
    limit: Option<usize>,
    among: Option<&std::collections::HashSet<&str>>,
) -> anyhow::Result<Vec<Pending>> {
    let mut st = ws.conn.prepare(sql)?;
    let rows = st.query_map(params, |r| {
        Ok(Pending {
            key: r.get(0)?,
            question: r.get(1)?,
            answer: r.get(2)?,
            solution: r.get(3)?,
        })
    })?;
    let mut out: Vec<Pending> = rows.collect::<Result<_, _>>()?;
    if let Some(set) = among {
        out.retain(|p| set.contains(p.key.as_str()));
    }
    if let Some(n) = limit {
        out.truncate(n);
    }
    Ok(out)
}

/// Stand-in traces: each question's own column (`solution`) as its trace, and its answer (or the
/// solution's last `\boxed{}`) as the attempt. For testing the funnel offline, where no reasoning
/// model is at hand; the origin says so.
pub fn traces_from_column(ws: &mut Workspace, column: &str) -> anyhow::Result<StepReport> {
    if !["solution", "answer", "question"].contains(&column) {
        anyhow::bail!("--from-column takes solution, answer or question, not `{column}`");
    }
    let pending = load_pending(
        ws,
        "SELECT q.key, q.question, q.answer, q.solution FROM questions q
         WHERE q.trace IS NULL ORDER BY q.id",
        [],
        None,
        None,
    )?;
    let mut rep = StepReport {
        pending: pending.len(),
        ..Default::default()
    };
    let tx = ws.conn.transaction()?;
    {
        let mut ins = tx.prepare(SET_TRACE)?;
        let origin = format!("stand-in:{column}");
        for p in &pending {
            let trace = match column {
                "solution" => p.solution.clone(),
                "answer" => p.answer.clone(),
                _ => Some(p.question.clone()),
            };
            match trace {
                Some(t) => {
                    let attempt = reference(p.answer.as_deref(), p.solution.as_deref())
                        .map(|r| format!("The final answer is $\\boxed{{{r}}}$."));
                    ins.execute(params![p.key, t, attempt, origin, now()])?;
                    rep.done += 1;
                }
                None => rep.skipped += 1,
            }
        }
    }
    tx.commit()?;
    Ok(rep)
}

/// Traces from a model: the question as the prompt, the model's thinking as the trace and its
/// answer as the attempt. A reply without separate thinking is a failure (the model did not think).
pub fn generate_traces(
    ws: &Workspace,
    backend: &dyn Backend,
    opts: &GenOptions,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(usize, usize),
) -> anyhow::Result<StepReport> {
    let pending = load_pending(
        ws,
        "SELECT q.key, q.question, q.answer, q.solution FROM questions q
         WHERE q.trace IS NULL AND coalesce(q.manual, '') != 'exclude'
         ORDER BY q.id",
        [],
        opts.limit,
        None,
    )?;
    let requests: Vec<Request> = pending
        .iter()
        .map(|p| Request {
            system: None,
            user: p.question.clone(),
            max_tokens: opts.max_tokens,
            temperature: opts.temperature,
            thinking: true,
        })
        .collect();
    let model = backend.name();
    let origin = format!("model:{model}");
    let mut rep = StepReport {
        pending: pending.len(),
        ..Default::default()
    };
    let total = pending.len();
    backend.run(&requests, cancel, &mut |i, r| {
        let p = &pending[i];
        match r {
            Ok(Completion {
                thinking: Some(t),
                text,
            }) => {
                ws.conn.execute(SET_TRACE, params![p.key, t, text, origin, now()])?;
                rep.done += 1;
            }
            Ok(_) => {
                record_failure(ws, "traces", &p.key, &model, "the reply had no separate thinking")?;
                rep.failed += 1;
            }
            Err(e) => {
                record_failure(ws, "traces", &p.key, &model, &e)?;
                rep.failed += 1;
            }
        }
        progress(rep.done + rep.failed, total);
        Ok(())
    })?;
    Ok(rep)
}

/// Trace lengths in tokens of `tokenizer` (a tokenizer.json or a folder holding one), and the
/// grade of each trace's attempt against the reference (the seed set needs it), for every trace
/// not yet measured (or all, with `again`).
pub fn measure_traces(ws: &mut Workspace, tokenizer: &Path, again: bool) -> anyhow::Result<StepReport> {
    let file = if tokenizer.is_dir() {
        tokenizer.join("tokenizer.json")
    } else {
        tokenizer.to_path_buf()
    };
    let tok = tokenizers::Tokenizer::from_file(&file)
        .map_err(|e| anyhow::anyhow!("{}: cannot load the tokenizer ({e})", file.display()))?;
    type Row = (String, String, Option<String>, Option<String>, Option<String>, String);
    let rows: Vec<Row> = {
        let mut st = ws.conn.prepare(&format!(
            "SELECT key, trace, trace_attempt, answer, solution, source FROM questions WHERE trace IS NOT NULL {}",
            if again { "" } else { "AND trace_tokens IS NULL" }
        ))?;
        let it = st.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })?;
        it.collect::<Result<_, _>>()?
    };
    use rayon::prelude::*;
    let measured: Vec<(String, usize, Option<bool>)> = rows
        .par_iter()
        .map(|(key, trace, attempt, answer, solution, source)| {
            let n = tok.encode_fast(trace.as_str(), false).map(|e| e.len()).unwrap_or(0);
            let correct = match (attempt, reference(answer.as_deref(), solution.as_deref())) {
                (Some(a), Some(r)) => {
                    let kind = if source.to_ascii_lowercase().contains("gpqa") {
                        Kind::Mc
                    } else {
                        Kind::Math
                    };
                    match grade::grade(a, &r, kind).verdict {
                        Verdict::Correct => Some(true),
                        Verdict::Incorrect => Some(false),
                        Verdict::Undecided => None,
                    }
                }
                _ => None,
            };
            (key.clone(), n, correct)
        })
        .collect();
    let tx = ws.conn.transaction()?;
    {
        let mut up = tx.prepare("UPDATE questions SET trace_tokens = ?2, trace_correct = ?3 WHERE key = ?1")?;
        for (k, n, c) in &measured {
            up.execute(params![k, *n as i64, c.map(|c| c as i64)])?;
        }
        tx.execute(
            "INSERT INTO settings (k, v) VALUES ('traces.tokenizer', ?1) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
            [file.display().to_string()],
        )?;
    }
    tx.commit()?;
    Ok(StepReport {
        pending: rows.len(),
        done: measured.len(),
        ..Default::default()
    })
}

/// How attempts are graded.
pub enum Grader {
    /// The offline grader (answer extraction + equivalence) against the reference answer.
    Offline,
    /// An LLM judge through an endpoint, with s1's protocol: it compares the attempt with the
    /// reference solution and ends its reply with Yes or No (read and retried as
    /// [`JudgeOptions::default`]).
    Judge(Endpoint),
    /// The judge with other options.
    JudgeWith(Endpoint, JudgeOptions),
}

/// Difficulty attempts by one model on the questions that passed quality and decontamination and
/// that this model has not attempted yet; each graded and committed as it arrives.
pub fn attempts(
    ws: &Workspace,
    backend: &dyn Backend,
    grader: &Grader,
    opts: &GenOptions,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(usize, usize),
) -> anyhow::Result<StepReport> {
    let model = backend.name();
    let f = funnel::compute(ws)?;
    let eligible = f.after_decontam_keys();
    let mut pending = load_pending(
        ws,
        "SELECT q.key, q.question, q.answer, q.solution FROM questions q
         WHERE NOT EXISTS (SELECT 1 FROM attempts a WHERE a.key = q.key AND a.model = ?1) ORDER BY q.id",
        [&model],
        None,
        Some(&eligible),
    )?;
    let skipped = f.after_decontam.len() - pending.len();
    if let Some(n) = opts.limit {
        pending.truncate(n);
    }
    let requests: Vec<Request> = pending
        .iter()
        .map(|p| Request {
            system: None,
            user: p.question.clone(),
            max_tokens: opts.max_tokens,
            temperature: opts.temperature,
            thinking: false,
        })
        .collect();
    let mut rep = StepReport {
        pending: pending.len(),
        skipped,
        ..Default::default()
    };
    let total = pending.len();
    let judge_agent = match grader {
        Grader::Judge(e) => Some((e, JudgeOptions::default(), ureq::Agent::new_with_defaults())),
        Grader::JudgeWith(e, jo) => Some((e, *jo, ureq::Agent::new_with_defaults())),
        Grader::Offline => None,
    };
    backend.run(&requests, cancel, &mut |i, r| {
        let p = &pending[i];
        match r {
            Ok(c) => {
                let response = c.text;
                let (verdict, grader_name, reason) = match &judge_agent {
                    None => match reference(p.answer.as_deref(), p.solution.as_deref()) {
                        Some(r) => (
                            grade::grade(&response, &r, Kind::Math).verdict,
                            "offline".to_string(),
                            None,
                        ),
                        None => (
                            Verdict::Undecided,
                            "offline".to_string(),
                            Some("no reference".to_string()),
                        ),
                    },
                    Some((e, jo, agent)) => match p.solution.as_deref().or(p.answer.as_deref()) {
                        // s1 grades nothing without a solution (the grade stays missing).
                        None => (
                            Verdict::Undecided,
                            format!("judge:{}", e.model),
                            Some("no reference".to_string()),
                        ),
                        Some(sol) => {
                            let req = Request {
                                system: Some(JUDGE_SYSTEM.to_string()),
                                user: judge_prompt(&p.question, &response, sol),
                                // s1: Claude's API defaults (temperature 1) and max_tokens 8192;
                                // a fresh sample on each retry.
                                max_tokens: 8192,
                                temperature: 1.0,
                                thinking: false,
                            };
                            let read = if jo.lenient {
                                judge_verdict_lenient
                            } else {
                                judge_verdict
                            };
                            let mut last: Option<Result<Completion, String>> = None;
                            for _ in 0..=jo.retries {
                                if cancel.is_cancelled() && last.is_some() {
                                    break;
                                }
                                let r = e.complete(agent, &req, cancel);
                                let decided = matches!(&r, Ok(j) if read(&j.text) != Verdict::Undecided);
                                let failed = r.is_err();
                                last = Some(r);
                                if decided || failed {
                                    break;
                                }
                            }
                            match last {
                                Some(Ok(j)) => (read(&j.text), format!("judge:{}", e.model), Some(j.text)),
                                Some(Err(err)) => {
                                    record_failure(ws, "judge", &p.key, &e.model, &err)?;
                                    rep.failed += 1;
                                    progress(rep.done + rep.failed, total);
                                    return Ok(());
                                }
                                None => return Ok(()),
                            }
                        }
                    },
                };
                if verdict == Verdict::Undecided {
                    rep.undecided += 1;
                }
                let v = serde_json::to_value(verdict)?
                    .as_str()
                    .unwrap_or("undecided")
                    .to_string();
                ws.conn.execute(
                    "INSERT OR REPLACE INTO attempts (key, model, response, verdict, grader, reason, at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![p.key, model, response, v, grader_name, reason, now()],
                )?;
                rep.done += 1;
            }
            Err(e) => {
                record_failure(ws, "attempt", &p.key, &model, &e)?;
                rep.failed += 1;
            }
        }
        progress(rep.done + rep.failed, total);
        Ok(())
    })?;
    Ok(rep)
}

/// How domain replies are read and asked again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassifyOptions {
    /// Asks after the first while a reply ends in no two-digit code (s1 asks until one does,
    /// a minute apart; bounded here so that a model that never complies cannot hang a run).
    pub retries: usize,
    /// Take the last valid MSC code anywhere in the reply ([`classify::parse_code`]) instead of
    /// s1's last two characters ([`classify::read_s1`]).
    pub lenient: bool,
}

impl Default for ClassifyOptions {
    fn default() -> Self {
        Self {
            retries: JUDGE_RETRIES,
            lenient: false,
        }
    }
}

/// The last `n` characters of `text`, for a failure's message.
fn tail(text: &str, n: usize) -> String {
    let skip = text.chars().count().saturating_sub(n);
    text.chars().skip(skip).collect()
}

/// Domain labels for the questions that passed the funnel so far (or every question, with
/// `all`) and have none yet: s1's system and user messages (data/featurization.py), the reply
/// read as `how` says, asked again while it ends in no code.
pub fn classify_domains(
    ws: &Workspace,
    backend: &dyn Backend,
    opts: &GenOptions,
    how: &ClassifyOptions,
    all: bool,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(usize, usize),
) -> anyhow::Result<StepReport> {
    let f = funnel::compute(ws)?;
    let survivors = f.survivor_keys();
    let pending = load_pending(
        ws,
        "SELECT q.key, q.question, q.answer, q.solution FROM questions q
         WHERE q.domain IS NULL ORDER BY q.id",
        [],
        opts.limit,
        if all { None } else { Some(&survivors) },
    )?;
    let request = |question: &str| Request {
        system: Some(classify::SYSTEM.to_string()),
        user: classify::prompt(question),
        max_tokens: opts.max_tokens,
        temperature: opts.temperature,
        thinking: false,
    };
    let model = backend.name();
    let mut rep = StepReport {
        pending: pending.len(),
        ..Default::default()
    };
    let total = pending.len();
    let read = |text: &str| {
        if how.lenient {
            classify::parse_code(text).map_or(classify::S1Reply::AskAgain, classify::S1Reply::Code)
        } else {
            classify::read_s1(text)
        }
    };
    let mut todo: Vec<usize> = (0..pending.len()).collect();
    for round in 0..=how.retries {
        if todo.is_empty() || cancel.is_cancelled() {
            break;
        }
        let last_round = round == how.retries;
        let asked: Vec<Request> = todo.iter().map(|&i| request(&pending[i].question)).collect();
        let mut again = Vec::new();
        backend.run(&asked, cancel, &mut |j, r| {
            let i = todo[j];
            let p = &pending[i];
            match r.map(|c| (read(&c.text), c.text)) {
                Ok((classify::S1Reply::Code(code), raw)) => {
                    ws.conn
                        .execute(SET_DOMAIN, params![p.key, code, format!("model:{model}"), raw, now()])?;
                    rep.done += 1;
                }
                Ok((classify::S1Reply::AskAgain, _)) if !last_round => {
                    again.push(i);
                    return Ok(());
                }
                Ok((classify::S1Reply::AskAgain, raw)) => {
                    let why = format!(
                        "no MSC code at the end of the reply after {} asks: …{}",
                        how.retries + 1,
                        tail(&raw, 80)
                    );
                    record_failure(ws, "classify", &p.key, &model, &why)?;
                    rep.failed += 1;
                }
                Ok((classify::S1Reply::Unknown(code), raw)) => {
                    // s1's lookup of an unknown code fails and the question keeps no domain.
                    let why = format!("`{code}` is not one of the 61 MSC codes: …{}", tail(&raw, 80));
                    record_failure(ws, "classify", &p.key, &model, &why)?;
                    rep.failed += 1;
                }
                Err(e) => {
                    record_failure(ws, "classify", &p.key, &model, &e)?;
                    rep.failed += 1;
                }
            }
            progress(rep.done + rep.failed, total);
            Ok(())
        })?;
        todo = again;
    }
    Ok(rep)
}

/// Domains from a column of the questions' metadata (e.g. MATH's `type` mapped by the user) or a
/// JSONL file of `{key, domain}`: imported as they are when they are MSC codes.
pub fn domains_from_map(ws: &mut Workspace, map: &[(String, String)]) -> anyhow::Result<StepReport> {
    let mut rep = StepReport {
        pending: map.len(),
        ..Default::default()
    };
    let tx = ws.conn.transaction()?;
    {
        let mut ins = tx.prepare(SET_DOMAIN)?;
        for (k, d) in map {
            match classify::parse_code(d) {
                Some(code) => {
                    rep.done += ins.execute(params![k, code, "import", None::<String>, now()])?;
                }
                None => rep.failed += 1,
            }
        }
    }
    tx.commit()?;
    Ok(rep)
}

/// Domains from the questions' own subject labels (metadata `type`, `subject` or `subfield`)
/// through [`classify::code_for_subject`], for questions without a domain.
pub fn domains_from_subjects(ws: &mut Workspace) -> anyhow::Result<StepReport> {
    let rows: Vec<(String, String)> = {
        let mut st = ws
            .conn
            .prepare("SELECT key, metadata FROM questions WHERE domain IS NULL")?;
        let it = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        it.collect::<Result<_, _>>()?
    };
    let mut rep = StepReport {
        pending: rows.len(),
        ..Default::default()
    };
    let tx = ws.conn.transaction()?;
    {
        let mut ins = tx.prepare(SET_DOMAIN)?;
        for (key, meta) in &rows {
            let subject = serde_json::from_str::<serde_json::Value>(meta).ok().and_then(|m| {
                ["type", "subject", "subfield"]
                    .iter()
                    .find_map(|k| m.get(*k).and_then(|v| v.as_str()).map(str::to_string))
            });
            match subject
                .as_deref()
                .and_then(|s| classify::code_for_subject(s).map(|c| (s, c)))
            {
                Some((s, code)) => {
                    ins.execute(params![key, code, "subject", s, now()])?;
                    rep.done += 1;
                }
                None => rep.failed += 1,
            }
        }
    }
    tx.commit()?;
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_prefers_the_answer_then_the_box() {
        assert_eq!(reference(Some("3"), Some("so \\boxed{4}")).as_deref(), Some("3"));
        assert_eq!(reference(None, Some("so \\boxed{4}")).as_deref(), Some("4"));
        assert_eq!(reference(None, None), None);
    }
}
