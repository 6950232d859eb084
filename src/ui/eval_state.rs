//! The Evaluate view's form (persisted) and runtime state: the sweep job, its samples as they
//! arrive, the metrics, the per-sample browser's filter and selection; [`update`] drains the
//! sweep's events, [`handle`] carries out the view's commands.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::background::{file_dialog_or, DialogKind};
use super::command::{CommandSender, EvalCommand};
use crate::eval::metrics::{self, SweepMetrics};
use crate::eval::presets;
use crate::eval::sweep::{self, Progress, Sample, SweepConfig};
use crate::grade::Verdict;
use crate::jobs::{EvalEvent, EvalJob, EvalRequest};
use crate::model::device::DeviceChoice;

pub use super::command::EvalPath;

/// The form, as typed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct EvalForm {
    pub model: String,
    /// A named benchmark or a JSONL path.
    pub bench: String,
    /// Comma-separated thinking budgets (numbers, auto, unlimited).
    pub budgets: String,
    /// Comma-separated numbers of ignored ends of thinking.
    pub waits: String,
    /// The first N questions (empty: all).
    pub limit: String,
    pub samples: usize,
    pub temperature: f64,
    /// Bound on all generated tokens per sample (empty: none).
    pub max_tokens: String,
    pub out: String,
    /// Sequences generated at once.
    pub batch: usize,
    /// A named sweep with s1's settings (`crate::eval::presets`) in place of budgets x waits;
    /// empty: the lists.
    pub preset: String,
    /// How answers are read before they are compared (s1's by default).
    pub extraction: crate::grade::Extraction,
    /// Where the model runs.
    pub device: DeviceChoice,
    /// Generate through an OpenAI-compatible endpoint (s1's loop over `/completions`); `model`
    /// then only gives the tokenizer and chat template.
    pub use_endpoint: bool,
    /// The endpoint's base URL, e.g. `http://localhost:8080/v1`.
    pub endpoint_url: String,
    /// The `model` sent to the endpoint.
    pub endpoint_model: String,
    /// The environment variable holding the endpoint's API key (empty: none).
    pub api_key_env: String,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Prompts go as text (for servers that refuse token ids, like llama-cpp-python's).
    pub text_prompts: bool,
}

impl Default for EvalForm {
    fn default() -> Self {
        Self {
            model: String::new(),
            bench: "math500".into(),
            budgets: "512,1024,2048".into(),
            waits: "0".into(),
            limit: "50".into(),
            samples: 1,
            temperature: 0.0,
            max_tokens: String::new(),
            out: "eval-out".into(),
            batch: 8,
            preset: String::new(),
            extraction: crate::grade::Extraction::S1,
            device: DeviceChoice::Cpu,
            use_endpoint: false,
            endpoint_url: "http://127.0.0.1:8080/v1".into(),
            endpoint_model: String::new(),
            api_key_env: String::new(),
            concurrency: 8,
            text_prompts: false,
        }
    }
}

impl EvalForm {
    /// Chooses the preset `name` (empty: the budget and waits lists) and takes its bound on
    /// generated tokens and its temperature into the form.
    pub fn choose_preset(&mut self, name: &str) {
        self.preset = name.to_string();
        if let Ok(p) = presets::preset(name) {
            self.max_tokens = p.max_new_tokens.to_string();
            self.temperature = p.temperature;
        }
    }

    /// The job this form asks for, or what is wrong with it.
    pub fn request(&self) -> Result<EvalRequest, String> {
        if self.model.trim().is_empty() {
            return Err("choose a model first".into());
        }
        let list = |s: &str| s.split(',').map(String::from).collect::<Vec<_>>();
        let settings = match self.preset.trim() {
            "" => sweep::settings_from_lists(&list(&self.budgets), &list(&self.waits), 0)?,
            name => presets::preset(name)?.settings,
        };
        let num = |what: &str, s: &str| -> Result<Option<usize>, String> {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            s.parse()
                .map(Some)
                .map_err(|_| format!("{what}: `{s}` is not a number"))
        };
        if self.samples == 0 {
            return Err("samples must be at least 1".into());
        }
        Ok(EvalRequest {
            model: PathBuf::from(self.model.trim()),
            bench: self.bench.trim().to_string(),
            kind: None,
            config: SweepConfig {
                settings,
                limit: num("questions", &self.limit)?,
                samples: self.samples,
                temperature: self.temperature,
                top_p: 1.0,
                seed: 0,
                max_new_tokens: num("max tokens", &self.max_tokens)?,
                batch: self.batch.max(1),
                extraction: self.extraction,
            },
            out: PathBuf::from(self.out.trim()),
            device: self.device,
            dtype: None,
            endpoint: self.endpoint()?,
        })
    }

    /// The endpoint the form names, when it evaluates through one (its key read from the
    /// environment variable named).
    fn endpoint(&self) -> Result<Option<crate::eval::remote::EvalEndpoint>, String> {
        if !self.use_endpoint {
            return Ok(None);
        }
        let url = self.endpoint_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("endpoint URL: `{url}` does not start with http:// or https://"));
        }
        let model = self.endpoint_model.trim();
        if model.is_empty() {
            return Err("endpoint model: give the model name the endpoint serves".into());
        }
        if self.concurrency == 0 {
            return Err("concurrency must be at least 1".into());
        }
        let mut client = crate::eval::endpoint::EndpointClient::new(url);
        let var = self.api_key_env.trim();
        if !var.is_empty() {
            match std::env::var(var) {
                Ok(k) if !k.is_empty() => client.api_key = Some(k),
                _ => return Err(format!("API key: the environment variable {var} is not set")),
            }
        }
        let mut e =
            crate::eval::remote::EvalEndpoint::new(client, model, &PathBuf::from(self.model.trim()), self.concurrency);
        if self.text_prompts {
            e.prompts = crate::eval::remote_request::PromptForm::Text;
        }
        Ok(Some(e))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum EvalStatus {
    Idle,
    Running,
    Done,
    Stopped,
    Failed(String),
}

/// Runtime state (not persisted).
pub struct EvalState {
    pub job: Option<EvalJob>,
    pub status: EvalStatus,
    pub samples: Vec<Sample>,
    pub progress: Option<Progress>,
    /// Metrics of `samples`, recomputed when a sample arrives.
    pub metrics: Option<SweepMetrics>,
    /// The browser shows only this verdict (None: all).
    pub filter: Option<Verdict>,
    pub selected: Option<usize>,
    /// A file dialog that could not open, said beside the form (cleared when a path is set).
    pub notice: Option<String>,
    /// The path field to focus in the next frame (its dialog could not open).
    pub focus: Option<EvalPath>,
    /// When the sweep started and how many samples were done then (a resumed sweep starts
    /// with the earlier ones): the rate behind the ETA.
    started: Option<(Instant, usize)>,
    /// The Failed status came from the form (not from a run), so it clears when the form is
    /// right again.
    form_failed: bool,
}

impl Default for EvalState {
    fn default() -> Self {
        Self {
            job: None,
            status: EvalStatus::Idle,
            samples: Vec::new(),
            progress: None,
            metrics: None,
            filter: None,
            selected: None,
            notice: None,
            focus: None,
            started: None,
            form_failed: false,
        }
    }
}

impl EvalState {
    pub fn is_running(&self) -> bool {
        self.status == EvalStatus::Running
    }

    /// Checks the form again while its error is shown: the error clears (or changes) as soon
    /// as the form says otherwise, so "choose a model first" does not outlive its cause.
    pub fn recheck_form(&mut self, form: &EvalForm) {
        if !self.form_failed || self.is_running() {
            return;
        }
        match form.request() {
            Ok(_) => {
                self.form_failed = false;
                self.status = EvalStatus::Idle;
            }
            Err(msg) => self.status = EvalStatus::Failed(msg),
        }
    }

    /// The time left at the rate of the samples done since this sweep started (None until one
    /// is done, or when not running).
    pub fn eta(&self) -> Option<Duration> {
        let (t0, done0) = self.started?;
        let p = self.progress?;
        eta(
            p.done.saturating_sub(done0),
            p.total.saturating_sub(p.done),
            t0.elapsed(),
        )
    }

    fn refresh_metrics(&mut self) {
        self.metrics = (!self.samples.is_empty()).then(|| metrics::compute(&self.samples));
    }
}

/// The time `left` samples take at the rate of `done` samples in `elapsed` (None before the
/// first one is done).
pub fn eta(done: usize, left: usize, elapsed: Duration) -> Option<Duration> {
    (done > 0).then(|| elapsed.mul_f64(left as f64 / done as f64))
}

/// An ETA as people read it: "about 1 min 05 s left".
pub fn eta_text(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("about {s} s left"),
        60..=3599 => format!("about {} min {:02} s left", s / 60, s % 60),
        _ => format!("about {} h {:02} min left", s / 3600, (s % 3600) / 60),
    }
}

/// Starts the sweep the form describes (one at a time).
fn start(e: &mut EvalState, form: &EvalForm, tx: &CommandSender) {
    if e.is_running() {
        return;
    }
    let req = match form.request() {
        Ok(r) => r,
        Err(msg) => {
            e.status = EvalStatus::Failed(msg);
            e.form_failed = true;
            return;
        }
    };
    match EvalJob::spawn(req, tx.notify()) {
        Ok(job) => {
            *e = EvalState {
                job: Some(job),
                status: EvalStatus::Running,
                filter: e.filter,
                started: Some((Instant::now(), 0)),
                ..EvalState::default()
            };
        }
        Err(err) => e.status = EvalStatus::Failed(format!("could not start the evaluation thread: {err}")),
    }
}

/// Carries out an Evaluate-view command.
pub fn handle(c: EvalCommand, e: &mut EvalState, form: &mut EvalForm, tx: &CommandSender) {
    match c {
        EvalCommand::Run => start(e, form, tx),
        EvalCommand::Stop => {
            if let Some(j) = &e.job {
                j.stop();
            }
        }
        EvalCommand::PickPath(which) => {
            let (title, kind) = match which {
                EvalPath::ModelFolder => ("Model folder", DialogKind::Folder),
                EvalPath::ModelFile => ("GGUF model", DialogKind::File(Some(("GGUF", &["gguf"])))),
                EvalPath::Bench => (
                    "Benchmark (JSON lines)",
                    DialogKind::File(Some(("JSON lines", &["jsonl"]))),
                ),
                EvalPath::Out => ("Output folder", DialogKind::Folder),
            };
            file_dialog_or(
                tx,
                title,
                kind,
                move |p| EvalCommand::SetPath(which, p).into(),
                move |msg| EvalCommand::DialogFailed(which, msg).into(),
            );
        }
        EvalCommand::DialogFailed(which, msg) => {
            e.notice = Some(msg);
            e.focus = Some(which);
        }
        EvalCommand::SetPath(which, p) => {
            e.notice = None;
            let text = p.display().to_string();
            match which {
                EvalPath::ModelFolder | EvalPath::ModelFile => form.model = text,
                EvalPath::Bench => form.bench = text,
                EvalPath::Out => form.out = text,
            }
        }
    }
}

/// The logic step: applies the sweep's events until none is left or `budget` has passed.
pub fn update(e: &mut EvalState, budget: Duration) {
    let start = Instant::now();
    while start.elapsed() < budget {
        let Some(job) = &e.job else { return };
        let Ok(ev) = job.events.try_recv() else { return };
        match ev {
            EvalEvent::Started { earlier, .. } => {
                e.started = Some((Instant::now(), earlier.len()));
                e.samples = earlier;
                e.refresh_metrics();
            }
            EvalEvent::Sample(s) => {
                e.samples.push(*s);
                e.refresh_metrics();
            }
            EvalEvent::Progress(p) => e.progress = Some(p),
            EvalEvent::Finished(r) => {
                let stopped = e.job.as_ref().is_some_and(|j| j.cancel.is_cancelled());
                e.status = match r {
                    Err(msg) => EvalStatus::Failed(msg),
                    Ok(m) => {
                        e.metrics = Some(m);
                        if stopped {
                            EvalStatus::Stopped
                        } else {
                            EvalStatus::Done
                        }
                    }
                };
                e.job = None;
                e.started = None;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ETA is the time left at the rate so far; none before the first sample.
    #[test]
    fn eta_from_the_rate_so_far() {
        assert_eq!(eta(0, 10, Duration::from_secs(5)), None);
        assert_eq!(eta(4, 6, Duration::from_secs(8)), Some(Duration::from_secs(12)));
        assert_eq!(eta(3, 0, Duration::from_secs(8)), Some(Duration::ZERO));
        assert_eq!(eta_text(Duration::from_secs(42)), "about 42 s left");
        assert_eq!(eta_text(Duration::from_secs(65)), "about 1 min 05 s left");
        assert_eq!(eta_text(Duration::from_secs(7260)), "about 2 h 01 min left");
    }

    /// Choosing an s1 preset sweeps its settings and takes s1's 32768 generated tokens and its
    /// temperature into the form; clearing it goes back to budgets x waits.
    #[test]
    fn s1_preset_in_the_form() {
        let mut f = EvalForm {
            model: "m.gguf".into(),
            ..EvalForm::default()
        };
        f.choose_preset("s1-rejection");
        assert_eq!((f.max_tokens.as_str(), f.temperature), ("32768", 1.0));
        f.choose_preset("s1");
        assert_eq!((f.max_tokens.as_str(), f.temperature), ("32768", 0.0));
        let r = f.request().unwrap();
        assert_eq!(r.config.settings.len(), 11);
        assert_eq!(r.config.settings[0].key(), "max=500 waits=0");
        assert_eq!(r.config.max_new_tokens, Some(32_768));
        assert_eq!(r.config.extraction, crate::grade::Extraction::S1);
        f.extraction = crate::grade::Extraction::Lenient;
        assert_eq!(
            f.request().unwrap().config.extraction,
            crate::grade::Extraction::Lenient
        );
        f.choose_preset("");
        assert_eq!(f.request().unwrap().config.settings.len(), 3, "512,1024,2048 x 0");
        f.preset = "s9".into();
        assert!(f.request().unwrap_err().contains("preset `s9`"));
    }

    /// With "endpoint" chosen the request carries the endpoint (the model path gives the
    /// tokenizer); a bad URL, no model name or an unset key variable is said by field.
    #[test]
    fn endpoint_in_the_form() {
        let mut f = EvalForm {
            model: "m.gguf".into(),
            use_endpoint: true,
            endpoint_model: "served".into(),
            ..EvalForm::default()
        };
        let e = f.request().unwrap().endpoint.unwrap();
        assert_eq!(
            (e.model.as_str(), e.client.base_url.as_str()),
            ("served", "http://127.0.0.1:8080/v1")
        );
        assert_eq!(e.tokenizer, PathBuf::from("m.gguf"));
        f.endpoint_url = "localhost:8080".into();
        assert!(f.request().unwrap_err().starts_with("endpoint URL"));
        f.endpoint_url = "http://h/v1/".into();
        f.endpoint_model = " ".into();
        assert!(f.request().unwrap_err().starts_with("endpoint model"));
        f.endpoint_model = "served".into();
        f.api_key_env = "S1_TEST_SURELY_UNSET_KEY_VAR".into();
        assert!(f.request().unwrap_err().contains("S1_TEST_SURELY_UNSET_KEY_VAR"));
        f.use_endpoint = false;
        assert!(f.request().unwrap().endpoint.is_none());
    }
}
