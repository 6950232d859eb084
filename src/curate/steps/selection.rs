//! Selection over a workspace: the candidates are the funnel's survivors that have a trace length
//! and a domain; the seed set and the benchmark distribution follow S1_RECIPE.md §1 steps 5-6.
//! A selection is stored under a name with its method, seed and settings, so an export or a
//! report later names exactly what was drawn.

use std::collections::HashMap;

use rusqlite::params;

use crate::curate::funnel::{self, QuestionState};
use crate::curate::select::{self, Candidate, SelectConfig};
use crate::workspace::{now, Workspace};

/// s1's seed-set threshold: MATH questions with traces longer than this many tokens
/// (filter.ipynb cell 14: `gemini_length > 5600`, the trace's Qwen2.5 tokens).
pub const SEED_MATH_TOKENS: usize = 5600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// s1's sampler: seed set, then domains (uniform, then benchmark-weighted), length-favouring.
    #[default]
    S1,
    /// 1K-random.
    Random,
    /// 1K-diverse: uniform domains, uniform inside a domain.
    Diverse,
    /// 1K-longest.
    Longest,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::S1 => "s1",
            Method::Random => "random",
            Method::Diverse => "diverse",
            Method::Longest => "longest",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SelectOptions {
    pub method: Method,
    pub seed: u64,
    pub target: usize,
    /// s1: 700.
    pub uniform_until: usize,
    /// Keep s1's seed set first (S1 method only).
    pub seed_set: bool,
    /// Leave the seed set's questions in the domains' pools, as s1 (S1 method only).
    pub seed_set_in_pool: bool,
    /// Stored name (default `<method>-seed<seed>`).
    pub name: Option<String>,
}

impl Default for SelectOptions {
    fn default() -> Self {
        Self {
            method: Method::S1,
            seed: 0,
            target: 1000,
            uniform_until: 700,
            seed_set: true,
            seed_set_in_pool: true,
            name: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SelectionReport {
    pub name: String,
    pub candidates: usize,
    pub seed_set: usize,
    pub selected: Vec<String>,
    /// Selected per domain code.
    pub per_domain: Vec<(String, usize)>,
}

/// The seed set (filter.ipynb cell 14): the trace's answer is correct AND (the source is GPQA
/// or AIME, or the source is MATH and the trace is longer than 5,600 tokens). Which sources are
/// GPQA, AIME and MATH: [`crate::curate::sources::SourceNames`] (s1's exact names by default).
pub fn is_seed(s: &QuestionState) -> bool {
    s.trace_correct == Some(true)
        && (s.gpqa || s.aime || (s.math && s.trace_tokens.is_some_and(|t| t > SEED_MATH_TOKENS)))
}

pub fn run(ws: &mut Workspace, opts: &SelectOptions) -> anyhow::Result<SelectionReport> {
    let f = funnel::compute(ws)?;
    // The candidates borrow from the funnel, with their index there.
    let indexed: Vec<(usize, Candidate)> = f
        .survivors
        .iter()
        .filter_map(|&i| {
            let s = &f.states[i];
            Some((
                i,
                Candidate {
                    key: &f.keys[i],
                    domain: s.domain.as_deref()?,
                    trace_tokens: s.trace_tokens?,
                },
            ))
        })
        .collect();
    if indexed.is_empty() {
        anyhow::bail!(
            "nothing to select from: no question passed the funnel with a trace length and a domain \
             (run `curate report` to see where they stop)"
        );
    }
    let seeds: Vec<Candidate> = if opts.method == Method::S1 && opts.seed_set {
        indexed
            .iter()
            .filter(|(i, _)| is_seed(&f.states[*i]))
            .map(|(_, c)| *c)
            .collect()
    } else {
        Vec::new()
    };
    // The benchmark distribution (filter.ipynb cell 17): the domains of the AIME and the GPQA
    // questions among the difficulty survivors that can be selected (s1's hard-filtered set,
    // where every question has a domain and a trace length), GPQA's counts scaled to integers.
    let mut aime = Vec::new();
    let mut gpqa = Vec::new();
    for (i, c) in &indexed {
        let s = &f.states[*i];
        if s.gpqa {
            gpqa.push(c.domain.to_string());
        } else if s.aime {
            aime.push(c.domain.to_string());
        }
    }
    let weights = select::benchmark_weights(&aime, &gpqa);
    let pool: Vec<Candidate> = indexed.into_iter().map(|(_, c)| c).collect();
    let selected = match opts.method {
        Method::S1 => {
            let cfg = SelectConfig {
                target: opts.target,
                uniform_until: opts.uniform_until,
                benchmark_weights: weights.clone(),
                seed: opts.seed,
                seed_set_in_pool: opts.seed_set_in_pool,
            };
            select::s1_select(&seeds, &pool, &cfg)
        }
        Method::Random => select::random_select(&pool, opts.target, opts.seed),
        Method::Diverse => select::diverse_select(&pool, opts.target, opts.seed),
        Method::Longest => select::longest_select(&pool, opts.target),
    };
    let name = opts
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-seed{}", opts.method.name(), opts.seed));
    let settings = serde_json::json!({
        "method": opts.method,
        "seed": opts.seed,
        "target": opts.target,
        "uniform_until": opts.uniform_until,
        "seed_set": seeds.len(),
        "seed_set_in_pool": opts.seed_set_in_pool,
        "source_names": crate::curate::sources::SourceNames::load(ws)?.name(),
        "benchmark_counts": {"aime": aime.len(), "gpqa": gpqa.len()},
        "candidates": pool.len(),
        "benchmark_weights": weights.iter().collect::<std::collections::BTreeMap<_, _>>(),
    });
    let tx = ws.conn.transaction()?;
    tx.execute("DELETE FROM selection_items WHERE name = ?1", [&name])?;
    tx.execute("DELETE FROM selections WHERE name = ?1", [&name])?;
    tx.execute(
        "INSERT INTO selections (name, method, seed, target, settings, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            name,
            opts.method.name(),
            opts.seed as i64,
            opts.target as i64,
            settings.to_string(),
            now()
        ],
    )?;
    {
        let mut ins = tx.prepare("INSERT INTO selection_items (name, rank, key) VALUES (?1, ?2, ?3)")?;
        for (i, k) in selected.iter().enumerate() {
            ins.execute(params![name, i as i64, k])?;
        }
    }
    tx.commit()?;
    let mut per: HashMap<String, usize> = HashMap::new();
    for k in &selected {
        if let Some(d) = f.state(k).and_then(|s| s.domain.as_deref()) {
            *per.entry(d.to_string()).or_default() += 1;
        }
    }
    let mut per_domain: Vec<(String, usize)> = per.into_iter().collect();
    per_domain.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(SelectionReport {
        name,
        candidates: pool.len(),
        seed_set: seeds.len(),
        selected,
        per_domain,
    })
}

/// The keys of a stored selection, in the order drawn; the newest selection when `name` is None.
pub fn load(ws: &Workspace, name: Option<&str>) -> anyhow::Result<(String, Vec<String>)> {
    let name = match name {
        Some(n) => n.to_string(),
        None => ws
            .conn
            .query_row(
                "SELECT name FROM selections ORDER BY at DESC, rowid DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .map_err(|_| anyhow::anyhow!("no selection in this workspace yet; run `curate select` first"))?,
    };
    let mut st = ws
        .conn
        .prepare("SELECT key FROM selection_items WHERE name = ?1 ORDER BY rank")?;
    let keys: Vec<String> = st.query_map([&name], |r| r.get(0))?.collect::<Result<_, _>>()?;
    if keys.is_empty() {
        let names: Vec<String> = ws
            .conn
            .prepare("SELECT name FROM selections ORDER BY at")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        anyhow::bail!("no selection named `{name}` (selections: {})", names.join(", "));
    }
    Ok((name, keys))
}
