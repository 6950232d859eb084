//! What the views ask for. Every user action, file-dialog result and background read is a
//! [`Command`], grouped by the view that handles it, sent over one bounded channel and carried
//! out in one place per group (`app.rs` for [`AppCommand`], `<view>_state.rs` for the others).
//! The bottom of `ui`: it imports no other file of `ui`.

use std::path::PathBuf;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::curate::steps::Step;
use crate::generate::conversation::SavedConversation;
use crate::jobs::Notify;
use crate::model::device::DeviceInfo;
use crate::workspace::Manual;

/// The four views of the studio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum View {
    Curate,
    Train,
    #[default]
    Chat,
    Evaluate,
}

impl View {
    pub const ALL: [View; 4] = [View::Curate, View::Train, View::Chat, View::Evaluate];

    pub fn label(self) -> &'static str {
        match self {
            View::Curate => "Curate",
            View::Train => "Train",
            View::Chat => "Chat",
            View::Evaluate => "Evaluate",
        }
    }

    /// The view named `s` (any case), as the command line spells it.
    pub fn parse(s: &str) -> Option<View> {
        View::ALL.into_iter().find(|v| v.label().eq_ignore_ascii_case(s))
    }
}

/// One request to the app, by the view that handles it.
#[derive(Debug, Clone)]
pub enum Command {
    App(AppCommand),
    Chat(ChatCommand),
    Train(TrainCommand),
    Eval(EvalCommand),
    Curate(CurateCommand),
    Library(LibraryCommand),
}

/// The shell's own commands: navigation, the workspace folder, the clipboard, the device list.
#[derive(Debug, Clone, PartialEq)]
pub enum AppCommand {
    SetView(View),
    PickWorkspace,
    /// Use this folder as the workspace (it is created off the UI thread first).
    SetWorkspace(PathBuf),
    /// The folder exists now (or could not be made): from the workspace thread.
    WorkspaceReady(Result<PathBuf, String>),
    /// The folder dialog could not open (the message says so): shown beside the typed
    /// workspace field, which takes the focus.
    WorkspaceDialogFailed(String),
    Copy(String),
    /// The devices this build can use, listed once at start on a worker thread.
    Devices(Vec<DeviceInfo>),
    /// A line for the status bar.
    Notice(String),
}

/// The Chat view's commands.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatCommand {
    OpenModel(PathBuf),
    /// Open the demo model with its suggested prompt and budget preset (`first_run`).
    OpenDemo(PathBuf),
    PickModelFolder,
    PickModelFile,
    Send,
    Stop,
    /// End the thinking now with the forced end ("Answer now").
    AnswerNow,
    Regenerate,
    Clear,
    /// Start a new conversation (the current one stays saved).
    NewConversation,
    /// Open the saved conversation with this id.
    OpenConversation(String),
    RenameConversation {
        id: String,
        title: String,
    },
    DeleteConversation(String),
    /// Keep conversations in this folder (the app's data dir; a temporary one in tests): the
    /// store thread reads those there first.
    SetConversationsDir(PathBuf),
    /// The saved conversations, read by the store thread, and a message for each file that
    /// could not be read (skipped).
    ConversationsRead {
        conversations: Vec<SavedConversation>,
        errors: Vec<String>,
    },
    /// The store thread could not write or delete.
    StoreFailed(String),
    /// Save the thinking and sampling controls under a name.
    SavePreset(String),
    ApplyPreset(String),
    DeletePreset(String),
    /// The model's file dialog could not open: said beside the Path field, which takes the
    /// focus.
    DialogFailed(String),
    /// Serve the loaded model on localhost (the port typed in the serve panel).
    ServeStart,
    ServeStop,
}

/// The model library panel's commands (reached from the Chat view's model bar).
#[derive(Debug, Clone, PartialEq)]
pub enum LibraryCommand {
    /// Show the panel (and read the library again).
    Open,
    Close,
    /// Pull the repo (and file) typed in the panel.
    Pull,
    /// Fetch the demo model, then open it in Chat with a suggested prompt and budget.
    FetchDemo,
    /// Stop the download (what was downloaded is kept).
    Stop,
    /// Remove this library id and its files (after the panel's confirmation).
    Remove(String),
    /// The library as read by its thread.
    Listed(Result<Vec<crate::hub::LibraryEntry>, String>),
    /// What a removal did.
    Removed(Result<Vec<String>, String>),
    /// Search the hub for the words typed in the panel.
    Search,
    /// The search's hits, as its thread found them.
    Found(Result<Vec<crate::hub::SearchHit>, String>),
    /// Pull this repo of the search's hits: read its listing first (which file?).
    PullHit(String),
    /// The repo's listing, read by its thread: pull the one thing there is, or show the choice.
    Options(Result<crate::hub::listing::PullOptions, String>),
    /// Pull this repo's folder (None) or this GGUF file of it, as picked from its listing.
    PullChoice {
        repo: String,
        file: Option<String>,
    },
    /// Close the file choice without pulling.
    DismissChoice,
}

/// Which path a Train-view picker fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainPath {
    Model,
    Data,
    Out,
}

/// An earlier run as read from its folder (on a worker thread): name, loss curve, last step,
/// checkpoints and what could not be read.
pub use crate::train::runs::RunRecord as RunSummary;

/// What the user chose when Start met a folder that already holds a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunChoice {
    /// Continue the run from its newest checkpoint.
    Resume,
    /// Start in the next free suffixed folder (`run-2`, ...).
    NewFolder,
    /// Ask to move the old run aside and start afresh in its folder (needs `ConfirmReplace`).
    Replace,
    /// Move the old run aside (never deleted) and start afresh.
    ConfirmReplace,
    /// Start nothing.
    Cancel,
}

/// The Train view's commands.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainCommand {
    Start {
        resume: bool,
    },
    Stop,
    /// Follow the job launched earlier from the output folder (its slurm_job.json, ray_job.json
    /// or launch.json) with the same charts and Stop.
    Attach,
    PickPath(TrainPath),
    SetPath(TrainPath, PathBuf),
    ChatWithCheckpoint(PathBuf),
    /// "Try a 2-minute finetune": make the tiny model and rows (`first_run`), then start.
    QuickStart,
    /// The quick start's settings, made off the UI thread, or why they could not be.
    QuickStartReady(Box<Result<crate::train::TrainSettings, String>>),
    /// The past runs, read by the history thread.
    HistoryRead(Vec<RunSummary>),
    /// The output folder was checked off the UI thread before a fresh start: the run it holds
    /// (None: free) and the next free suffixed folder.
    RunChecked {
        out: PathBuf,
        existing: Option<Box<RunSummary>>,
        next_free: PathBuf,
    },
    /// The answer to the existing-run prompt.
    Choose(RunChoice),
    /// The old run was moved aside (to this folder) or could not be.
    MovedAside(Result<PathBuf, String>),
    /// Rename a past run (written to its run.json off the UI thread).
    Rename(PathBuf, String),
    /// The run history changed on disk: read it again.
    HistoryStale,
    /// Render the training data as training would (off the UI thread) for the preview.
    PreviewData,
    /// The preview, or why it could not be made.
    PreviewRead(Box<Result<crate::train::preview::DataPreview, String>>),
    /// The dialog for this path could not open: said beside its field, which takes the focus.
    DialogFailed(TrainPath, String),
    /// Read the base model's config.json (off the UI thread) for the memory estimate.
    ReadModelConfig,
    /// The base model's shape, or why it could not be read.
    ModelConfigRead(PathBuf, Box<Result<crate::model::ModelConfig, String>>),
}

/// Which path an Evaluate-view picker fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalPath {
    ModelFolder,
    ModelFile,
    Bench,
    Out,
}

/// The Evaluate view's commands.
#[derive(Debug, Clone, PartialEq)]
pub enum EvalCommand {
    Run,
    Stop,
    PickPath(EvalPath),
    SetPath(EvalPath, PathBuf),
    /// The dialog for this path could not open: the message goes beside the form and the
    /// path's field takes the focus.
    DialogFailed(EvalPath, String),
}

/// Which path a Curate-view picker fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CuratePath {
    Import,
    Tokenizer,
    Export,
}

/// The Curate view's commands.
#[derive(Debug, Clone)]
pub enum CurateCommand {
    /// Start a step; `button` names the button it came from (its result is shown there).
    Start {
        step: Box<Step>,
        button: &'static str,
    },
    Stop,
    /// A click on a table row: picks it (see `curate_pick`) and opens it in the inspector.
    ClickRow {
        key: String,
        how: super::curate_pick::ClickKind,
    },
    /// Open (true) or close the inspector.
    ShowInspector(bool),
    /// Include or exclude a question by hand (None: back to the funnel's verdict).
    Mark(String, Option<Manual>),
    /// The same for every picked row.
    MarkPicked(Option<Manual>),
    /// Unpick every row.
    PickNone,
    /// Pick exactly these rows (a box on the map).
    PickKeys(Vec<String>),
    PickPath(CuratePath),
    SetPath(CuratePath, PathBuf),
    /// Import the files and glob patterns typed (expanded off the UI thread first).
    ImportTyped,
    /// The typed import, expanded: the files found, and what named none (each said).
    ImportResolved {
        files: Vec<PathBuf>,
        problems: Vec<String>,
    },
    /// The dialog for this path could not open: said in the view, and the field takes the focus.
    DialogFailed(CuratePath, String),
}

macro_rules! into_command {
    ($($group:ident => $variant:ident),*) => {
        $(impl From<$group> for Command {
            fn from(c: $group) -> Command {
                Command::$variant(c)
            }
        })*
    };
}
into_command!(AppCommand => App, ChatCommand => Chat, TrainCommand => Train, EvalCommand => Eval, CurateCommand => Curate, LibraryCommand => Library);

/// The sending end of the command channel, cloned into every view and worker thread that
/// reports back. Sending wakes the UI.
#[derive(Clone)]
pub struct CommandSender {
    tx: Sender<Command>,
    notify: Notify,
}

/// Commands queued at most (a frame drains them all; a full queue means the UI is stuck).
const CAPACITY: usize = 1024;

impl CommandSender {
    /// A bounded command channel; `notify` wakes the UI after each command.
    pub fn channel(notify: Notify) -> (CommandSender, Receiver<Command>) {
        let (tx, rx) = crossbeam_channel::bounded(CAPACITY);
        (CommandSender { tx, notify }, rx)
    }

    /// Queues `c` without waiting (the UI thread's way); false when the queue is full or closed.
    pub fn send(&self, c: impl Into<Command>) -> bool {
        let sent = match self.tx.try_send(c.into()) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        };
        (self.notify)();
        sent
    }

    /// Queues `c`, waiting while the queue is full (a worker thread's way).
    pub fn send_blocking(&self, c: impl Into<Command>) {
        let _ = self.tx.send(c.into());
        (self.notify)();
    }

    /// The notifier jobs call after each event.
    pub fn notify(&self) -> Notify {
        self.notify.clone()
    }
}
