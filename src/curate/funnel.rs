//! The funnel (S1_RECIPE.md §1): which questions survive each stage, from the stored flags,
//! attempts, traces and domains. Computed on demand (a million questions in well under a second),
//! so switching a rule or excluding a question by hand shows at once.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use super::quality::Rule;
use super::rule_config::RulesConfig;
use crate::workspace::{Manual, Workspace};

/// The flag of s1's limit of AIME problems to 1983-2022 (written by the decontamination step,
/// steps/decontam.rs, like the two names below; read here).
pub const AIME_YEAR_RULE: &str = "aime_after_2022";

/// The flag prefix of the cross-source rule.
pub const CROSS_SOURCE_PREFIX: &str = "decontam:source:";

/// The workspace setting that records whether the last run checked across sources.
pub const CROSS_SOURCE_SETTING: &str = "decontam.cross_source";

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
    /// Shared among the questions of a domain (there are few domains and many questions).
    pub domain: Option<Arc<str>>,
    /// Some model's attempt got no verdict (the judge never ended on Yes or No, or no reference).
    pub undecided: bool,
    /// The source is AIME, GPQA or MATH, as [`super::sources::SourceNames`] reads the names (the
    /// seed set and the benchmark distribution).
    pub aime: bool,
    pub gpqa: bool,
    pub math: bool,
}

/// What the difficulty stage does with a question one of whose attempts stayed undecided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Undecided {
    /// Drop it (s1: featurization.py retries the judge until it says Yes or No, and a question
    /// left without a grade has a missing feature, which filter.ipynb's first filter drops).
    #[default]
    Exclude,
    /// Keep it as if the attempt were wrong (the studio's earlier behaviour).
    Keep,
}

impl Undecided {
    /// The workspace setting that holds the choice.
    pub const SETTING: &'static str = "difficulty.undecided";

    pub fn name(self) -> &'static str {
        match self {
            Undecided::Exclude => "exclude",
            Undecided::Keep => "keep",
        }
    }

    /// The workspace's choice (s1's when never set).
    pub fn load(ws: &Workspace) -> anyhow::Result<Self> {
        match ws.setting(Self::SETTING)?.as_deref() {
            None | Some("exclude") => Ok(Undecided::Exclude),
            Some("keep") => Ok(Undecided::Keep),
            Some(v) => anyhow::bail!(
                "workspace setting `{}` is `{v}`; it must be `exclude` or `keep`",
                Self::SETTING
            ),
        }
    }

    pub fn store(self, ws: &Workspace) -> anyhow::Result<()> {
        ws.conn.execute(
            "INSERT INTO settings (k, v) VALUES (?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
            [Self::SETTING, self.name()],
        )?;
        Ok(())
    }
}

pub struct Funnel {
    pub stages: Vec<Stage>,
    /// Every question's key, in pool order, and its state (same index).
    pub keys: Vec<String>,
    pub states: Vec<QuestionState>,
    index: KeyIndex,
    /// Indexes of the questions that passed quality and decontamination: what difficulty runs on.
    pub after_decontam: Vec<usize>,
    /// Indexes of the questions that passed every filter (difficulty included): what selection
    /// draws from.
    pub survivors: Vec<usize>,
    /// Models with attempts.
    pub models: Vec<String>,
    /// Per question (same index): the stage that dropped it (an index into `stages`), or None
    /// when it passed every filter.
    pub dropped_at: Vec<Option<u8>>,
    /// Questions past decontamination with an undecided attempt, and what the difficulty stage
    /// did with them.
    pub undecided: usize,
    pub undecided_policy: Undecided,
}

/// A key as a number (keys are 16 hex digits), for cheap lookups.
fn key_id(key: &str) -> u64 {
    u64::from_str_radix(key, 16).unwrap_or_else(|_| {
        key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        })
    })
}

/// Hashes a [`key_id`], which is already well spread (the leading bits of a sha256, or an FNV
/// hash): one multiply instead of SipHash, for a million lookups.
#[derive(Default)]
struct KeyIdHasher(u64);

impl Hasher for KeyIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ *b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type KeyIndex = HashMap<u64, usize, BuildHasherDefault<KeyIdHasher>>;

impl Funnel {
    /// The index of a key.
    pub fn position(&self, key: &str) -> Option<usize> {
        self.index.get(&key_id(key)).copied().filter(|&i| self.keys[i] == key)
    }

    /// The state of a key.
    pub fn state(&self, key: &str) -> Option<&QuestionState> {
        self.position(key).map(|i| &self.states[i])
    }

    pub fn survivor_keys(&self) -> HashSet<&str> {
        self.survivors.iter().map(|&i| self.keys[i].as_str()).collect()
    }

    pub fn after_decontam_keys(&self) -> HashSet<&str> {
        self.after_decontam.iter().map(|&i| self.keys[i].as_str()).collect()
    }
}

/// What the funnel reads of each question; the `questions_funnel` index covers it.
const FUNNEL_SQL: &str = "SELECT key, manual, source, trace_tokens, trace_correct, domain FROM questions ORDER BY id";

/// Builds the funnel from the workspace.
pub fn compute(ws: &Workspace) -> anyhow::Result<Funnel> {
    let cfg = RulesConfig::load(ws)?;
    let source_names = super::sources::SourceNames::load(ws)?;
    let undecided_policy = Undecided::load(ws)?;
    let enabled: HashSet<&str> = cfg.enabled.iter().map(|r| r.name()).collect();
    // Ids are dense from 1 unless questions were deleted: the largest is the pool's size or more.
    let max_id: i64 = ws
        .conn
        .query_row("SELECT coalesce(max(id), 0) FROM questions", [], |r| r.get(0))?;
    let mut keys: Vec<String> = Vec::with_capacity(max_id.max(0) as usize);
    let mut states: Vec<QuestionState> = Vec::with_capacity(keys.capacity());
    {
        let mut domains: HashSet<Arc<str>> = HashSet::new();
        let mut st = ws.conn.prepare(FUNNEL_SQL)?;
        let mut rows = st.query([])?;
        let mut kinds: HashMap<String, super::sources::Kinds> = HashMap::new();
        while let Some(r) = rows.next()? {
            keys.push(r.get(0)?);
            let manual: Option<String> = r.get(1)?;
            let source = r.get_ref(2)?.as_str().unwrap_or("");
            let k = match kinds.get(source) {
                Some(k) => *k,
                None => {
                    let k = source_names.kinds(source);
                    kinds.insert(source.to_string(), k);
                    k
                }
            };
            states.push(QuestionState {
                manual: manual.as_deref().and_then(Manual::parse),
                trace_tokens: r.get::<_, Option<i64>>(3)?.map(|t| t as usize),
                trace_correct: r.get::<_, Option<i64>>(4)?.map(|c| c != 0),
                domain: r.get_ref(5)?.as_str_or_null()?.map(|d| match domains.get(d) {
                    Some(shared) => shared.clone(),
                    None => {
                        let shared: Arc<str> = d.into();
                        domains.insert(shared.clone());
                        shared
                    }
                }),
                aime: k.aime,
                gpqa: k.gpqa,
                math: k.math,
                ..Default::default()
            });
        }
    }
    let mut index = KeyIndex::with_capacity_and_hasher(keys.len(), Default::default());
    index.extend(keys.iter().enumerate().map(|(i, k)| (key_id(k), i)));
    let find = |k: &str| index.get(&key_id(k)).copied();
    {
        let mut st = ws.conn.prepare("SELECT key, rule FROM flags")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let Some(i) = find(r.get_ref(0)?.as_str().unwrap_or("")) else {
                continue;
            };
            let rule = r.get_ref(1)?.as_str().unwrap_or("");
            let s = &mut states[i];
            if rule.starts_with("decontam:") || rule == AIME_YEAR_RULE {
                s.contaminated = true;
            } else if enabled.contains(rule) {
                if let Some(r) = Rule::parse(rule) {
                    s.quality.push(r);
                }
            }
        }
    }
    let mut models: Vec<String> = Vec::new();
    {
        let mut st = ws.conn.prepare("SELECT key, model, verdict FROM attempts")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let model = r.get_ref(1)?.as_str().unwrap_or("");
            if !models.iter().any(|m| m == model) {
                models.push(model.to_string());
            }
            if let Some(i) = find(r.get_ref(0)?.as_str().unwrap_or("")) {
                states[i].attempted_by += 1;
                let verdict = r.get_ref(2)?.as_str().unwrap_or("");
                states[i].any_correct |= verdict == "correct";
                states[i].undecided |= verdict == "undecided";
            }
        }
    }
    models.sort();

    let (rows_read, malformed): (i64, i64) = ws.conn.query_row(
        "SELECT coalesce(sum(rows), 0), coalesce(sum(malformed), 0) FROM imports",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let valid_rows = (rows_read - malformed).max(0) as usize;
    let mut stages = vec![
        Stage {
            name: "rows imported".into(),
            kept: valid_rows,
            dropped: malformed as usize,
            note: format!("{malformed} malformed rows skipped"),
        },
        Stage {
            name: "unique questions".into(),
            kept: keys.len(),
            dropped: valid_rows.saturating_sub(keys.len()),
            note: "exact duplicates (same sha256 key) merged".into(),
        },
    ];
    let mut cur: Vec<usize> = (0..keys.len()).collect();
    let mut dropped_at: Vec<Option<u8>> = vec![None; keys.len()];
    let mut stage = |name: &str, note: String, keep: &dyn Fn(&QuestionState) -> bool, cur: &mut Vec<usize>| {
        let before = cur.len();
        let at = stages.len() as u8;
        cur.retain(|&i| {
            let s = &states[i];
            let kept = s.manual == Some(Manual::Include) || keep(s);
            if !kept {
                dropped_at[i] = Some(at);
            }
            kept
        });
        stages.push(Stage {
            name: name.into(),
            kept: cur.len(),
            dropped: before - cur.len(),
            note,
        });
    };
    let excluded = states.iter().filter(|s| s.manual == Some(Manual::Exclude)).count();
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
    let cross = ws.setting(CROSS_SOURCE_SETTING)?.as_deref() == Some("1");
    stage(
        "decontaminated",
        match &decontam_sets {
            Some(sets) => format!(
                "8-gram overlap with {sets}{}",
                if cross {
                    ", and with earlier sources (s1's cross-source rule)"
                } else {
                    ""
                }
            ),
            None => "decontamination not run yet".into(),
        },
        &|s| !s.contaminated,
        &mut cur,
    );
    let after_decontam = cur.clone();
    let n_models = models.len();
    let pending = cur.iter().filter(|&&i| states[i].attempted_by < n_models).count();
    let undecided = cur.iter().filter(|&&i| states[i].undecided).count();
    let exclude_undecided = undecided_policy == Undecided::Exclude;
    stage(
        "difficulty: no model correct",
        if n_models == 0 {
            "no attempts yet".into()
        } else {
            format!(
                "models: {}{}{}",
                models.join(", "),
                if pending > 0 {
                    format!("; {pending} not yet attempted by every model (dropped until they are)")
                } else {
                    String::new()
                },
                if undecided > 0 {
                    format!(
                        "; {undecided} with an undecided verdict ({})",
                        if exclude_undecided {
                            "dropped, as s1"
                        } else {
                            "kept as not correct: option `keep`"
                        }
                    )
                } else {
                    String::new()
                }
            )
        },
        &|s| n_models == 0 || (s.attempted_by >= n_models && !s.any_correct && !(exclude_undecided && s.undecided)),
        &mut cur,
    );
    let survivors = cur;
    let ready_stage = stages.len() as u8;
    for &i in &survivors {
        if states[i].trace_tokens.is_none() || states[i].domain.is_none() {
            dropped_at[i] = Some(ready_stage);
        }
    }
    let no_trace = survivors.iter().filter(|&&i| states[i].trace_tokens.is_none()).count();
    let no_domain = survivors.iter().filter(|&&i| states[i].domain.is_none()).count();
    let selectable = survivors
        .iter()
        .filter(|&&i| states[i].trace_tokens.is_some() && states[i].domain.is_some())
        .count();
    stages.push(Stage {
        name: "ready to select".into(),
        kept: selectable,
        dropped: survivors.len() - selectable,
        note: format!("{no_trace} without a trace length, {no_domain} without a domain"),
    });
    if let Ok((name, n)) = ws
        .conn
        .query_row(
            "SELECT s.name, (SELECT count(*) FROM selection_items i WHERE i.name = s.name) FROM selections s ORDER BY at DESC, rowid DESC LIMIT 1",
            [],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
        )
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
        keys,
        states,
        index,
        after_decontam,
        survivors,
        models,
        dropped_at,
        undecided,
        undecided_policy,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_funnel_scan_reads_only_its_covering_index() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        let plan: Vec<String> = ws
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {FUNNEL_SQL}"))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(|p| p.contains("COVERING INDEX questions_funnel")),
            "{plan:?}"
        );
    }
}
