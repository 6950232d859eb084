//! The map's model embedder: the mean of a model's last hidden states per question, against
//! vectors computed elsewhere (tests/fixtures/embeddings/reference.json, written by
//! scripts/make_embedding_fixture.py): transformers' last `hidden_states` on the small random
//! Qwen2 and Llama of tests/fixtures/parity, one sequence at a time and in a right-padded batch;
//! llama.cpp's mean-pooled embeddings of real questions on the SmolLM2 Q4_1 GGUF (quantized
//! through the CPU prefill kernels, and dequantized in batches). Then the workspace step: the
//! questions of a real pool embedded by the GGUF, laid out, resumed.

mod common;

use std::sync::OnceLock;

use s1_studio::cancel::CancelToken;
use s1_studio::curate::map::model_embed::embed_sequences;
use s1_studio::curate::steps::map::{self, MapEmbedder, MapOptions};
use s1_studio::curate::steps::map_model::{ModelEmbedder, SharedModel};
use s1_studio::curate::steps::{self, CurateEvent, Report, Step};
use s1_studio::model::{load_model, DeviceChoice, LoadOptions, LoadedModel};
use s1_studio::workspace::Workspace;
use serde_json::Value;

fn reference() -> &'static Value {
    static R: OnceLock<Value> = OnceLock::new();
    R.get_or_init(|| {
        let text = std::fs::read_to_string(common::fixture("embeddings/reference.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    })
}

fn ids(v: &Value) -> Vec<Vec<u32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        })
        .collect()
}

fn vecs(v: &Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn mean_last_hidden_states_match_transformers_alone_and_padded() {
    for name in ["qwen2", "llama"] {
        let r = &reference()["parity"][name];
        let (seqs, want) = (ids(&r["ids"]), vecs(&r["embeddings"]));
        let dec = common::fixture_decoder(name);
        assert!(!dec.hidden_states_one_at_a_time());
        // One at a time, and all four in one batch padded to the longest (40 tokens).
        for batch in [1, 4] {
            let got = embed_sequences(&dec, &seqs, batch).unwrap();
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                let d = max_abs_diff(g, w);
                assert!(d < 2e-5, "{name} sequence {i} (batch {batch}): max |diff| {d}");
            }
        }
    }
}

fn smollm2(dequantize: bool) -> &'static LoadedModel {
    static Q: OnceLock<LoadedModel> = OnceLock::new();
    static D: OnceLock<LoadedModel> = OnceLock::new();
    let load = || {
        let opts = LoadOptions {
            dequantize,
            ..LoadOptions::default()
        };
        load_model(&common::smollm2_gguf(), &opts).unwrap()
    };
    if dequantize {
        D.get_or_init(load)
    } else {
        Q.get_or_init(load)
    }
}

#[test]
fn smollm2_question_vectors_match_llama_cpp() {
    let r = &reference()["smollm2"];
    let want = vecs(&r["embeddings"]);
    let tokens = ids(&r["tokens"]);
    let q = smollm2(false);
    // Our tokenizer makes llama.cpp's tokens of each question.
    for (question, t) in r["questions"].as_array().unwrap().iter().zip(&tokens) {
        assert_eq!(&q.tokenizer.encode(question.as_str().unwrap()).unwrap(), t);
    }
    assert!(
        q.decoder.hidden_states_one_at_a_time(),
        "Q4_1 on the CPU: the prefill kernels"
    );
    let quant = embed_sequences(&q.decoder, &tokens, 8).unwrap();
    // Dequantized: candle's path, the four questions in one padded batch.
    let deq = embed_sequences(&smollm2(true).decoder, &tokens, 4).unwrap();
    assert!(!smollm2(true).decoder.hidden_states_one_at_a_time());
    for i in 0..want.len() {
        // Both quantize the activations to 8 bits (llama.cpp's q8 for Q4_1 products); the
        // dequantized model keeps them f32.
        let (cq, cd) = (cos(&quant[i], &want[i]), cos(&deq[i], &want[i]));
        assert!(cq > 0.999, "question {i}: cosine {cq} with llama.cpp (quantized)");
        assert!(cd > 0.99, "question {i}: cosine {cd} with llama.cpp (dequantized)");
        assert!((cos(&quant[i], &quant[i]) - 1.0).abs() < 1e-4);
    }
    // Distinct questions stay apart: not one vector for all.
    assert!(cos(&quant[0], &quant[3]) < 0.99, "{}", cos(&quant[0], &quant[3]));
}

/// The first `n` questions of the shared pool's AIME file as a workspace.
fn pool(dir: &std::path::Path, n: usize) -> Workspace {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/pool/aime_1983_2023.jsonl");
    let text = std::fs::read_to_string(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let lines: Vec<&str> = text.lines().take(n).collect();
    let file = dir.join("aime.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let mut ws = Workspace::open(&dir.join("ws")).unwrap();
    steps::import::import_files(&mut ws, &[file], &Default::default(), &mut |_| {}).unwrap();
    ws
}

#[test]
fn the_map_step_embeds_with_a_model_lays_out_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let mut ws = pool(dir.path(), 40);
    let m = ModelEmbedder {
        max_tokens: 48,
        ..ModelEmbedder::new(common::smollm2_gguf(), DeviceChoice::Cpu)
    };
    let opts = MapOptions {
        embedder: MapEmbedder::Model(m.clone()),
        ..MapOptions::default()
    };
    // A stop before the first chunk: nothing embedded, and it says so.
    let cancel = CancelToken::new();
    cancel.cancel();
    let r = map::run(&mut ws, &opts, &cancel, &mut |_| {}).unwrap();
    assert!(r.stopped && r.embedded == 0 && r.points == 0, "{r:?}");
    let mut progress = Vec::new();
    let r = steps::run(&mut ws, &Step::Map(opts.clone()), &CancelToken::new(), &mut |e| {
        if let CurateEvent::Progress { done, total, .. } = e {
            progress.push((done, total));
        }
    })
    .unwrap();
    let Report::Map(r) = r else { panic!("{r:?}") };
    assert_eq!(
        (r.embedder.as_str(), r.embedded, r.already, r.points, r.laid_out),
        ("model-SmolLM2-135M-Instruct.Q4_1.gguf-t48", 40, 0, 40, true)
    );
    assert_eq!(r.model_shared, Some(false), "no model was handed over: loaded");
    assert_eq!(progress.first(), Some(&(0, 40)));
    assert!(progress.contains(&(40, 40)), "{progress:?}");
    // The stored vector of a question is its embedding, cut to 48 tokens.
    let (keys, dim, data) = map::load_vectors(&ws, &r.embedder).unwrap();
    assert_eq!((keys.len(), dim), (40, 576));
    let (key, question): (String, String) = ws
        .conn
        .query_row(
            "SELECT key, question FROM questions ORDER BY length(question) DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let i = keys.iter().position(|k| *k == key).unwrap();
    let mut t = smollm2(false).tokenizer.encode(&question).unwrap();
    assert!(t.len() > 48, "a question longer than the cut");
    t.truncate(48);
    let want = &embed_sequences(&smollm2(false).decoder, &[t], 1).unwrap()[0];
    assert!(max_abs_diff(&data[i * dim..(i + 1) * dim], want) < 1e-6);
    // The newest layout is the model's, with a point per question.
    let (embedder, points) = map::load_layout(&ws).unwrap().unwrap();
    assert_eq!((embedder, points.len()), (r.embedder.clone(), 40));
    assert!(points.values().all(|p| p[0].is_finite() && p[1].is_finite()));
    // Again: nothing to embed, the layout kept; TF-IDF's layout then becomes the one shown.
    let again = map::run(&mut ws, &opts, &CancelToken::new(), &mut |_| {}).unwrap();
    assert_eq!((again.embedded, again.already, again.laid_out), (0, 40, false));
    assert_eq!(again.model_shared, None, "nothing to embed: no model");
    // Handed the same model already loaded (the Chat's; its path spelled another way): every
    // question embedded again by it, without a load, to the same vectors.
    let path = common::smollm2_gguf();
    let spelled = path.parent().unwrap().join(".").join(path.file_name().unwrap());
    let shared = std::sync::Arc::new(load_model(&spelled, &LoadOptions::default()).unwrap());
    let with_shared = MapOptions {
        embedder: MapEmbedder::Model(ModelEmbedder {
            shared: Some(SharedModel(shared.clone())),
            ..m.clone()
        }),
        reembed: true,
        ..MapOptions::default()
    };
    let r = map::run(&mut ws, &with_shared, &CancelToken::new(), &mut |_| {}).unwrap();
    assert_eq!((r.embedded, r.model_shared), (40, Some(true)), "{r:?}");
    assert!(Report::Map(r.clone())
        .to_string()
        .contains("(by the model already loaded, shared)"));
    let (_, _, again) = map::load_vectors(&ws, &r.embedder).unwrap();
    assert!(max_abs_diff(&again, &data) < 1e-6);
    drop(with_shared);
    assert_eq!(std::sync::Arc::strong_count(&shared), 1, "the step kept no copy of it");
    map::run(&mut ws, &MapOptions::default(), &CancelToken::new(), &mut |_| {}).unwrap();
    assert_eq!(map::load_layout(&ws).unwrap().unwrap().0, "tfidf-hash-256-s0");
    // A model that is not there: an error naming it.
    let missing = MapOptions {
        embedder: MapEmbedder::Model(ModelEmbedder::new(dir.path().join("nope.gguf"), DeviceChoice::Cpu)),
        ..MapOptions::default()
    };
    let e = map::run(&mut ws, &missing, &CancelToken::new(), &mut |_| {}).unwrap_err();
    assert!(format!("{e:#}").contains("nope.gguf"), "{e:#}");
}
