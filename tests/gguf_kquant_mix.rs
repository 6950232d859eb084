//! GGUF files whose matrices mix quantization types, as llama.cpp's Q4_K_M recipe writes them
//! (Q4_K, Q6_K, Q5_0, Q8_0 side by side in one layer): a tiny random llama written in the test
//! with candle's quantizer and GGUF writer. Such a file used to fail at the first token with
//! "CPU-quantized weights need f32 activations on the CPU". Each file loads and generates
//! through the normal path; its logits match the same file loaded dequantized (f32 weights);
//! every matrix of a file of the kernels' types runs on this project's CPU kernels, and a file
//! with one matrix of another type (Q3_K) runs that one on candle's product instead.

use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use s1_studio::generate::{chat, GenerateParams};
use s1_studio::jobs::CancelToken;
use s1_studio::model::decoder::Logits;
use s1_studio::model::{load_model, ChatMessage, LoadOptions, LoadedModel};

const HIDDEN: usize = 256;
const FFN: usize = 512;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const LAYERS: usize = 2;

/// GPT-2's byte-level alphabet: one printable character per byte.
fn byte_tokens() -> Vec<String> {
    let mut bytes: Vec<u32> = (33..=126).chain(161..=172).chain(174..=255).collect();
    let mut chars = bytes.clone();
    let mut n = 0;
    for b in 0..256 {
        if !bytes.contains(&b) {
            bytes.push(b);
            chars.push(256 + n);
            n += 1;
        }
    }
    chars
        .into_iter()
        .map(|c| char::from_u32(c).unwrap().to_string())
        .collect()
}

/// Deterministic values in [-scale, scale).
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// Writes the tiny llama to `path`; `types(name)` picks each matrix's quantization.
fn write_model(path: &Path, types: &dyn Fn(&str) -> GgmlDType) {
    let mut tokens = byte_tokens();
    tokens.extend(["Ġt".to_string(), "<|im_start|>".into(), "<|im_end|>".into()]);
    let vocab = tokens.len();
    let mut token_type = vec![Value::I32(1); vocab];
    token_type[vocab - 2] = Value::I32(3);
    token_type[vocab - 1] = Value::I32(3);
    let u32v = |v: usize| Value::U32(v as u32);
    let meta: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        ("llama.embedding_length", u32v(HIDDEN)),
        ("llama.feed_forward_length", u32v(FFN)),
        ("llama.block_count", u32v(LAYERS)),
        ("llama.attention.head_count", u32v(HEADS)),
        ("llama.attention.head_count_kv", u32v(KV_HEADS)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("llama.rope.freq_base", Value::F32(10000.0)),
        ("llama.rope.dimension_count", u32v(HIDDEN / HEADS)),
        ("llama.context_length", u32v(512)),
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String("smollm".into())),
        (
            "tokenizer.ggml.tokens",
            Value::Array(tokens.iter().map(|t| Value::String(t.clone())).collect()),
        ),
        ("tokenizer.ggml.token_type", Value::Array(token_type)),
        ("tokenizer.ggml.merges", Value::Array(vec![Value::String("Ġ t".into())])),
        ("tokenizer.ggml.eos_token_id", u32v(vocab - 1)),
    ];
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut add = |name: String, dims: &[usize], dtype: GgmlDType, scale: f32, offset: f32| {
        let n = dims.iter().product();
        let v: Vec<f32> = values(n, tensors.len() as u64 + 7, scale)
            .into_iter()
            .map(|x| x + offset)
            .collect();
        let t = Tensor::from_vec(v, dims, &Device::Cpu).unwrap();
        tensors.push((name, QTensor::quantize(&t, dtype).unwrap()));
    };
    add("token_embd.weight".into(), &[vocab, HIDDEN], GgmlDType::Q8_0, 1.0, 0.0);
    add("output_norm.weight".into(), &[HIDDEN], GgmlDType::F32, 0.1, 1.0);
    add("output.weight".into(), &[vocab, HIDDEN], types("output"), 0.1, 0.0);
    let hd = HIDDEN / HEADS;
    for l in 0..LAYERS {
        let p = |s: &str| format!("blk.{l}.{s}.weight");
        add(p("attn_norm"), &[HIDDEN], GgmlDType::F32, 0.1, 1.0);
        add(p("ffn_norm"), &[HIDDEN], GgmlDType::F32, 0.1, 1.0);
        for (name, out, inp) in [
            ("attn_q", HIDDEN, HIDDEN),
            ("attn_k", KV_HEADS * hd, HIDDEN),
            ("attn_v", KV_HEADS * hd, HIDDEN),
            ("attn_output", HIDDEN, HIDDEN),
            ("ffn_gate", FFN, HIDDEN),
            ("ffn_up", FFN, HIDDEN),
            ("ffn_down", HIDDEN, FFN),
        ] {
            let key = format!("{l}.{name}");
            add(p(name), &[out, inp], types(&key), 0.12, 0.0);
        }
    }
    let meta_refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (*k, v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let mut f = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut f, &meta_refs, &tensor_refs).unwrap();
}

/// Q4_K_M's mix: Q4_K for most matrices, Q6_K for the head and for some v/down matrices,
/// Q5_0 and Q8_0 where llama.cpp falls back; the 32-wide Q4_0/Q4_1/Q5_1 and Q5_K too, so that
/// every format the kernels read meets the others in one q/k/v or gate/up group.
fn q4_k_m_mix(name: &str) -> GgmlDType {
    match name {
        "output" => GgmlDType::Q6K,
        "0.attn_q" => GgmlDType::Q4K,
        "0.attn_k" => GgmlDType::Q5_0,
        "0.attn_v" => GgmlDType::Q6K,
        "0.attn_output" => GgmlDType::Q8_0,
        "0.ffn_gate" => GgmlDType::Q4K,
        "0.ffn_up" => GgmlDType::Q5_1,
        "0.ffn_down" => GgmlDType::Q6K,
        "1.attn_q" => GgmlDType::Q4_0,
        "1.attn_k" => GgmlDType::Q4_1,
        "1.attn_v" => GgmlDType::Q8_0,
        "1.attn_output" => GgmlDType::Q5K,
        "1.ffn_gate" => GgmlDType::Q5_0,
        "1.ffn_up" => GgmlDType::Q4K,
        _ => GgmlDType::Q4K,
    }
}

/// Greedy logits of `prompt` and then `steps` tokens, step by step through the KV cache, and
/// the tokens chosen (by `model`, or given as `follow`).
fn logits_along(
    model: &LoadedModel,
    prompt: &[u32],
    steps: usize,
    follow: Option<&[u32]>,
) -> (Vec<Vec<f32>>, Vec<u32>) {
    let dec = &model.decoder;
    let mut cache = dec.new_cache();
    let mut ids = prompt.to_vec();
    let mut out = Vec::new();
    let mut chosen = Vec::new();
    for i in 0..=steps {
        let t = Tensor::new(ids.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let l = dec
            .forward(&t, Some(&mut cache), Logits::Last)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let best = match follow {
            Some(f) if i < f.len() => f[i],
            _ => {
                l.iter()
                    .enumerate()
                    .fold((0, f32::MIN), |a, (j, &v)| if v > a.1 { (j, v) } else { a })
                    .0 as u32
            }
        };
        out.push(l);
        chosen.push(best);
        ids = vec![best];
    }
    (out, chosen)
}

/// Loads `path` quantized and dequantized, checks the logits agree, generates through `chat`,
/// and returns the quantized model's weight kinds.
fn check_against_dequantized(path: &Path) -> std::collections::BTreeMap<String, usize> {
    let quant = load_model(path, &LoadOptions::default()).unwrap();
    let reference = load_model(
        path,
        &LoadOptions {
            dequantize: true,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    // 12 prompt tokens: a prefill over many rows, then single-token steps.
    let prompt: Vec<u32> = (0..12).map(|i| (i * 37 + 5) % 256).collect();
    let (got, chosen) = logits_along(&quant, &prompt, 6, None);
    let (want, _) = logits_along(&reference, &prompt, 6, Some(&chosen));
    for (step, (g, w)) in got.iter().zip(&want).enumerate() {
        let scale = w.iter().fold(0f32, |a, v| a.max(v.abs()));
        let worst = g.iter().zip(w).fold(0f32, |a, (g, w)| a.max((g - w).abs()));
        eprintln!(
            "{}: step {step}: worst logit difference {worst:.4} of scale {scale:.3}",
            path.display()
        );
        // The kernels quantize activations to 8 bits (as llama.cpp does): a few percent of the
        // logits' scale at most; a wrong block layout is off by the scale itself.
        assert!(
            worst < 0.05 * scale,
            "{}: step {step}: logits differ by {worst} (scale {scale})",
            path.display()
        );
    }
    // The normal generation path.
    let params = GenerateParams {
        max_new_tokens: Some(8),
        ..GenerateParams::default()
    };
    let g = chat(
        &quant,
        &[ChatMessage::new("user", "hi there")],
        &params,
        &CancelToken::new(),
        &mut |_| {},
    )
    .unwrap();
    assert!(!g.output_ids.is_empty(), "no tokens generated");
    quant.decoder.weight_kinds()
}

#[test]
fn a_q4_k_m_style_mix_runs_on_the_cpu_kernels_and_matches_the_dequantized_model() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("mix.gguf");
    write_model(&path, &q4_k_m_mix);
    let kinds = check_against_dequantized(&path);
    assert!(
        kinds.keys().all(|k| k.starts_with("kernel ")),
        "not all on the kernels: {kinds:?}"
    );
    for f in ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4K", "Q5K", "Q6K"] {
        assert!(kinds.contains_key(&format!("kernel {f}")), "{f} missing from {kinds:?}");
    }
    assert_eq!(kinds.values().sum::<usize>(), 7 * LAYERS + 1);
    let m = load_model(&path, &LoadOptions::default()).unwrap();
    assert!(m.decoder.kernels_read_all());
}

#[test]
fn a_matrix_of_another_type_runs_on_candles_product_beside_the_kernels() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("mix-q3k.gguf");
    // One Q3_K matrix in a q/k/v group whose others are on the kernels, and a Q2_K head.
    write_model(&path, &|name| match name {
        "1.attn_k" => GgmlDType::Q3K,
        "output" => GgmlDType::Q2K,
        other => q4_k_m_mix(other),
    });
    let kinds = check_against_dequantized(&path);
    assert_eq!(kinds.get("candle Q3K"), Some(&1), "{kinds:?}");
    assert_eq!(kinds.get("candle Q2K"), Some(&1), "{kinds:?}");
    let m = load_model(&path, &LoadOptions::default()).unwrap();
    // The CPU decode step needs every matrix in the kernels: this model decodes through candle.
    assert!(!m.decoder.kernels_read_all());
}

#[test]
fn a_tensor_type_nothing_here_reads_is_refused_naming_the_file_tensor_and_type() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("iq4.gguf");
    write_model(&path, &q4_k_m_mix);
    // Retype blk.1.attn_q.weight as IQ4_NL (id 20), as a file of llama.cpp's IQ quants has it:
    // its tensor info is the name, 2 dims, 2 u64 sizes, then the u32 type.
    let mut bytes = std::fs::read(&path).unwrap();
    let name = b"blk.1.attn_q.weight";
    let at = bytes.windows(name.len()).position(|w| w == name).unwrap() + name.len() + 4 + 16;
    assert_eq!(
        bytes[at..at + 4],
        2u32.to_le_bytes(),
        "blk.1.attn_q.weight should be Q4_0 (2)"
    );
    bytes[at..at + 4].copy_from_slice(&20u32.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    let err = load_model(&path, &LoadOptions::default())
        .err()
        .expect("an IQ4_NL tensor must be refused")
        .to_string();
    for part in ["iq4.gguf", "blk.1.attn_q.weight", "IQ4_NL"] {
        assert!(err.contains(part), "`{part}` missing from: {err}");
    }
}
