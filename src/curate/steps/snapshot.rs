//! What the Curate view shows of a workspace, read in one go off the UI thread: every question as
//! a table row (with the funnel stage that dropped it), the funnel, the per-rule counts and the
//! rule configuration, and the domain and trace-length histograms of the questions that passed
//! the filters; and one question in full for the inspector.

use std::collections::{BTreeMap, HashSet};

use super::rules::{self, RuleCount};
use crate::curate::funnel::{self, Stage};
use crate::curate::map::coverage::{selection_coverage, Coverage};
use crate::curate::rule_config::RulesConfig;
use crate::workspace::{Manual, Workspace};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PoolRow {
    pub key: String,
    pub source: String,
    /// The question's first characters.
    pub preview: String,
    pub tokens: Option<usize>,
    pub domain: Option<String>,
    pub manual: Option<Manual>,
    /// Index into the funnel's stages of the stage that dropped it; None: it passed.
    pub dropped_at: Option<u8>,
    pub selected: bool,
    /// Quality rules hit, and "decontam" when contaminated.
    pub flags: String,
}

#[derive(Debug, Clone, Default)]
pub struct PoolSnapshot {
    pub rows: Vec<PoolRow>,
    pub stages: Vec<Stage>,
    /// Per-rule hits (meaningful once the rules ran).
    pub rules: Vec<RuleCount>,
    pub rules_ran: bool,
    /// Questions that passed every filter, per domain code (most first).
    pub domains: Vec<(String, usize)>,
    /// Trace lengths of those questions in bins of `bin` tokens: (bin start, count).
    pub lengths: Vec<(usize, usize)>,
    pub bin: usize,
    /// The newest selection's name and size.
    pub selection: Option<(String, usize)>,
    /// Which rules are on and which fields are required, as the workspace keeps them.
    pub rules_config: RulesConfig,
    /// The newest stored map of the pool (None: not computed yet).
    pub map: Option<PoolMap>,
    /// The embedders with stored vectors (the map's switch lists them).
    pub embedders: Vec<super::map_embedders::StoredEmbedder>,
    /// When the read began: of two snapshots (a step's and a mark's, read on two threads) the
    /// view keeps the later.
    pub taken: Option<std::time::Instant>,
}

/// The pool's map as the view draws it: a point per row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolMap {
    /// What made the vectors laid out ("tfidf-hash-256-s0", or a model's name).
    pub embedder: String,
    /// Each row's point, in the rows' order (NaN for a row the layout does not have yet).
    pub points: Vec<[f32; 2]>,
    /// The evaluation sets a contaminated row touches ("math500, aime24"), by row index.
    pub touches: Vec<(usize, String)>,
    /// The selected rows' coverage of the map and a random draw's of as many (None: nothing
    /// selected), computed with the snapshot so the view never does it on its thread.
    pub coverage: Option<(Coverage, Coverage)>,
}

const PREVIEW: usize = 160;

/// The newest map, aligned with `rows`.
fn load_map(ws: &Workspace, rows: &[PoolRow]) -> anyhow::Result<Option<PoolMap>> {
    let Some((embedder, by_key)) = super::map::load_layout(ws)? else {
        return Ok(None);
    };
    let points: Vec<[f32; 2]> = rows
        .iter()
        .map(|r| by_key.get(&r.key).copied().unwrap_or([f32::NAN; 2]))
        .collect();
    let selected: Vec<bool> = rows.iter().map(|r| r.selected).collect();
    let coverage = selection_coverage(&points, &selected);
    let mut sets: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut st = ws.conn.prepare(
        "SELECT key, group_concat(substr(rule, 10), ', ') FROM flags WHERE rule LIKE 'decontam:%' GROUP BY key",
    )?;
    let mut q = st.query([])?;
    while let Some(r) = q.next()? {
        sets.insert(r.get(0)?, r.get(1)?);
    }
    let touches = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| sets.get(&r.key).map(|s| (i, s.clone())))
        .collect();
    Ok(Some(PoolMap {
        embedder,
        points,
        touches,
        coverage,
    }))
}

pub fn load(ws: &Workspace) -> anyhow::Result<PoolSnapshot> {
    let taken = std::time::Instant::now();
    let f = funnel::compute(ws)?;
    let selected: (Option<String>, HashSet<String>) = match super::selection::load(ws, None) {
        Ok((name, keys)) => (Some(name), keys.into_iter().collect()),
        Err(_) => (None, HashSet::new()),
    };
    let mut rows = Vec::with_capacity(f.keys.len());
    {
        let mut st = ws.conn.prepare(&format!(
            "SELECT key, source, substr(question, 1, {PREVIEW}) FROM questions ORDER BY id"
        ))?;
        let mut q = st.query([])?;
        let mut i = 0usize;
        while let Some(r) = q.next()? {
            let key: String = r.get(0)?;
            // Same order as the funnel's (both ORDER BY id); look up defensively all the same.
            let idx = if f.keys.get(i).is_some_and(|k| *k == key) {
                Some(i)
            } else {
                f.position(&key)
            };
            i += 1;
            let Some(idx) = idx else { continue };
            let s = &f.states[idx];
            let mut flags: Vec<&str> = s.quality.iter().map(|r| r.name()).collect();
            if s.contaminated {
                flags.push("decontam");
            }
            rows.push(PoolRow {
                selected: selected.1.contains(&key),
                key,
                source: r.get(1)?,
                preview: r.get::<_, String>(2)?.replace('\n', " "),
                tokens: s.trace_tokens,
                domain: s.domain.as_deref().map(str::to_string),
                manual: s.manual,
                dropped_at: f.dropped_at[idx],
                flags: flags.join(" "),
            });
        }
    }
    let mut domains: BTreeMap<&str, usize> = BTreeMap::new();
    let mut lens: Vec<usize> = Vec::new();
    for &i in &f.survivors {
        let s = &f.states[i];
        if let Some(d) = s.domain.as_deref() {
            *domains.entry(d).or_default() += 1;
        }
        if let Some(t) = s.trace_tokens {
            lens.push(t);
        }
    }
    let mut domains: Vec<(String, usize)> = domains.into_iter().map(|(d, n)| (d.to_string(), n)).collect();
    domains.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let max = lens.iter().copied().max().unwrap_or(0);
    let bin = [50, 100, 250, 500, 1000, 2000, 4000]
        .into_iter()
        .find(|b| max / b <= 40)
        .unwrap_or(8000);
    let mut bins: BTreeMap<usize, usize> = BTreeMap::new();
    for t in lens {
        *bins.entry(t / bin * bin).or_default() += 1;
    }
    let cfg = RulesConfig::load(ws)?;
    let map = load_map(ws, &rows)?;
    Ok(PoolSnapshot {
        map,
        embedders: super::map_embedders::list(ws)?,
        rows,
        rules: rules::counts(ws, &cfg)?,
        rules_ran: ws.setting("rules.ran")?.is_some(),
        stages: f.stages,
        domains,
        lengths: bins.into_iter().collect(),
        bin,
        selection: selected.0.map(|n| (n, selected.1.len())),
        rules_config: cfg,
        taken: Some(taken),
    })
}

/// One question in full, for the inspector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuestionDetail {
    pub key: String,
    pub question: String,
    pub solution: Option<String>,
    pub answer: Option<String>,
    pub source: String,
    pub trace: Option<String>,
    pub trace_attempt: Option<String>,
    pub trace_origin: Option<String>,
    pub trace_tokens: Option<usize>,
    pub trace_correct: Option<bool>,
    pub domain: Option<String>,
    pub manual: Option<Manual>,
    /// (rule, detail)
    pub flags: Vec<(String, Option<String>)>,
    /// (model, verdict, grader, response)
    pub attempts: Vec<(String, String, String, String)>,
}

pub fn detail(ws: &Workspace, key: &str) -> anyhow::Result<QuestionDetail> {
    let mut d = ws.conn.query_row(
        "SELECT key, question, solution, answer, source, trace, trace_attempt, trace_origin, trace_tokens,
                trace_correct, domain, manual FROM questions WHERE key = ?1",
        [key],
        |r| {
            Ok(QuestionDetail {
                key: r.get(0)?,
                question: r.get(1)?,
                solution: r.get(2)?,
                answer: r.get(3)?,
                source: r.get(4)?,
                trace: r.get(5)?,
                trace_attempt: r.get(6)?,
                trace_origin: r.get(7)?,
                trace_tokens: r.get::<_, Option<i64>>(8)?.map(|t| t as usize),
                trace_correct: r.get::<_, Option<i64>>(9)?.map(|c| c != 0),
                domain: r.get(10)?,
                manual: r.get::<_, Option<String>>(11)?.as_deref().and_then(Manual::parse),
                ..Default::default()
            })
        },
    )?;
    let mut st = ws
        .conn
        .prepare("SELECT rule, detail FROM flags WHERE key = ?1 ORDER BY rule")?;
    d.flags = st
        .query_map([key], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut st = ws
        .conn
        .prepare("SELECT model, verdict, grader, response FROM attempts WHERE key = ?1 ORDER BY model")?;
    d.attempts = st
        .query_map([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    Ok(d)
}
