//! The Chat view's "Serve on localhost": the loaded model, shared with the chat, behind the
//! OpenAI-compatible routes of `s1-studio serve` on 127.0.0.1 ([`crate::serve::local`]); its
//! state, the commands that start and stop it, and the log of the requests it answered.

use std::collections::VecDeque;

use super::command::CommandSender;
use crate::jobs::{InferenceHandle, InferenceRequest};
use crate::serve::local::{LocalServer, RequestLine, ServerEvent};

/// Request lines kept for the log (the oldest go first).
pub const LOG_MAX: usize = 200;

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ServeStatus {
    #[default]
    Off,
    Starting,
    Listening {
        url: String,
        model: String,
    },
    Failed(String),
    /// Stopped by the app, with why (another model was loaded).
    Ended(String),
}

/// The server's runtime state (not persisted).
#[derive(Debug)]
pub struct ServeState {
    /// The panel under the model bar is shown.
    pub open: bool,
    /// The port as typed.
    pub port_input: String,
    pub status: ServeStatus,
    /// The requests answered, oldest first.
    pub log: VecDeque<RequestLine>,
    server: Option<LocalServer>,
}

impl Default for ServeState {
    fn default() -> Self {
        Self {
            open: false,
            port_input: "8080".into(),
            status: ServeStatus::Off,
            log: VecDeque::new(),
            server: None,
        }
    }
}

impl ServeState {
    pub fn is_running(&self) -> bool {
        self.server.is_some()
    }

    /// Starts serving the loaded model on the typed port (the model comes from the inference
    /// worker, shared; binding happens on the server's own thread).
    pub fn start(&mut self, inference: &InferenceHandle, tx: &CommandSender) {
        if self.server.is_some() {
            return;
        }
        let port = match self.port_input.trim().parse::<u16>() {
            Ok(p) => p,
            Err(_) => {
                self.status = ServeStatus::Failed(format!(
                    "port: {:?} is not a port number (0 to 65535; 0 takes any free port)",
                    self.port_input.trim()
                ));
                return;
            }
        };
        let (reply, model) = crossbeam_channel::bounded(1);
        if !inference.send(InferenceRequest::Lend { reply }) {
            self.status = ServeStatus::Failed("the inference worker has stopped".into());
            return;
        }
        match LocalServer::start(model, port, tx.notify()) {
            Ok(s) => {
                self.server = Some(s);
                self.status = ServeStatus::Starting;
                self.log.clear();
            }
            Err(e) => self.status = ServeStatus::Failed(format!("starting the server thread: {e}")),
        }
    }

    /// Stops the server (it lets go of the model once its last request is gone).
    pub fn stop(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.stop();
        }
        self.status = ServeStatus::Off;
    }

    /// Stops the server because `why` (said in the panel).
    pub fn end(&mut self, why: &str) {
        if self.server.is_some() {
            self.stop();
            self.status = ServeStatus::Ended(why.into());
        }
    }

    /// Applies what the server reported since the last frame.
    pub fn drain(&mut self) {
        let Some(server) = &self.server else { return };
        let mut ended = false;
        while let Some(ev) = server.try_recv() {
            match ev {
                ServerEvent::Listening { url, model } => self.status = ServeStatus::Listening { url, model },
                ServerEvent::Request(line) => {
                    if self.log.len() == LOG_MAX {
                        self.log.pop_front();
                    }
                    self.log.push_back(line);
                }
                ServerEvent::Failed(e) => {
                    self.status = ServeStatus::Failed(e);
                    ended = true;
                }
                ServerEvent::Stopped => {
                    self.status = ServeStatus::Off;
                    ended = true;
                }
            }
        }
        if ended {
            self.server = None;
        }
    }
}
