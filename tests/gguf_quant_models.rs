//! The thinking models people chat with, tiny and random, from tests/fixtures/gguf (written by
//! scripts/make_gguf_quant_fixtures.py): a Qwen3, an R1-distill-Qwen, a QwQ and an R1-distill-Llama
//! style model, each as a Hugging Face folder (against transformers) and as GGUF files converted
//! and quantized by llama.cpp (Q4_K_M, Q6_K, Q4_0, Q5_1, and a Q4_K_M that mixes Q5_0/Q8_0 in),
//! against llama-cpp-python on the same files: tokens, chat template, logits, greedy tokens.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use s1_studio::model::{load_model, ChatMessage, LoadOptions, LoadedModel, Logits, ModelFormat};
use serde_json::Value;

fn dir() -> PathBuf {
    common::fixture("gguf")
}

fn reference() -> &'static Value {
    static R: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    R.get_or_init(|| {
        let text = std::fs::read_to_string(dir().join("llamacpp.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    })
}

fn files() -> Vec<(String, &'static Value)> {
    reference()["files"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v))
        .collect()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// The conversation the script rendered with each model's template.
fn messages() -> [ChatMessage; 2] {
    [
        ChatMessage::new("system", "You are a helpful assistant."),
        ChatMessage::new("user", "What is the capital of France? Think step by step."),
    ]
}

fn forward_last(m: &LoadedModel, prompt: &[u32]) -> (Vec<f32>, s1_studio::model::KvCache) {
    let mut cache = m.decoder.new_cache();
    let t = Tensor::new(prompt, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let logits = m.decoder.forward(&t, Some(&mut cache), Logits::Last).unwrap();
    (logits.flatten_all().unwrap().to_vec1::<f32>().unwrap(), cache)
}

fn argmax(v: &[f32]) -> u32 {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i as u32)
        .unwrap()
}

fn rms(v: &[f32]) -> f32 {
    (v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32).sqrt()
}

/// Relative RMS and largest absolute difference of `a - b`, relative to `b`.
fn compare(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    let d: Vec<f32> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    (rms(&d) / rms(b), d.iter().fold(0.0f32, |m, x| m.max(x.abs())))
}

/// Each Hugging Face folder loads, renders its real template as transformers did, and gives
/// transformers' f32 logits at every position of the chat prompt.
#[test]
fn hf_folders_match_transformers() {
    for name in ["qwen3", "r1-qwen", "qwq", "r1-llama"] {
        let folder = dir().join(name);
        let m = load_model(&folder, &LoadOptions::default()).unwrap();
        assert_eq!(m.format, ModelFormat::HfFolder);
        assert!(!m.template_is_fallback, "{name}");
        let exp = candle_core::safetensors::load(folder.join("expected.safetensors"), &Device::Cpu).unwrap();
        let want_ids: Vec<u32> = exp["input_ids"]
            .to_dtype(DType::U32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let chat = m.template.render(&messages(), true, None).unwrap();
        assert_eq!(
            m.tokenizer.encode(&chat).unwrap(),
            want_ids,
            "{name}: chat prompt {chat:?}"
        );
        let input = Tensor::new(want_ids.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let got = m.decoder.forward(&input, None, Logits::All).unwrap();
        let want = &exp["logits"];
        assert_eq!(got.dims(), want.dims(), "{name}");
        let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let (rel, max) = compare(&got, &want);
        eprintln!("{name}: vs transformers: relative RMS {rel:.2e}, largest difference {max:.2e}");
        assert!(rel < 1e-4, "{name}: relative error {rel} vs transformers");
    }
}

/// The GGUF files hold the quantization types llama.cpp wrote (the types the engine must run).
#[test]
fn gguf_files_hold_the_recorded_quant_types() {
    let mut seen = BTreeMap::new();
    for (file, r) in files() {
        let path = dir().join(&file);
        let mut f = std::fs::File::open(&path).unwrap();
        let content = candle_core::quantized::gguf_file::Content::read(&mut f).unwrap();
        let want = r["tensor_types"].as_object().unwrap();
        assert_eq!(content.tensor_infos.len(), want.len(), "{file}");
        for (name, ty) in want {
            // candle spells Q4_K `Q4K`, gguf-py `Q4_K`.
            let got = format!("{:?}", content.tensor_infos[name].ggml_dtype).to_uppercase();
            assert_eq!(got, ty.as_str().unwrap().replace("_K", "K"), "{file}: {name}");
            *seen.entry(got).or_insert(0) += 1;
        }
    }
    for ty in ["Q4K", "Q6K", "Q5_0", "Q8_0", "Q4_0", "Q5_1"] {
        assert!(seen.contains_key(ty), "no {ty} tensor in the fixtures: {seen:?}");
    }
}

/// Thinking tokens, end of turn and the template come from the GGUF metadata.
#[test]
fn gguf_metadata_carries_template_and_thinking_tokens() {
    for (file, r) in files() {
        let m = load_model(&dir().join(&file), &LoadOptions::default()).unwrap();
        assert_eq!(m.format, ModelFormat::Gguf);
        assert!(!m.template_is_fallback, "{file}: no chat template in the metadata");
        let think = (m.tokenizer.token_to_id("<think>"), m.tokenizer.token_to_id("</think>"));
        assert!(matches!(think, (Some(_), Some(_))), "{file}: {think:?}");
        // Each <think> tag is one token, as llama.cpp reads it.
        for tag in ["<think>", "</think>"] {
            assert_eq!(m.tokenizer.encode(tag).unwrap().len(), 1, "{file}: {tag}");
        }
        let r1 = r["model"].as_str().unwrap().starts_with("r1");
        let eos = if r1 {
            "<｜end▁of▁sentence｜>"
        } else {
            "<|im_end|>"
        };
        assert_eq!(m.tokenizer.special.eos.as_deref(), Some(eos), "{file}");
        if r1 {
            assert_eq!(
                m.tokenizer.special.bos.as_deref(),
                Some("<｜begin▁of▁sentence｜>"),
                "{file}"
            );
            assert!(m.template.source().contains("<｜Assistant｜><think>"), "{file}");
        }
        // The template's own rendering is the one llama.cpp was given.
        let chat = m.template.render(&messages(), true, None).unwrap();
        assert_eq!(chat, r["chat"].as_str().unwrap(), "{file}");
    }
}

/// Every text, special tokens included, tokenizes as llama.cpp tokenizes it, and decodes back.
#[test]
fn gguf_tokenizers_match_llama_cpp() {
    let texts = reference()["texts"].as_array().unwrap();
    for (file, r) in files() {
        let m = load_model(&dir().join(&file), &LoadOptions::default()).unwrap();
        for (text, want) in texts.iter().zip(r["tokens"].as_array().unwrap()) {
            let text = text.as_str().unwrap();
            let got = m.tokenizer.encode(text).unwrap();
            assert_eq!(got, ids(want), "{file}: tokens of {text:?}");
            assert_eq!(m.tokenizer.decode(&got).unwrap(), text, "{file}");
        }
        let chat = r["chat"].as_str().unwrap();
        assert_eq!(m.tokenizer.encode(chat).unwrap(), ids(&r["chat_ids"]), "{file}: chat");
    }
}

/// Logits and greedy tokens against llama.cpp on the same file.
///
/// The tolerance story of tests/gguf_smollm2.rs: quantization itself moves these random models'
/// last logits (RMS about 1.6) by 2% to 6% RMS: llama.cpp's product (weights times activations
/// quantized to 8 bits: Q8_K blocks of 256 for the K formats) lands 2% to 6% from the exact
/// product of the same weights dequantized. This engine's kernels quantize activations to 8 bits
/// in blocks of 32, an independent rounding of the same size, so the two quantized products sit
/// on different sides of the exact one (measured up to 9% RMS apart on the R1-Llama Q4_K_M file,
/// where llama.cpp is 6.2% from exact and we are 4.4%). The test holds both: ours is no further
/// from the exact product than llama.cpp's is (`OWN_SLACK`), and within `MAX_REL_RMS` /
/// `MAX_ABS` of llama.cpp's logits. llama.cpp is not steadier itself: fed the same prompt token
/// by token (n_ubatch 1) instead of in one batch, its own logits move by 1% to 1.5% RMS on these
/// files. A wrong block layout, scale, nibble order, rotary layout or norm gives differences of
/// order 100%. Greedy tokens must be llama.cpp's; where llama.cpp's own top two were within
/// `MARGIN` of each other the argmaxes may legitimately part, and the comparison stops there
/// (the report says where).
#[test]
fn gguf_logits_and_greedy_tokens_match_llama_cpp() {
    const MAX_ABS: f32 = 0.6;
    const MAX_REL_RMS: f32 = 0.12;
    // Ours vs exact <= 1.25 x (llama.cpp vs exact) + 0.5%: measured at most 1.06x.
    const OWN_SLACK: (f32, f32) = (1.25, 0.005);
    const MARGIN: f32 = 0.5;
    let (mut report, mut failed) = (Vec::new(), Vec::new());
    for (file, r) in files() {
        let path = dir().join(&file);
        let m = load_model(&path, &LoadOptions::default()).unwrap();
        let prompt = ids(&r["chat_ids"]);
        let want = floats(&r["last_logits"]);
        let (logits, mut cache) = forward_last(&m, &prompt);
        let exact = load_model(
            &path,
            &LoadOptions {
                dequantize: true,
                ..Default::default()
            },
        )
        .unwrap();
        let (exact_logits, _) = forward_last(&exact, &prompt);
        let (rel, max) = compare(&logits, &want);
        let (exact_rel, exact_max) = compare(&exact_logits, &want);
        let (own_rel, _) = compare(&logits, &exact_logits);
        report.push(format!(
            "{file}: vs llama.cpp: relative RMS {rel:.4}, largest {max:.3} (logit RMS {:.2}); exact product vs \
             llama.cpp: {exact_rel:.4}, {exact_max:.3}; ours vs the exact product: {own_rel:.4}",
            rms(&want)
        ));
        if !(rel < MAX_REL_RMS && max < MAX_ABS && own_rel <= OWN_SLACK.0 * exact_rel + OWN_SLACK.1) {
            failed.push(report.last().unwrap().clone());
            continue;
        }

        let greedy = ids(&r["greedy"]);
        let margins = floats(&r["greedy_margins"]);
        // Step 0 is the prompt's own next token.
        let mut last = logits;
        for (step, (&want_tok, &margin)) in greedy.iter().zip(&margins).enumerate() {
            let got = argmax(&last);
            if got != want_tok {
                if margin >= MARGIN {
                    failed.push(format!(
                        "{file}: greedy step {step}: {got} where llama.cpp chose {want_tok} by a margin of {margin}"
                    ));
                }
                report.push(format!(
                    "{file}: greedy parts at step {step} (llama.cpp margin {margin:.3})"
                ));
                break;
            }
            let t = Tensor::new(&[got], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
            last = m
                .decoder
                .forward(&t, Some(&mut cache), Logits::Last)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// Llama 3.1's rotary factors come from `rope_freqs.weight` (the R1-distill-Llama file above
/// matches llama.cpp with them); a factor tensor of the wrong length is refused by name.
#[test]
fn wrong_rope_freqs_is_refused_by_name() {
    use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
    let src = dir().join("r1-llama-Q4_K_M.gguf");
    let mut f = std::fs::File::open(&src).unwrap();
    let content = gguf_file::Content::read(&mut f).unwrap();
    let c = s1_studio::model::ModelConfig::from_gguf(&src, &content).unwrap();
    let factors = c.rope_freq_factors.clone().unwrap();
    assert_eq!(factors.len(), c.head_dim / 2);
    assert!(factors.iter().any(|&x| x != 1.0), "{factors:?}");

    let mut tensors = Vec::new();
    for name in content.tensor_infos.keys() {
        let t = if name == "rope_freqs.weight" {
            let short = Tensor::new(&factors[..4], &Device::Cpu).unwrap();
            QTensor::quantize(&short, GgmlDType::F32).unwrap()
        } else {
            content.tensor(&mut f, name, &Device::Cpu).unwrap()
        };
        tensors.push((name.clone(), t));
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad-rope.gguf");
    let metadata: Vec<(&str, &gguf_file::Value)> = content.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut std::fs::File::create(&bad).unwrap(), &metadata, &tensors).unwrap();
    let err = load_model(&bad, &LoadOptions::default()).err().unwrap().to_string();
    for part in [
        bad.display().to_string().as_str(),
        "rope_freqs.weight",
        "32 positive factors",
    ] {
        assert!(err.contains(part), "{err}");
    }
}
