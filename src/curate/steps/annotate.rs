//! What the model-driven steps (traces, attempts, domains) share: their report, their
//! generation options, the questions still lacking an annotation, the failures table, and the
//! reference answer a reply is graded against. Each such step works through the questions that
//! still lack its annotation, commits every result the moment it arrives (so a kill loses nothing
//! finished and a rerun resumes), and records failures apart so they can be retried.

use rusqlite::params;

use crate::grade;
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

/// How a model step samples.
#[derive(Debug, Clone, Copy, PartialEq)]
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
pub(super) fn record_failure(ws: &Workspace, step: &str, key: &str, model: &str, message: &str) -> anyhow::Result<()> {
    ws.conn.execute(
        "INSERT INTO failures (step, key, model, message, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![step, key, model, message, now()],
    )?;
    Ok(())
}

pub(super) struct Pending {
    pub key: String,
    pub question: String,
    pub answer: Option<String>,
    pub solution: Option<String>,
}

/// The questions `sql` selects (key, question, answer, solution), kept to those in `among` when
/// given, at most `limit` of them.
pub(super) fn load_pending(
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
