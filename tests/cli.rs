//! The binary: init-model, then generate with a thinking budget, as a user runs them.

mod common;

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_s1-studio"))
}

#[test]
fn init_model_then_generate_json_within_budget() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("tiny");
    let st = bin()
        .args([
            "init-model",
            "--arch",
            "qwen2",
            "--hidden",
            "32",
            "--layers",
            "2",
            "--heads",
            "4",
            "--kv-heads",
            "2",
        ])
        .args([
            "--intermediate",
            "64",
            "--tie-embeddings",
            "--chat-template",
            "qwen2.5",
            "--seed",
            "3",
            "--tokenizer",
        ])
        .arg(common::qwen_tokenizer())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    for max in ["0", "7", "auto"] {
        let r = bin()
            .args(["generate", "--model"])
            .arg(&out)
            .args([
                "--prompt",
                "What is 2+2?",
                "--max-thinking",
                max,
                "--max-tokens",
                "140",
                "--json",
            ])
            .args(["--temperature", "0.8", "--seed", "1"])
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
        for key in [
            "thinking",
            "answer",
            "thinking_tokens",
            "answer_tokens",
            "waits_injected",
            "forced_end",
            "tokens_per_s",
        ] {
            assert!(v.get(key).is_some(), "{key} missing from {v}");
        }
        let limit = match max {
            "auto" => 140 - 2 - 6 - 100,
            n => n.parse().unwrap(),
        };
        let thinking = v["thinking_tokens"].as_u64().unwrap();
        assert!(thinking <= limit, "thinking {thinking} > {limit}");
        // A random model rambles: the budget is what ends its thinking.
        assert_eq!(v["forced_end"], true, "{v}");
    }
}

/// A tiny random Qwen3 (head_dim apart from hidden / heads, per-head q/k norms, no bias) from
/// init-model loads and generates under a thinking budget; --head-dim on another architecture
/// is refused naming the flag.
#[test]
fn init_model_qwen3_then_generate() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("q3");
    let init = |arch: &str, out: &std::path::Path| {
        bin()
            .args([
                "init-model",
                "--arch",
                arch,
                "--hidden",
                "32",
                "--layers",
                "2",
                "--heads",
                "4",
            ])
            .args([
                "--kv-heads",
                "2",
                "--intermediate",
                "64",
                "--head-dim",
                "16",
                "--tie-embeddings",
            ])
            .args(["--chat-template", "qwen2.5", "--tokenizer"])
            .arg(common::qwen_tokenizer())
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let st = init("qwen3", &out);
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["model_type"], "qwen3", "{cfg}");
    assert_eq!(cfg["head_dim"], 16, "{cfg}");
    let names = candle_core::safetensors::load(out.join("model.safetensors"), &candle_core::Device::Cpu).unwrap();
    assert!(names.contains_key("model.layers.1.self_attn.k_norm.weight"));
    assert!(!names.contains_key("model.layers.0.self_attn.q_proj.bias"));
    let r = bin()
        .args(["generate", "--model"])
        .arg(&out)
        .args([
            "--prompt",
            "What is 2+2?",
            "--max-thinking",
            "7",
            "--max-tokens",
            "40",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert!(v["thinking_tokens"].as_u64().unwrap() <= 7, "{v}");
    let bad = init("qwen2", &d.path().join("q2"));
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--head-dim is for qwen3"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn bad_model_path_is_an_error_not_a_panic() {
    let r = bin()
        .args(["generate", "--model", "/no/such/model", "--prompt", "hi"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("/no/such/model") && err.contains("not found"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn min_above_max_is_reported() {
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 512);
    let r = bin()
        .args(["generate", "--model"])
        .arg(d.path())
        .args(["--prompt", "hi", "--min-thinking", "50", "--max-thinking", "10"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("minimum thinking (50 tokens) is above the maximum (10 tokens)"),
        "{err}"
    );
}

/// bf16 training is a CUDA feature: on the CPU it is refused with a clear message, before any work.
#[test]
fn bf16_training_on_the_cpu_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let r = bin()
        .args(["train", "--model"])
        .arg(d.path())
        .args(["--data", "rows.jsonl", "--out"])
        .arg(d.path().join("out"))
        .args(["--dtype", "bf16"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("bf16 training needs a CUDA device"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// `bench grads` checks the loss and every gradient against the transformers fixtures.
#[test]
fn bench_grads_checks_the_fixtures_on_the_cpu() {
    let r = bin()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["bench", "grads", "--device", "cpu"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success(), "{out}\n{}", String::from_utf8_lossy(&r.stderr));
    assert!(out.contains("all gradients within 1e-4 of the reference"), "{out}");
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("qwen2") || l.starts_with("llama"))
            .count(),
        12,
        "{out}"
    );
    // The qwen2 fixture also checks both loss weightings.
    assert_eq!(out.lines().filter(|l| l.contains("-weighted")).count(), 6, "{out}");
}

/// `bench attention --kernel` picks CUDA kernels: on the CPU it is refused with a message naming
/// it, and without it the CPU table (which S1_FLASH_KERNEL does not touch) keeps its columns.
#[test]
fn bench_attention_kernel_choice_is_for_cuda_only() {
    let r = bin()
        .args(["bench", "attention", "--device", "cpu", "--seq", "16", "--runs", "1"])
        .args(["--no-baselines", "--kernel", "both"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success() && err.contains("--kernel picks the CUDA kernels"),
        "{err}"
    );
    let r = bin()
        .env("S1_FLASH_KERNEL", "v9")
        .args([
            "bench",
            "attention",
            "--device",
            "cpu",
            "--seq",
            "16",
            "--runs",
            "1",
            "--no-baselines",
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success(), "{out}\n{}", String::from_utf8_lossy(&r.stderr));
    assert!(out.contains("tiled ms") && !out.contains("v1 tiled ms"), "{out}");
}

/// `grade` writes extracted/reference/verdict per row, prints the summary, and names the file
/// and line of a row without the response field.
#[test]
fn grade_writes_verdicts_and_names_bad_rows() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"r": "<|im_start|>answer\nFinal Answer: $\\boxed{\\dfrac{1}{2}}$", "a": "0.5"}"#,
            "\n",
            r#"{"r": "so \\boxed{3}", "a": "4"}"#,
            "\n",
            r#"{"r": "I am not sure", "a": "4"}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = d.path().join("out.jsonl");
    let r = bin()
        .args(["grade", "--input"])
        .arg(&input)
        .args([
            "--response-field",
            "r",
            "--reference-field",
            "a",
            "--extraction",
            "lenient",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success(), "{stdout}{}", String::from_utf8_lossy(&r.stderr));
    assert!(stdout.contains("accuracy 33.3%"), "{stdout}");
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let verdicts: Vec<&str> = rows.iter().map(|r| r["verdict"].as_str().unwrap()).collect();
    assert_eq!(verdicts, ["correct", "incorrect", "incorrect"]);
    assert_eq!(rows[0]["extracted"], "\\dfrac{1}{2}");
    assert!(rows[2]["extracted"].is_null());

    // s1's extraction (the default) reads forced answers: what follows `Final Answer:`.
    let s1_input = d.path().join("s1.jsonl");
    std::fs::write(
        &s1_input,
        concat!(
            r#"{"r": "<|im_start|>think\nso 5\n<|im_start|>answer\nFinal Answer: 204", "a": "204"}"#,
            "\n",
            r#"{"r": "<|im_start|>think\n\\boxed{1}<|im_start|>answer\nFinal Answer: 023", "a": "23"}"#,
            "\n",
        ),
    )
    .unwrap();
    let r = bin()
        .args(["grade", "--kind", "aime", "--input"])
        .arg(&s1_input)
        .args(["--response-field", "r", "--reference-field", "a", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success(), "{stdout}{}", String::from_utf8_lossy(&r.stderr));
    assert!(
        stdout.contains("accuracy 100.0%") && stdout.contains("S1 extraction"),
        "{stdout}"
    );
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows[0]["extracted"], "204");
    assert_eq!(rows[1]["extracted"], "023");

    std::fs::write(&input, "{\"r\": \"x\", \"a\": \"1\"}\n{\"a\": \"1\"}\n").unwrap();
    let r = bin()
        .args(["grade", "--input"])
        .arg(&input)
        .args(["--response-field", "r", "--reference-field", "a"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1));
    assert!(err.contains("in.jsonl:2: no field `r`"), "{err}");
}

/// `--device` is read by clap: a misspelt device is a usage error naming the flag, for every
/// subcommand that loads a model.
#[test]
fn a_bad_device_names_the_flag() {
    let d = tempfile::tempdir().unwrap();
    let runs: [&[&str]; 5] = [
        &["generate", "--model", "m", "--prompt", "hi"],
        &["eval", "--model", "m", "--bench", "math500"],
        &["train", "--model", "m", "--data", "rows.jsonl", "--out", "out"],
        &["curate", "attempt", "--model", "m"],
        &["curate", "traces", "--model", "m"],
    ];
    for args in runs {
        let r = bin()
            .current_dir(d.path())
            .args(args)
            .args(["--device", "tpu"])
            .output()
            .unwrap();
        assert_eq!(r.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(
            err.contains("invalid value 'tpu' for '--device <DEVICE>'") && err.contains("expected cpu, cuda or cuda:N"),
            "{args:?}: {err}"
        );
    }
}

/// On a build without CUDA, `--device cuda` is refused with the reason rather than quietly run
/// on the CPU.
#[test]
fn cuda_without_cuda_support_is_refused() {
    if cfg!(feature = "cuda") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(&d.path().join("model"), 256);
    let model = d.path().join("model");
    let model = model.to_str().unwrap();
    let pool = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/curate/pool/aime_1983_2023.jsonl");
    let r = bin()
        .current_dir(d.path())
        .args(["curate", "import", pool])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let runs: [&[&str]; 4] = [
        &["generate", "--model", model, "--prompt", "hi", "--max-tokens", "4"],
        &[
            "eval",
            "--model",
            model,
            "--bench",
            "math500",
            "--limit",
            "1",
            "--max-tokens",
            "4",
        ],
        &["train", "--model", model, "--data", "rows.jsonl", "--out", "out"],
        &["curate", "attempt", "--model", model],
    ];
    for args in runs {
        let r = bin()
            .current_dir(d.path())
            .args(args)
            .args(["--device", "cuda"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("device `cuda:0`: this build has no CUDA support"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// `generate` says the waits the minimum asked for apart from the Waits setting's, in its text
/// summary and in --json (`waits_injected` counts both): SmolLM2 (greedy) ends its thinking
/// early again and again under a minimum of 40 thinking tokens with one wait allowed.
#[test]
fn generate_reports_the_minimums_waits_apart() {
    let gguf = common::smollm2_gguf();
    let run = |json: bool| {
        let mut c = bin();
        c.args(["generate", "--model"]).arg(&gguf).args([
            "--prompt",
            "What is 2+2?",
            "--min-thinking",
            "40",
            "--waits",
            "1",
            "--max-tokens",
            "120",
        ]);
        if json {
            c.arg("--json");
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out
    };
    let v: serde_json::Value = serde_json::from_slice(&run(true).stdout).unwrap();
    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} missing from {v}"));
    let (total, for_min, from_setting) = (n("waits_injected"), n("waits_for_min"), n("waits_from_setting"));
    assert!(for_min > 0, "the minimum asked for no wait: {v}");
    assert!(from_setting <= 1, "more waits than the setting's 1: {v}");
    assert_eq!(from_setting + for_min, total, "{v}");
    let summary = String::from_utf8_lossy(&run(false).stderr).to_string();
    assert!(summary.contains(&format!("{for_min} for the minimum")), "{summary}");
    assert!(!summary.contains(&format!(" {total} waits,")), "{summary}");
}
