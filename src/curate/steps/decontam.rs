//! The decontamination step over a workspace: every question's word 8-grams against the chosen
//! evaluation sets (by default the ones the app ships: MATH500, AIME24, AIME25, AMC23, GSM8K), and
//! s1's limit of AIME training problems to 1983-2022. Hits are flags `decontam:<set>` (with the
//! shared 8-gram) and `aime_after_2022`.
//!
//! s1's collect_data.py also checks each source against the sources before it (its questions
//! join the test set once decontaminated): [`DecontamOptions::cross_source`], flags
//! `decontam:source:<earlier source>`. The sources are taken in the order they were first
//! imported (s1's order is its `DS_TO_SELECTION`: MATH, OlympicArena, TheoremQA, NuminaMath,
//! Omni-MATH, SciEval, OlympiadBench, JEEBench, AGIEval, StatsQual, GPQA, XWord, USACO, Quant,
//! LiveCodeBench; import in that order to reproduce it).

use std::path::Path;

use rusqlite::params;

use crate::data::decontam::EvalIndex;
use crate::data::read::for_each_row;
use crate::workspace::Workspace;

/// The flag and setting names this step writes (the funnel reads them).
pub use crate::curate::funnel::{AIME_YEAR_RULE, CROSS_SOURCE_PREFIX, CROSS_SOURCE_SETTING};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecontamOptions {
    /// s1's cross-source rule (collect_data.py): each source is also checked against the
    /// questions of the sources imported before it that survived.
    pub cross_source: bool,
}

/// An evaluation set: its name and its questions.
pub struct EvalSet {
    pub name: String,
    pub questions: Vec<String>,
}

/// The evaluation sets compiled into the binary.
pub fn bundled_sets() -> anyhow::Result<Vec<EvalSet>> {
    crate::eval::benchmarks::NAMED
        .iter()
        .map(|(name, _, _)| {
            let b = crate::eval::benchmarks::load(name, None).map_err(anyhow::Error::msg)?;
            Ok(EvalSet {
                name: name.to_string(),
                questions: b.questions.into_iter().map(|q| q.question).collect(),
            })
        })
        .collect()
}

/// An evaluation set from a file (JSONL/JSON/Parquet; the question column found as on import).
pub fn set_from_file(path: &Path) -> anyhow::Result<EvalSet> {
    let mut questions = Vec::new();
    let mut map = None;
    for_each_row(path, |row| {
        if let Ok(row) = row {
            let m = map.get_or_insert_with(|| crate::data::record::detect(&row.columns));
            if let Some(cols) = &m.1 {
                if let Ok(r) = crate::data::record::to_record(row.columns, cols, m.0, "") {
                    questions.push(r.question);
                }
            }
        }
        true
    })?;
    if questions.is_empty() {
        anyhow::bail!("{}: no questions found", path.display());
    }
    Ok(EvalSet {
        name: path.file_stem().and_then(|s| s.to_str()).unwrap_or("eval").to_string(),
        questions,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecontamReport {
    /// Per set: name, its questions, pool questions overlapping it.
    pub per_set: Vec<(String, usize, usize)>,
    /// AIME problems after 2022.
    pub aime_after_2022: usize,
    /// With the cross-source rule: per source (in the order checked), its questions and those
    /// dropped for sharing an 8-gram with an earlier source.
    pub cross_source: Vec<(String, usize, usize)>,
    /// Questions flagged by anything.
    pub flagged: usize,
    /// A few (set, key, n-gram) examples.
    pub examples: Vec<(String, String, String)>,
}

/// The year of an AIME pool row. s1 (add_aime.py) reads the `ID` of its AIME rows, `1983-1` or
/// `2024-II-15`, as `int(ID.split('-')[0])`; its rows keep that `ID` in their metadata, a Python
/// literal (`str(dict)`). Rows without such an `ID` give their `year` (or `Year`) column.
pub fn aime_year(source: &str, metadata: &str) -> Option<i64> {
    if !crate::curate::sources::is_aime(source) {
        return None;
    }
    let v = crate::curate::pyrepr::metadata(metadata)?;
    let from_id = v
        .get("ID")
        .and_then(|id| id.as_str())
        .and_then(|id| id.split('-').next())
        .and_then(|y| y.trim().parse::<i64>().ok());
    from_id.or_else(|| {
        let y = v.get("year").or_else(|| v.get("Year"))?;
        y.as_i64().or_else(|| y.as_str().and_then(|s| s.trim().parse().ok()))
    })
}

/// Decontaminates against `sets` (without the cross-source rule).
pub fn run(ws: &mut Workspace, sets: &[EvalSet]) -> anyhow::Result<DecontamReport> {
    run_with(ws, sets, &DecontamOptions::default())
}

/// The cross-source rule's hits (key, rule, shared 8-gram) and per source (in order) its
/// questions checked and dropped. The keys in `dropped` (hit by an evaluation set or the year
/// rule) are neither checked nor added: as in s1, a source joins the test set once decontaminated.
#[allow(clippy::type_complexity)]
fn cross_source(
    ws: &Workspace,
    dropped: &std::collections::HashSet<&str>,
) -> anyhow::Result<(Vec<(String, String, String)>, Vec<(String, usize, usize)>)> {
    let sources: Vec<String> = {
        let mut st = ws
            .conn
            .prepare("SELECT source FROM questions GROUP BY source ORDER BY min(id)")?;
        let it = st.query_map([], |r| r.get(0))?;
        it.collect::<Result<_, _>>()?
    };
    let mut index = crate::data::decontam::CrossIndex::default();
    let mut hits = Vec::new();
    let mut per_source = Vec::new();
    for source in &sources {
        // One source at a time: every question is checked against the earlier sources only.
        let sql = format!(
            "SELECT key, question FROM questions WHERE source = '{}' ORDER BY id",
            source.replace('\'', "''")
        );
        type Checked = (String, Option<(String, String)>, Vec<u64>);
        let checked: Vec<Checked> = crate::curate::scan::par_scan(&ws.conn, &sql, |row| {
            let key = row.text(0);
            if dropped.contains(key) {
                return vec![];
            }
            let q = row.text(1);
            match index.first_overlap(q) {
                Some(hit) => vec![(key.to_string(), Some(hit), Vec::new())],
                None => vec![(key.to_string(), None, crate::data::decontam::gram_hashes(q))],
            }
        })?;
        let mut n = 0;
        let mut grams = Vec::new();
        for (key, hit, g) in checked {
            n += 1;
            match hit {
                Some((earlier, gram)) => hits.push((key, format!("{CROSS_SOURCE_PREFIX}{earlier}"), gram)),
                None => grams.extend(g),
            }
        }
        let before: usize = per_source.iter().map(|(_, _, f): &(String, usize, usize)| *f).sum();
        per_source.push((source.clone(), n, hits.len() - before));
        index.add_source(source, grams);
    }
    Ok((hits, per_source))
}

/// Decontaminates against `sets`, with s1's cross-source rule when asked.
pub fn run_with(ws: &mut Workspace, sets: &[EvalSet], opts: &DecontamOptions) -> anyhow::Result<DecontamReport> {
    run_counted(ws, sets, opts, &mut |_| {})
}

/// [`run_with`], telling `progress` the pool questions checked against the sets so far.
pub fn run_counted(
    ws: &mut Workspace,
    sets: &[EvalSet],
    opts: &DecontamOptions,
    progress: &mut dyn FnMut(usize),
) -> anyhow::Result<DecontamReport> {
    let mut idx = EvalIndex::default();
    for s in sets {
        idx.add_set(&s.name, s.questions.iter().map(String::as_str));
    }
    let hits: Vec<(String, String, String)> = crate::curate::scan::par_scan_counted(
        &ws.conn,
        "SELECT key, question, source, metadata FROM questions",
        |row| {
            let key = row.text(0);
            let mut out: Vec<(String, String, String)> = idx
                .overlaps(row.text(1))
                .into_iter()
                .map(|o| (key.to_string(), format!("decontam:{}", o.set), o.ngram))
                .collect();
            if let Some(y) = aime_year(row.text(2), row.text(3)).filter(|y| *y > 2022) {
                out.push((key.to_string(), AIME_YEAR_RULE.to_string(), y.to_string()));
            }
            out
        },
        progress,
    )?;
    let (cross_hits, cross_per_source) = if opts.cross_source {
        let dropped: std::collections::HashSet<&str> = hits.iter().map(|h| h.0.as_str()).collect();
        cross_source(ws, &dropped)?
    } else {
        (Vec::new(), Vec::new())
    };
    let mut hits = hits;
    hits.extend(cross_hits);
    let tx = ws.conn.transaction()?;
    {
        tx.execute(
            "DELETE FROM flags WHERE rule LIKE 'decontam:%' OR rule = ?1",
            [AIME_YEAR_RULE],
        )?;
        let mut ins = tx.prepare("INSERT OR REPLACE INTO flags (key, rule, detail) VALUES (?1, ?2, ?3)")?;
        for (k, rule, detail) in &hits {
            ins.execute(params![k, rule, detail])?;
        }
        let names: Vec<&str> = sets.iter().map(|s| s.name.as_str()).collect();
        tx.execute(
            "INSERT INTO settings (k, v) VALUES ('decontam.sets', ?1) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
            [names.join(", ")],
        )?;
        tx.execute(
            "INSERT INTO settings (k, v) VALUES (?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
            [CROSS_SOURCE_SETTING, if opts.cross_source { "1" } else { "0" }],
        )?;
    }
    tx.commit()?;
    let per_set = sets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let rule = format!("decontam:{}", s.name);
            let n = hits.iter().filter(|h| h.1 == rule).count();
            (s.name.clone(), idx.sizes[i], n)
        })
        .collect();
    let mut flagged: Vec<&String> = hits.iter().map(|h| &h.0).collect();
    flagged.sort();
    flagged.dedup();
    Ok(DecontamReport {
        per_set,
        aime_after_2022: hits.iter().filter(|h| h.1 == AIME_YEAR_RULE).count(),
        cross_source: cross_per_source,
        flagged: flagged.len(),
        examples: hits
            .iter()
            .filter(|h| h.1.starts_with("decontam:") && !h.1.starts_with(CROSS_SOURCE_PREFIX))
            .take(5)
            .map(|h| (h.1["decontam:".len()..].to_string(), h.0.clone(), h.2.clone()))
            .collect(),
    })
}
