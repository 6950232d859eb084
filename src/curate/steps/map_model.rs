//! The map step's model embedder: the questions without a vector of this model get one (the
//! unit-length mean of its last hidden states, `curate::map::model_embed`), a chunk at a time,
//! each chunk committed, so a stopped or killed run resumes where it was. The model is loaded
//! on the step's thread only when some question needs a vector.

use std::path::PathBuf;

use rusqlite::params;

use super::map::to_blob;
use crate::cancel::CancelToken;
use crate::curate::backend::local_name;
use crate::curate::map::model_embed::{self, MAX_TOKENS};
use crate::model::{load_model, DeviceChoice, LoadOptions};
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
}

impl ModelEmbedder {
    pub fn new(path: PathBuf, device: DeviceChoice) -> Self {
        Self {
            path,
            device,
            dtype: None,
            max_tokens: MAX_TOKENS,
            batch: 16,
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
    };
    if missing.is_empty() {
        return Ok(out);
    }
    let opts = LoadOptions {
        device: m.device.open()?,
        dtype: m.dtype,
        dequantize: false,
    };
    let model = load_model(&m.path, &opts).map_err(|e| anyhow::anyhow!("loading {}: {e}", m.path.display()))?;
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
