//! The rules step: the quality rules (S1_RECIPE.md §1 steps 2-3, [`crate::curate::quality`])
//! over a workspace. Every rule's hits are stored as flags (whether or not the rule is switched
//! on), and the switched-on set is the workspace's [`RulesConfig`], so turning a rule off or on
//! needs no rerun and the report can show what each rule would drop.

use std::collections::BTreeMap;

use rusqlite::params;

use crate::curate::quality::{self, Rule};
use crate::curate::rule_config::RulesConfig;
use crate::curate::sources::SourceNames;
use crate::workspace::Workspace;

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
    run_counted(ws, cfg, &mut |_| {})
}

/// [`run`], telling `progress` the questions checked so far.
pub fn run_counted(
    ws: &mut Workspace,
    cfg: &RulesConfig,
    progress: &mut dyn FnMut(usize),
) -> anyhow::Result<Vec<RuleCount>> {
    cfg.check()?;
    let source_names = SourceNames::load(ws)?;
    let hits: Vec<(String, Rule, Option<String>)> = crate::curate::scan::par_scan_counted(
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
        progress,
    )?;
    let tx = ws.conn.transaction()?;
    {
        let names: Vec<String> = Rule::ALL.iter().map(|r| format!("'{}'", r.name())).collect();
        tx.execute(&format!("DELETE FROM flags WHERE rule IN ({})", names.join(",")), [])?;
        let mut ins = tx.prepare("INSERT OR REPLACE INTO flags (key, rule, detail) VALUES (?1, ?2, ?3)")?;
        for (key, rule, detail) in &hits {
            ins.execute(params![key, rule.name(), detail])?;
        }
        for (k, v) in cfg.settings() {
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
