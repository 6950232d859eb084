//! Tokenizers rebuilt from GGUF metadata against llama.cpp's own tokenizer tests: its vocab-only
//! files models/ggml-vocab-*.gguf with the test strings (.inp) and llama.cpp's ids for them (.out),
//! fetched from the llama-cpp-python 0.3.16 source distribution by scripts/fetch-test-models.sh.

use std::path::{Path, PathBuf};

use s1_studio::model::TextTokenizer;

/// A llama.cpp vocabulary test file; fails loudly, saying how to get it, when it is absent.
fn vocab(name: &str) -> PathBuf {
    let dir = std::env::var_os("S1_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("models"));
    let p = dir.join(name);
    assert!(
        p.exists(),
        "this test needs {} (llama.cpp's tokenizer test vocabulary): run `bash scripts/fetch-test-models.sh`",
        p.display()
    );
    p
}

fn load(name: &str) -> Result<TextTokenizer, String> {
    let path = vocab(name);
    let mut f = std::fs::File::open(&path).unwrap();
    let content = candle_core::quantized::gguf_file::Content::read(&mut f).unwrap();
    TextTokenizer::from_gguf(&path, &content.metadata).map_err(|e| e.to_string())
}

/// The test strings and llama.cpp's ids, split as llama.cpp's tests/test-tokenizer-0.cpp does.
fn cases(name: &str) -> Vec<(String, Vec<u32>)> {
    let inp = std::fs::read_to_string(vocab(&format!("{name}.inp"))).unwrap();
    let out = std::fs::read_to_string(vocab(&format!("{name}.out"))).unwrap();
    let mut texts: Vec<&str> = inp.split("\n__ggml_vocab_test__\n").collect();
    if texts.last() == Some(&"") {
        texts.pop();
    }
    let ids: Vec<Vec<u32>> = out
        .lines()
        .map(|l| l.split_whitespace().map(|t| t.parse().unwrap()).collect())
        .collect();
    assert_eq!(
        texts.len(),
        ids.len(),
        "{name}: .inp and .out disagree on the number of tests"
    );
    assert!(texts.len() > 30, "{name}: only {} tests", texts.len());
    texts.into_iter().map(str::to_string).zip(ids).collect()
}

/// Every test string tokenizes to llama.cpp's ids (special tokens not parsed, as the test runs)
/// and decodes back to itself.
fn check(name: &str) {
    let tok = load(name).unwrap();
    let mut plain = tok.inner().clone();
    plain.set_encode_special_tokens(true);
    let mut wrong = Vec::new();
    let cases = cases(name);
    for (text, want) in &cases {
        let got = plain.encode(text.as_str(), false).unwrap().get_ids().to_vec();
        if &got != want {
            wrong.push(format!("{text:?}: got {got:?}, llama.cpp {want:?}"));
        } else {
            assert_eq!(&tok.decode(&got).unwrap(), text, "{name}: decoding");
        }
    }
    assert!(
        wrong.is_empty(),
        "{name}: {} of {} strings differ:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

#[test]
fn qwen2_vocab_tokenizes_like_llama_cpp() {
    check("ggml-vocab-qwen2.gguf");
}

#[test]
fn llama3_vocab_tokenizes_like_llama_cpp() {
    check("ggml-vocab-llama-bpe.gguf");
}

/// SentencePiece (`tokenizer.ggml.model` = `llama`, Llama 2's vocabulary): llama.cpp's
/// score-ranked merges with byte fallback and the leading space.
#[test]
fn llama_spm_vocab_tokenizes_like_llama_cpp() {
    check("ggml-vocab-llama-spm.gguf");
}

/// Chat strings with special tokens parsed (as the engine encodes prompts), against llama.cpp's
/// ids recorded by scripts/make_gguf_quant_fixtures.py in tests/fixtures/gguf/llamacpp.json:
/// control tokens matched whole, SentencePiece's space after each of them.
#[test]
fn special_tokens_in_text_match_llama_cpp() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf/llamacpp.json");
    let refs: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let vocabs = refs["vocab_special"].as_object().unwrap();
    assert_eq!(vocabs.len(), 3);
    for (name, cases) in vocabs {
        let tok = load(name).unwrap();
        for case in cases.as_array().unwrap() {
            let text = case[0].as_str().unwrap();
            let want: Vec<u32> = serde_json::from_value(case[1].clone()).unwrap();
            assert_eq!(tok.encode(text).unwrap(), want, "{name}: {text:?}");
        }
    }
}

/// A tokenizer model the engine does not read fails with the file, the metadata key and what is
/// supported.
#[test]
fn unknown_tokenizer_model_is_refused_by_name() {
    use candle_core::quantized::gguf_file::Value;
    let path = vocab("ggml-vocab-llama-spm.gguf");
    let mut f = std::fs::File::open(&path).unwrap();
    let mut meta = candle_core::quantized::gguf_file::Content::read(&mut f)
        .unwrap()
        .metadata;
    meta.insert("tokenizer.ggml.model".into(), Value::String("rwkv".into()));
    let err = TextTokenizer::from_gguf(&path, &meta).err().unwrap().to_string();
    for part in [
        path.display().to_string().as_str(),
        "`rwkv`",
        "tokenizer.ggml.model",
        "`gpt2`",
        "`llama`",
        "SentencePiece",
    ] {
        assert!(err.contains(part), "{err}");
    }
}
