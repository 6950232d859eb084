//! The Curate view's form (persisted) and runtime state: the running step, its log and progress,
//! the pool snapshot, and the table's search, filter, sort and selection; [`update`] drains the
//! step's events and refreshes the visible rows, [`handle`] carries out the view's commands.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::background::{file_dialog_or, resolve_paths, DialogKind};
use super::command::{CommandSender, CurateCommand};
use crate::curate::backend::{Endpoint, ModelChoice};
use crate::curate::rule_config::RulesChange;
use crate::curate::steps::selection::{Method, SelectOptions};
use crate::curate::steps::snapshot::{PoolRow, PoolSnapshot, QuestionDetail};
use crate::curate::steps::{Report, Step};
use crate::jobs::curation::{self, CurateEvent, CurateJob, CurateReader};
use crate::model::device::DeviceChoice;

pub use super::command::CuratePath;

/// The form, as typed. The rule configuration is not here: the workspace keeps it (older
/// settings files' `rules_off` and `require` are read and ignored).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CurateForm {
    pub import_path: String,
    /// `field=column` overrides.
    pub mapping: String,
    /// tokenizer.json (or its folder) for trace lengths.
    pub tokenizer: String,
    /// An OpenAI-compatible endpoint for traces, attempts and domains.
    pub endpoint: String,
    pub endpoint_model: String,
    pub concurrency: usize,
    /// Use a local model (through the engine) instead of the endpoint.
    pub use_local: bool,
    /// A Hugging Face folder or a .gguf.
    pub local_model: String,
    /// Prompts per batch for the local model.
    pub batch: usize,
    /// Where the local model runs.
    pub device: DeviceChoice,
    /// Grade attempts with an LLM judge at this endpoint (empty: the offline grader).
    pub judge_endpoint: String,
    pub judge_model: String,
    /// Extra evaluation files to decontaminate against (comma-separated paths).
    pub eval_files: String,
    /// s1's cross-source rule: each source is also checked against the sources imported before.
    pub cross_source: bool,
    pub max_tokens: usize,
    pub method: Method,
    pub seed: u64,
    pub target: usize,
    /// Export path without extension: `.jsonl` and `.parquet` are written.
    pub export_path: String,
}

impl Default for CurateForm {
    fn default() -> Self {
        Self {
            import_path: String::new(),
            mapping: String::new(),
            tokenizer: String::new(),
            endpoint: "http://localhost:8000/v1".into(),
            endpoint_model: String::new(),
            concurrency: 8,
            use_local: false,
            local_model: String::new(),
            batch: 4,
            device: DeviceChoice::Cpu,
            judge_endpoint: String::new(),
            judge_model: String::new(),
            eval_files: String::new(),
            cross_source: false,
            max_tokens: 32768,
            method: Method::S1,
            seed: 0,
            target: 1000,
            export_path: String::new(),
        }
    }
}

impl CurateForm {
    pub fn endpoint(&self) -> Result<Endpoint, String> {
        if self.endpoint.trim().is_empty() || self.endpoint_model.trim().is_empty() {
            return Err("give the endpoint's URL and model name".into());
        }
        let mut e = Endpoint::new(self.endpoint.trim(), self.endpoint_model.trim());
        e.api_key = std::env::var("S1_API_KEY").ok();
        e.concurrency = self.concurrency.max(1);
        Ok(e)
    }

    /// The model the model-driven steps use.
    pub fn model(&self) -> Result<ModelChoice, String> {
        if self.use_local {
            let p = self.local_model.trim();
            if p.is_empty() {
                return Err("give the local model's folder or .gguf".into());
            }
            return Ok(ModelChoice::Local {
                path: PathBuf::from(p),
                batch: self.batch.max(1),
                device: self.device,
                dtype: None,
            });
        }
        self.endpoint().map(ModelChoice::Endpoint)
    }

    /// The LLM judge, when one is named.
    pub fn judge(&self) -> Result<Option<Endpoint>, String> {
        match (self.judge_endpoint.trim(), self.judge_model.trim()) {
            ("", "") => Ok(None),
            ("", _) | (_, "") => Err("the judge needs both a URL and a model name".into()),
            (url, m) => {
                let mut e = Endpoint::new(url, m);
                e.api_key = std::env::var("S1_API_KEY").ok();
                Ok(Some(e))
            }
        }
    }

    /// The extra evaluation files for decontamination.
    pub fn eval_files(&self) -> Vec<PathBuf> {
        self.eval_files
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect()
    }

    pub fn tokenizer(&self) -> Option<PathBuf> {
        let t = self.tokenizer.trim();
        (!t.is_empty()).then(|| PathBuf::from(t))
    }

    pub fn select_request(&self) -> Step {
        Step::Select(SelectOptions {
            method: self.method,
            seed: self.seed,
            target: self.target,
            ..Default::default()
        })
    }

    /// The export files: the path as given with `.jsonl` and `.parquet`.
    pub fn export_request(&self) -> Result<Step, String> {
        let p = self.export_path.trim();
        if p.is_empty() {
            return Err("give an export path".into());
        }
        let base = PathBuf::from(p);
        let stem = match base.extension().and_then(|e| e.to_str()) {
            Some("jsonl") | Some("parquet") => base.with_extension(""),
            _ => base,
        };
        Ok(Step::Export {
            selection: None,
            out: vec![stem.with_extension("jsonl"), stem.with_extension("parquet")],
        })
    }
}

/// Which rows the table shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RowFilter {
    #[default]
    All,
    /// Passed every filter.
    Passed,
    /// Dropped at this stage (index into the funnel).
    DroppedAt(u8),
    Selected,
    Flagged,
    ByHand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    #[default]
    Pool,
    Key,
    Source,
    Tokens,
    Domain,
    Stage,
}

#[derive(Default)]
pub struct CurateState {
    pub job: Option<CurateJob>,
    /// The step running (its label).
    pub running: Option<&'static str>,
    pub progress: (usize, usize),
    pub log: Vec<String>,
    pub error: Option<String>,
    pub snapshot: Option<PoolSnapshot>,
    /// The workspace the snapshot is of.
    pub snapshot_of: Option<PathBuf>,
    pub search: String,
    pub filter: RowFilter,
    pub sort: SortBy,
    pub descending: bool,
    /// Rows shown (indexes into the snapshot), cached for (search, filter, sort).
    pub visible: Vec<usize>,
    visible_for: Option<(String, RowFilter, SortBy, bool, usize)>,
    pub selected: Option<String>,
    pub detail: Option<QuestionDetail>,
    /// Bumped when a new pool snapshot arrives (the visible rows' cache key).
    pub generation: usize,
    /// The inspector's reads and Include/Exclude, beside a running step (started on first use).
    pub reader: Option<CurateReader>,
    /// The required fields as typed, until Run rules sends them (None: the workspace's).
    pub require_edit: Option<String>,
    /// The path field to focus in the next frame (its dialog could not open).
    pub focus: Option<CuratePath>,
    /// A typed import is being expanded (globs) before its step starts: counts as running.
    pub resolving: bool,
}

impl CurateState {
    pub fn is_running(&self) -> bool {
        self.job.is_some() || self.resolving
    }

    /// Takes a snapshot unless the one shown was read later (a mark's and a step's can cross).
    fn apply_snapshot(&mut self, s: PoolSnapshot) {
        if self.snapshot.as_ref().is_some_and(|old| old.taken > s.taken) {
            return;
        }
        self.snapshot = Some(s);
        self.generation += 1;
    }

    /// The Run rules step: the rule configuration as the workspace keeps it, with the required
    /// fields as typed.
    pub fn rules_step(&mut self) -> Step {
        Step::Rules(RulesChange {
            require: self.require_edit.take().map(|r| RulesChange::fields(&r)),
            ..Default::default()
        })
    }

    fn visible_key(&self) -> (String, RowFilter, SortBy, bool, usize) {
        (
            self.search.clone(),
            self.filter,
            self.sort,
            self.descending,
            self.generation,
        )
    }

    /// The search, filter, sort or snapshot changed since the visible rows were computed.
    pub fn visible_is_stale(&self) -> bool {
        self.visible_for.as_ref() != Some(&self.visible_key())
    }

    /// Recomputes the visible rows when the search, filter, sort or snapshot changed.
    pub fn refresh_visible(&mut self) {
        let key = self.visible_key();
        if self.visible_for.as_ref() == Some(&key) {
            return;
        }
        let Some(s) = &self.snapshot else {
            // Nothing to show until a snapshot arrives (it bumps the generation): not stale,
            // so the view does not repaint every frame while it has no workspace.
            self.visible.clear();
            self.visible_for = Some(key);
            return;
        };
        let needle = self.search.trim().to_lowercase();
        let keep = |r: &PoolRow| -> bool {
            let f = match self.filter {
                RowFilter::All => true,
                RowFilter::Passed => r.dropped_at.is_none(),
                RowFilter::DroppedAt(i) => r.dropped_at == Some(i),
                RowFilter::Selected => r.selected,
                RowFilter::Flagged => !r.flags.is_empty(),
                RowFilter::ByHand => r.manual.is_some(),
            };
            f && (needle.is_empty()
                || r.key.starts_with(&needle)
                || r.preview.to_lowercase().contains(&needle)
                || r.source.to_lowercase().contains(&needle))
        };
        let mut v: Vec<usize> = (0..s.rows.len()).filter(|&i| keep(&s.rows[i])).collect();
        let rows = &s.rows;
        match self.sort {
            SortBy::Pool => {}
            SortBy::Key => v.sort_by(|a, b| rows[*a].key.cmp(&rows[*b].key)),
            SortBy::Source => v.sort_by(|a, b| rows[*a].source.cmp(&rows[*b].source)),
            SortBy::Tokens => v.sort_by_key(|i| rows[*i].tokens),
            SortBy::Domain => v.sort_by(|a, b| rows[*a].domain.cmp(&rows[*b].domain)),
            SortBy::Stage => v.sort_by_key(|i| rows[*i].dropped_at.map(|d| d as i32).unwrap_or(i32::MAX)),
        }
        if self.descending {
            v.reverse();
        }
        self.visible = v;
        self.visible_for = Some(key);
    }
}

/// Starts a curation step on the workspace (one at a time).
fn start(c: &mut CurateState, workspace: Option<&Path>, step: Step, tx: &CommandSender) {
    let Some(dir) = workspace else {
        c.error = Some("choose a workspace folder first (top bar)".into());
        return;
    };
    if c.is_running() {
        return;
    }
    c.error = None;
    c.progress = (0, 0);
    c.running = Some(step.label());
    match curation::start(dir.to_path_buf(), step, tx.notify()) {
        Ok(job) => {
            c.job = Some(job);
            c.snapshot_of = Some(dir.to_path_buf());
        }
        Err(e) => {
            c.running = None;
            c.error = Some(format!("could not start the step: {e}"));
        }
    }
}

/// The logic step: reads the pool when the workspace changed and the view is `shown`, applies
/// the step's and the reader's events until none is left or `budget` has passed, and refreshes
/// the table's visible rows.
pub fn update(c: &mut CurateState, workspace: Option<&Path>, shown: bool, tx: &CommandSender, budget: Duration) {
    if shown && workspace.is_some() && !c.is_running() && c.snapshot_of.as_deref() != workspace {
        c.snapshot = None;
        c.selected = None;
        c.detail = None;
        start(c, workspace, Step::Refresh, tx);
    }
    let start_at = Instant::now();
    let mut finished = false;
    while start_at.elapsed() < budget {
        let Some(Ok(ev)) = c.job.as_ref().map(|j| j.events.try_recv()) else {
            break;
        };
        match ev {
            CurateEvent::Progress { done, total } => c.progress = (done, total),
            CurateEvent::Log(l) => c.log.push(l),
            CurateEvent::Snapshot(s) => c.apply_snapshot(*s),
            CurateEvent::Finished(r) => {
                match r {
                    Ok(report) => c.log.push(report.to_string().trim_end().to_string()),
                    Err(e) => {
                        c.log.push(format!("failed: {e}"));
                        c.error = Some(e);
                    }
                }
                finished = true;
            }
        }
    }
    if finished {
        c.job = None;
        c.running = None;
        if let Some(k) = c.selected.clone() {
            inspect(c, workspace, k, tx);
        }
    }
    drain_reader(c, workspace, tx, budget);
    if c.log.len() > 200 {
        c.log.drain(..100);
    }
    c.refresh_visible();
}

/// The reader's answers: the inspector's question, marks done (then the question again).
fn drain_reader(c: &mut CurateState, workspace: Option<&Path>, tx: &CommandSender, budget: Duration) {
    let start_at = Instant::now();
    while start_at.elapsed() < budget {
        let Some(Ok(ev)) = c.reader.as_ref().map(|r| r.events().try_recv()) else {
            break;
        };
        match ev {
            CurateEvent::Progress { .. } => {}
            CurateEvent::Log(l) => c.log.push(l),
            CurateEvent::Snapshot(s) => c.apply_snapshot(*s),
            CurateEvent::Finished(Ok(Report::Detail(d))) => {
                if c.selected.as_deref() == Some(d.key.as_str()) {
                    c.detail = Some(*d);
                }
            }
            CurateEvent::Finished(Ok(report)) => {
                c.log.push(report.to_string().trim_end().to_string());
                if let Some(k) = c.selected.clone() {
                    inspect(c, workspace, k, tx);
                }
            }
            CurateEvent::Finished(Err(e)) => c.error = Some(e),
        }
    }
}

/// Sends a quick step to the reader thread (started on first use).
fn send_to_reader(c: &mut CurateState, workspace: Option<&Path>, step: Step, tx: &CommandSender) {
    let Some(dir) = workspace else { return };
    if c.reader.is_none() {
        match CurateReader::start(tx.notify()) {
            Ok(r) => c.reader = Some(r),
            Err(e) => {
                c.error = Some(format!("could not start the curation reader: {e}"));
                return;
            }
        }
    }
    if let Some(Err(e)) = c.reader.as_ref().map(|r| r.send(dir.to_path_buf(), step)) {
        c.reader = None;
        c.error = Some(e);
    }
}

/// Opens a question in the inspector (read on the reader thread; shown when it arrives).
fn inspect(c: &mut CurateState, workspace: Option<&Path>, key: String, tx: &CommandSender) {
    c.selected = Some(key.clone());
    send_to_reader(c, workspace, Step::Inspect { key }, tx);
}

/// What the curate logic reads and changes.
pub struct CurateCx<'a> {
    pub state: &'a mut CurateState,
    pub form: &'a mut CurateForm,
    pub workspace: Option<&'a Path>,
    pub tx: &'a CommandSender,
}

/// Imports the files a typed import named; each entry that named none is said (in the log and
/// as the error), and each file's own result comes in the step's report.
fn import_resolved(
    c: &mut CurateState,
    form: &CurateForm,
    workspace: Option<&Path>,
    files: Vec<PathBuf>,
    problems: Vec<String>,
    tx: &CommandSender,
) {
    c.resolving = false;
    c.running = None;
    if !files.is_empty() {
        let mapping = (!form.mapping.trim().is_empty()).then(|| form.mapping.trim().to_string());
        let options = crate::curate::steps::import::ImportOptions {
            mapping,
            ..Default::default()
        };
        start(c, workspace, Step::Import { files, options }, tx);
    }
    if !problems.is_empty() {
        c.log.push(format!("not imported:\n{}", problems.join("\n")));
        c.error = Some(format!("not imported: {}", problems.join("; ")));
    }
}

/// Carries out a Curate-view command.
pub fn handle(cmd: CurateCommand, cx: CurateCx<'_>) {
    let CurateCx {
        state: c,
        form,
        workspace,
        tx,
    } = cx;
    match cmd {
        CurateCommand::Start(step) => start(c, workspace, *step, tx),
        CurateCommand::Stop => {
            if let Some(j) = &c.job {
                j.stop();
            }
        }
        CurateCommand::Inspect(key) => inspect(c, workspace, key, tx),
        // On the reader thread: persisted there (waiting, off this thread, for a running step's
        // write), then the pool and the question are read again.
        CurateCommand::Mark(key, manual) => {
            c.error = None;
            send_to_reader(
                c,
                workspace,
                Step::Mark {
                    keys: vec![key],
                    manual,
                },
                tx,
            );
        }
        CurateCommand::PickPath(which) => {
            let (title, kind) = match which {
                CuratePath::Import => (
                    "Questions to import",
                    DialogKind::File(Some(("Datasets", &["jsonl", "json", "parquet"]))),
                ),
                CuratePath::Tokenizer => (
                    "Tokenizer (tokenizer.json)",
                    DialogKind::File(Some(("tokenizer.json", &["json"]))),
                ),
                CuratePath::Export => ("Export as (no extension)", DialogKind::Save),
            };
            file_dialog_or(
                tx,
                title,
                kind,
                move |p| CurateCommand::SetPath(which, p).into(),
                move |msg| CurateCommand::DialogFailed(which, msg).into(),
            );
        }
        CurateCommand::DialogFailed(which, msg) => {
            c.error = Some(msg);
            c.focus = Some(which);
        }
        CurateCommand::ImportTyped => {
            if form.import_path.trim().is_empty() {
                c.error = Some(
                    "give a file to import (several: separate them with commas; globs such as data/*.jsonl work)"
                        .into(),
                );
                c.focus = Some(CuratePath::Import);
            } else if !c.is_running() {
                let started = resolve_paths(tx, form.import_path.clone(), |files, problems| {
                    CurateCommand::ImportResolved { files, problems }.into()
                });
                if started {
                    c.resolving = true;
                    c.running = Some("import");
                } else {
                    c.error = Some("could not start the thread that reads the paths".into());
                }
            }
        }
        CurateCommand::ImportResolved { files, problems } => import_resolved(c, form, workspace, files, problems, tx),
        CurateCommand::SetPath(which, p) => {
            let text = p.display().to_string();
            match which {
                CuratePath::Import => form.import_path = text,
                CuratePath::Tokenizer => form.tokenizer = text,
                CuratePath::Export => form.export_path = text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The local model runs where the form's picker says (the request carries the choice).
    #[test]
    fn the_local_model_carries_the_chosen_device() {
        let mut f = CurateForm {
            use_local: true,
            local_model: "m.gguf".into(),
            ..CurateForm::default()
        };
        assert_eq!(f.device, DeviceChoice::Cpu);
        f.device = DeviceChoice::Cuda(1);
        match f.model() {
            Ok(ModelChoice::Local { device, path, .. }) => {
                assert_eq!((device, path), (DeviceChoice::Cuda(1), PathBuf::from("m.gguf")))
            }
            other => panic!("{other:?}"),
        }
        let saved: CurateForm = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert_eq!(saved.device, DeviceChoice::Cuda(1));
        let old: CurateForm = serde_json::from_str(r#"{"local_model": "x"}"#).unwrap();
        assert_eq!(old.device, DeviceChoice::Cpu, "older settings files read as cpu");
    }
}
