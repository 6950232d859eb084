//! The map step: a vector for every question in the workspace (the hashed TF-IDF embedder,
//! which needs no model, or a model's hidden states: map_model.rs), then one 2D layout of those
//! vectors, both stored: vectors per question and embedder (`embeddings`), the layout per
//! embedder (`map_layouts`, `map_points`). The layout of the embedder a run asked for becomes
//! the one shown (the newest), also when it is kept.
//! Resumable: vectors are committed a chunk at a time and a rerun embeds only the questions
//! without one; the layout is computed again only when the embedded questions or the seed
//! changed (or when asked), so the same workspace gives the same map.
//!
//! The inverse document frequencies are those of the whole pool when a run starts; questions
//! imported later are embedded with the pool's frequencies at that later run (the older vectors
//! stay as they are until `relayout` with `reembed`).

use std::collections::HashMap;

use rusqlite::params;

use super::map_model::{self, ModelEmbedder};
use super::CurateEvent;
use crate::cancel::CancelToken;
use crate::curate::map::coverage::{coverage, Coverage};
use crate::curate::map::embed::{self, DocFreq};
use crate::curate::map::layout::{self, LayoutOptions};
use crate::workspace::{now, Workspace};

/// Questions embedded per committed chunk.
const CHUNK: usize = 2048;

/// Where the map's vectors come from.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum MapEmbedder {
    /// Hashed word n-gram TF-IDF with a random projection (no model, instant).
    #[default]
    Tfidf,
    /// A model's mean last hidden state.
    Model(ModelEmbedder),
    /// The vectors already stored under this embedder name (nothing is embedded): the map's
    /// switch between stored embedders (map_embedders.rs).
    Stored(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct MapOptions {
    pub embedder: MapEmbedder,
    /// Seeds both the projection and the layout.
    pub seed: u64,
    /// Dimensions of the hashed TF-IDF vectors (a multiple of 64).
    pub dim: usize,
    /// Lay out again even when the stored layout is of the same questions and seed.
    pub relayout: bool,
    /// Embed every question again (the document frequencies of the pool as it is now).
    pub reembed: bool,
}

impl Default for MapOptions {
    fn default() -> Self {
        Self {
            embedder: MapEmbedder::Tfidf,
            seed: 0,
            // 256: the sign projection's noise (about 1/sqrt(dim) in cosine) small beside the
            // similarity of related questions; 64 dimensions mixed the domains' neighbourhoods.
            dim: 256,
            relayout: false,
            reembed: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MapReport {
    pub embedder: String,
    /// Questions embedded by this run, and those that already had a vector.
    pub embedded: usize,
    pub already: usize,
    /// Points in the stored layout, and whether this run computed it (false: kept).
    pub points: usize,
    pub laid_out: bool,
    /// Stopped before the end (what finished is stored).
    pub stopped: bool,
    /// A model embedder's model: Some(true) when the one already loaded (shared) made the
    /// vectors, Some(false) when this run loaded it, None when no model ran.
    pub model_shared: Option<bool>,
}

pub(super) fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_blob(b: &[u8], dim: usize, key: &str) -> anyhow::Result<Vec<f32>> {
    if b.len() != dim * 4 {
        anyhow::bail!(
            "embedding of {key}: {} bytes stored, {dim} floats ({} bytes) expected",
            b.len(),
            dim * 4
        );
    }
    Ok(b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Embeds the questions without a vector for `embedder`; progress in questions.
fn embed_missing(
    ws: &mut Workspace,
    opts: &MapOptions,
    embedder: &str,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(usize, usize),
) -> anyhow::Result<(usize, usize, bool)> {
    if opts.reembed {
        ws.conn
            .execute("DELETE FROM embeddings WHERE embedder = ?1", [embedder])?;
    }
    let mut texts: Vec<(String, String, bool)> = Vec::new();
    {
        let mut st = ws.conn.prepare(
            "SELECT q.key, q.question, e.key IS NOT NULL FROM questions q
             LEFT JOIN embeddings e ON e.key = q.key AND e.embedder = ?1 ORDER BY q.id",
        )?;
        let mut rows = st.query([embedder])?;
        while let Some(r) = rows.next()? {
            texts.push((r.get(0)?, r.get(1)?, r.get(2)?));
        }
    }
    let already = texts.iter().filter(|t| t.2).count();
    let missing: Vec<usize> = (0..texts.len()).filter(|&i| !texts[i].2).collect();
    progress(0, missing.len());
    if missing.is_empty() {
        return Ok((0, already, false));
    }
    // The whole pool's document frequencies.
    let feats: Vec<Vec<(u32, u32)>> = {
        use rayon::prelude::*;
        texts.par_iter().map(|t| embed::features(&t.1)).collect()
    };
    let mut df = DocFreq::new();
    feats.iter().for_each(|f| df.add(f));
    let mut done = 0;
    for chunk in missing.chunks(CHUNK) {
        if cancel.is_cancelled() {
            return Ok((done, already, true));
        }
        let vecs: Vec<Vec<f32>> = {
            use rayon::prelude::*;
            chunk
                .par_iter()
                .map(|&i| embed::project(&feats[i], &df, opts.dim, opts.seed))
                .collect()
        };
        let tx = ws.conn.transaction()?;
        {
            let mut ins =
                tx.prepare("INSERT OR REPLACE INTO embeddings (key, embedder, dim, vec) VALUES (?1, ?2, ?3, ?4)")?;
            for (&i, v) in chunk.iter().zip(&vecs) {
                ins.execute(params![texts[i].0, embedder, opts.dim as i64, to_blob(v)])?;
            }
        }
        tx.commit()?;
        done += chunk.len();
        progress(done, missing.len());
    }
    Ok((done, already, false))
}

/// Every stored vector of `embedder` (keys in key order, so the layout does not depend on the
/// import order), as one row-major matrix.
pub fn load_vectors(ws: &Workspace, embedder: &str) -> anyhow::Result<(Vec<String>, usize, Vec<f32>)> {
    let mut st = ws
        .conn
        .prepare("SELECT key, dim, vec FROM embeddings WHERE embedder = ?1 ORDER BY key")?;
    let mut rows = st.query([embedder])?;
    let (mut keys, mut data, mut dim) = (Vec::new(), Vec::new(), 0usize);
    while let Some(r) = rows.next()? {
        let key: String = r.get(0)?;
        let d = r.get::<_, i64>(1)? as usize;
        if dim == 0 {
            dim = d;
        } else if d != dim {
            anyhow::bail!("embedding of {key} ({embedder}): {d} dimensions where the others have {dim}");
        }
        data.extend(from_blob(&r.get::<_, Vec<u8>>(2)?, dim, &key)?);
        keys.push(key);
    }
    Ok((keys, dim, data))
}

/// Runs the map step, sending `Progress` in questions (embedded, then laid out) and `Log`.
pub fn run(
    ws: &mut Workspace,
    opts: &MapOptions,
    cancel: &CancelToken,
    emit: &mut dyn FnMut(CurateEvent),
) -> anyhow::Result<MapReport> {
    let unit = "questions";
    let mut progress = |done, total| emit(CurateEvent::Progress { done, total, unit });
    let mut model_shared = None;
    let (embedder, embedded, already, stopped) = match &opts.embedder {
        MapEmbedder::Tfidf => {
            if opts.dim == 0 || !opts.dim.is_multiple_of(64) || opts.dim > 1024 {
                anyhow::bail!("map dimensions: {} (give a multiple of 64, at most 1024)", opts.dim);
            }
            let embedder = embed::embedder_name(opts.dim, opts.seed);
            let (e, a, s) = embed_missing(ws, opts, &embedder, cancel, &mut progress)?;
            (embedder, e, a, s)
        }
        MapEmbedder::Model(m) => {
            let e = map_model::embed_missing(ws, m, opts.reembed, cancel, &mut progress)?;
            model_shared = e.reused;
            (m.name(), e.embedded, e.already, e.stopped)
        }
        MapEmbedder::Stored(name) => {
            let stored = super::map_embedders::list(ws)?;
            match stored.iter().find(|e| e.name == *name && e.vectors > 0) {
                Some(e) => (name.clone(), 0, e.vectors, false),
                None => {
                    let names: Vec<&str> = stored
                        .iter()
                        .filter(|e| e.vectors > 0)
                        .map(|e| e.name.as_str())
                        .collect();
                    anyhow::bail!(
                        "no vectors stored under {name}; stored: {}",
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    );
                }
            }
        }
    };
    let mut report = MapReport {
        embedder: embedder.clone(),
        embedded,
        already,
        points: 0,
        laid_out: false,
        stopped,
        model_shared,
    };
    if stopped {
        return Ok(report);
    }
    let (keys, dim, data) = load_vectors(ws, &embedder)?;
    let stored: Option<(i64, i64)> = ws
        .conn
        .query_row(
            "SELECT seed, points FROM map_layouts WHERE embedder = ?1",
            [&embedder],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ok();
    // A switch to stored vectors keeps their layout whatever its seed (it is shown as stored).
    let any_seed = matches!(opts.embedder, MapEmbedder::Stored(_));
    let kept =
        stored.is_some_and(|(seed, points)| points == keys.len() as i64 && (any_seed || seed == opts.seed as i64));
    if !opts.relayout && embedded == 0 && kept {
        // Kept, and shown: the newest layout is the one the front-ends draw.
        let at = newest_at(&ws.conn)?;
        ws.conn.execute(
            "UPDATE map_layouts SET at = ?2 WHERE embedder = ?1",
            params![embedder, at],
        )?;
        report.points = keys.len();
        return Ok(report);
    }
    let n = keys.len();
    let lopts = LayoutOptions::for_points(n, opts.seed);
    emit(CurateEvent::Log(format!(
        "laying out {n} questions: {} neighbours from {} trees, {} epochs",
        lopts.neighbours, lopts.trees, lopts.epochs
    )));
    let laid = layout::layout(&data, dim, &lopts, cancel, &mut |d, t| {
        emit(CurateEvent::Progress {
            done: d * n / t.max(1),
            total: n,
            unit,
        })
    });
    let Some(points) = laid else {
        report.stopped = true;
        return Ok(report);
    };
    let tx = ws.conn.transaction()?;
    tx.execute("DELETE FROM map_points WHERE embedder = ?1", [&embedder])?;
    tx.execute(
        "INSERT OR REPLACE INTO map_layouts (embedder, seed, points, at) VALUES (?1, ?2, ?3, ?4)",
        params![embedder, opts.seed as i64, n as i64, newest_at(&tx)?],
    )?;
    {
        let mut ins = tx.prepare("INSERT INTO map_points (embedder, key, x, y) VALUES (?1, ?2, ?3, ?4)")?;
        for (k, p) in keys.iter().zip(&points) {
            ins.execute(params![embedder, k, p[0] as f64, p[1] as f64])?;
        }
    }
    tx.commit()?;
    emit(CurateEvent::Progress {
        done: n,
        total: n,
        unit,
    });
    report.points = n;
    report.laid_out = true;
    Ok(report)
}

/// The time to store a layout at so that it is the newest: now, or just after the newest
/// stored one when that is as recent (two runs within the same second).
fn newest_at(conn: &rusqlite::Connection) -> anyhow::Result<i64> {
    let newest: Option<i64> = conn.query_row("SELECT max(at) FROM map_layouts", [], |r| r.get(0))?;
    Ok(newest.map_or(now(), |at| now().max(at + 1)))
}

/// A stored layout: its embedder, and each question's point by key.
pub type StoredLayout = (String, HashMap<String, [f32; 2]>);

/// The newest stored layout: its embedder and each question's point by key.
pub fn load_layout(ws: &Workspace) -> anyhow::Result<Option<StoredLayout>> {
    let Ok(embedder) = ws.conn.query_row(
        "SELECT embedder FROM map_layouts ORDER BY at DESC, rowid DESC LIMIT 1",
        [],
        |r| r.get::<_, String>(0),
    ) else {
        return Ok(None);
    };
    let mut st = ws
        .conn
        .prepare("SELECT key, x, y FROM map_points WHERE embedder = ?1")?;
    let points = st
        .query_map([&embedder], |r| {
            Ok((
                r.get::<_, String>(0)?,
                [r.get::<_, f64>(1)? as f32, r.get::<_, f64>(2)? as f32],
            ))
        })?
        .collect::<Result<HashMap<_, _>, _>>()?;
    Ok(Some((embedder, points)))
}

/// One stored selection's coverage of the newest map.
#[derive(Debug, Clone, PartialEq)]
pub struct CoverageRow {
    pub selection: String,
    pub method: String,
    pub coverage: Coverage,
}

/// The coverage of every stored selection on the newest map (its embedder, its point count,
/// then a row per selection, oldest first).
pub fn coverage_table(ws: &Workspace) -> anyhow::Result<(String, usize, Vec<CoverageRow>)> {
    let Some((embedder, by_key)) = load_layout(ws)? else {
        anyhow::bail!(
            "no map in this workspace yet; run `s1-studio curate map --workspace {}` first",
            ws.dir.display()
        );
    };
    // Points in key order: the same table whatever order the hash map gives.
    let mut keyed: Vec<(&String, [f32; 2])> = by_key.iter().map(|(k, p)| (k, *p)).collect();
    keyed.sort_by(|a, b| a.0.cmp(b.0));
    let index: HashMap<&str, usize> = keyed.iter().enumerate().map(|(i, (k, _))| (k.as_str(), i)).collect();
    let points: Vec<[f32; 2]> = keyed.iter().map(|x| x.1).collect();
    let names: Vec<(String, String)> = ws
        .conn
        .prepare("SELECT name, method FROM selections ORDER BY at, rowid")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    for (name, method) in names {
        let (_, keys) = super::selection::load(ws, Some(&name))?;
        let mut flags = vec![false; points.len()];
        for k in &keys {
            if let Some(&i) = index.get(k.as_str()) {
                flags[i] = true;
            }
        }
        rows.push(CoverageRow {
            selection: name,
            method,
            coverage: coverage(&points, &flags),
        });
    }
    Ok((embedder, points.len(), rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(dir: &std::path::Path, n: usize) -> Workspace {
        let file = dir.join("q.jsonl");
        let topics = [
            "triangle circle radius",
            "prime divisor integer",
            "probability dice coin",
        ];
        let lines: Vec<String> = (0..n)
            .map(|i| {
                let q = format!("Question {i} about {} with number {}", topics[i % 3], i * 7 % 13);
                serde_json::json!({"question": q, "solution": "x"}).to_string()
            })
            .collect();
        std::fs::write(&file, lines.join("\n") + "\n").unwrap();
        let mut ws = Workspace::open(&dir.join("ws")).unwrap();
        super::super::import::import_files(&mut ws, &[file], &Default::default(), &mut |_| {}).unwrap();
        ws
    }

    #[test]
    fn embeds_lays_out_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let mut ws = pool(dir.path(), 90);
        let opts = MapOptions::default();
        let run = |ws: &mut Workspace, o: &MapOptions| run(ws, o, &CancelToken::new(), &mut |_| {}).unwrap();
        let r = run(&mut ws, &opts);
        assert_eq!((r.embedded, r.already, r.points, r.laid_out), (90, 0, 90, true));
        let (_, first) = load_layout(&ws).unwrap().unwrap();
        assert_eq!(first.len(), 90);
        // Nothing new: nothing embedded, the layout kept.
        let r = run(&mut ws, &opts);
        assert_eq!((r.embedded, r.already, r.laid_out), (0, 90, false));
        // Laid out again with the same seed: the same map.
        let r = run(
            &mut ws,
            &MapOptions {
                relayout: true,
                ..opts.clone()
            },
        );
        assert!(r.laid_out);
        assert_eq!(load_layout(&ws).unwrap().unwrap().1, first);
        // A stop before the first chunk keeps nothing half done and says so.
        let cancel = CancelToken::new();
        cancel.cancel();
        let o = MapOptions { seed: 5, ..opts };
        let r = super::run(&mut ws, &o, &cancel, &mut |_| {}).unwrap();
        assert!(r.stopped && r.embedded == 0);
        let e = super::run(&mut ws, &MapOptions { dim: 48, ..o }, &cancel, &mut |_| {});
        assert!(e.unwrap_err().to_string().contains("multiple of 64"));
    }

    #[test]
    fn coverage_table_has_a_row_per_selection() {
        let dir = tempfile::tempdir().unwrap();
        let mut ws = pool(dir.path(), 60);
        assert!(coverage_table(&ws).unwrap_err().to_string().contains("curate map"));
        super::run(&mut ws, &MapOptions::default(), &CancelToken::new(), &mut |_| {}).unwrap();
        let keys: Vec<String> = ws
            .conn
            .prepare("SELECT key FROM questions ORDER BY id LIMIT 10")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        ws.conn
            .execute("INSERT INTO selections VALUES ('hand', 'random', 0, 10, '{}', 1)", [])
            .unwrap();
        for (i, k) in keys.iter().enumerate() {
            ws.conn
                .execute(
                    "INSERT INTO selection_items VALUES ('hand', ?1, ?2)",
                    params![i as i64, k],
                )
                .unwrap();
        }
        let (embedder, points, rows) = coverage_table(&ws).unwrap();
        assert_eq!((embedder.as_str(), points), ("tfidf-hash-256-s0", 60));
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].selection.as_str(), rows[0].coverage.selected), ("hand", 10));
        assert!(rows[0].coverage.mean_distance > 0.0);
    }
}
