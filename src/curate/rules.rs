//! Running the quality rules (S1_RECIPE.md §1 steps 2-3) over a workspace: every rule's hits are
//! stored as flags (whether or not the rule is switched on), and the switched-on set is a setting,
//! so turning a rule off or on needs no rerun and the report can show what each rule would drop.

use std::collections::BTreeMap;

use rusqlite::params;

use super::quality::{self, Rule};
use crate::workspace::Workspace;

/// Fields the missing-field rule can require.
pub const REQUIRABLE: [&str; 4] = ["solution", "answer", "trace", "attempt"];

/// s1's: the reference solution and the trace (its API errors were missing traces).
pub const DEFAULT_REQUIRED: [&str; 2] = ["solution", "trace"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesConfig {
    pub enabled: Vec<Rule>,
    /// Fields the missing-field rule checks.
    pub required: Vec<String>,
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            enabled: Rule::ALL.to_vec(),
            required: DEFAULT_REQUIRED.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::MissingField => "missing_field",
            Rule::Asy => "asy",
            Rule::Image => "image",
            Rule::Enumeration => "enumeration",
            Rule::BoldNumber => "bold_number",
        }
    }

    pub fn parse(s: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == s)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Rule::MissingField => "a required field is missing",
            Rule::Asy => "[asy] figure (kept for AIME)",
            Rule::Image => "![Image] reference",
            Rule::Enumeration => "p{i}. enumeration",
            Rule::BoldNumber => "**bold** with a digit",
        }
    }
}

/// Whether a source's name says AIME in any case: the AIME year rule's test (a safety rule, so
/// broader than s1's names; see [`super::sources`] for the `[asy]` exception and the seed set).
pub fn is_aime(source: &str) -> bool {
    source.to_ascii_lowercase().contains("aime")
}

/// Parses a comma-separated rule list.
pub fn parse_rules(s: &str) -> Result<Vec<Rule>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| {
            Rule::parse(x).ok_or_else(|| format!("unknown rule `{x}`; rules: {}", Rule::ALL.map(Rule::name).join(", ")))
        })
        .collect()
}

/// The stored configuration (the default before `rules` first runs).
pub fn config(ws: &Workspace) -> anyhow::Result<RulesConfig> {
    let mut cfg = RulesConfig::default();
    if let Some(v) = ws.setting("rules.enabled")? {
        cfg.enabled = parse_rules(&v).map_err(anyhow::Error::msg)?;
    }
    if let Some(v) = ws.setting("rules.required")? {
        cfg.required = v.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect();
    }
    Ok(cfg)
}

/// Per-rule results of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCount {
    pub rule: Rule,
    pub enabled: bool,
    pub hits: usize,
    /// A few (key, question) examples.
    pub examples: Vec<(String, String)>,
}

/// Evaluates every rule on every question and stores the hits; saves `cfg`.
pub fn run(ws: &mut Workspace, cfg: &RulesConfig) -> anyhow::Result<Vec<RuleCount>> {
    for f in &cfg.required {
        if !REQUIRABLE.contains(&f.as_str()) {
            anyhow::bail!("cannot require `{f}`; requirable fields: {}", REQUIRABLE.join(", "));
        }
    }
    let source_names = super::sources::SourceNames::load(ws)?;
    let hits: Vec<(String, Rule, Option<String>)> = super::scan::par_scan(
        &ws.conn,
        "SELECT key, question, source, solution IS NOT NULL, answer IS NOT NULL,
                trace IS NOT NULL, trace_attempt IS NOT NULL
         FROM questions",
        |row| {
            let mut out = Vec::new();
            let has = |i: usize| row.get(i) == Some("1");
            let missing: Vec<&str> = cfg
                .required
                .iter()
                .map(String::as_str)
                .filter(|f| match *f {
                    "solution" => !has(3),
                    "answer" => !has(4),
                    "trace" => !has(5),
                    "attempt" => !has(6),
                    _ => false,
                })
                .collect();
            let key = row.text(0);
            if !missing.is_empty() {
                out.push((key.to_string(), Rule::MissingField, Some(missing.join(","))));
            }
            for r in quality::weird_strings(row.text(1), source_names.keeps_asy(row.text(2))) {
                out.push((key.to_string(), r, None));
            }
            out
        },
    )?;
    let tx = ws.conn.transaction()?;
    {
        let names: Vec<String> = Rule::ALL.iter().map(|r| format!("'{}'", r.name())).collect();
        tx.execute(&format!("DELETE FROM flags WHERE rule IN ({})", names.join(",")), [])?;
        let mut ins = tx.prepare("INSERT OR REPLACE INTO flags (key, rule, detail) VALUES (?1, ?2, ?3)")?;
        for (key, rule, detail) in &hits {
            ins.execute(params![key, rule.name(), detail])?;
        }
        let enabled: Vec<&str> = cfg.enabled.iter().map(|r| r.name()).collect();
        for (k, v) in [
            ("rules.enabled", enabled.join(",")),
            ("rules.required", cfg.required.join(",")),
        ] {
            tx.execute(
                "INSERT INTO settings (k, v) VALUES (?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                params![k, v],
            )?;
        }
        tx.execute(
            "INSERT INTO settings (k, v) VALUES ('rules.ran', '1') ON CONFLICT(k) DO UPDATE SET v = '1'",
            [],
        )?;
    }
    tx.commit()?;
    counts(ws, cfg)
}

/// Hits and examples per rule, from the stored flags.
pub fn counts(ws: &Workspace, cfg: &RulesConfig) -> anyhow::Result<Vec<RuleCount>> {
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    {
        let mut st = ws.conn.prepare("SELECT rule, count(*) FROM flags GROUP BY rule")?;
        for r in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (rule, n) = r?;
            per.insert(rule, n as usize);
        }
    }
    let mut ex = ws.conn.prepare(
        "SELECT f.key, q.question FROM flags f JOIN questions q ON q.key = f.key WHERE f.rule = ?1 ORDER BY q.id LIMIT 3",
    )?;
    Rule::ALL
        .into_iter()
        .map(|rule| {
            let examples = ex
                .query_map([rule.name()], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<(String, String)>, _>>()?;
            Ok(RuleCount {
                rule,
                enabled: cfg.enabled.contains(&rule),
                hits: per.get(rule.name()).copied().unwrap_or(0),
                examples,
            })
        })
        .collect()
}
