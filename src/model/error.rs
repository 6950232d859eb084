//! Errors of model loading and running, each naming the file or tensor at fault.

use std::path::PathBuf;

/// What can go wrong while loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: file not found{hint}")]
    MissingFile { path: PathBuf, hint: String },
    #[error("{path}: {message}")]
    BadFile { path: PathBuf, message: String },
    #[error("{path}: unsupported model: {message}")]
    Unsupported { path: PathBuf, message: String },
    #[error("{path}: tensor `{name}` is missing")]
    MissingTensor { path: PathBuf, name: String },
    #[error("{path}: tensor `{name}` has shape {actual:?}, the config needs {expected:?}")]
    TensorShape {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("{path}: the tokenizer has {tokenizer} tokens but the model's embedding has only {embedding} rows")]
    VocabMismatch {
        path: PathBuf,
        tokenizer: usize,
        embedding: usize,
    },
    #[error("the prompt has {prompt} tokens; with {reserve} more to generate it exceeds the model's context of {context} tokens")]
    ContextOverflow {
        prompt: usize,
        reserve: usize,
        context: usize,
    },
    #[error(
        "the prompt has {chars} characters, more than the model's context of {context} tokens can hold; shorten it"
    )]
    PromptTooLong { chars: usize, context: usize },
    #[error("cannot train or save this model: {0}")]
    NotTrainable(String),
    #[error("chat template: {0}")]
    Template(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl ModelError {
    pub(crate) fn bad(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Self::BadFile {
            path: path.into(),
            message: message.to_string(),
        }
    }

    pub(crate) fn unsupported(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Self::Unsupported {
            path: path.into(),
            message: message.to_string(),
        }
    }
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;
