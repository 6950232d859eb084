//! The domains step: an MSC label per question, by a model with s1's classification prompt, from
//! a file of `{key, domain}`, or from the sources' own subject labels (a rough stand-in).

use std::path::Path;

use rusqlite::params;

use super::annotate::{load_pending, record_failure, GenOptions, StepReport};
use crate::cancel::CancelToken;
use crate::curate::backend::{Backend, Request};
use crate::curate::judge::JUDGE_RETRIES;
use crate::curate::{classify, funnel};
use crate::workspace::{now, Workspace};

/// The sampling for domain labels: greedy, up to 1,024 tokens.
pub const DEFAULT_GEN: GenOptions = GenOptions {
    max_tokens: 1024,
    temperature: 0.0,
    limit: None,
};

/// Stores a domain (key, code, origin, raw reply, at).
const SET_DOMAIN: &str =
    "UPDATE questions SET domain = ?2, domain_origin = ?3, domain_raw = ?4, domain_at = ?5 WHERE key = ?1";

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
pub fn classify(
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
pub fn from_map(ws: &mut Workspace, map: &[(String, String)]) -> anyhow::Result<StepReport> {
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

/// Domains from a JSONL (or JSON, Parquet) file of `{"key": ..., "domain": "05"}` rows (or
/// `{"question": ..., "domain": ...}`, keyed as the pool is); rows without both are skipped.
pub fn from_file(ws: &mut Workspace, file: &Path) -> anyhow::Result<StepReport> {
    let mut pairs = Vec::new();
    crate::data::read::for_each_row(file, |row| {
        if let Ok(row) = row {
            let key = row
                .columns
                .get("key")
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .or_else(|| {
                    row.columns
                        .get("question")
                        .and_then(|v| v.as_str())
                        .map(crate::data::question_key)
                });
            let dom = row.columns.get("domain").map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            if let (Some(k), Some(d)) = (key, dom) {
                pairs.push((k, d));
            }
        }
        true
    })?;
    from_map(ws, &pairs)
}

/// Domains from the questions' own subject labels (metadata `type`, `subject` or `subfield`)
/// through [`classify::code_for_subject`], for questions without a domain.
pub fn from_subjects(ws: &mut Workspace) -> anyhow::Result<StepReport> {
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
