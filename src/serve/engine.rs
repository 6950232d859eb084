//! The engine thread: it owns the loaded model and a [`Scheduler`], takes requests from a
//! bounded admission queue between decode steps (as many as `--parallel` run at once, the rest
//! wait in the queue; a full queue is the client's 503), and sends each request's events back on
//! its own channel. A request whose reader is gone, or that was cancelled while it waited, is
//! dropped at the next step or never admitted.

use std::path::PathBuf;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};

use super::error::ApiError;
use super::request::{Input, Served};
use crate::generate::{
    ids_prompt, text_prompt, Delta, GenerateError, GenerateParams, Scheduler, SeqControl, SeqEvent, SinkFlow,
    ThinkingFormat,
};
use crate::model::{load_model, LoadOptions, LoadedModel};

/// What the engine sends a request: `Rejected` alone, or sequence events ending in `Finished`
/// or `Failed` with `Admitted` among them (after what the admission itself streamed).
#[derive(Debug)]
pub enum EngineEvent {
    Admitted,
    /// The request could not start; `client_fault`: the request was at fault (too long a
    /// prompt, an impossible budget), else the server.
    Rejected {
        message: String,
        client_fault: bool,
    },
    Seq(SeqEvent),
}

/// A request for the engine.
pub struct Job {
    pub input: Input,
    pub params: GenerateParams,
    pub control: SeqControl,
    pub events: tokio::sync::mpsc::Sender<EngineEvent>,
}

/// How to start the engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub model: PathBuf,
    pub load: LoadOptions,
    /// Sequences decoded together.
    pub parallel: usize,
    /// Requests that may wait for a slot.
    pub queue: usize,
    /// Positions per sequence (`None`: the model's context).
    pub context: Option<usize>,
    /// The most `max_tokens` a request may ask.
    pub max_tokens_limit: usize,
}

/// How many requests run and wait, and how long they may be: [`EngineOptions`] less the
/// model to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub parallel: usize,
    pub queue: usize,
    pub context: Option<usize>,
    pub max_tokens_limit: usize,
}

impl Limits {
    fn of(o: &EngineOptions) -> Self {
        Self {
            parallel: o.parallel,
            queue: o.queue,
            context: o.context,
            max_tokens_limit: o.max_tokens_limit,
        }
    }
}

/// The handle the HTTP side holds.
#[derive(Clone)]
pub struct Engine {
    queue: Sender<Job>,
    pub served: Served,
}

impl Engine {
    /// Loads the model on a new thread named `serve-engine` and starts serving from it;
    /// returns once the model is loaded (or failed to).
    pub fn start(opts: EngineOptions) -> anyhow::Result<(Self, std::thread::JoinHandle<()>)> {
        Self::spawn(opts.queue, move |ready| {
            let model = match load_model(&opts.model, &opts.load) {
                Ok(m) => m,
                Err(e) => {
                    let _ = ready.send(Err(format!("loading {}: {e:#}", opts.model.display())));
                    return None;
                }
            };
            let limits = Limits::of(&opts);
            Some((model_id(&opts.model), Arc::new(model), limits))
        })
    }

    /// Serves a model that is already loaded (the Chat view's, shared with it) from a new
    /// `serve-engine` thread; the model is released when the engine stops (every handle
    /// dropped).
    pub fn start_shared(
        model: Arc<LoadedModel>,
        limits: Limits,
    ) -> anyhow::Result<(Self, std::thread::JoinHandle<()>)> {
        Self::spawn(limits.queue, move |_| Some((model_id(&model.path), model, limits)))
    }

    fn spawn<F>(queue: usize, get: F) -> anyhow::Result<(Self, std::thread::JoinHandle<()>)>
    where
        F: FnOnce(&SyncSender<Result<Served, String>>) -> Option<(String, Arc<LoadedModel>, Limits)> + Send + 'static,
    {
        let (queue, jobs) = crossbeam_channel::bounded::<Job>(queue.max(1));
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<Served, String>>(1);
        let thread = std::thread::Builder::new().name("serve-engine".into()).spawn(move || {
            if let Some((id, model, limits)) = get(&ready_tx) {
                run(id, &model, limits, jobs, ready_tx)
            }
        })?;
        match ready_rx.recv() {
            Ok(Ok(served)) => Ok((Self { queue, served }, thread)),
            Ok(Err(e)) => Err(anyhow::anyhow!(e)),
            Err(_) => Err(anyhow::anyhow!("the engine thread stopped while loading the model")),
        }
    }

    /// Queues a request; a full queue is a 503.
    pub fn submit(&self, job: Job) -> Result<(), ApiError> {
        match self.queue.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(ApiError::busy(self.queue.len())),
            Err(TrySendError::Disconnected(_)) => Err(ApiError::internal("the engine has stopped")),
        }
    }
}

fn run(
    id: String,
    model: &LoadedModel,
    limits: Limits,
    jobs: Receiver<Job>,
    ready: SyncSender<Result<Served, String>>,
) {
    let mut sched = Scheduler::new(model, limits.parallel, limits.context);
    let served = Served {
        id,
        path: model.path.display().to_string(),
        format: ThinkingFormat::for_style(&model.thinking_style()),
        context: sched.context(),
        max_tokens_limit: limits.max_tokens_limit.min(sched.context()).max(1),
    };
    if ready.send(Ok(served)).is_err() {
        return;
    }
    loop {
        if sched.is_empty() {
            match jobs.recv() {
                Ok(job) => admit(&mut sched, model, job),
                Err(_) => return,
            }
        }
        while sched.has_room() {
            match jobs.try_recv() {
                Ok(job) => admit(&mut sched, model, job),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => break,
            }
        }
        if sched.is_empty() {
            continue;
        }
        if let Err(e) = sched.step() {
            eprintln!("serve: a decode step failed (its requests got an error): {e}");
        }
    }
}

/// The name a model is served under: its file or folder name.
pub fn model_id(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn admit(sched: &mut Scheduler<'_, 'static>, model: &LoadedModel, job: Job) {
    if job.control.cancel.is_cancelled() || job.events.is_closed() {
        return;
    }
    let tx = job.events.clone();
    let sink = Box::new(move |ev: SeqEvent| {
        if let SeqEvent::Delta(Delta::Counts { .. }) = ev {
            return if tx.is_closed() {
                SinkFlow::Gone
            } else {
                SinkFlow::Continue
            };
        }
        match tx.try_send(EngineEvent::Seq(ev)) {
            Ok(()) => SinkFlow::Continue,
            Err(_) => SinkFlow::Gone,
        }
    });
    let admitted = match &job.input {
        Input::Chat(messages) => sched.admit_chat(messages, &job.params, job.control.clone(), sink),
        Input::Text(text) => match text_prompt(model, text, &job.params.budget) {
            Ok(prompt) => sched.admit(&prompt, &job.params, job.control.clone(), sink),
            Err(e) => Err(e.into()),
        },
        Input::Ids(ids) => match ids_prompt(model, ids, &job.params.budget) {
            Ok(prompt) => sched.admit(&prompt, &job.params, job.control.clone(), sink),
            Err(e) => Err(e.into()),
        },
    };
    match admitted {
        // After the events the admission streamed (the opened thinking), if any.
        Ok(_) => {
            let _ = job.events.try_send(EngineEvent::Admitted);
        }
        Err(e) => {
            let client_fault = matches!(e, GenerateError::Budget(_) | GenerateError::Model(_));
            let _ = job.events.try_send(EngineEvent::Rejected {
                message: e.to_string(),
                client_fault,
            });
        }
    }
}
