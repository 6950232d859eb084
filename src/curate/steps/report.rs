//! What a step did, as [`super::run`] returns it: typed, for a front-end to use (the view takes
//! the inspector's question from it), and written out (`Display`) as the command line prints it
//! and the view logs it, so both front-ends say the same thing.

use std::fmt::{self, Display, Formatter};
use std::path::PathBuf;

use super::annotate::StepReport;
use super::decontam::DecontamReport;
use super::import::Imported;
use super::map::MapReport;
use super::rules::RuleCount;
use super::selection::SelectionReport;
use super::snapshot::QuestionDetail;
use crate::curate::classify;
use crate::curate::funnel::Undecided;
use crate::curate::rule_config::RulesConfig;
use crate::workspace::Manual;

/// Where a domains step took its labels from.
#[derive(Debug, Clone, PartialEq)]
pub enum DomainsFrom {
    /// This model's name.
    Model(String),
    File(PathBuf),
    Subjects,
}

#[derive(Debug, Clone)]
pub enum Report {
    /// The pool was read.
    Refreshed,
    /// Each file, then the pool's size.
    Import {
        files: Vec<Imported>,
        pool: usize,
    },
    /// Every rule's hits (and whether it is on).
    Rules(Vec<RuleCount>),
    /// The rule configuration as now stored.
    RulesConfigured(RulesConfig),
    Decontam {
        report: DecontamReport,
        cross_source: bool,
    },
    /// The traces made (what made them, and how it went), then the lengths measured (with which
    /// tokenizer).
    Traces {
        made: Option<(String, StepReport)>,
        measured: Option<(PathBuf, StepReport)>,
    },
    /// A model's attempts, and what the funnel does with an undecided verdict.
    Attempts {
        model: String,
        report: StepReport,
        undecided: Undecided,
    },
    Domains {
        from: DomainsFrom,
        report: StepReport,
    },
    Selection(SelectionReport),
    /// The selection exported and each file written with its row count.
    Export {
        selection: String,
        files: Vec<(PathBuf, usize)>,
    },
    /// Questions marked by hand (None: cleared back to the funnel's verdict).
    Marked {
        count: usize,
        manual: Option<Manual>,
    },
    /// One question in full, for the inspector.
    Detail(Box<QuestionDetail>),
    Map(MapReport),
}

/// `n` with thousands separators: 13612 -> "13,612".
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Report {
    /// The report in a few words, for a status line ("1,000 selected"); [`Display`] has it all.
    pub fn headline(&self) -> String {
        let t = |n: usize| thousands(n);
        match self {
            Report::Refreshed => "pool read".into(),
            Report::Import { files, pool } => {
                let added: usize = files
                    .iter()
                    .map(|i| match i {
                        Imported::File { report, .. } => report.added,
                        _ => 0,
                    })
                    .sum();
                let ok = files.iter().filter(|i| matches!(i, Imported::File { .. })).count();
                let failed = files.iter().filter(|i| i.failure().is_some()).count();
                let mut s = format!(
                    "{} new questions from {ok} file{} (pool: {})",
                    t(added),
                    if ok == 1 { "" } else { "s" },
                    t(*pool)
                );
                if failed > 0 {
                    s.push_str(&format!("; {failed} not imported"));
                }
                s
            }
            Report::Rules(counts) => {
                let hits: usize = counts.iter().filter(|c| c.enabled).map(|c| c.hits).sum();
                format!("{} hits of the rules switched on", t(hits))
            }
            Report::RulesConfigured(_) => self.to_string().trim_end().to_string(),
            Report::Decontam { report, .. } => format!("{} questions flagged", t(report.flagged)),
            Report::Traces { made, measured } => {
                let mut parts = Vec::new();
                if let Some((_, r)) = made {
                    parts.push(format!("{} traces made, {} failed", t(r.done), t(r.failed)));
                }
                if let Some((_, r)) = measured {
                    parts.push(format!("{} measured", t(r.done)));
                }
                parts.join("; ")
            }
            Report::Attempts { report: r, .. } => {
                format!("{} attempts done, {} failed", t(r.done), t(r.failed))
            }
            Report::Domains { report: r, .. } => format!("{} domains stored, {} not", t(r.done), t(r.failed)),
            Report::Selection(r) => format!("{} selected", t(r.selected.len())),
            Report::Export { files, .. } => {
                let names: Vec<String> = files
                    .iter()
                    .map(|(p, _)| {
                        p.file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    })
                    .collect();
                let rows = files.first().map(|f| f.1).unwrap_or(0);
                format!("{} rows to {}", t(rows), names.join(", "))
            }
            Report::Marked { count, manual } => format!(
                "{} marked {}",
                t(*count),
                match manual {
                    Some(Manual::Include) => "included",
                    Some(Manual::Exclude) => "excluded",
                    None => "as the funnel decides",
                }
            ),
            Report::Detail(d) => format!("question {}", d.key),
            Report::Map(r) => format!(
                "{} questions on the map{}",
                t(r.points),
                if r.stopped { " (stopped)" } else { "" }
            ),
        }
    }

    /// Each file an import could not take in, as "FILE: PROBLEM".
    pub fn failures(&self) -> Vec<String> {
        match self {
            Report::Import { files, .. } => files.iter().filter_map(Imported::failure).collect(),
            _ => Vec::new(),
        }
    }
}

/// A model step's counts, as one line.
fn step_line(f: &mut Formatter<'_>, what: &str, r: &StepReport) -> fmt::Result {
    writeln!(
        f,
        "{what}: {} done, {} failed, {} already done (of {} pending at the start)",
        r.done, r.failed, r.skipped, r.pending
    )
}

impl Display for Report {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Report::Refreshed => writeln!(f, "pool read"),
            Report::Import { files, pool } => {
                for i in files {
                    imported(f, i)?;
                }
                writeln!(f, "pool: {pool} questions")
            }
            Report::Rules(counts) => {
                writeln!(f, "{:14} {:>4} {:>8}  examples", "rule", "on", "hits")?;
                for c in counts {
                    let on = if c.enabled { "yes" } else { "no" };
                    writeln!(f, "{:14} {:>4} {:>8}  {}", c.rule.name(), on, c.hits, c.rule.describe())?;
                    for (k, q) in &c.examples {
                        let q: String = q.chars().take(100).collect::<String>().replace('\n', " ");
                        writeln!(f, "    {k}  {q}")?;
                    }
                }
                Ok(())
            }
            Report::RulesConfigured(cfg) => {
                let on: Vec<&str> = cfg.enabled.iter().map(|r| r.name()).collect();
                writeln!(
                    f,
                    "rules on: {}; required fields: {}",
                    if on.is_empty() { "none".into() } else { on.join(", ") },
                    if cfg.required.is_empty() {
                        "none".into()
                    } else {
                        cfg.required.join(", ")
                    }
                )
            }
            Report::Decontam {
                report: r,
                cross_source,
            } => {
                for (name, n, hits) in &r.per_set {
                    writeln!(f, "{name:12} {n:>6} questions   {hits:>6} pool questions overlap")?;
                }
                writeln!(f, "AIME problems after 2022: {}", r.aime_after_2022)?;
                if *cross_source {
                    writeln!(f, "against earlier sources (in import order):")?;
                    for (name, n, hits) in &r.cross_source {
                        writeln!(
                            f,
                            "    {name}: {n} questions checked, {hits} share an 8-gram with an earlier source"
                        )?;
                    }
                }
                writeln!(f, "flagged: {} questions", r.flagged)?;
                for (set, key, gram) in &r.examples {
                    writeln!(f, "    {set}: {key}  \"{gram}\"")?;
                }
                Ok(())
            }
            Report::Traces { made, measured } => {
                if let Some((what, r)) = made {
                    step_line(f, what, r)?;
                }
                if let Some((t, r)) = measured {
                    writeln!(f, "trace lengths: {} traces measured with {}", r.done, t.display())?;
                }
                Ok(())
            }
            Report::Attempts {
                model,
                report: r,
                undecided,
            } => {
                step_line(f, &format!("attempts by {model}"), r)?;
                if r.undecided > 0 {
                    writeln!(
                        f,
                        "{} attempts undecided (no verdict): such questions are {} (`curate settings --undecided`)",
                        r.undecided,
                        match undecided {
                            Undecided::Exclude => "dropped by the difficulty stage, as s1",
                            Undecided::Keep => "kept as not correct",
                        }
                    )?;
                }
                Ok(())
            }
            Report::Domains { from, report: r } => match from {
                DomainsFrom::Model(name) => step_line(f, &format!("domains by {name}"), r),
                DomainsFrom::File(p) => writeln!(
                    f,
                    "domains from {}: {} stored, {} not MSC codes",
                    p.display(),
                    r.done,
                    r.failed
                ),
                DomainsFrom::Subjects => writeln!(
                    f,
                    "domains from subject labels: {} stored, {} without a known subject",
                    r.done, r.failed
                ),
            },
            Report::Selection(r) => {
                writeln!(
                    f,
                    "selection `{}`: {} of {} candidates ({} from the seed set)",
                    r.name,
                    r.selected.len(),
                    r.candidates,
                    r.seed_set
                )?;
                for (d, n) in r.per_domain.iter().take(12) {
                    writeln!(f, "  {d} {:40} {n}", classify::title(d).unwrap_or("?"))?;
                }
                if r.per_domain.len() > 12 {
                    writeln!(f, "  ... {} domains in all", r.per_domain.len())?;
                }
                Ok(())
            }
            Report::Export { selection, files } => {
                for (p, n) in files {
                    writeln!(f, "{}: {n} rows of selection `{selection}` (s1K schema)", p.display())?;
                }
                Ok(())
            }
            Report::Marked { count, manual } => writeln!(
                f,
                "{count} questions marked {}",
                manual.map(Manual::name).unwrap_or("clear")
            ),
            Report::Detail(d) => writeln!(f, "question {} ({})", d.key, d.source),
            Report::Map(r) => {
                writeln!(
                    f,
                    "embedder {}: {} questions embedded, {} had a vector{}",
                    r.embedder,
                    r.embedded,
                    r.already,
                    match r.model_shared {
                        Some(true) => " (by the model already loaded, shared)",
                        _ => "",
                    }
                )?;
                let how = if r.laid_out {
                    "laid out"
                } else {
                    "kept (same questions and seed)"
                };
                writeln!(f, "map: {} points, {how}", r.points)?;
                if r.stopped {
                    writeln!(f, "stopped: what finished is stored; run it again to go on")?;
                }
                Ok(())
            }
        }
    }
}

/// One imported file's lines.
fn imported(f: &mut Formatter<'_>, i: &Imported) -> fmt::Result {
    match i {
        Imported::Before(name) => writeln!(f, "{name}: already imported"),
        Imported::Failed { file, problem } => writeln!(f, "{file}: not imported: {problem}"),
        Imported::File {
            report: r,
            mapping,
            seconds,
        } => {
            writeln!(
                f,
                "{}: {} shape; {} rows, {} new questions, {} duplicates, {} malformed ({seconds:.2} s)",
                r.file,
                r.shape.name(),
                r.rows,
                r.added,
                r.duplicates,
                r.malformed
            )?;
            writeln!(f, "  mapping: {mapping}")?;
            if r.traces > 0 || r.domains > 0 {
                writeln!(f, "  with {} traces and {} domains from the file", r.traces, r.domains)?;
            }
            for e in r.errors.iter().take(10) {
                writeln!(f, "  {}:{}: {}", r.file, e.line, e.message)?;
            }
            if r.malformed > 10 {
                writeln!(
                    f,
                    "  ... {} more malformed rows (all in the workspace's import_errors)",
                    r.malformed - 10
                )?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        let got: Vec<String> = [0, 7, 999, 1000, 13612, 1_000_000].map(thousands).into();
        assert_eq!(got, ["0", "7", "999", "1,000", "13,612", "1,000,000"]);
    }
}
