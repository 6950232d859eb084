//! The funnel (S1_RECIPE.md §1): which questions survive each stage, from the stored flags,
//! attempts, traces and domains. Computed on demand (a million questions in well under a second),
//! so switching a rule or excluding a question by hand shows at once.

use std::collections::{HashMap, HashSet};

use super::quality::Rule;
use super::rules;
use crate::workspace::{Manual, Workspace};

/// One stage: how many questions it keeps and drops.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Stage {
    pub name: String,
    pub kept: usize,
    pub dropped: usize,
    /// What the stage did, or why it did not run.
    pub note: String,
}

/// What the funnel knows of one question.
#[derive(Debug, Clone, Default)]
pub struct QuestionState {
    pub manual: Option<Manual>,
    /// Enabled quality rules it hits.
    pub quality: Vec<Rule>,
    pub contaminated: bool,
    /// Models that attempted it, and whether any was correct.
    pub attempted_by: usize,
    pub any_correct: bool,
    pub trace_tokens: Option<usize>,
    pub trace_correct: Option<bool>,
    pub domain: Option<String>,
    pub source: String,
}

pub struct Funnel {
    pub stages: Vec<Stage>,
    /// Keys (pool order) that passed quality and decontamination: what difficulty runs on.
    pub after_decontam: Vec<String>,
    /// Keys that passed every filter (difficulty included): what selection draws from.
    pub survivors: Vec<String>,
    pub states: HashMap<String, QuestionState>,
    /// Models with attempts.
    pub models: Vec<String>,
}

/// Builds the funnel from the workspace.
pub fn compute(ws: &Workspace) -> anyhow::Result<Funnel> {
    let cfg = rules::config(ws)?;
    let enabled: HashSet<&str> = cfg.enabled.iter().map(|r| r.name()).collect();
    let mut order: Vec<String> = Vec::new();
    let mut states: HashMap<String, QuestionState> = HashMap::new();
    {
        let mut st = ws
            .conn
            .prepare("SELECT key, manual, source FROM questions ORDER BY id")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (key, manual, source) = row?;
            order.push(key.clone());
            states.insert(
                key,
                QuestionState {
                    manual: manual.as_deref().and_then(Manual::parse),
                    source,
                    ..Default::default()
                },
            );
        }
    }
    {
        let mut st = ws.conn.prepare("SELECT key, rule FROM flags")?;
        for row in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
            let (key, rule) = row?;
            let Some(s) = states.get_mut(&key) else { continue };
            if rule.starts_with("decontam:") || rule == super::decontam::AIME_YEAR_RULE {
                s.contaminated = true;
            } else if enabled.contains(rule.as_str()) {
                if let Some(r) = Rule::parse(&rule) {
                    s.quality.push(r);
                }
            }
        }
    }
    let mut models: Vec<String> = Vec::new();
    {
        let mut st = ws.conn.prepare("SELECT key, model, verdict FROM attempts")?;
        for row in st.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        })? {
            let (key, model, verdict) = row?;
            if !models.contains(&model) {
                models.push(model);
            }
            if let Some(s) = states.get_mut(&key) {
                s.attempted_by += 1;
                s.any_correct |= verdict == "correct";
            }
        }
    }
    models.sort();
    {
        let mut st = ws.conn.prepare("SELECT key, tokens, correct FROM traces")?;
        for row in st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, Option<i64>>(2)?,
            ))
        })? {
            let (key, tokens, correct) = row?;
            if let Some(s) = states.get_mut(&key) {
                s.trace_tokens = tokens.map(|t| t as usize);
                s.trace_correct = correct.map(|c| c != 0);
            }
        }
    }
    {
        let mut st = ws.conn.prepare("SELECT key, code FROM domains")?;
        for row in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
            let (key, code) = row?;
            if let Some(s) = states.get_mut(&key) {
                s.domain = Some(code);
            }
        }
    }

    let (rows_read, malformed): (i64, i64) = ws.conn.query_row(
        "SELECT coalesce(sum(rows), 0), coalesce(sum(malformed), 0) FROM imports",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut stages = vec![
        Stage {
            name: "rows imported".into(),
            kept: (rows_read - malformed) as usize,
            dropped: malformed as usize,
            note: format!("{malformed} malformed rows skipped"),
        },
        Stage {
            name: "unique questions".into(),
            kept: order.len(),
            dropped: (rows_read - malformed) as usize - order.len(),
            note: "exact duplicates (same sha256 key) merged".into(),
        },
    ];
    let mut cur: Vec<&String> = order.iter().collect();
    let mut stage = |name: &str, note: String, keep: &dyn Fn(&QuestionState) -> bool, cur: &mut Vec<&String>| {
        let before = cur.len();
        cur.retain(|k| {
            let s = &states[*k];
            s.manual == Some(Manual::Include) || keep(s)
        });
        stages.push(Stage {
            name: name.into(),
            kept: cur.len(),
            dropped: before - cur.len(),
            note,
        });
    };
    let excluded = states.values().filter(|s| s.manual == Some(Manual::Exclude)).count();
    stage(
        "not excluded by hand",
        format!("{excluded} excluded by hand"),
        &|s| s.manual != Some(Manual::Exclude),
        &mut cur,
    );
    let ran = ws.setting("rules.ran")?.is_some();
    let missing_on = cfg.enabled.contains(&Rule::MissingField);
    stage(
        "quality 1: complete",
        if !ran {
            "rules not run yet".into()
        } else if missing_on {
            format!("required: {}", cfg.required.join(", "))
        } else {
            "missing-field rule switched off".into()
        },
        &|s| !s.quality.contains(&Rule::MissingField),
        &mut cur,
    );
    let weird_on: Vec<&str> = cfg
        .enabled
        .iter()
        .filter(|r| **r != Rule::MissingField)
        .map(|r| r.name())
        .collect();
    stage(
        "quality 2: no weird strings",
        if !ran {
            "rules not run yet".into()
        } else {
            format!("rules on: {}", weird_on.join(", "))
        },
        &|s| s.quality.iter().all(|r| *r == Rule::MissingField),
        &mut cur,
    );
    let decontam_sets = ws.setting("decontam.sets")?;
    stage(
        "decontaminated",
        match &decontam_sets {
            Some(sets) => format!("8-gram overlap with {sets}"),
            None => "decontamination not run yet".into(),
        },
        &|s| !s.contaminated,
        &mut cur,
    );
    let after_decontam: Vec<String> = cur.iter().map(|k| (*k).clone()).collect();
    let n_models = models.len();
    let pending = cur.iter().filter(|k| states[**k].attempted_by < n_models).count();
    stage(
        "difficulty: no model correct",
        if n_models == 0 {
            "no attempts yet".into()
        } else {
            format!(
                "models: {}{}",
                models.join(", "),
                if pending > 0 {
                    format!("; {pending} not yet attempted by every model (dropped until they are)")
                } else {
                    String::new()
                }
            )
        },
        &|s| n_models == 0 || (s.attempted_by >= n_models && !s.any_correct),
        &mut cur,
    );
    let survivors: Vec<String> = cur.iter().map(|k| (*k).clone()).collect();
    let no_trace = cur.iter().filter(|k| states[**k].trace_tokens.is_none()).count();
    let no_domain = cur.iter().filter(|k| states[**k].domain.is_none()).count();
    let selectable = cur
        .iter()
        .filter(|k| states[**k].trace_tokens.is_some() && states[**k].domain.is_some())
        .count();
    stages.push(Stage {
        name: "ready to select".into(),
        kept: selectable,
        dropped: cur.len() - selectable,
        note: format!("{no_trace} without a trace length, {no_domain} without a domain"),
    });
    if let Some((name, n)) = ws
        .conn
        .query_row(
            "SELECT s.name, (SELECT count(*) FROM selection_items i WHERE i.name = s.name) FROM selections s ORDER BY at DESC, rowid DESC LIMIT 1",
            [],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
        )
        .ok()
    {
        stages.push(Stage {
            name: "selected".into(),
            kept: n as usize,
            dropped: selectable.saturating_sub(n as usize),
            note: format!("selection `{name}`"),
        });
    }
    Ok(Funnel {
        stages,
        after_decontam,
        survivors,
        states,
        models,
    })
}

/// The funnel as a text table.
pub fn render(stages: &[Stage]) -> String {
    let w = stages.iter().map(|s| s.name.len()).max().unwrap_or(10);
    let mut out = format!("{:w$}  {:>9}  {:>9}  note\n", "stage", "kept", "dropped");
    for s in stages {
        out += &format!("{:w$}  {:>9}  {:>9}  {}\n", s.name, s.kept, s.dropped, s.note);
    }
    out
}
