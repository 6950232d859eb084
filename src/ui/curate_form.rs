//! The Curate view's form, as typed and persisted with the settings: the import, the model
//! steps' endpoint or local model, decontamination's extra files, the selection and the export;
//! and the steps it asks for.

use std::path::PathBuf;

use crate::curate::backend::{Endpoint, ModelChoice};
use crate::curate::steps::map::{MapEmbedder, MapOptions};
use crate::curate::steps::map_model::ModelEmbedder;
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
    /// Where the map's vectors come from.
    pub map_embedder: MapVectors,
    /// The model of `MapVectors::ModelPath` (a Hugging Face folder or a .gguf).
    pub map_model: String,
}

/// The map step's choice of vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum MapVectors {
    /// Hashed TF-IDF: no model, instant.
    #[default]
    Tfidf,
    /// The model loaded in Chat (its path), run again on the step's thread.
    LoadedModel,
    /// The model at the form's `map_model`.
    ModelPath,
}

impl MapVectors {
    pub const ALL: [MapVectors; 3] = [MapVectors::Tfidf, MapVectors::LoadedModel, MapVectors::ModelPath];

    pub fn label(self) -> &'static str {
        match self {
            MapVectors::Tfidf => "TF-IDF (no model)",
            MapVectors::LoadedModel => "The loaded model",
            MapVectors::ModelPath => "A model file or folder",
        }
    }
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
            map_embedder: MapVectors::Tfidf,
            map_model: String::new(),
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

    /// The map step with the chosen vectors; `loaded` is the model loaded in Chat, if any. A
    /// model runs on the form's device.
    pub fn map_request(&self, loaded: Option<&std::path::Path>) -> Result<Step, String> {
        let path = match self.map_embedder {
            MapVectors::Tfidf => return Ok(Step::Map(MapOptions::default())),
            MapVectors::LoadedModel => loaded
                .map(std::path::Path::to_path_buf)
                .ok_or("no model is loaded: load one in Chat, or choose a model file or folder")?,
            MapVectors::ModelPath => match self.map_model.trim() {
                "" => return Err("give the model's folder or .gguf for the map's vectors".into()),
                p => PathBuf::from(p),
            },
        };
        Ok(Step::Map(MapOptions {
            embedder: MapEmbedder::Model(ModelEmbedder::new(path, self.device)),
            ..MapOptions::default()
        }))
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

    /// The map's vectors: TF-IDF, the loaded model (refused when none is) or a path, on the
    /// form's device.
    #[test]
    fn the_map_request_follows_the_choice_of_vectors() {
        let mut f = CurateForm::default();
        assert!(matches!(f.map_request(None), Ok(Step::Map(o)) if o.embedder == MapEmbedder::Tfidf));
        f.map_embedder = MapVectors::LoadedModel;
        assert!(f.map_request(None).unwrap_err().contains("no model is loaded"));
        f.device = DeviceChoice::Cuda(0);
        match f.map_request(Some(std::path::Path::new("/m/chat.gguf"))) {
            Ok(Step::Map(MapOptions {
                embedder: MapEmbedder::Model(m),
                ..
            })) => assert_eq!(
                (m.path, m.device),
                (PathBuf::from("/m/chat.gguf"), DeviceChoice::Cuda(0))
            ),
            other => panic!("{other:?}"),
        }
        f.map_embedder = MapVectors::ModelPath;
        assert!(f.map_request(None).unwrap_err().contains("give the model"));
        f.map_model = " other ".into();
        assert!(
            matches!(f.map_request(None), Ok(Step::Map(MapOptions { embedder: MapEmbedder::Model(m), .. })) if m.path == std::path::Path::new("other"))
        );
    }
}
