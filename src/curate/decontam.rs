//! The decontamination step over a workspace: every question's word 8-grams against the chosen
//! evaluation sets (by default the ones the app ships: MATH500, AIME24, AIME25, AMC23, GSM8K), and
//! s1's limit of AIME training problems to 1983-2022. Hits are flags `decontam:<set>` (with the
//! shared 8-gram) and `aime_after_2022`.

use std::path::Path;

use rusqlite::params;

use crate::data::decontam::EvalIndex;
use crate::data::read::for_each_row;
use crate::workspace::Workspace;

pub const AIME_YEAR_RULE: &str = "aime_after_2022";

/// An evaluation set: its name and its questions.
pub struct EvalSet {
    pub name: String,
    pub questions: Vec<String>,
}

/// The evaluation sets compiled into the binary.
pub fn bundled_sets() -> anyhow::Result<Vec<EvalSet>> {
    crate::eval::bench::NAMED
        .iter()
        .map(|(name, _, _)| {
            let b = crate::eval::bench::load(name, None).map_err(anyhow::Error::msg)?;
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
    /// Questions flagged by anything.
    pub flagged: usize,
    /// A few (set, key, n-gram) examples.
    pub examples: Vec<(String, String, String)>,
}

/// The year of an AIME pool row, from its metadata (`year`) when it has one.
fn aime_year(source: &str, metadata: &str) -> Option<i64> {
    if !super::rules::is_aime(source) {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(metadata).ok()?;
    let y = v.get("year")?;
    y.as_i64().or_else(|| y.as_str().and_then(|s| s.trim().parse().ok()))
}

pub fn run(ws: &mut Workspace, sets: &[EvalSet]) -> anyhow::Result<DecontamReport> {
    let mut idx = EvalIndex::default();
    for s in sets {
        idx.add_set(&s.name, s.questions.iter().map(String::as_str));
    }
    let hits: Vec<(String, String, String)> = super::scan::par_scan(
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
    )?;
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
        flagged: flagged.len(),
        examples: hits
            .iter()
            .filter(|h| h.1.starts_with("decontam:"))
            .take(5)
            .map(|h| (h.1["decontam:".len()..].to_string(), h.0.clone(), h.2.clone()))
            .collect(),
    })
}
