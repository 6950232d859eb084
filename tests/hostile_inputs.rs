//! Hostile models, templates and data (issue 22): each case ends in a clear error naming the
//! file and the field, or a bounded result, never a panic, hang or huge allocation. Every file
//! is generated here.

mod common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use s1_studio::grade::{grade_with, Extraction, Kind, Verdict};
use s1_studio::model::{load_model, LoadOptions};

fn load_err(path: &Path) -> String {
    match load_model(path, &LoadOptions::default()) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e.to_string(),
    }
}

/// A GGUF metadata value: (type id, bytes).
fn gguf_u32(v: u32) -> (u32, Vec<u8>) {
    (4, v.to_le_bytes().to_vec())
}
fn gguf_str(s: &str) -> (u32, Vec<u8>) {
    let mut b = (s.len() as u64).to_le_bytes().to_vec();
    b.extend(s.as_bytes());
    (8, b)
}

/// A GGUF v3 file: metadata, then F32 tensors (name, dims as GGUF writes them), data zeroed.
fn gguf(kvs: &[(&str, (u32, Vec<u8>))], tensors: &[(&str, Vec<u64>)], alignment: u64) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend((tensors.len() as u64).to_le_bytes());
    b.extend((kvs.len() as u64).to_le_bytes());
    for (k, (ty, v)) in kvs {
        b.extend(gguf_str(k).1);
        b.extend(ty.to_le_bytes());
        b.extend(v);
    }
    let mut offset = 0u64;
    let mut data = 0u64;
    for (name, dims) in tensors {
        b.extend(gguf_str(name).1);
        b.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            b.extend(d.to_le_bytes());
        }
        b.extend(0u32.to_le_bytes()); // F32
        b.extend(offset.to_le_bytes());
        let bytes = dims.iter().fold(4u64, |a, d| a.saturating_mul(*d)).min(1 << 20);
        offset += bytes.div_ceil(32) * 32;
        data = offset;
    }
    let a = alignment.max(1) as usize;
    while !b.len().is_multiple_of(a) {
        b.push(0);
    }
    b.resize(b.len() + data as usize, 0);
    b
}

fn llama_meta(block_count: u32) -> Vec<(&'static str, (u32, Vec<u8>))> {
    vec![
        ("general.architecture", gguf_str("llama")),
        ("llama.embedding_length", gguf_u32(8)),
        ("llama.attention.head_count", gguf_u32(2)),
        ("llama.feed_forward_length", gguf_u32(16)),
        ("llama.block_count", gguf_u32(block_count)),
    ]
}

fn write(dir: &Path, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join("model.gguf");
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn gguf_headers_with_hostile_fields() {
    let d = tempfile::tempdir().unwrap();
    let embd = vec![("token_embd.weight", vec![8u64, 16])];
    // general.alignment = 0 (candle divides by it).
    let mut kv = llama_meta(2);
    kv.push(("general.alignment", gguf_u32(0)));
    let msg = load_err(&write(d.path(), &gguf(&kv, &embd, 32)));
    assert!(
        msg.contains("model.gguf") && msg.contains("general.alignment") && msg.contains("power of two"),
        "{msg}"
    );
    // Not a power of two.
    let mut kv = llama_meta(2);
    kv.push(("general.alignment", gguf_u32(24)));
    let msg = load_err(&write(d.path(), &gguf(&kv, &embd, 24)));
    assert!(msg.contains("general.alignment"), "{msg}");
    // A tensor with no dimensions.
    let msg = load_err(&write(
        d.path(),
        &gguf(&llama_meta(2), &[("token_embd.weight", vec![])], 32),
    ));
    assert!(
        msg.contains("token_embd.weight") && msg.contains("0 dimensions"),
        "{msg}"
    );
    // Dimensions whose product wraps to 0 in 64 bits.
    let msg = load_err(&write(
        d.path(),
        &gguf(&llama_meta(2), &[("token_embd.weight", vec![1 << 32, 1 << 32])], 32),
    ));
    assert!(
        msg.contains("token_embd.weight") && msg.contains("larger than the file"),
        "{msg}"
    );
    // A zero dimension.
    let msg = load_err(&write(
        d.path(),
        &gguf(&llama_meta(2), &[("token_embd.weight", vec![8, 0])], 32),
    ));
    assert!(msg.contains("zero dimension"), "{msg}");
    // block_count = u32::MAX and 0: refused by name before any allocation.
    for n in [u32::MAX, 0] {
        let msg = load_err(&write(d.path(), &gguf(&llama_meta(n), &embd, 32)));
        assert!(
            msg.contains("model.gguf") && msg.contains("block_count") && msg.contains(&n.to_string()),
            "{msg}"
        );
    }
}

fn tiny(dir: &Path) {
    common::tiny_qwen(dir, 512);
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let p = dir.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    edit(&mut cfg);
    std::fs::write(&p, cfg.to_string()).unwrap();
}

#[test]
fn implausible_hf_configs_name_the_field() {
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        ("num_hidden_layers", serde_json::json!(1u64 << 32), "num_hidden_layers"),
        ("num_hidden_layers", serde_json::json!(1u64 << 62), "num_hidden_layers"),
        ("num_hidden_layers", serde_json::json!(0), "num_hidden_layers"),
        ("rope_theta", serde_json::json!(0.0), "rope_theta"),
        ("rope_theta", serde_json::json!(-5.0), "rope_theta"),
        ("rms_norm_eps", serde_json::json!(-1e-6), "rms_norm_eps"),
        ("vocab_size", serde_json::json!(1u64 << 40), "vocab_size"),
        (
            "rope_scaling",
            serde_json::json!({"rope_type": "llama3", "factor": 0.0}),
            "rope_scaling.factor",
        ),
        ("eos_token_id", serde_json::json!(10_000_000), "past the vocabulary"),
    ];
    for (field, value, want) in cases {
        let d = tempfile::tempdir().unwrap();
        tiny(d.path());
        edit_config(d.path(), |c| c[field] = value.clone());
        let msg = load_err(d.path());
        assert!(
            msg.contains("config.json") && msg.contains(want),
            "{field}={value}: {msg}"
        );
    }
    // Sizes that fit the limits but not the file: the implied parameters against its bytes.
    let d = tempfile::tempdir().unwrap();
    tiny(d.path());
    edit_config(d.path(), |c| c["intermediate_size"] = (1 << 20).into());
    let msg = load_err(d.path());
    assert!(msg.contains("parameters") && msg.contains("bytes"), "{msg}");
}

#[test]
fn nan_weights_are_found_at_load() {
    let d = tempfile::tempdir().unwrap();
    tiny(d.path());
    let file = d.path().join("model.safetensors");
    let mut w: HashMap<String, Tensor> = candle_core::safetensors::load(&file, &Device::Cpu).unwrap();
    let name = "model.layers.1.mlp.up_proj.weight";
    let shape = w[name].shape().clone();
    let t = w[name].to_dtype(candle_core::DType::F32).unwrap();
    let mut v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    v.iter_mut().for_each(|x| *x = f32::NAN);
    let nan = Tensor::from_vec(v, shape, &Device::Cpu)
        .unwrap()
        .to_dtype(w[name].dtype())
        .unwrap();
    w.insert(name.into(), nan);
    candle_core::safetensors::save(&w, &file).unwrap();
    let msg = load_err(d.path());
    assert!(
        msg.contains("model.safetensors") && msg.contains(name) && msg.contains("NaN"),
        "{msg}"
    );
}

#[test]
fn shard_index_entries_stay_in_the_model_folder() {
    let d = tempfile::tempdir().unwrap();
    tiny(d.path());
    let outside = tempfile::tempdir().unwrap();
    std::fs::copy(d.path().join("model.safetensors"), outside.path().join("x.safetensors")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("x.safetensors"), d.path().join("link.safetensors")).unwrap();
    std::fs::remove_file(d.path().join("model.safetensors")).unwrap();
    for target in ["../../../../etc/passwd", "/etc/passwd", "link.safetensors"] {
        let index = serde_json::json!({"weight_map": {"model.embed_tokens.weight": target}});
        std::fs::write(d.path().join("model.safetensors.index.json"), index.to_string()).unwrap();
        let msg = load_err(d.path());
        assert!(
            msg.contains("model.safetensors.index.json") && msg.contains(target) && msg.contains("model folder"),
            "{target}: {msg}"
        );
    }
}

#[test]
fn grader_bounds_deep_and_long_answers() {
    let deep_parens = format!("\\boxed{{{}}}", "(".repeat(100_000));
    let deep_fracs = format!("\\boxed{{{}}}", "\\frac{1}{".repeat(20_000));
    let long = format!("Answer: {}", "1+".repeat(500_000));
    for (response, what) in [(&deep_parens, "parens"), (&deep_fracs, "fracs"), (&long, "1 MB")] {
        for ex in [Extraction::S1, Extraction::Lenient] {
            let g = grade_with(response, "42", Kind::Math, ex);
            assert_ne!(g.verdict, Verdict::Correct, "{what}");
        }
    }
    // Past the stated depth an answer is undecided, never parsed recursively.
    let nested = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
    assert_eq!(
        s1_studio::grade::equiv::math_equivalent(&nested, "1"),
        Verdict::Undecided
    );
    // Within it, equivalence still works.
    assert_eq!(s1_studio::grade::equiv::math_equivalent("((1))", "1"), Verdict::Correct);
}

#[test]
fn rerun_of_a_multi_file_import_skips_what_was_imported() {
    use s1_studio::curate::steps::import::{import, import_files, Imported};
    let dir = tempfile::tempdir().unwrap();
    let mut ws = s1_studio::workspace::Workspace::open(dir.path()).unwrap();
    let files = [
        common::fixture("curate/s1k_like.parquet"),
        common::fixture("curate/s1k11_like.parquet"),
    ];
    // A first run that stopped after the first file.
    import(&mut ws, &files[0], &Default::default(), |_| {}).unwrap();
    let count = |ws: &s1_studio::workspace::Workspace| -> i64 {
        ws.conn
            .query_row("SELECT COUNT(*) FROM questions", [], |r| r.get(0))
            .unwrap()
    };
    let after_first = count(&ws);
    let out = import_files(&mut ws, &files, &Default::default(), &mut |_| {}).unwrap();
    assert!(
        matches!(&out[0], Imported::Before(n) if n.contains("s1k_like")),
        "{out:?}"
    );
    assert!(matches!(&out[1], Imported::File { .. }), "{out:?}");
    let after_rerun = count(&ws);
    assert!(after_rerun > after_first);
    // A second rerun imports nothing and counts nothing twice.
    let out = import_files(&mut ws, &files, &Default::default(), &mut |_| {}).unwrap();
    assert!(out.iter().all(|o| matches!(o, Imported::Before(_))), "{out:?}");
    assert_eq!(count(&ws), after_rerun);
}

#[test]
fn prompts_past_the_context_are_refused_before_encoding() {
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 64);
    let m = load_model(d.path(), &LoadOptions::default()).unwrap();
    let huge = "x".repeat(50_000_000);
    let budget = s1_studio::generate::BudgetConfig::default();
    let err = match s1_studio::generate::text_prompt(&m, &huge, &budget) {
        Ok(p) => panic!("a {} token prompt was encoded", p.ids.len()),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("50000000 characters") && err.contains("64 tokens"),
        "{err}"
    );
}

#[test]
fn training_rows_are_cut_to_what_the_block_can_use_before_encoding() {
    use s1_studio::train::data::{Renderer, S1Row};
    use s1_studio::train::mask::LossMask;
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 512);
    let m = load_model(d.path(), &LoadOptions::default()).unwrap();
    let r = Renderer {
        tokenizer: &m.tokenizer,
        template: &m.template,
        block_size: 128,
        mask: LossMask::Turn,
    };
    // A 20 MB single-line question: only the first characters the block can hold are encoded
    // (the whole of it asked the tokenizer for gigabytes).
    let row = S1Row {
        question: "What is 2 + 3? ".repeat(1_400_000),
        trajectories: vec!["Add them.".into()],
        attempt: "5".into(),
        line: 1,
    };
    let limit = m.tokenizer.chars_for_tokens(128);
    assert!(limit < 1_000_000, "the bound is {limit} characters");
    let ex = r.example(&row).unwrap();
    assert_eq!(ex.ids.len(), 128);
    assert!(ex.prompt_tokens >= 128, "the prompt alone fills the block");
    assert!(ex.loss.iter().all(|l| !*l));
}

/// Found by the `tokenizer` fuzz target: a control character inside the decoder section made
/// the tokenizers crate panic (`expect("Helper")`) instead of returning an error.
#[test]
fn malformed_tokenizer_json_is_an_error_not_a_panic() {
    let d = tempfile::tempdir().unwrap();
    tiny(d.path());
    let p = d.path().join("tokenizer.json");
    let text = std::fs::read_to_string(&p).unwrap();
    let at = text.find("\"decoder\"").expect("a decoder section");
    let brace = at + text[at..].find('{').unwrap() + 1;
    let bad = format!("{}\"x\": \"\u{1}\", {}", &text[..brace], &text[brace..]);
    std::fs::write(&p, bad).unwrap();
    let msg = load_err(d.path());
    assert!(
        msg.contains("tokenizer.json") && msg.contains("not valid JSON"),
        "{msg}"
    );
}

/// Found by the grade fuzz target (built with debug assertions): the equivalence's probe values
/// multiplied past u64 (now wrapping, as intended) for this response, which ends at the answer
/// delimiter. Graded under every kind and extraction: no panic, and not correct.
#[test]
fn an_answer_delimiter_at_the_very_end() {
    use s1_studio::grade::{grade_with, Extraction, Kind};
    for kind in [Kind::Math, Kind::Aime, Kind::Gsm8k, Kind::Mc] {
        for ex in [Extraction::S1, Extraction::Lenient] {
            let g = grade_with("t<|im_start|>answer", "5", kind, ex);
            assert_ne!(g.verdict, Verdict::Correct, "{kind:?} {ex:?}");
        }
    }
}

/// A BPE merge whose two tokens join into something longer than any vocabulary entry (or whose
/// second token is shorter than the continuing-subword prefix) is an error naming the merge: the
/// tokenizers crate panics on it (found by the `tokenizer` fuzz target).
#[test]
fn bpe_merges_longer_than_the_vocabulary_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            serde_json::json!(["ab ab"]),
            serde_json::Value::Null,
            "merge 0 (`ab` `ab`)",
        ),
        (
            serde_json::json!([["a", "a"], ["ab", "b"]]),
            serde_json::Value::Null,
            "merge 1 (`ab` `b`)",
        ),
        (
            serde_json::json!(["a b"]),
            serde_json::json!("###"),
            "merge 0 (`a` `b`)",
        ),
    ];
    for (merges, prefix, want) in cases {
        let tok = serde_json::json!({
            "version": "1.0",
            "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "aa": 2, "ab": 3},
                      "merges": merges, "continuing_subword_prefix": prefix}
        });
        std::fs::write(dir.path().join("tokenizer.json"), tok.to_string()).unwrap();
        let err = match s1_studio::model::TextTokenizer::from_hf_folder(dir.path()) {
            Ok(_) => panic!("merges {merges} loaded"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(want) && err.contains("tokenizer.json"), "{err}");
    }
}
