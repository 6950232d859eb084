//! The map step's model embedder: the questions without a vector of this model get one (the
//! unit-length mean of its last hidden states, `curate::map::model_embed`), a chunk at a time,
//! each chunk committed, so a stopped or killed run resumes where it was. The model is loaded
//! on the step's thread only when some question needs a vector, and not at all when the
//! embedder was handed the same model already loaded (the Chat's, shared: [`SharedModel`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::params;

use super::map::to_blob;
use crate::cancel::CancelToken;
use crate::curate::backend::local_name;
use crate::curate::map::model_embed::{self, MAX_TOKENS};
use crate::model::{load_model, DeviceChoice, LoadOptions, LoadedModel};
use crate::workspace::Workspace;

/// Questions embedded per committed chunk: a few seconds of a small model on a CPU.
const CHUNK: usize = 64;

/// A local model to embed the questions with.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEmbedder {
    /// A Hugging Face folder or a .gguf.
    pub path: PathBuf,
    pub device: DeviceChoice,
    /// None: the checkpoint's own (f32 on the CPU).
    pub dtype: Option<candle_core::DType>,
    /// Tokens of a question read (the rest is cut).
    pub max_tokens: usize,
    /// Questions per forward pass (a CPU-quantized model takes one at a time).
    pub batch: usize,
    /// A model already loaded elsewhere (the Chat's): used instead of loading `path` again when
    /// it is the same file or folder (then it runs on its own device and dtype).
    pub shared: Option<SharedModel>,
}

/// A loaded model shared with the step (its weights are not copied). Two are equal when they
/// are the same load.
#[derive(Clone)]
pub struct SharedModel(pub Arc<LoadedModel>);

impl std::fmt::Debug for SharedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedModel({})", self.0.path.display())
    }
}

impl PartialEq for SharedModel {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Whether two paths name the same file or folder (as given, or once resolved).
fn same_path(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

impl ModelEmbedder {
    pub fn new(path: PathBuf, device: DeviceChoice) -> Self {
        Self {
            path,
            device,
            dtype: None,
            max_tokens: MAX_TOKENS,
            batch: 16,
            shared: None,
        }
    }

    /// The name its vectors and layout are stored under.
    pub fn name(&self) -> String {
        model_embed::embedder_name(&local_name(&self.path), self.max_tokens)
    }
}

/// What embedding the missing questions did.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    pub embedded: usize,
    pub already: usize,
    pub stopped: bool,
    /// The model the vectors came from: None when nothing needed one; true when it was the
    /// shared one, false when this step loaded it.
    pub reused: Option<bool>,
}

/// Embeds the questions without a vector of `m` (all again with `reembed`); progress in
/// questions.
pub fn embed_missing(
    ws: &mut Workspace,
    m: &ModelEmbedder,
    reembed: bool,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(usize, usize),
) -> anyhow::Result<Embedded> {
    if m.max_tokens == 0 {
        anyhow::bail!("map: max tokens 0 (give at least 1)");
    }
    let embedder = m.name();
    if reembed {
        ws.conn
            .execute("DELETE FROM embeddings WHERE embedder = ?1", [&embedder])?;
    }
    let mut missing: Vec<(String, String)> = Vec::new();
    let mut already = 0;
    {
        let mut st = ws.conn.prepare(
            "SELECT q.key, q.question, e.key IS NOT NULL FROM questions q
             LEFT JOIN embeddings e ON e.key = q.key AND e.embedder = ?1 ORDER BY q.id",
        )?;
        let mut rows = st.query([&embedder])?;
        while let Some(r) = rows.next()? {
            if r.get::<_, bool>(2)? {
                already += 1;
            } else {
                missing.push((r.get(0)?, r.get(1)?));
            }
        }
    }
    progress(0, missing.len());
    let mut out = Embedded {
        embedded: 0,
        already,
        stopped: false,
        reused: None,
    };
    if missing.is_empty() {
        return Ok(out);
    }
    let loaded;
    let model: &LoadedModel = match &m.shared {
        Some(shared) if same_path(&shared.0.path, &m.path) => {
            out.reused = Some(true);
            &shared.0
        }
        _ => {
            let opts = LoadOptions {
                device: m.device.open()?,
                dtype: m.dtype,
                dequantize: false,
            };
            loaded = load_model(&m.path, &opts).map_err(|e| anyhow::anyhow!("loading {}: {e}", m.path.display()))?;
            out.reused = Some(false);
            &loaded
        }
    };
    let dim = model.decoder.config().hidden_size;
    for chunk in missing.chunks(CHUNK) {
        if cancel.is_cancelled() {
            out.stopped = true;
            return Ok(out);
        }
        let mut seqs = Vec::with_capacity(chunk.len());
        for (key, q) in chunk {
            let mut ids = model
                .tokenizer
                .encode(q)
                .map_err(|e| anyhow::anyhow!("tokenizing question {key}: {e}"))?;
            ids.truncate(m.max_tokens);
            seqs.push(ids);
        }
        // Batches of similar lengths pad little.
        let mut order: Vec<usize> = (0..chunk.len()).collect();
        order.sort_by_key(|&i| seqs[i].len());
        let sorted: Vec<Vec<u32>> = order.iter().map(|&i| std::mem::take(&mut seqs[i])).collect();
        let vecs = model_embed::embed_sequences(&model.decoder, &sorted, m.batch)
            .map_err(|e| anyhow::anyhow!("{}: hidden states: {e}", embedder))?;
        let tx = ws.conn.transaction()?;
        {
            let mut ins =
                tx.prepare("INSERT OR REPLACE INTO embeddings (key, embedder, dim, vec) VALUES (?1, ?2, ?3, ?4)")?;
            for (&i, v) in order.iter().zip(&vecs) {
                ins.execute(params![chunk[i].0, embedder, dim as i64, to_blob(v)])?;
            }
        }
        tx.commit()?;
        out.embedded += chunk.len();
        progress(out.embedded, missing.len());
    }
    Ok(out)
}
