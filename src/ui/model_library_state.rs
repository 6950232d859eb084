//! The model library panel's state and logic: the pull form, the library as last read, the
//! running download (a [`DownloadJob`] on its own thread) and what the last one did. Reading and
//! removing run on background threads; the UI thread never touches the disk or the network.

use std::time::{Duration, Instant};

use super::background;
use super::command::{ChatCommand, CommandSender, LibraryCommand};
use crate::hub::{human_bytes, DemoSource, HubSettings, Library, LibraryEntry, PullEvent, PullRequest};
use crate::jobs::{Download, DownloadEvent, DownloadJob};

/// What the panel shows and edits.
pub struct ModelLibraryState {
    /// The panel is shown.
    pub open: bool,
    pub library: Library,
    /// The hub to ask (None: HF_ENDPOINT / HF_TOKEN, read on the download's thread).
    pub hub: Option<HubSettings>,
    pub demo: DemoSource,
    pub repo_input: String,
    /// One file of the repo (a .gguf); empty: the safetensors folder.
    pub file_input: String,
    pub revision_input: String,
    /// The library as last read (None: not read yet).
    pub entries: Option<Vec<LibraryEntry>>,
    pub job: Option<DownloadJob>,
    /// What is being downloaded ("org/name", "the demo model").
    pub job_label: String,
    /// Bytes present and to fetch, and the current step.
    pub progress: (u64, u64),
    pub stage: String,
    /// What the last download or removal did: Ok(news) or Err(why).
    pub outcome: Option<Result<String, String>>,
    /// Remove was clicked for this id: the panel asks to confirm.
    pub confirm_remove: Option<String>,
    /// Open the demo in Chat when its download ends.
    open_demo_when_done: bool,
}

impl Default for ModelLibraryState {
    fn default() -> Self {
        Self {
            open: false,
            library: Library::default_location(),
            hub: None,
            demo: DemoSource::from_env(),
            repo_input: String::new(),
            file_input: String::new(),
            revision_input: "main".into(),
            entries: None,
            job: None,
            job_label: String::new(),
            progress: (0, 0),
            stage: String::new(),
            outcome: None,
            confirm_remove: None,
            open_demo_when_done: false,
        }
    }
}

impl ModelLibraryState {
    pub fn is_downloading(&self) -> bool {
        self.job.is_some()
    }

    /// "Downloading org/name: 12.0 MB of 98.4 MB" for the status line of a view.
    pub fn job_line(&self) -> Option<String> {
        self.job.as_ref()?;
        let (done, total) = self.progress;
        Some(format!(
            "Downloading {}: {} of {}",
            self.job_label,
            human_bytes(done),
            human_bytes(total)
        ))
    }

    fn start(&mut self, what: Download, label: String, tx: &CommandSender) {
        if self.job.is_some() {
            self.outcome = Some(Err("a download is running: stop it first".into()));
            return;
        }
        match DownloadJob::spawn(what, tx.notify()) {
            Ok(job) => {
                self.job = Some(job);
                self.job_label = label;
                self.progress = (0, 0);
                self.stage = "starting".into();
                self.outcome = None;
            }
            Err(e) => self.outcome = Some(Err(format!("could not start the download thread: {e}"))),
        }
    }
}

/// Reads the library on a background thread.
fn refresh(library: &Library, tx: &CommandSender) {
    let library = library.clone();
    background::spawn("s1-library-read", tx, move || {
        Some(LibraryCommand::Listed(library.entries().map_err(|e| e.to_string())).into())
    });
}

/// Carries out a library command.
pub fn handle(c: LibraryCommand, state: &mut ModelLibraryState, tx: &CommandSender) {
    match c {
        LibraryCommand::Open => {
            state.open = true;
            refresh(&state.library, tx);
        }
        LibraryCommand::Close => state.open = false,
        LibraryCommand::Pull => {
            let mut request = PullRequest::new(&state.repo_input);
            if request.repo.is_empty() {
                state.outcome = Some(Err(
                    "type a repo id first, e.g. HuggingFaceTB/SmolLM2-135M-Instruct".into()
                ));
                return;
            }
            let file = state.file_input.trim();
            request.file = (!file.is_empty()).then(|| file.to_string());
            let rev = state.revision_input.trim();
            request.revision = if rev.is_empty() { "main".into() } else { rev.to_string() };
            let label = request.id();
            let what = Download::Pull {
                library: state.library.clone(),
                request,
                hub: state.hub.clone(),
            };
            state.open_demo_when_done = false;
            state.start(what, label, tx);
        }
        LibraryCommand::FetchDemo => {
            let what = Download::Demo {
                library: state.library.clone(),
                source: state.demo.clone(),
            };
            state.open = true;
            state.start(what, "the demo model".into(), tx);
            state.open_demo_when_done = state.job.is_some();
            refresh(&state.library, tx);
        }
        LibraryCommand::Stop => {
            if let Some(j) = &state.job {
                j.stop();
            }
        }
        LibraryCommand::Remove(id) => {
            state.confirm_remove = None;
            let library = state.library.clone();
            background::spawn("s1-library-remove", tx, move || {
                Some(LibraryCommand::Removed(library.remove(&id).map_err(|e| e.to_string())).into())
            });
        }
        LibraryCommand::Listed(Ok(entries)) => state.entries = Some(entries),
        LibraryCommand::Listed(Err(e)) => {
            state.entries = Some(Vec::new());
            state.outcome = Some(Err(e));
        }
        LibraryCommand::Removed(r) => {
            state.outcome = Some(r.map(|ids| format!("Removed {}", ids.join(", "))));
            refresh(&state.library, tx);
        }
    }
}

/// Applies the download's events until none is left or `budget` has passed.
pub fn update(state: &mut ModelLibraryState, tx: &CommandSender, budget: Duration) {
    let start = Instant::now();
    while start.elapsed() < budget {
        let Some(job) = &state.job else { return };
        let Ok(ev) = job.events.try_recv() else { return };
        match ev {
            DownloadEvent::Progress(p) => match p {
                PullEvent::Planned { total, present, files } => {
                    state.progress = (present, total);
                    state.stage = format!("{files} file{}", if files == 1 { "" } else { "s" });
                }
                PullEvent::FileStarted { name, .. } => state.stage = name,
                PullEvent::Progress { done, total } => state.progress = (done, total),
                PullEvent::Verifying { name } => state.stage = format!("checking {name}"),
                PullEvent::Stage(s) => state.stage = s,
            },
            DownloadEvent::Done(entry) => {
                state.job = None;
                state.outcome = Some(Ok(format!(
                    "{} is in the library ({})",
                    entry.id,
                    human_bytes(entry.bytes)
                )));
                if std::mem::take(&mut state.open_demo_when_done) {
                    state.open = false;
                    tx.send(ChatCommand::OpenDemo(entry.path.clone()));
                }
                refresh(&state.library, tx);
            }
            DownloadEvent::Failed(e) => {
                state.job = None;
                state.open_demo_when_done = false;
                state.outcome = Some(Err(e));
            }
            DownloadEvent::Cancelled => {
                state.job = None;
                state.open_demo_when_done = false;
                state.outcome = Some(Err(
                    "Stopped. What was downloaded is kept: pulling again resumes it".into()
                ));
            }
        }
    }
}
