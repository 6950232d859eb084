//! The inference worker: one named thread owns the loaded model; requests come in over a channel,
//! typed events go out over a bounded channel, and a notifier (the UI's `request_repaint`) is
//! called after each event. Protocol, per request:
//! - `Load`: `LoadStarted`, `LoadProgress`…, then `Loaded` or `LoadFailed` (always one of them).
//! - `Lend`: the loaded model, shared, on the request's own reply channel (no event).
//!
//! The handle also holds the loaded model without a request ([`InferenceHandle::loaded`]), so
//! a step that wants the same model (the map's vectors) shares it at once, even while the
//! worker is generating.
//! - `Generate`: `GenStarted`, `Delta`…, then `GenFinished` (also when cancelled, with
//!   `stop_reason: cancelled`) or `GenFailed` (always one of them).
//!
//! A panic while loading or generating is caught per request: it ends that request as
//! `LoadFailed` or `GenFailed` with the panic's message, and the worker keeps serving.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crossbeam_channel::{bounded, Receiver, Sender};

use super::job::catch_crash;
use super::CancelToken;
use crate::generate::{chat_steered, AnswerNow, Delta, GenerateParams, Generation};
use crate::model::{
    load_model_with_progress, ChatMessage, DeviceChoice, LoadOptions, LoadedModel, ModelFormat, ThinkingStyle,
};

pub use crate::cancel::Notify;

/// What the worker is asked to do.
pub enum InferenceRequest {
    /// Load the model at `path` on `device`, replacing the loaded one. The device is a choice,
    /// not a candle `Device`: it is opened on the worker thread (a CUDA context belongs to the
    /// thread that made it, and opening one takes seconds the UI must not wait), and a device
    /// that cannot be opened ends as `LoadFailed`. The dtype follows the device (f32 on the CPU,
    /// bf16 on CUDA; a quantized GGUF stays quantized).
    Load {
        path: PathBuf,
        device: DeviceChoice,
    },
    Generate {
        id: u64,
        messages: Vec<ChatMessage>,
        params: Box<GenerateParams>,
        cancel: CancelToken,
        /// Set by the chat's "Answer now": the thinking ends at once with the forced end.
        answer_now: AnswerNow,
    },
    Unload,
    /// Lend the loaded model (shared, not copied) to whoever serves it over HTTP; the reply
    /// says why not when no model is loaded.
    Lend {
        reply: Sender<Result<Arc<LoadedModel>, String>>,
    },
}

/// What a loaded model is, for display.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub name: String,
    pub format: ModelFormat,
    pub arch: String,
    pub parameters: usize,
    pub context: usize,
    pub template_is_fallback: bool,
    /// How the model thinks, detected from its chat template and tokenizer: what the Chat
    /// view's Auto format uses.
    pub thinking: ThinkingStyle,
}

/// What the worker reports.
#[derive(Debug, Clone)]
pub enum InferenceEvent {
    LoadStarted { path: PathBuf },
    LoadProgress { fraction: f32, stage: String },
    Loaded(ModelInfo),
    LoadFailed { path: PathBuf, error: String },
    GenStarted { id: u64 },
    Delta { id: u64, delta: Delta },
    GenFinished { id: u64, generation: Box<Generation> },
    GenFailed { id: u64, error: String },
}

/// The model the worker holds, as the handle sees it (set when a load ends, cleared when the
/// model goes).
type LoadedSlot = Arc<Mutex<Option<Arc<LoadedModel>>>>;

/// The UI's end of the worker.
pub struct InferenceHandle {
    requests: Sender<InferenceRequest>,
    events: Receiver<InferenceEvent>,
    loaded: LoadedSlot,
}

impl InferenceHandle {
    /// Starts the worker thread.
    pub fn spawn(notify: Notify) -> std::io::Result<Self> {
        let (req_tx, req_rx) = bounded::<InferenceRequest>(16);
        let (ev_tx, ev_rx) = bounded::<InferenceEvent>(4096);
        let loaded = LoadedSlot::default();
        let slot = loaded.clone();
        std::thread::Builder::new()
            .name("s1-inference".into())
            .spawn(move || worker(req_rx, ev_tx, notify, slot))?;
        Ok(Self {
            requests: req_tx,
            events: ev_rx,
            loaded,
        })
    }

    /// The loaded model, shared (not copied), or None. The lock is held only to swap or clone
    /// the pointer, so this never waits on a load or a generation.
    pub fn loaded(&self) -> Option<Arc<LoadedModel>> {
        self.loaded.lock().ok().and_then(|m| m.clone())
    }

    /// Sends a request; false if the worker is gone.
    pub fn send(&self, req: InferenceRequest) -> bool {
        self.requests.send(req).is_ok()
    }

    /// The next event, if one is waiting.
    pub fn try_recv(&self) -> Option<InferenceEvent> {
        self.events.try_recv().ok()
    }

    /// Blocks for the next event (tests and headless callers).
    pub fn recv_timeout(&self, timeout: std::time::Duration) -> Option<InferenceEvent> {
        self.events.recv_timeout(timeout).ok()
    }
}

fn info(model: &LoadedModel) -> ModelInfo {
    let cfg = model.decoder.config();
    let name = model
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| model.path.display().to_string());
    ModelInfo {
        path: model.path.clone(),
        name,
        format: model.format,
        arch: cfg.arch.model_type().into(),
        parameters: cfg.num_parameters(),
        context: cfg.max_position_embeddings,
        template_is_fallback: model.template_is_fallback,
        thinking: model.thinking_style(),
    }
}

fn worker(requests: Receiver<InferenceRequest>, events: Sender<InferenceEvent>, notify: Notify, slot: LoadedSlot) {
    let mut model: Option<Arc<LoadedModel>> = None;
    // What the handle sees follows `model`.
    let publish = |m: &Option<Arc<LoadedModel>>| {
        if let Ok(mut s) = slot.lock() {
            *s = m.clone();
        }
    };
    let emit = |ev: InferenceEvent| {
        // The UI may be gone (window closed): then nobody listens and that is fine.
        let _ = events.send(ev);
        notify();
    };
    while let Ok(req) = requests.recv() {
        match req {
            InferenceRequest::Load { path, device } => {
                emit(InferenceEvent::LoadStarted { path: path.clone() });
                model = None; // free the old model before loading the next
                publish(&model);
                let result = catch_crash("the loader", || {
                    let options = LoadOptions {
                        device: device.open().map_err(|e| format!("{e:#}"))?,
                        ..LoadOptions::default()
                    };
                    load_model_with_progress(&path, &options, &mut |p| {
                        emit(InferenceEvent::LoadProgress {
                            fraction: p.fraction,
                            stage: p.stage,
                        })
                    })
                    .map_err(|e| format!("{e:#}"))
                });
                match result.and_then(|r| r) {
                    Ok(m) => {
                        model = Some(Arc::new(m));
                        publish(&model);
                        if let Some(m) = &model {
                            emit(InferenceEvent::Loaded(info(m)));
                        }
                    }
                    Err(error) => emit(InferenceEvent::LoadFailed { path, error }),
                }
            }
            InferenceRequest::Unload => {
                model = None;
                publish(&model);
            }
            InferenceRequest::Lend { reply } => {
                let _ = reply.try_send(model.clone().ok_or_else(|| "no model is loaded".to_string()));
            }
            InferenceRequest::Generate {
                id,
                messages,
                params,
                cancel,
                answer_now,
            } => {
                emit(InferenceEvent::GenStarted { id });
                let Some(m) = model.as_ref() else {
                    emit(InferenceEvent::GenFailed {
                        id,
                        error: "no model is loaded".into(),
                    });
                    continue;
                };
                let result = catch_crash("generation", || {
                    chat_steered(m, &messages, &params, &cancel, &answer_now, &mut |ev| {
                        emit(InferenceEvent::Delta { id, delta: ev.into() });
                    })
                    .map_err(|e| format!("{e:#}"))
                });
                match result.and_then(|r| r) {
                    Ok(g) => emit(InferenceEvent::GenFinished {
                        id,
                        generation: Box::new(g),
                    }),
                    Err(error) => emit(InferenceEvent::GenFailed { id, error }),
                }
            }
        }
    }
}
