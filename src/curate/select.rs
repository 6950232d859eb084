//! s1's diversity sampler (S1_RECIPE.md §1 step 6), seeded so the same seed gives the same
//! selection: the seed set first; then until the target is reached, pick a domain (uniformly
//! over the non-empty domains while fewer than `uniform_until` are selected, after that from the
//! benchmark distribution), inside it rank questions by trace length (rank 0 = longest) and draw
//! one with weight 2^-rank; remove it; drop exhausted domains. Also the paper's ablation sets:
//! 1K-random, 1K-diverse (uniform domains, no length weighting) and 1K-longest.

use std::collections::{BTreeMap, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A question that may be selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// sha256(question)[:16]
    pub key: String,
    /// Its MSC domain code (e.g. "05").
    pub domain: String,
    /// Tokens of its thinking trace.
    pub trace_tokens: usize,
}

#[derive(Debug, Clone)]
pub struct SelectConfig {
    /// How many to select, the seed set included (s1: 1,000).
    pub target: usize,
    /// Below this many selected, domains are drawn uniformly (s1: 700).
    pub uniform_until: usize,
    /// Domain weights of the benchmark distribution (AIME counts + scaled GPQA counts); domains
    /// absent weigh 0. Empty: uniform throughout.
    pub benchmark_weights: HashMap<String, f64>,
    pub seed: u64,
}

impl SelectConfig {
    /// s1's settings with this benchmark distribution.
    pub fn s1(benchmark_weights: HashMap<String, f64>, seed: u64) -> Self {
        Self {
            target: 1000,
            uniform_until: 700,
            benchmark_weights,
            seed,
        }
    }
}

/// The benchmark distribution: AIME domain counts + GPQA domain counts scaled by
/// 0.5 * |AIME| / |GPQA|.
pub fn benchmark_weights(aime_domains: &[String], gpqa_domains: &[String]) -> HashMap<String, f64> {
    let mut w: HashMap<String, f64> = HashMap::new();
    for d in aime_domains {
        *w.entry(d.clone()).or_default() += 1.0;
    }
    if !gpqa_domains.is_empty() {
        let scale = 0.5 * aime_domains.len() as f64 / gpqa_domains.len() as f64;
        for d in gpqa_domains {
            *w.entry(d.clone()).or_default() += scale;
        }
    }
    w
}

/// Domains with their questions, longest trace first (ties by key, so the order is total).
fn by_domain(pool: &[Candidate]) -> BTreeMap<String, Vec<&Candidate>> {
    let mut m: BTreeMap<String, Vec<&Candidate>> = BTreeMap::new();
    for c in pool {
        m.entry(c.domain.clone()).or_default().push(c);
    }
    for v in m.values_mut() {
        v.sort_by(|a, b| b.trace_tokens.cmp(&a.trace_tokens).then_with(|| a.key.cmp(&b.key)));
    }
    m
}

/// Index drawn with probability proportional to `weights` (all zero: uniform).
fn weighted(rng: &mut StdRng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return rng.random_range(0..weights.len());
    }
    let mut u = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    weights.len() - 1
}

/// Runs the sampler: keys in the order selected, the seed set's first. Stops early when the
/// pool runs out.
pub fn s1_select(seed_set: &[Candidate], pool: &[Candidate], cfg: &SelectConfig) -> Vec<String> {
    draw(seed_set, pool, cfg, true)
}

/// 1K-diverse: domains uniformly throughout, uniform inside a domain.
pub fn diverse_select(pool: &[Candidate], target: usize, seed: u64) -> Vec<String> {
    let cfg = SelectConfig {
        target,
        uniform_until: usize::MAX,
        benchmark_weights: HashMap::new(),
        seed,
    };
    draw(&[], pool, &cfg, false)
}

fn draw(seed_set: &[Candidate], pool: &[Candidate], cfg: &SelectConfig, length_weighted: bool) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut selected: Vec<String> = seed_set.iter().map(|c| c.key.clone()).collect();
    let taken: std::collections::HashSet<&str> = selected.iter().map(String::as_str).collect();
    let rest: Vec<Candidate> = pool
        .iter()
        .filter(|c| !taken.contains(c.key.as_str()))
        .cloned()
        .collect();
    let mut domains = by_domain(&rest);
    while selected.len() < cfg.target && !domains.is_empty() {
        let names: Vec<&String> = domains.keys().collect();
        let pick = if selected.len() < cfg.uniform_until || cfg.benchmark_weights.is_empty() {
            rng.random_range(0..names.len())
        } else {
            let w: Vec<f64> = names
                .iter()
                .map(|d| cfg.benchmark_weights.get(*d).copied().unwrap_or(0.0))
                .collect();
            weighted(&mut rng, &w)
        };
        let name = names[pick].clone();
        let Some(qs) = domains.get_mut(&name) else { break };
        let i = if length_weighted {
            let w: Vec<f64> = (0..qs.len()).map(|r| (-(r as f64)).exp2()).collect();
            weighted(&mut rng, &w)
        } else {
            rng.random_range(0..qs.len())
        };
        selected.push(qs.remove(i).key.clone());
        if qs.is_empty() {
            domains.remove(&name);
        }
    }
    selected
}

/// 1K-random: a uniform sample without replacement.
pub fn random_select(pool: &[Candidate], target: usize, seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut keys: Vec<&Candidate> = pool.iter().collect();
    keys.sort_by(|a, b| a.key.cmp(&b.key));
    let mut out = Vec::new();
    while out.len() < target && !keys.is_empty() {
        let i = rng.random_range(0..keys.len());
        out.push(keys.swap_remove(i).key.clone());
    }
    out
}

/// 1K-longest: the longest traces (ties by key).
pub fn longest_select(pool: &[Candidate], target: usize) -> Vec<String> {
    let mut v: Vec<&Candidate> = pool.iter().collect();
    v.sort_by(|a, b| b.trace_tokens.cmp(&a.trace_tokens).then_with(|| a.key.cmp(&b.key)));
    v.into_iter().take(target).map(|c| c.key.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> Vec<Candidate> {
        // Domain "a": 50 questions, "b": 3, "c": 20; trace length = index.
        let mut v = Vec::new();
        for (d, n) in [("a", 50), ("b", 3), ("c", 20)] {
            for i in 0..n {
                v.push(Candidate {
                    key: format!("{d}{i:03}"),
                    domain: d.into(),
                    trace_tokens: i * 10,
                });
            }
        }
        v
    }

    #[test]
    fn seeded_and_reproducible_with_the_seed_set_first() {
        let p = pool();
        let seed_set = vec![p[5].clone()];
        let cfg = SelectConfig {
            target: 30,
            uniform_until: 20,
            benchmark_weights: HashMap::from([("c".to_string(), 1.0)]),
            seed: 7,
        };
        let a = s1_select(&seed_set, &p, &cfg);
        assert_eq!(a, s1_select(&seed_set, &p, &cfg), "same seed, same selection");
        assert_ne!(a, s1_select(&seed_set, &p, &SelectConfig { seed: 8, ..cfg.clone() }));
        assert_eq!(a.len(), 30);
        assert_eq!(a[0], "a005");
        let unique: std::collections::HashSet<&String> = a.iter().collect();
        assert_eq!(unique.len(), 30, "nothing twice");
        // After 20, only domain "c" has benchmark weight.
        assert!(a[20..].iter().all(|k| k.starts_with('c')), "{a:?}");
        // Domain "b" (3 questions) is exhausted, never over-drawn.
        assert!(a.iter().filter(|k| k.starts_with('b')).count() <= 3);
    }

    #[test]
    fn longer_traces_are_favoured_inside_a_domain() {
        let p: Vec<Candidate> = pool().into_iter().filter(|c| c.domain == "c").collect();
        let cfg = |seed| SelectConfig {
            target: 1,
            uniform_until: usize::MAX,
            benchmark_weights: HashMap::new(),
            seed,
        };
        // The first draw is the longest (weight 1 of ~2) about half the time.
        let firsts: Vec<String> = (0..400).map(|s| s1_select(&[], &p, &cfg(s))[0].clone()).collect();
        let longest = firsts.iter().filter(|k| *k == "c019").count();
        let second = firsts.iter().filter(|k| *k == "c018").count();
        assert!((160..240).contains(&longest), "{longest}");
        assert!((70..130).contains(&second), "{second}");
    }

    #[test]
    fn ablation_sets() {
        let p = pool();
        assert_eq!(longest_select(&p, 3), ["a049", "a048", "a047"]);
        let r = random_select(&p, 10, 1);
        assert_eq!(r, random_select(&p, 10, 1));
        assert_eq!(r.len(), 10);
        let d = diverse_select(&p, 9, 3);
        // Uniform over 3 domains: "b" gets its share although it is small.
        assert!(d.iter().any(|k| k.starts_with('b')), "{d:?}");
        let w = benchmark_weights(&["05".into(), "05".into(), "11".into()], &["81".into(), "05".into()]);
        assert_eq!(w["05"], 2.0 + 0.75);
        assert_eq!(w["81"], 0.75);
    }
}
