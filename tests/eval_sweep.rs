//! `s1-studio eval` end to end on a tiny model over a slice of MATH500: samples with every field,
//! metrics with Control/Scaling/Performance, the SVG plot; a rerun resumes (also after a write
//! cut off mid-line); bad sweeps and benchmark files get clear errors.

mod common;

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_s1-studio"))
}

fn lines(p: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn sweep_writes_samples_metrics_and_plot_and_resumes() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("model");
    common::tiny_qwen(&model, 512);
    let out = d.path().join("out");
    let run = || {
        let r = bin()
            .args(["eval", "--model"])
            .arg(&model)
            .args([
                "--bench",
                "math500",
                "--limit",
                "3",
                "--max-thinking",
                "8,24",
                "--waits",
                "0,1",
            ])
            .args(["--max-tokens", "48", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&r.stdout).into_owned();
        assert!(r.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&r.stderr));
        stdout
    };
    let stdout = run();
    let samples = lines(&out.join("samples.jsonl"));
    assert_eq!(samples.len(), 12, "3 questions x 4 settings");
    for key in [
        "setting",
        "prompt",
        "thinking",
        "answer",
        "extracted",
        "reference",
        "verdict",
        "thinking_tokens",
        "waits_injected",
        "forced_end",
    ] {
        assert!(samples.iter().all(|s| s.get(key).is_some()), "every sample has `{key}`");
    }
    for s in &samples {
        let max: u64 = if s["setting"].as_str().unwrap().starts_with("max=8 ") {
            8
        } else {
            24
        };
        assert!(s["thinking_tokens"].as_u64().unwrap() <= max, "{s}");
    }
    assert_eq!(samples[0]["reference"], "\\left( 3, \\frac{\\pi}{2} \\right)");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["settings"].as_array().unwrap().len(), 4);
    assert_eq!(m["control"], 100.0, "budget forcing keeps every run within its budget");
    assert!(m.get("scaling").is_some() && m["performance"].is_number(), "{m}");
    // Control counts settings (the paper's); the share of runs is a second, named figure; the
    // units are stated.
    assert_eq!(m["control_runs"], 100.0, "{m}");
    assert!(
        m["settings"].as_array().unwrap().iter().all(|s| s["in_bounds"] == true),
        "{m}"
    );
    let units = &m["units"];
    assert!(
        units["scaling"]
            .as_str()
            .unwrap()
            .starts_with("accuracy percentage points per thinking token"),
        "{m}"
    );
    assert!(
        units["scaling_per_1k_tokens"]
            .as_str()
            .unwrap()
            .contains("per 1,000 thinking tokens"),
        "{m}"
    );
    assert!(units["control"].as_str().unwrap().contains("settings"), "{m}");
    let svg = std::fs::read_to_string(out.join("scaling.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("max=24 waits=1"), "{svg}");
    assert!(svg.contains("accuracy points per 1k thinking tokens"), "{svg}");
    assert!(stdout.contains("Control 100.0%"), "{stdout}");

    // A rerun finds everything done.
    let stdout = run();
    assert_eq!(lines(&out.join("samples.jsonl")).len(), 12);
    assert!(stdout.contains("setting"), "{stdout}");

    // A run killed mid-write: 5 whole lines and half of the 6th; the rerun fills in the rest.
    let text = std::fs::read_to_string(out.join("samples.jsonl")).unwrap();
    let keep: Vec<&str> = text.lines().take(6).collect();
    let cut = format!("{}\n{}", keep[..5].join("\n"), &keep[5][..keep[5].len() / 2]);
    std::fs::write(out.join("samples.jsonl"), cut).unwrap();
    run();
    let again = lines(&out.join("samples.jsonl"));
    assert_eq!(again.len(), 12, "the cut line is regenerated, nothing twice");
    let mut keys: Vec<String> = again
        .iter()
        .map(|s| format!("{} {} {}", s["setting"], s["question_id"], s["sample"]))
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 12);
}

/// The baselines on the same sweep: the token-conditional prompt, rejection sampling, and
/// majority vote over 2 samples; each curve gets its own Control/Scaling/Performance.
#[test]
fn baselines_and_majority_vote() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("model");
    common::tiny_qwen(&model, 512);
    let out = d.path().join("out");
    let r = bin()
        .args(["eval", "--model"])
        .arg(&model)
        .args([
            "--bench",
            "gsm8k",
            "--limit",
            "2",
            "--max-thinking",
            "8",
            "--waits",
            "0",
        ])
        .args([
            "--baselines",
            "prompt,reject",
            "--reject-tries",
            "2",
            "--samples",
            "2",
            "--temperature",
            "0.9",
        ])
        .args(["--max-tokens", "40", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&r.stderr));
    let samples = lines(&out.join("samples.jsonl"));
    assert_eq!(samples.len(), 12, "3 settings x 2 questions x 2 samples");
    for s in &samples {
        let setting = s["setting"].as_str().unwrap();
        let attempts = s["attempts"].as_u64().unwrap();
        let tokens = s["thinking_tokens"].as_u64().unwrap();
        match setting {
            "max=8 waits=0" => assert!(tokens <= 8 && attempts == 1, "{s}"),
            "prompt max=8" => {
                assert!(
                    s["prompt"].as_str().unwrap().ends_with("Think for up to 8 tokens."),
                    "{s}"
                );
                assert_eq!(attempts, 1);
            }
            "reject max=8" => assert!(attempts <= 2 && (tokens <= 8 || attempts == 2), "{s}"),
            other => panic!("unexpected setting {other}"),
        }
    }
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let series: Vec<&str> = m["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["series"].as_str().unwrap())
        .collect();
    assert_eq!(
        series,
        ["budget forcing", "token-conditional prompt", "rejection sampling"]
    );
    assert!(
        m["settings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["majority_accuracy"].is_number()),
        "{m}"
    );
    let svg = std::fs::read_to_string(out.join("scaling.svg")).unwrap();
    assert!(
        svg.contains("rejection sampling") && svg.contains("majority vote"),
        "{svg}"
    );
}

/// A batched sweep writes the same samples as one generated one at a time (greedy).
#[test]
fn batched_sweep_equals_one_at_a_time() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("model");
    common::tiny_qwen(&model, 512);
    let run = |batch: &str| {
        let out = d.path().join(format!("out-{batch}"));
        let r = bin()
            .args(["eval", "--model"])
            .arg(&model)
            .args([
                "--bench",
                "math500",
                "--limit",
                "5",
                "--max-thinking",
                "6,12",
                "--waits",
                "0,2",
            ])
            .args(["--max-tokens", "30", "--batch", batch, "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let mut rows: Vec<String> = lines(&out.join("samples.jsonl"))
            .iter()
            .map(|s| {
                format!(
                    "{} {} {} {}",
                    s["setting"], s["question_id"], s["thinking"], s["answer"]
                )
            })
            .collect();
        rows.sort();
        rows
    };
    let one = run("1");
    assert_eq!(one.len(), 20);
    assert_eq!(run("4"), one);
}

/// `--preset s1` runs s1's own settings (eval/commands.sh): budgets 500 ... 16000 and auto,
/// auto with 1, 2, 4, 6 Waits.
#[test]
fn the_s1_preset_sweeps_s1s_settings() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("model");
    common::tiny_qwen(&model, 512);
    let out = d.path().join("out");
    let r = bin()
        .args(["eval", "--model"])
        .arg(&model)
        .args(["--bench", "aime24", "--limit", "1", "--preset", "s1"])
        .args(["--max-tokens", "24", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let settings: Vec<String> = lines(&out.join("samples.jsonl"))
        .iter()
        .map(|s| s["setting"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        settings,
        [
            "max=500 waits=0",
            "max=1000 waits=0",
            "max=2000 waits=0",
            "max=4000 waits=0",
            "max=8000 waits=0",
            "max=16000 waits=0",
            "max=auto waits=0",
            "max=auto waits=1",
            "max=auto waits=2",
            "max=auto waits=4",
            "max=auto waits=6",
        ]
    );
    let e = bin()
        .args(["eval", "--model", "/nonexistent", "--bench", "aime24", "--preset", "s2"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(
        err.contains("--preset: preset `s2` is not one of s1, s1-ablations"),
        "{err}"
    );
    let e = bin()
        .args(["eval", "--model", "/nonexistent", "--bench", "aime24", "--preset", "s1"])
        .args(["--max-thinking", "512"])
        .output()
        .unwrap();
    assert!(!e.status.success());
}

#[test]
fn auto_subtracts_the_longest_prompt_of_the_sweep() {
    // s1 (vllm_causallms.py): auto = max_gen_toks - the longest prompt of the batch - thinking
    // start (2 tokens) - "<|im_start|>answer\nFinal Answer:" (6) - 100, one budget for every
    // question of the task (lm-eval hands vLLM all of them at once).
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("model");
    common::tiny_qwen(&model, 512);
    let out = d.path().join("out");
    let r = bin()
        .args(["eval", "--model"])
        .arg(&model)
        .args(["--bench", "math500", "--limit", "3", "--max-thinking", "auto"])
        .args(["--max-tokens", "400", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let budgets: Vec<u64> = lines(&out.join("samples.jsonl"))
        .iter()
        .map(|s| s["max_thinking"].as_u64().unwrap())
        .collect();
    assert_eq!(budgets.len(), 3);
    assert!(
        budgets.iter().all(|&b| b == budgets[0]),
        "one budget for the task: {budgets:?}"
    );
    // Less than 400 - 108 by the longest prompt (the chat template's system prompt alone is
    // over 20 tokens).
    assert!(budgets[0] + 20 < 400 - 108, "{budgets:?}");
}

#[test]
fn bad_sweeps_and_benchmarks_are_clear_errors() {
    let d = tempfile::tempdir().unwrap();
    let err = |args: &[&str]| {
        let r = bin()
            .arg("eval")
            .args(["--model", "/nonexistent"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(r.status.code(), Some(1));
        String::from_utf8_lossy(&r.stderr).into_owned()
    };
    let e = err(&["--bench", "math500", "--max-thinking", "512,lots"]);
    assert!(e.contains("`lots`: expected a number of tokens"), "{e}");
    let e = err(&["--bench", "math500", "--waits", "1,x"]);
    assert!(e.contains("waits: `x` is not a number"), "{e}");
    let e = err(&["--bench", "math500", "--max-thinking", ""]);
    assert!(e.contains("empty sweep"), "{e}");
    let f = d.path().join("b.jsonl");
    std::fs::write(&f, "{\"problem\": \"What is 1+1?\"}\n").unwrap();
    let e = err(&["--bench", f.to_str().unwrap()]);
    assert!(e.contains("b.jsonl:1: no answer column"), "{e}");
    let e = err(&["--bench", "math500", "--baselines", "vote"]);
    assert!(e.contains("`vote` is not one of prompt, reject"), "{e}");
    let e = err(&["--bench", "mathh500"]);
    assert!(e.contains("neither a named benchmark"), "{e}");
}
