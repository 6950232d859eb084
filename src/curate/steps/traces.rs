//! The traces step: thinking traces as stand-ins from a column, or by a model (its thinking as
//! the trace, its answer as the attempt), then their lengths in a tokenizer's tokens and the
//! grade of each trace's answer (the seed set needs it).

use std::path::Path;

use rusqlite::params;

use super::annotate::{load_pending, record_failure, reference, GenOptions, StepReport};
use crate::cancel::CancelToken;
use crate::curate::backend::{Backend, Completion, Request};
use crate::grade::{self, Kind, Verdict};
use crate::workspace::{now, Workspace};

/// s1's sampling for traces when a front-end asks for nothing else: greedy, up to 32,768 tokens.
pub const DEFAULT_GEN: GenOptions = GenOptions {
    max_tokens: 32768,
    temperature: 0.0,
    limit: None,
};

/// Stores a trace (key, trace, attempt, origin, at); its length and grade are measured after.
const SET_TRACE: &str = "UPDATE questions SET trace = ?2, trace_attempt = ?3, trace_origin = ?4, trace_at = ?5,
     trace_tokens = NULL, trace_correct = NULL WHERE key = ?1";

/// Stand-in traces: each question's own column (`solution`) as its trace, and its answer (or the
/// solution's last `\boxed{}`) as the attempt. For testing the funnel offline, where no reasoning
/// model is at hand; the origin says so.
pub fn from_column(ws: &mut Workspace, column: &str) -> anyhow::Result<StepReport> {
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
pub fn generate(
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
pub fn measure(ws: &mut Workspace, tokenizer: &Path, again: bool) -> anyhow::Result<StepReport> {
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
