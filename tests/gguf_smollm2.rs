//! The real SmolLM2-135M-Instruct Q4_1 GGUF: tokenizer rebuilt from metadata, quantized
//! inference, chat through the template, against llama.cpp (tests/fixtures/smollm2_llamacpp.json,
//! written by scripts/make_gguf_fixture.py).

mod common;

use std::sync::OnceLock;

use candle_core::{Device, Tensor};
use s1_studio::generate::{chat, BudgetConfig, GenerateParams, StopReason};
use s1_studio::jobs::CancelToken;
use s1_studio::model::{load_model, ChatMessage, LoadOptions, LoadedModel, Logits, ModelFormat};
use serde_json::Value;

fn model() -> &'static LoadedModel {
    static M: OnceLock<LoadedModel> = OnceLock::new();
    M.get_or_init(|| load_model(&common::smollm2_gguf(), &LoadOptions::default()).unwrap())
}

fn reference() -> Value {
    let text = std::fs::read_to_string(common::fixture("smollm2_llamacpp.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn loads_config_template_and_tokenizer_from_metadata() {
    let m = model();
    assert_eq!(m.format, ModelFormat::Gguf);
    let c = m.decoder.config();
    assert_eq!(
        (c.num_layers, c.hidden_size, c.num_heads, c.num_kv_heads, c.vocab_size),
        (30, 576, 9, 3, 49152)
    );
    assert!(!m.template_is_fallback);
    assert_eq!(m.tokenizer.special.eos.as_deref(), Some("<|im_end|>"));
    assert_eq!(m.tokenizer.special.eos_ids, vec![2]);
}

#[test]
fn tokenizes_like_llama_cpp() {
    let r = reference();
    for (text, want) in r["texts"]
        .as_array()
        .unwrap()
        .iter()
        .zip(r["tokens"].as_array().unwrap())
    {
        let text = text.as_str().unwrap();
        let got = model().tokenizer.encode(text).unwrap();
        assert_eq!(got, ids(want), "tokens of {text:?}");
        assert_eq!(model().tokenizer.decode(&got).unwrap(), text);
    }
}

fn last_logits(m: &LoadedModel, prompt: &[u32]) -> (Vec<f32>, s1_studio::model::KvCache) {
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

fn max_diff_on(ids: &[u32], a: &[f32], b: impl Fn(usize) -> f32) -> f32 {
    ids.iter()
        .map(|&i| (a[i as usize] - b(i as usize)).abs())
        .fold(0.0, f32::max)
}

#[test]
fn logits_and_greedy_continuation_match_llama_cpp() {
    let r = reference();
    let m = model();
    let prompt = ids(&r["chat_ids"]);
    assert_eq!(m.tokenizer.encode(r["chat"].as_str().unwrap()).unwrap(), prompt);
    let top = ids(&r["top_ids"]);
    let want: Vec<f32> = r["top_logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let (logits, mut cache) = last_logits(m, &prompt);
    // The same weights dequantized to f32 and multiplied exactly: the reference for this
    // engine's 4-bit kernels, which quantize activations to 8 bits as llama.cpp does.
    let exact = load_model(
        &common::smollm2_gguf(),
        &LoadOptions {
            dequantize: true,
            ..Default::default()
        },
    )
    .unwrap();
    let (exact_logits, _) = last_logits(&exact, &prompt);
    let rms = |v: &[f32]| (v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32).sqrt();
    let diff: Vec<f32> = logits.iter().zip(&exact_logits).map(|(a, b)| a - b).collect();
    let rel_rms = rms(&diff) / rms(&exact_logits);
    let pos = |i: usize| top.iter().position(|&t| t as usize == i).unwrap();
    let exact_vs_llama = max_diff_on(&top, &exact_logits, |i| want[pos(i)]);
    let vs_llama = max_diff_on(&top, &logits, |i| want[pos(i)]);
    eprintln!(
        "4-bit kernels vs exact product: relative RMS {rel_rms:.4} over all logits; largest difference over \
         llama.cpp's top 10 (logits ~25): exact vs llama.cpp {exact_vs_llama:.3}, 4-bit vs llama.cpp {vs_llama:.3}"
    );
    // 8-bit activations (as llama.cpp quantizes them) through 30 layers perturb this small
    // model strongly and erratically: rounding changes alone moved this figure between 2% and 8%
    // here, and llama.cpp's own 4-bit result is 3% from the exact product. A wrong nibble order,
    // rotary layout, norm or tokenizer gives errors of order 100%.
    assert!(
        rel_rms < 0.2,
        "4-bit kernels vs the exact product: relative RMS {rel_rms}"
    );
    assert!(exact_vs_llama < 0.5, "exact product vs llama.cpp: {exact_vs_llama}");
    assert!(vs_llama < 1.0, "4-bit vs llama.cpp: {vs_llama}");
    assert_eq!(argmax(&logits), top[0]);
    // Greedy decoding gives llama.cpp's tokens.
    let mut got = Vec::new();
    let mut last = logits;
    for _ in 0..ids(&r["greedy"]).len() {
        let next = argmax(&last);
        got.push(next);
        let t = Tensor::new(&[next], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        last = m
            .decoder
            .forward(&t, Some(&mut cache), Logits::Last)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
    }
    assert_eq!(got, ids(&r["greedy"]));
}

#[test]
fn answers_a_chat_prompt_and_stops_at_end_of_turn() {
    let messages = [
        ChatMessage::new("system", "You are a helpful AI assistant."),
        ChatMessage::new("user", "What is the capital of France?"),
    ];
    let params = GenerateParams {
        budget: BudgetConfig {
            thinking: false,
            ..Default::default()
        },
        max_new_tokens: Some(64),
        ..Default::default()
    };
    let mut streamed = String::new();
    let gen = chat(model(), &messages, &params, &CancelToken::new(), &mut |ev| {
        if let s1_studio::generate::StreamEvent::Answer(d) = ev {
            streamed.push_str(d)
        }
    })
    .unwrap();
    assert_eq!(gen.stop_reason, StopReason::EndOfTurn, "{gen:?}");
    assert_eq!(gen.answer, "The capital of France is Paris.");
    assert_eq!(streamed, gen.answer);
}

#[test]
fn budget_forcing_runs_on_a_real_model() {
    // SmolLM2 is no reasoning model, but the s1 delimiters are ChatML tokens it knows: the
    // controller must keep the thinking within the budget and produce an answer section.
    let messages = [ChatMessage::new("user", "What is 7 times 8?")];
    for max in [0usize, 5, 24] {
        let params = GenerateParams {
            budget: BudgetConfig {
                max_thinking: s1_studio::generate::MaxThinking::Tokens(max),
                num_ignore: 1,
                ..Default::default()
            },
            max_new_tokens: Some(80),
            ..Default::default()
        };
        let gen = chat(model(), &messages, &params, &CancelToken::new(), &mut |_| {}).unwrap();
        assert!(gen.thinking_tokens <= max, "{} > {max}", gen.thinking_tokens);
        let text = model().tokenizer.decode(&gen.output_ids).unwrap();
        assert!(text.starts_with("<|im_start|>think"), "{text}");
        assert!(text.contains("<|im_start|>answer"), "{text}");
    }
}
