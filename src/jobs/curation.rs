//! The curation job: one step of the funnel (import, rules, decontamination, traces, domains,
//! attempts, selection, export) on a named thread ("s1-curate") with its own connection to the
//! workspace, progress over a channel, a cancel token for Stop, and a fresh snapshot of the pool
//! at the end (also after a failure or a Stop: what finished is in the workspace).

use std::path::PathBuf;

use super::job::{Job, JobEvent};
use super::CancelToken;
use crate::curate::annotate::{self, GenOptions, Grader};
use crate::curate::backend::ModelChoice;
use crate::curate::quality::Rule;
use crate::curate::snapshot::{self, PoolSnapshot};
use crate::curate::{decontam, export, import, rules, selection};
use crate::workspace::Workspace;

/// One step to run.
#[derive(Debug, Clone)]
pub enum CurateRequest {
    /// Only read the pool (after opening a workspace).
    Refresh,
    Import {
        files: Vec<PathBuf>,
        mapping: Option<String>,
    },
    /// The sample pool shipped in assets/ (written into the workspace's `sample-pool/`, then
    /// imported).
    ImportSample,
    Rules {
        enabled: Vec<Rule>,
        required: Vec<String>,
    },
    /// Against the bundled evaluation sets plus these files (and, with `cross_source`, s1's
    /// check of each source against the earlier ones).
    Decontam {
        extra: Vec<PathBuf>,
        cross_source: bool,
    },
    /// Stand-in traces from a column, then lengths with a tokenizer (when given).
    TracesFromColumn {
        column: String,
        tokenizer: Option<PathBuf>,
    },
    /// Trace lengths only.
    MeasureTraces {
        tokenizer: PathBuf,
    },
    /// Traces by a model, then lengths (when a tokenizer is given).
    TracesByModel {
        model: ModelChoice,
        tokenizer: Option<PathBuf>,
        max_tokens: usize,
    },
    DomainsFromSubjects,
    DomainsByModel {
        model: ModelChoice,
    },
    Attempts {
        model: ModelChoice,
        max_tokens: usize,
        /// Grade with this LLM judge (s1's Yes/No protocol) instead of the offline grader.
        judge: Option<crate::curate::backend::Endpoint>,
    },
    Select(selection::SelectOptions),
    /// A selection (None: the newest) to these files (.jsonl and/or .parquet).
    Export {
        selection: Option<String>,
        out: Vec<PathBuf>,
    },
}

impl CurateRequest {
    pub fn label(&self) -> &'static str {
        match self {
            CurateRequest::Refresh => "reading the pool",
            CurateRequest::Import { .. } | CurateRequest::ImportSample => "import",
            CurateRequest::Rules { .. } => "quality rules",
            CurateRequest::Decontam { .. } => "decontamination",
            CurateRequest::TracesFromColumn { .. } | CurateRequest::TracesByModel { .. } => "traces",
            CurateRequest::MeasureTraces { .. } => "trace lengths",
            CurateRequest::DomainsFromSubjects | CurateRequest::DomainsByModel { .. } => "domains",
            CurateRequest::Attempts { .. } => "difficulty attempts",
            CurateRequest::Select(_) => "selection",
            CurateRequest::Export { .. } => "export",
        }
    }
}

#[derive(Debug, Clone)]
pub enum CurateEvent {
    Progress {
        done: usize,
        total: usize,
    },
    /// A line for the log.
    Log(String),
    Snapshot(Box<PoolSnapshot>),
    /// The end: a summary, or what went wrong.
    Finished(Result<String, String>),
}

pub type CurateJob = Job<CurateEvent>;

impl JobEvent for CurateEvent {
    fn failed(message: String) -> Self {
        CurateEvent::Finished(Err(message))
    }
}

/// The sample pool compiled in: (file name, contents).
pub const SAMPLE_POOL: [(&str, &str); 3] = [
    (
        "aime_1983_2023.jsonl",
        include_str!("../../assets/curate/pool/aime_1983_2023.jsonl"),
    ),
    (
        "olympiadbench_en_comp_675.jsonl",
        include_str!("../../assets/curate/pool/olympiadbench_en_comp_675.jsonl"),
    ),
    (
        "math_test_minus_math500.jsonl",
        include_str!("../../assets/curate/pool/math_test_minus_math500.jsonl"),
    ),
];

fn step(
    ws: &mut Workspace,
    req: &CurateRequest,
    cancel: &CancelToken,
    send: &mut dyn FnMut(CurateEvent),
) -> anyhow::Result<String> {
    let mut progress = |d: usize, t: usize| send(CurateEvent::Progress { done: d, total: t });
    let gen = |max_tokens: usize, temperature: f64| GenOptions {
        max_tokens,
        temperature,
        limit: None,
    };
    let measure = |ws: &mut Workspace, tok: &Option<PathBuf>| -> anyhow::Result<String> {
        match tok {
            Some(t) => {
                let r = annotate::measure_traces(ws, t, false)?;
                Ok(format!("; {} trace lengths measured", r.done))
            }
            None => Ok("; no tokenizer chosen, so no trace lengths yet".into()),
        }
    };
    Ok(match req {
        CurateRequest::Refresh => "pool read".into(),
        CurateRequest::Import { files, mapping } => {
            let mut lines = Vec::new();
            for f in files {
                let opts = import::ImportOptions {
                    mapping: mapping.clone(),
                    ..Default::default()
                };
                let r = import::import(ws, f, &opts, |n| progress(n, 0))?;
                let mut line = format!(
                    "{}: {} shape, {} rows, {} new, {} duplicates, {} malformed",
                    r.file,
                    r.shape.name(),
                    r.rows,
                    r.added,
                    r.duplicates,
                    r.malformed
                );
                for e in r.errors.iter().take(3) {
                    line += &format!("\n  line {}: {}", e.line, e.message);
                }
                lines.push(line);
            }
            lines.join("\n")
        }
        CurateRequest::ImportSample => {
            let dir = ws.dir.join("sample-pool");
            std::fs::create_dir_all(&dir)?;
            let mut lines = Vec::new();
            for (name, text) in SAMPLE_POOL {
                let p = dir.join(name);
                if !p.exists() {
                    std::fs::write(&p, text)?;
                }
                match import::import(ws, &p, &Default::default(), |n| progress(n, 0)) {
                    Ok(r) => lines.push(format!("{name}: {} new, {} duplicates", r.added, r.duplicates)),
                    Err(e) if e.to_string().contains("already imported") => {
                        lines.push(format!("{name}: already imported"))
                    }
                    Err(e) => return Err(e),
                }
            }
            lines.join("\n")
        }
        CurateRequest::Rules { enabled, required } => {
            let cfg = rules::RulesConfig {
                enabled: enabled.clone(),
                required: required.clone(),
            };
            let counts = rules::run(ws, &cfg)?;
            let parts: Vec<String> = counts.iter().map(|c| format!("{} {}", c.rule.name(), c.hits)).collect();
            format!("rule hits: {}", parts.join(", "))
        }
        CurateRequest::Decontam { extra, cross_source } => {
            let mut sets = decontam::bundled_sets()?;
            for f in extra {
                sets.push(decontam::set_from_file(f)?);
            }
            let opts = decontam::DecontamOptions {
                cross_source: *cross_source,
            };
            let r = decontam::run_with(ws, &sets, &opts)?;
            let parts: Vec<String> = r.per_set.iter().map(|(n, _, h)| format!("{n} {h}")).collect();
            let cross: usize = r.cross_source.iter().map(|(_, _, h)| h).sum();
            format!(
                "overlaps: {}; AIME after 2022: {}; {}{} flagged",
                parts.join(", "),
                r.aime_after_2022,
                if *cross_source {
                    format!("earlier sources {cross}; ")
                } else {
                    String::new()
                },
                r.flagged
            )
        }
        CurateRequest::TracesFromColumn { column, tokenizer } => {
            let r = annotate::traces_from_column(ws, column)?;
            format!("{} stand-in traces from `{column}`", r.done) + &measure(ws, tokenizer)?
        }
        CurateRequest::MeasureTraces { tokenizer } => measure(ws, &Some(tokenizer.clone()))?
            .trim_start_matches("; ")
            .to_string(),
        CurateRequest::TracesByModel {
            model,
            tokenizer,
            max_tokens,
        } => {
            let backend = model.open()?;
            let r = annotate::generate_traces(ws, backend.as_ref(), &gen(*max_tokens, 0.0), cancel, &mut progress)?;
            format!("traces by {}: {} done, {} failed", model.name(), r.done, r.failed) + &measure(ws, tokenizer)?
        }
        CurateRequest::DomainsFromSubjects => {
            let r = annotate::domains_from_subjects(ws)?;
            format!(
                "domains from subject labels: {} stored, {} without a known subject",
                r.done, r.failed
            )
        }
        CurateRequest::DomainsByModel { model } => {
            let backend = model.open()?;
            let r = annotate::classify_domains(
                ws,
                backend.as_ref(),
                &gen(1024, 0.0),
                &annotate::ClassifyOptions::default(),
                false,
                cancel,
                &mut progress,
            )?;
            format!("domains by {}: {} done, {} failed", model.name(), r.done, r.failed)
        }
        CurateRequest::Attempts {
            model,
            max_tokens,
            judge,
        } => {
            let backend = model.open()?;
            let grader = match judge {
                Some(e) => Grader::Judge(e.clone()),
                None => Grader::Offline,
            };
            let r = annotate::attempts(
                ws,
                backend.as_ref(),
                &grader,
                &gen(*max_tokens, 0.05),
                cancel,
                &mut progress,
            )?;
            format!(
                "attempts by {}: {} done ({} undecided), {} failed",
                model.name(),
                r.done,
                r.undecided,
                r.failed
            )
        }
        CurateRequest::Select(opts) => {
            let r = selection::run(ws, opts)?;
            format!(
                "selection `{}`: {} of {} candidates ({} from the seed set)",
                r.name,
                r.selected.len(),
                r.candidates,
                r.seed_set
            )
        }
        CurateRequest::Export { selection: name, out } => {
            let (name, keys) = selection::load(ws, name.as_deref())?;
            let rows = export::rows(ws, &keys)?;
            let mut lines = Vec::new();
            for p in out {
                match p.extension().and_then(|e| e.to_str()) {
                    Some("jsonl") => export::write_jsonl(p, &rows)?,
                    Some("parquet") => export::write_parquet(p, &rows)?,
                    _ => anyhow::bail!("{}: give a .jsonl or .parquet path", p.display()),
                }
                lines.push(format!("{}: {} rows of `{name}`", p.display(), rows.len()));
            }
            lines.join("\n")
        }
    })
}

/// Starts a step on the workspace in `dir`.
pub fn start(dir: PathBuf, req: CurateRequest, notify: super::Notify) -> std::io::Result<CurateJob> {
    Job::run("s1-curate", notify, move |cancel, send| {
        let mut ws = match Workspace::open(&dir) {
            Ok(ws) => ws,
            Err(e) => {
                send(CurateEvent::Finished(Err(e.to_string())));
                return;
            }
        };
        let result = step(&mut ws, &req, cancel, send).map_err(|e| format!("{}: {e:#}", req.label()));
        match snapshot::load(&ws) {
            Ok(s) => send(CurateEvent::Snapshot(Box::new(s))),
            Err(e) => send(CurateEvent::Log(format!("could not read the pool: {e}"))),
        }
        send(CurateEvent::Finished(result));
    })
}
