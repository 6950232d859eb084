//! The embedders a workspace holds vectors of (the hashed TF-IDF one, and one per model and
//! question cut): what the map's switch lists, with each one's question count and stored
//! layout. Switching runs the map step on an embedder's stored vectors
//! (`MapEmbedder::Stored`): nothing is embedded, its stored layout is kept (or computed when
//! it is missing or stale) and becomes the one shown.

use std::collections::BTreeMap;

use crate::workspace::Workspace;

/// One embedder's stored vectors and layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEmbedder {
    /// The name its vectors and layout are stored under ("tfidf-hash-256-s0", "model-…-t256").
    pub name: String,
    /// Questions with a vector of it.
    pub vectors: usize,
    /// Its stored layout: (points, seed); None when it has not been laid out.
    pub layout: Option<(usize, u64)>,
    /// Its layout is the one the map shows (the newest).
    pub shown: bool,
}

impl StoredEmbedder {
    /// The layout's seed, or 0 (the map step's default) when it has none.
    pub fn seed(&self) -> u64 {
        self.layout.map_or(0, |l| l.1)
    }

    /// Its layout is missing or places fewer questions than it has vectors of: showing it lays
    /// it out first.
    pub fn needs_layout(&self) -> bool {
        self.layout.is_none_or(|l| l.0 != self.vectors)
    }

    /// How the switch names it: "tfidf-hash-256-s0 · 12,000 questions".
    pub fn describe(&self) -> String {
        let count = super::report::thousands(self.vectors);
        match self.layout {
            Some((points, _)) if points == self.vectors => format!("{} · {count} questions", self.name),
            Some((points, _)) => format!(
                "{} · {count} questions ({} laid out)",
                self.name,
                super::report::thousands(points)
            ),
            None => format!("{} · {count} questions (not laid out)", self.name),
        }
    }
}

/// Every embedder with stored vectors or a stored layout, by name.
pub fn list(ws: &Workspace) -> anyhow::Result<Vec<StoredEmbedder>> {
    let mut by: BTreeMap<String, StoredEmbedder> = BTreeMap::new();
    fn slot(by: &mut BTreeMap<String, StoredEmbedder>, name: String) -> &mut StoredEmbedder {
        by.entry(name.clone()).or_insert(StoredEmbedder {
            name,
            vectors: 0,
            layout: None,
            shown: false,
        })
    }
    {
        // Counted from the embedder index (the vectors themselves are not read).
        let mut st = ws
            .conn
            .prepare("SELECT embedder, count(*) FROM embeddings GROUP BY embedder")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let n: i64 = r.get(1)?;
            slot(&mut by, r.get(0)?).vectors = n.max(0) as usize;
        }
    }
    let shown: Option<String> = ws
        .conn
        .query_row(
            "SELECT embedder FROM map_layouts ORDER BY at DESC, rowid DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .ok();
    let mut st = ws.conn.prepare("SELECT embedder, points, seed FROM map_layouts")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let name: String = r.get(0)?;
        let (points, seed): (i64, i64) = (r.get(1)?, r.get(2)?);
        let is_shown = shown.as_deref() == Some(name.as_str());
        let e = slot(&mut by, name);
        e.layout = Some((points.max(0) as usize, seed as u64));
        e.shown = is_shown;
    }
    Ok(by.into_values().collect())
}

/// The stored embedders as `curate map --list` prints them.
pub fn render(list: &[StoredEmbedder]) -> String {
    if list.is_empty() {
        return "no vectors stored yet; run `curate map` (TF-IDF) or `curate map --embedder model --model PATH`\n"
            .into();
    }
    let mut out = String::new();
    for e in list {
        out.push_str(&format!("{} {}\n", if e.shown { "*" } else { " " }, e.describe()));
    }
    out.push_str("* shown on the map; `curate map --use NAME` shows another\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::CancelToken;
    use crate::curate::steps::map::{self, MapEmbedder, MapOptions};
    use rusqlite::params;

    fn pool(dir: &std::path::Path, n: usize) -> Workspace {
        let file = dir.join("q.jsonl");
        let lines: Vec<String> = (0..n)
            .map(|i| {
                let q = format!(
                    "Question {i} about the {} of {}",
                    ["circle", "prime", "dice"][i % 3],
                    i % 7
                );
                serde_json::json!({"question": q, "solution": "x"}).to_string()
            })
            .collect();
        std::fs::write(&file, lines.join("\n") + "\n").unwrap();
        let mut ws = Workspace::open(&dir.join("ws")).unwrap();
        super::super::import::import_files(&mut ws, &[file], &Default::default(), &mut |_| {}).unwrap();
        ws
    }

    /// Stores a vector of `embedder` (2 dimensions) for the first `n` questions.
    fn store_vectors(ws: &Workspace, embedder: &str, n: usize) {
        let keys: Vec<String> = ws
            .conn
            .prepare("SELECT key FROM questions ORDER BY id LIMIT ?1")
            .unwrap()
            .query_map([n as i64], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (i, k) in keys.iter().enumerate() {
            let a = i as f32 / n as f32 * 6.0;
            let v = map::to_blob(&[a.cos(), a.sin()]);
            ws.conn
                .execute(
                    "INSERT INTO embeddings (key, embedder, dim, vec) VALUES (?1, ?2, 2, ?3)",
                    params![k, embedder, v],
                )
                .unwrap();
        }
    }

    #[test]
    fn lists_each_embedder_with_its_count_and_layout_and_switches() {
        let dir = tempfile::tempdir().unwrap();
        let mut ws = pool(dir.path(), 60);
        assert!(list(&ws).unwrap().is_empty());
        assert!(render(&[]).contains("no vectors"));
        let run = |ws: &mut Workspace, o: &MapOptions| map::run(ws, o, &CancelToken::new(), &mut |_| {}).unwrap();
        run(&mut ws, &MapOptions::default());
        store_vectors(&ws, "model-m.gguf-t256", 40);
        let l = list(&ws).unwrap();
        assert_eq!(
            l,
            vec![
                StoredEmbedder {
                    name: "model-m.gguf-t256".into(),
                    vectors: 40,
                    layout: None,
                    shown: false,
                },
                StoredEmbedder {
                    name: "tfidf-hash-256-s0".into(),
                    vectors: 60,
                    layout: Some((60, 0)),
                    shown: true,
                },
            ]
        );
        assert!(l[0].needs_layout() && !l[1].needs_layout());
        assert!(l[0].describe().contains("40 questions (not laid out)"));
        assert!(render(&l).contains("* tfidf-hash-256-s0 · 60 questions"));

        // Showing the model's vectors lays them out (nothing is embedded) and shows them.
        let show = |name: &str, seed: u64| MapOptions {
            embedder: MapEmbedder::Stored(name.into()),
            seed,
            ..MapOptions::default()
        };
        let r = run(&mut ws, &show("model-m.gguf-t256", 0));
        assert_eq!((r.embedded, r.already, r.points, r.laid_out), (0, 40, 40, true));
        let l = list(&ws).unwrap();
        assert_eq!((l[0].layout, l[0].shown, l[1].shown), (Some((40, 0)), true, false));
        assert_eq!(map::load_layout(&ws).unwrap().unwrap().1.len(), 40);
        // Back to TF-IDF: its stored layout kept as it was, and shown.
        let (_, before) = {
            let tf = MapOptions::default();
            run(&mut ws, &tf);
            map::load_layout(&ws).unwrap().unwrap()
        };
        run(&mut ws, &show("model-m.gguf-t256", 0));
        let r = run(&mut ws, &show("tfidf-hash-256-s0", 0));
        assert!(!r.laid_out && r.points == 60);
        let (name, after) = map::load_layout(&ws).unwrap().unwrap();
        assert_eq!((name.as_str(), &after), ("tfidf-hash-256-s0", &before));
        // A name without vectors says which there are.
        // Its stored layout is shown whatever the seed asked (the seed lays out a missing one).
        let r = run(&mut ws, &show("model-m.gguf-t256", 9));
        assert!(!r.laid_out && r.points == 40);
        let e = map::run(&mut ws, &show("nothing", 0), &CancelToken::new(), &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("no vectors stored under nothing"), "{e}");
        assert!(e.to_string().contains("tfidf-hash-256-s0"), "{e}");
    }
}
