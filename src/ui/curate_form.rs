//! The Curate view's form, as typed and persisted with the settings: the import, the model
//! steps' endpoint or local model, decontamination's extra files, the selection and the export;
//! and the steps it asks for.

use std::path::PathBuf;

use crate::curate::backend::{Endpoint, ModelChoice};
use crate::curate::steps::selection::{Method, SelectOptions};
use crate::curate::steps::Step;
use crate::model::device::DeviceChoice;

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
