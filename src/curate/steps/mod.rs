//! The workspace steps: everything a front-end asks of a curation workspace, as one [`Step`] run
//! by one function, [`run`]. The command line (`s1-studio curate ...`) and the Curate view (the
//! curation job and its reader thread) both call it, so a step does the same work with the same
//! options whichever started it; they differ only in how they show its events and its
//! [`Report`]. The algorithms the steps apply live beside this folder (the quality rules, s1's
//! sampler, the judge and classification protocols, and the 8-gram index in `data`).

pub mod annotate;
pub mod attempts;
pub mod decontam;
pub mod domains;
pub mod export;
pub mod import;
pub mod map;
pub mod map_embedders;
pub mod map_model;
pub mod report;
pub mod rules;
pub mod selection;
pub mod snapshot;
pub mod traces;

use std::path::PathBuf;

pub use report::{DomainsFrom, Report};

use self::annotate::GenOptions;
use self::attempts::Grader;
use self::domains::ClassifyOptions;
use self::import::ImportOptions;
use self::selection::SelectOptions;
use self::snapshot::PoolSnapshot;
use crate::cancel::CancelToken;
use crate::curate::backend::ModelChoice;
use crate::curate::funnel::Undecided;
use crate::curate::rule_config::{RulesChange, RulesConfig};
use crate::workspace::{Manual, Workspace};

/// Where a traces step takes its traces from.
#[derive(Debug, Clone)]
pub enum TraceSource {
    /// A column of each question (`solution`, `answer` or `question`): stand-ins where no
    /// reasoning model is at hand; the origin records it.
    Column(String),
    /// A model's thinking.
    Model { model: ModelChoice, gen: GenOptions },
    /// None: only measure the lengths of the traces there are.
    Existing,
}

/// Where a domains step takes its labels from.
#[derive(Debug, Clone)]
pub enum DomainSource {
    /// A model with s1's classification prompt, for the funnel's survivors (every question
    /// with `all`) without a domain.
    Model {
        model: ModelChoice,
        gen: GenOptions,
        how: ClassifyOptions,
        all: bool,
    },
    /// A JSONL/JSON/Parquet file of `{key, domain}` (or `{question, domain}`).
    File(PathBuf),
    /// The sources' own subject labels mapped to MSC codes (a rough stand-in).
    Subjects,
}

/// One step on a workspace.
#[derive(Debug, Clone)]
pub enum Step {
    /// Only read the pool (a front-end's first look at a workspace).
    Refresh,
    /// Import files into the pool (duplicates merged).
    Import {
        files: Vec<PathBuf>,
        options: ImportOptions,
    },
    /// The sample pool shipped in assets/ (written into the workspace's `sample-pool/`, then
    /// imported; a file imported before is skipped).
    ImportSample,
    /// Change the workspace's rule configuration, then evaluate every rule.
    Rules(RulesChange),
    /// Change the workspace's rule configuration only: the funnel follows at once, no rerun.
    ConfigureRules(RulesChange),
    /// Word 8-grams against evaluation sets: the bundled ones (MATH500, AIME24/25, AMC23, GSM8K)
    /// when `eval` is empty or with `with_bundled`, and these files; with `cross_source`, s1's
    /// check of each source against the earlier ones.
    Decontam {
        eval: Vec<PathBuf>,
        with_bundled: bool,
        cross_source: bool,
    },
    /// Traces, then their lengths with `tokenizer` (when given; every trace with `remeasure`,
    /// else the unmeasured ones).
    Traces {
        from: TraceSource,
        tokenizer: Option<PathBuf>,
        remeasure: bool,
    },
    /// Difficulty attempts by a model, graded offline or by an LLM judge.
    Attempts {
        model: ModelChoice,
        grader: Grader,
        gen: GenOptions,
    },
    Domains(DomainSource),
    /// Draw a selection (s1's sampler, or an ablation set), stored under its name.
    Select(SelectOptions),
    /// A selection (None: the newest) to these files (.jsonl and/or .parquet) in the s1K schema.
    Export {
        selection: Option<String>,
        out: Vec<PathBuf>,
    },
    /// Include or exclude questions by hand (None: back to the funnel's verdict).
    Mark {
        keys: Vec<String>,
        manual: Option<Manual>,
    },
    /// A vector for every question (hashed TF-IDF or a model's) and the pool's 2D map from them.
    Map(map::MapOptions),
    /// Read one question in full (the inspector); changes nothing.
    Inspect {
        key: String,
    },
}

impl Step {
    /// What the step is called in a status line or an error.
    pub fn label(&self) -> &'static str {
        match self {
            Step::Refresh => "reading the pool",
            Step::Import { .. } | Step::ImportSample => "import",
            Step::Rules(_) | Step::ConfigureRules(_) => "quality rules",
            Step::Decontam { .. } => "decontamination",
            Step::Traces {
                from: TraceSource::Existing,
                ..
            } => "trace lengths",
            Step::Traces { .. } => "traces",
            Step::Attempts { .. } => "difficulty attempts",
            Step::Domains(_) => "domains",
            Step::Select(_) => "selection",
            Step::Export { .. } => "export",
            Step::Mark { .. } => "marking by hand",
            Step::Map(_) => "map",
            Step::Inspect { .. } => "reading a question",
        }
    }

    /// What a step's progress counts ("4,210 / 13,612 questions").
    pub fn unit(&self) -> &'static str {
        match self {
            Step::Import { .. } | Step::ImportSample => "rows read",
            Step::Traces {
                from: TraceSource::Model { .. },
                ..
            } => "traces",
            Step::Export { .. } => "rows",
            Step::Refresh | Step::Inspect { .. } => "",
            _ => "questions",
        }
    }

    /// Whether the step calls a model (long, with progress, and stopped by a cancel).
    pub fn uses_model(&self) -> bool {
        matches!(
            self,
            Step::Attempts { .. }
                | Step::Traces {
                    from: TraceSource::Model { .. },
                    ..
                }
                | Step::Domains(DomainSource::Model { .. })
        )
    }

    /// Whether a front-end showing the pool wants a fresh snapshot after it (all but Inspect).
    pub fn refreshes(&self) -> bool {
        !matches!(self, Step::Inspect { .. })
    }
}

/// What a step reports while it runs, in this order: `Progress` and `Log`, any number of times,
/// while it works; then (from [`run_to_end`], for every step but Inspect) one `Snapshot` of the
/// pool as it is now, also after a failure or a Stop, since what finished is in the workspace;
/// then `Finished`, always last, also on an error or a Stop. [`run`] itself sends only
/// `Progress` and `Log` and returns the report.
#[derive(Debug, Clone)]
pub enum CurateEvent {
    /// `done` of `total` (0: not known, e.g. the rows an import has read) of what `unit` names
    /// ("questions", "traces", "rows read"; [`Step::unit`]).
    Progress {
        done: usize,
        total: usize,
        unit: &'static str,
    },
    /// A line for the log.
    Log(String),
    Snapshot(Box<PoolSnapshot>),
    /// The end: the step's report, or what went wrong (named by the step's label).
    Finished(Result<Report, String>),
}

/// Runs `step` on `ws`: the one entry point of every curation front-end. Sends `Progress` (and
/// `Log`) to `emit` while it works; a model step stops early when `cancel` is set, keeping
/// what finished.
pub fn run(
    ws: &mut Workspace,
    step: &Step,
    cancel: &CancelToken,
    emit: &mut dyn FnMut(CurateEvent),
) -> anyhow::Result<Report> {
    // The map sends its own progress (embedding, then layout) and log lines.
    if let Step::Map(o) = step {
        return Ok(Report::Map(map::run(ws, o, cancel, emit)?));
    }
    let unit = step.unit();
    let mut progress = |done: usize, total: usize| emit(CurateEvent::Progress { done, total, unit });
    // The steps without a count of their own (one pass over the pool, or a few): "0 / N" as
    // they start, "N / N" as they end, N the questions they go over.
    let whole_pool = matches!(
        step,
        Step::Rules(_)
            | Step::Decontam { .. }
            | Step::Domains(DomainSource::Subjects | DomainSource::File(_))
            | Step::Select(_)
    ) || matches!(
        step,
        Step::Traces {
            from: TraceSource::Column(_) | TraceSource::Existing,
            ..
        }
    );
    let pool = if whole_pool { ws.question_count()? } else { 0 };
    if whole_pool {
        progress(0, pool);
    }
    let report = match step {
        Step::Refresh => Report::Refreshed,
        Step::Import { files, options } => {
            let files = import::import_files(ws, files, options, &mut |n| progress(n, 0))?;
            import::none_imported(&files)?;
            Report::Import {
                files,
                pool: ws.question_count()?,
            }
        }
        Step::ImportSample => Report::Import {
            files: import::import_sample(ws, &mut |n| progress(n, 0))?,
            pool: ws.question_count()?,
        },
        Step::Rules(change) => {
            let cfg = change.apply(&RulesConfig::load(ws)?)?;
            Report::Rules(rules::run_counted(ws, &cfg, &mut |n| progress(n, pool))?)
        }
        Step::ConfigureRules(change) => Report::RulesConfigured(change.store(ws)?),
        Step::Decontam {
            eval,
            with_bundled,
            cross_source,
        } => {
            let mut sets = Vec::new();
            if eval.is_empty() || *with_bundled {
                sets.extend(decontam::bundled_sets()?);
            }
            for f in eval {
                sets.push(decontam::set_from_file(f)?);
            }
            let opts = decontam::DecontamOptions {
                cross_source: *cross_source,
            };
            Report::Decontam {
                report: decontam::run_counted(ws, &sets, &opts, &mut |n| progress(n, pool))?,
                cross_source: *cross_source,
            }
        }
        Step::Traces {
            from,
            tokenizer,
            remeasure,
        } => {
            let made = match from {
                TraceSource::Column(col) => Some((
                    format!("traces from `{col}` (stand-ins, not model traces)"),
                    traces::from_column(ws, col)?,
                )),
                TraceSource::Model { model, gen } => {
                    let backend = model.open()?;
                    let r = traces::generate(ws, backend.as_ref(), gen, cancel, &mut progress)?;
                    Some((format!("traces by {}", backend.name()), r))
                }
                TraceSource::Existing if tokenizer.is_none() => {
                    anyhow::bail!("nothing to do: give a column, a model or a tokenizer")
                }
                TraceSource::Existing => None,
            };
            let measured = match tokenizer {
                Some(t) => Some((t.clone(), traces::measure(ws, t, *remeasure)?)),
                None => None,
            };
            Report::Traces { made, measured }
        }
        Step::Attempts { model, grader, gen } => {
            let backend = model.open()?;
            let report = attempts::run(ws, backend.as_ref(), grader, gen, cancel, &mut progress)?;
            Report::Attempts {
                model: backend.name(),
                report,
                undecided: Undecided::load(ws)?,
            }
        }
        Step::Domains(from) => match from {
            DomainSource::Model { model, gen, how, all } => {
                let backend = model.open()?;
                let report = domains::classify(ws, backend.as_ref(), gen, how, *all, cancel, &mut progress)?;
                Report::Domains {
                    from: DomainsFrom::Model(backend.name()),
                    report,
                }
            }
            DomainSource::File(file) => Report::Domains {
                report: domains::from_file(ws, file)?,
                from: DomainsFrom::File(file.clone()),
            },
            DomainSource::Subjects => Report::Domains {
                report: domains::from_subjects(ws)?,
                from: DomainsFrom::Subjects,
            },
        },
        Step::Select(opts) => Report::Selection(selection::run(ws, opts)?),
        Step::Export { selection: name, out } => {
            let (name, keys) = selection::load(ws, name.as_deref())?;
            let total = keys.len() * (out.len() + 1);
            progress(0, total);
            let rows = export::rows(ws, &keys)?;
            let mut files = Vec::new();
            for (i, p) in out.iter().enumerate() {
                progress(keys.len() * (i + 1), total);
                match p.extension().and_then(|e| e.to_str()) {
                    Some("jsonl") => export::write_jsonl(p, &rows)?,
                    Some("parquet") => export::write_parquet(p, &rows)?,
                    _ => anyhow::bail!("{}: give a .jsonl or .parquet path", p.display()),
                }
                files.push((p.clone(), rows.len()));
            }
            progress(total, total);
            Report::Export { selection: name, files }
        }
        Step::Mark { keys, manual } => {
            for (i, k) in keys.iter().enumerate() {
                if i.is_multiple_of(64) {
                    progress(i, keys.len());
                }
                ws.set_manual(k, *manual)?;
            }
            progress(keys.len(), keys.len());
            Report::Marked {
                count: keys.len(),
                manual: *manual,
            }
        }
        Step::Inspect { key } => Report::Detail(Box::new(snapshot::detail(ws, key)?)),
        // Returned above, with its own events.
        Step::Map(_) => anyhow::bail!("map: not reached (run above)"),
    };
    if whole_pool {
        progress(pool, pool);
    }
    Ok(report)
}

/// Runs `step` for a front-end that shows the pool, with the whole event order of
/// [`CurateEvent`]: [`run`]'s events, then a `Snapshot` (unless the step only reads a question),
/// then `Finished`, also when the workspace could not be opened (`ws` is that error).
pub fn run_to_end(
    ws: Result<&mut Workspace, String>,
    step: &Step,
    cancel: &CancelToken,
    emit: &mut dyn FnMut(CurateEvent),
) {
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => {
            emit(CurateEvent::Finished(Err(e)));
            return;
        }
    };
    let result = run(ws, step, cancel, emit).map_err(|e| format!("{}: {e:#}", step.label()));
    if step.refreshes() {
        match snapshot::load(ws) {
            Ok(s) => emit(CurateEvent::Snapshot(Box::new(s))),
            Err(e) => emit(CurateEvent::Log(format!("could not read the pool: {e:#}"))),
        }
    }
    emit(CurateEvent::Finished(result));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The events after the progress (which any step may send first).
    fn events(ws: Result<&mut Workspace, String>, step: &Step) -> Vec<CurateEvent> {
        let mut out = Vec::new();
        run_to_end(ws, step, &CancelToken::new(), &mut |e| out.push(e));
        let progress = out
            .iter()
            .take_while(|e| matches!(e, CurateEvent::Progress { .. }))
            .count();
        out.split_off(progress)
    }

    #[test]
    fn finished_comes_last_after_a_snapshot_even_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let mut ws = Workspace::open(dir.path()).unwrap();
        let ev = events(Ok(&mut ws), &Step::Refresh);
        assert!(matches!(
            ev.as_slice(),
            [CurateEvent::Snapshot(_), CurateEvent::Finished(Ok(Report::Refreshed))]
        ));
        // An unknown key fails the step; the pool is still read, and Finished says what failed.
        let ev = events(
            Ok(&mut ws),
            &Step::Mark {
                keys: vec!["nope".into()],
                manual: Some(Manual::Include),
            },
        );
        match ev.as_slice() {
            [CurateEvent::Snapshot(_), CurateEvent::Finished(Err(e))] => {
                assert!(e.starts_with("marking by hand: ") && e.contains("nope"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        // Inspect reads no snapshot.
        let ev = events(Ok(&mut ws), &Step::Inspect { key: "nope".into() });
        assert!(matches!(ev.as_slice(), [CurateEvent::Finished(Err(_))]), "{ev:?}");
        let ev = events(Err("workspace x: locked".into()), &Step::Refresh);
        assert!(matches!(ev.as_slice(), [CurateEvent::Finished(Err(e))] if e == "workspace x: locked"));
    }

    #[test]
    fn configuring_the_rules_changes_the_funnel_without_a_rerun() {
        let dir = tempfile::tempdir().unwrap();
        let mut ws = Workspace::open(dir.path()).unwrap();
        let off = RulesChange {
            off: vec![crate::curate::quality::Rule::Asy],
            ..Default::default()
        };
        let ev = events(Ok(&mut ws), &Step::ConfigureRules(off));
        let Some(CurateEvent::Snapshot(s)) = ev.first() else {
            panic!("{ev:?}")
        };
        let asy = s.rules.iter().find(|c| c.rule.name() == "asy").unwrap();
        assert!(!asy.enabled);
        assert!(!s.rules_config.enabled.contains(&crate::curate::quality::Rule::Asy));
        match ev.last() {
            Some(CurateEvent::Finished(Ok(r))) => assert!(r.to_string().starts_with("rules on: missing_field, image")),
            other => panic!("{other:?}"),
        }
    }

    /// Every step that works on the pool reports its progress with counts: the rules go from
    /// "0 / N questions" to "N / N", an import counts the rows read, a mark its questions.
    #[test]
    fn steps_report_progress_with_counts() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("q.jsonl");
        let lines: Vec<String> = (0..5)
            .map(|i| serde_json::json!({"question": format!("What is {i} + {i}?"), "solution": "x"}).to_string())
            .collect();
        std::fs::write(&file, lines.join("\n") + "\n").unwrap();
        let mut ws = Workspace::open(&dir.path().join("ws")).unwrap();
        let progress = |ws: &mut Workspace, step: &Step| -> Vec<(usize, usize, &'static str)> {
            let mut out = Vec::new();
            run(ws, step, &CancelToken::new(), &mut |e| {
                if let CurateEvent::Progress { done, total, unit } = e {
                    out.push((done, total, unit));
                }
            })
            .unwrap();
            out
        };
        let import = Step::Import {
            files: vec![file],
            options: ImportOptions::default(),
        };
        let p = progress(&mut ws, &import);
        assert_eq!(p.last(), Some(&(5, 0, "rows read")), "{p:?}");
        let p = progress(&mut ws, &Step::Rules(RulesChange::default()));
        assert_eq!(p, [(0, 5, "questions"), (5, 5, "questions")]);
        let keys: Vec<String> = ws
            .conn
            .prepare("SELECT key FROM questions")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let p = progress(
            &mut ws,
            &Step::Mark {
                keys,
                manual: Some(Manual::Exclude),
            },
        );
        assert_eq!(p.first(), Some(&(0, 5, "questions")));
        assert_eq!(p.last(), Some(&(5, 5, "questions")));
    }
}
