//! The difficulty step: one attempt per question by a model on the questions that passed quality
//! and decontamination, graded offline (answer extraction and equivalence) or by an LLM judge with
//! s1's protocol, each committed as it arrives.

use rusqlite::params;

use super::annotate::{load_pending, record_failure, reference, GenOptions, StepReport};
use crate::cancel::CancelToken;
use crate::curate::backend::{Backend, Completion, Endpoint, Request};
use crate::curate::funnel;
use crate::curate::judge::{judge_prompt, judge_verdict, judge_verdict_lenient, JudgeOptions, JUDGE_SYSTEM};
use crate::grade::{self, Kind, Verdict};
use crate::workspace::{now, Workspace};

/// s1's sampling for attempts: temperature 0.05, up to 32,768 tokens.
pub const DEFAULT_GEN: GenOptions = GenOptions {
    max_tokens: 32768,
    temperature: 0.05,
    limit: None,
};

/// How attempts are graded.
#[derive(Debug, Clone)]
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
pub fn run(
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
