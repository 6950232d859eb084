//! The s1 sampler on real data: the 4,500 questions of pool/math_test_minus_math500.jsonl, keyed
//! by sha256, with their reference solutions standing in for thinking traces (offline there is
//! no reasoning model to write them; lengths from the real Qwen tokenizer) and their MATH subject
//! standing in for the MSC domain (the pool is not labelled). A 1,000-question selection is the
//! same for the same seed, spreads over every subject while domains are drawn uniformly, favours
//! long traces, and follows the benchmark distribution after 700.

mod common;

use std::collections::HashMap;

use s1_studio::curate::select::{longest_select, random_select, s1_select, Candidate, SelectConfig};
use s1_studio::data::question_key;

/// The pool's questions: (key, subject as the domain, solution tokens as the trace length).
fn questions() -> Vec<(String, String, usize)> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/pool/math_test_minus_math500.jsonl");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("this test needs {}: {e}", p.display()));
    let tok = tokenizers::Tokenizer::from_file(common::qwen_tokenizer()).unwrap();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let solution = v["solution"].as_str().unwrap();
            (
                question_key(v["problem"].as_str().unwrap()),
                v["type"].as_str().unwrap().to_string(),
                tok.encode(solution, false).unwrap().len(),
            )
        })
        .collect()
}

fn pool(qs: &[(String, String, usize)]) -> Vec<Candidate<'_>> {
    qs.iter()
        .map(|(key, domain, trace_tokens)| Candidate {
            key,
            domain,
            trace_tokens: *trace_tokens,
        })
        .collect()
}

#[test]
fn a_seeded_1k_selection_from_the_real_pool() {
    let qs = questions();
    let p = pool(&qs);
    assert_eq!(p.len(), 4500);
    let weights = HashMap::from([
        ("Number Theory".to_string(), 2.0),
        ("Counting & Probability".to_string(), 1.0),
    ]);
    let cfg = SelectConfig::s1(weights, 42);
    let a = s1_select(&[], &p, &cfg);
    assert_eq!(a.len(), 1000);
    assert_eq!(a, s1_select(&[], &p, &cfg), "same seed, same selection");
    assert_ne!(
        a,
        s1_select(
            &[],
            &p,
            &SelectConfig {
                seed: 43,
                ..cfg.clone()
            }
        )
    );
    let unique: std::collections::HashSet<&String> = a.iter().collect();
    assert_eq!(unique.len(), 1000);
    let by_key: HashMap<&str, &Candidate> = p.iter().map(|c| (c.key, c)).collect();
    let domain = |k: &String| by_key[k.as_str()].domain;
    // Uniform domains for the first 700: every subject, each at least 60 of the 700.
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for k in &a[..700] {
        *counts.entry(domain(k)).or_default() += 1;
    }
    assert_eq!(counts.len(), 7, "{counts:?}");
    assert!(counts.values().all(|&n| n >= 60), "{counts:?}");
    // Then only the benchmark's domains, about 2:1.
    let tail: Vec<&str> = a[700..].iter().map(domain).collect();
    assert!(
        tail.iter()
            .all(|d| *d == "Number Theory" || *d == "Counting & Probability"),
        "{tail:?}"
    );
    let nt = tail.iter().filter(|d| **d == "Number Theory").count();
    assert!((150..250).contains(&nt), "{nt} of 300 from Number Theory");
    // Length-favouring: the selection's traces are far longer than the pool's.
    let mean = |ks: &[String]| ks.iter().map(|k| by_key[k.as_str()].trace_tokens as f64).sum::<f64>() / ks.len() as f64;
    let pool_mean = p.iter().map(|c| c.trace_tokens as f64).sum::<f64>() / p.len() as f64;
    let random = random_select(&p, 1000, 42);
    assert!(mean(&a) > 1.5 * pool_mean, "{} vs pool {pool_mean}", mean(&a));
    assert!((mean(&random) - pool_mean).abs() < 0.2 * pool_mean);
    assert!(mean(&longest_select(&p, 1000)) >= mean(&a));
    eprintln!(
        "mean trace tokens: pool {pool_mean:.0}, s1 selection {:.0}, random {:.0}",
        mean(&a),
        mean(&random)
    );
}
