//! The Curate view's runtime state (its form is in curate_form.rs): the running step, its log,
//! progress and each button's result, the pool snapshot, and the table's search, filter, sort,
//! picked rows and inspector; [`update`] drains the
//! step's events and refreshes the visible rows, [`handle`] carries out the view's commands.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::background::{file_dialog_or, resolve_paths, DialogKind};
use super::command::{AppCommand, CommandSender, CurateCommand};
use super::curate_pick::{Picked, StepResult};
use crate::curate::rule_config::RulesChange;
use crate::curate::steps::map::{MapEmbedder, MapOptions};
use crate::curate::steps::map_model::SharedModel;
use crate::curate::steps::snapshot::{PoolRow, PoolSnapshot, QuestionDetail};
use crate::curate::steps::{Report, Step};
use crate::jobs::curation::{self, CurateEvent, CurateJob, CurateReader};
use crate::jobs::inference::InferenceHandle;

pub use super::command::CuratePath;
pub use super::curate_form::CurateForm;

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
    /// Marked by hand (included, excluded, then the rest).
    Manual,
    Key,
    Source,
    Tokens,
    Domain,
    Stage,
}

/// The selection bar's key in [`CurateState::results`] (its bulk marks' result).
pub const PICKED_BAR: &str = "picked rows";

#[derive(Default)]
pub struct CurateState {
    pub job: Option<CurateJob>,
    /// The step running (its label).
    pub running: Option<&'static str>,
    /// The button the running step came from (None: the view's own pool read).
    pub running_from: Option<&'static str>,
    /// Done of total (0: not known) of `progress_unit`.
    pub progress: (usize, usize),
    pub progress_unit: &'static str,
    /// Each button's last result (by the button's label; [`PICKED_BAR`] for the bulk marks).
    pub results: std::collections::HashMap<&'static str, StepResult>,
    /// The typed import's entries that named no file, kept for the import's result.
    import_problems: Vec<String>,
    /// The rows picked for the bulk marks.
    pub picked: Picked,
    /// Whether the inspector is shown (a row's click opens it; its close button and Esc close it).
    pub inspector_open: bool,
    pub log: Vec<String>,
    pub error: Option<String>,
    /// Shared with the map's colouring thread (pool_map_state.rs).
    pub snapshot: Option<std::sync::Arc<PoolSnapshot>>,
    /// The workspace the snapshot is of.
    pub snapshot_of: Option<PathBuf>,
    pub search: String,
    pub filter: RowFilter,
    pub sort: SortBy,
    pub descending: bool,
    /// Rows shown (indexes into the snapshot), cached for (search, filter, sort).
    pub visible: Vec<usize>,
    visible_for: Option<(String, RowFilter, SortBy, bool, usize)>,
    /// The question in the inspector (the row clicked last).
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
    /// The pool's map (shown instead of the table when on).
    pub map: super::pool_map_state::PoolMapState,
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
        self.snapshot = Some(std::sync::Arc::new(s));
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
            SortBy::Manual => v.sort_by_key(|i| match rows[*i].manual {
                Some(crate::workspace::Manual::Include) => 0,
                Some(crate::workspace::Manual::Exclude) => 1,
                None => 2,
            }),
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

/// Starts a curation step on the workspace (one at a time); `button` names the button it came
/// from (None: the view's own pool read), where its result is shown.
fn start(c: &mut CurateState, workspace: Option<&Path>, step: Step, button: Option<&'static str>, tx: &CommandSender) {
    let Some(dir) = workspace else {
        c.error = Some("choose a workspace folder first (top bar)".into());
        return;
    };
    if c.is_running() {
        return;
    }
    c.error = None;
    c.progress = (0, 0);
    c.progress_unit = step.unit();
    c.running = Some(step.label());
    c.running_from = button;
    if let Some(b) = button {
        c.results.remove(b);
    }
    match curation::start(dir.to_path_buf(), step, tx.notify()) {
        Ok(job) => {
            c.job = Some(job);
            c.snapshot_of = Some(dir.to_path_buf());
        }
        Err(e) => {
            c.running = None;
            c.running_from = None;
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
        c.picked.clear();
        c.results.clear();
        c.inspector_open = false;
        start(c, workspace, Step::Refresh, None, tx);
    }
    let start_at = Instant::now();
    let mut finished = false;
    while start_at.elapsed() < budget {
        let Some(Ok(ev)) = c.job.as_ref().map(|j| j.events.try_recv()) else {
            break;
        };
        match ev {
            CurateEvent::Progress { done, total, unit } => {
                c.progress = (done, total);
                c.progress_unit = unit;
            }
            CurateEvent::Log(l) => c.log.push(l),
            CurateEvent::Snapshot(s) => c.apply_snapshot(*s),
            CurateEvent::Finished(r) => {
                let mut problems = std::mem::take(&mut c.import_problems);
                let result = match &r {
                    Ok(report) => {
                        problems.extend(report.failures());
                        StepResult::done(&report.headline(), problems)
                    }
                    Err(e) => StepResult::failed(e, problems),
                };
                match r {
                    Ok(report) => c.log.push(report.to_string().trim_end().to_string()),
                    Err(e) => {
                        c.log.push(format!("failed: {e}"));
                        c.error = Some(e);
                    }
                }
                if let Some(b) = c.running_from.take() {
                    post_result(b, &result, tx);
                    c.results.insert(b, result);
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
    if c.map.shown {
        c.map
            .refresh(c.snapshot.as_ref(), c.generation, &c.picked, &tx.notify());
    }
}

/// Puts a step's result in the app's status bar.
fn post_result(button: &str, r: &StepResult, tx: &CommandSender) {
    let more = match r.problems.len() {
        0 => String::new(),
        n => format!(
            " ({n} problem{} listed beside the button)",
            if n == 1 { "" } else { "s" }
        ),
    };
    tx.send(AppCommand::Notice(format!("Curate, {button}: {}{more}", r.text)));
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
                if let Report::Marked { .. } = &report {
                    let r = StepResult::done(&report.headline(), Vec::new());
                    post_result(PICKED_BAR, &r, tx);
                    c.results.insert(PICKED_BAR, r);
                }
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

/// Hands a map step with a model's vectors the model the Chat has loaded (shared, not copied):
/// the step uses it instead of loading the same model again, and loads its own when the model
/// is another (or none is loaded). Only a pointer is taken here.
fn share_loaded_model(step: &mut Step, inference: &InferenceHandle) {
    if let Step::Map(MapOptions {
        embedder: MapEmbedder::Model(m),
        ..
    }) = step
    {
        m.shared = inference.loaded().map(SharedModel);
    }
}

/// What the curate logic reads and changes.
pub struct CurateCx<'a> {
    pub state: &'a mut CurateState,
    pub form: &'a mut CurateForm,
    pub workspace: Option<&'a Path>,
    pub tx: &'a CommandSender,
    /// The Chat's model worker: a map step with a model's vectors shares its loaded model.
    pub inference: &'a InferenceHandle,
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
    if !problems.is_empty() {
        c.log.push(format!("not imported:\n{}", problems.join("\n")));
    }
    if files.is_empty() {
        let r = StepResult::failed("no file to import", problems);
        post_result(IMPORT, &r, tx);
        c.error = Some(r.problems.join("; "));
        c.results.insert(IMPORT, r);
        return;
    }
    let mapping = (!form.mapping.trim().is_empty()).then(|| form.mapping.trim().to_string());
    let options = crate::curate::steps::import::ImportOptions {
        mapping,
        ..Default::default()
    };
    start(c, workspace, Step::Import { files, options }, Some(IMPORT), tx);
    if !problems.is_empty() {
        c.error = Some(format!("not imported: {}", problems.join("; ")));
    }
    // Also said with the step's result, beside the button.
    c.import_problems = problems;
}

/// The Import button's label (its result's key).
pub const IMPORT: &str = "Import";

/// Carries out a Curate-view command.
pub fn handle(cmd: CurateCommand, cx: CurateCx<'_>) {
    let CurateCx {
        state: c,
        form,
        workspace,
        tx,
        inference,
    } = cx;
    match cmd {
        CurateCommand::Start { mut step, button } => {
            share_loaded_model(&mut step, inference);
            start(c, workspace, *step, Some(button), tx)
        }
        CurateCommand::Stop => {
            if let Some(j) = &c.job {
                j.stop();
            }
        }
        CurateCommand::ClickRow { key, how } => {
            if let Some(s) = &c.snapshot {
                c.picked.click(&key, how, &c.visible, &s.rows);
            }
            if how == Default::default() {
                c.inspector_open = true;
            }
            inspect(c, workspace, key, tx);
        }
        CurateCommand::ShowInspector(open) => c.inspector_open = open,
        CurateCommand::PickNone => c.picked.clear(),
        CurateCommand::PickKeys(keys) => c.picked.set(keys),
        CurateCommand::MarkPicked(manual) => {
            c.error = None;
            c.results.remove(PICKED_BAR);
            let keys: Vec<String> = c.picked.keys.iter().cloned().collect();
            if !keys.is_empty() {
                send_to_reader(c, workspace, Step::Mark { keys, manual }, tx);
            }
        }
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
                    c.results.remove(IMPORT);
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
