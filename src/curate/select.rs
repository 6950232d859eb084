//! s1's diversity sampler (S1_RECIPE.md §1 step 6), seeded so the same seed gives the same
//! selection: the seed set first; then until the target is reached, pick a domain (uniformly
//! over the non-empty domains while fewer than `uniform_until` are selected, after that from the
//! benchmark distribution), inside it rank questions by trace length (rank 0 = longest) and draw
//! one with weight 2^-rank; remove it; drop exhausted domains. Also the paper's ablation sets:
//! 1K-random, 1K-diverse (uniform domains, no length weighting) and 1K-longest.
//!
//! As s1's notebook (filter.ipynb cell 21), the seed set stays in the domains' pools: drawing a
//! seed question again adds nothing (s1's selection is a set) but removes it from its domain, so
//! the loop draws once more. [`SelectConfig::seed_set_in_pool`] off takes the seed set out of
//! the pools first (a named option; every draw then adds a question).

use std::collections::{BTreeMap, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A question that may be selected (borrowing its key and domain from the pool: a large pool is
/// not copied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// sha256(question)[:16]
    pub key: &'a str,
    /// Its MSC domain code (e.g. "05").
    pub domain: &'a str,
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
    /// Leave the seed set's questions in their domains' pools (s1), where a draw may pick one
    /// again without adding to the selection.
    pub seed_set_in_pool: bool,
}

impl SelectConfig {
    /// s1's settings with this benchmark distribution.
    pub fn s1(benchmark_weights: HashMap<String, f64>, seed: u64) -> Self {
        Self {
            target: 1000,
            uniform_until: 700,
            benchmark_weights,
            seed,
            seed_set_in_pool: true,
        }
    }
}

/// s1's benchmark distribution (filter.ipynb cell 17), from the domains of the AIME and the GPQA
/// questions among the difficulty survivors: each GPQA domain's count becomes
/// `int(count * 0.5 * |AIME| / |GPQA|)` (truncated, as Python's `int`), the AIME counts are added,
/// and domains whose sum is 0 are left out (a `Counter` sum keeps only positive counts). Without
/// GPQA questions the AIME counts alone (s1 would divide by zero).
pub fn benchmark_weights(aime_domains: &[String], gpqa_domains: &[String]) -> HashMap<String, f64> {
    let count = |ds: &[String]| {
        let mut m: HashMap<String, i64> = HashMap::new();
        for d in ds {
            *m.entry(d.clone()).or_default() += 1;
        }
        m
    };
    let mut w = count(aime_domains);
    if !gpqa_domains.is_empty() {
        // Python: 0.5*sum(aime)/sum(gpqa), left to right.
        let ratio = 0.5 * aime_domains.len() as f64 / gpqa_domains.len() as f64;
        for (d, n) in count(gpqa_domains) {
            *w.entry(d).or_default() += (n as f64 * ratio) as i64;
        }
    }
    w.into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(d, n)| (d, n as f64))
        .collect()
}

/// Domains with their questions, longest trace first (ties by key, so the order is total).
fn by_domain<'p, 'a>(pool: &[&'p Candidate<'a>]) -> BTreeMap<&'a str, Vec<&'p Candidate<'a>>> {
    let mut m: BTreeMap<&'a str, Vec<&'p Candidate<'a>>> = BTreeMap::new();
    for c in pool {
        m.entry(c.domain).or_default().push(c);
    }
    for v in m.values_mut() {
        // Sorted on a number made of the length and the key's first bytes, which decides almost
        // every comparison of a large pool without reading the keys; full keys break its ties.
        v.sort_by_cached_key(|c| (order_key(c), c.key));
    }
    m
}

/// Orders as (longest trace first, then key): the length's complement in the high half, the
/// key's first 8 bytes (zero-padded, big-endian, so numeric order is the bytes' order) in the low.
fn order_key(c: &Candidate) -> u128 {
    let mut head = [0u8; 8];
    let n = c.key.len().min(8);
    head[..n].copy_from_slice(&c.key.as_bytes()[..n]);
    ((!(c.trace_tokens as u64) as u128) << 64) | u64::from_be_bytes(head) as u128
}

/// Index drawn with probability proportional to `weights` (all zero: uniform).
fn weighted(rng: &mut StdRng, weights: &[f64]) -> usize {
    weighted_among(rng, weights, weights.len())
}

/// As [`weighted`] over `len` weights of which only the first `weights.len()` can be non-zero.
fn weighted_among(rng: &mut StdRng, weights: &[f64], len: usize) -> usize {
    let total: f64 = weights.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return rng.random_range(0..len);
    }
    let mut u = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    len - 1
}

/// From this rank on, s1's weight 2^-rank is exactly 0 in f64 (the smallest positive value is
/// 2^-1074), so such ranks are never drawn and need no weight.
const ZERO_WEIGHT_RANK: usize = 1100;

/// A rank among `n` questions drawn with weight 2^-rank. The same draw as weighing all `n` (the
/// weights past [`ZERO_WEIGHT_RANK`] add nothing), without computing a weight for each of a large
/// domain's questions at every draw.
fn length_weighted_rank(rng: &mut StdRng, n: usize) -> usize {
    let w: Vec<f64> = (0..n.min(ZERO_WEIGHT_RANK)).map(|r| (-(r as f64)).exp2()).collect();
    weighted_among(rng, &w, n)
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
        seed_set_in_pool: false,
    };
    draw(&[], pool, &cfg, false)
}

fn draw(seed_set: &[Candidate], pool: &[Candidate], cfg: &SelectConfig, length_weighted: bool) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut selected: Vec<String> = seed_set.iter().map(|c| c.key.to_string()).collect();
    let taken: std::collections::HashSet<&str> = seed_set.iter().map(|c| c.key).collect();
    let rest: Vec<&Candidate> = pool
        .iter()
        .filter(|c| cfg.seed_set_in_pool || !taken.contains(c.key))
        .collect();
    let mut domains = by_domain(&rest);
    while selected.len() < cfg.target && !domains.is_empty() {
        let names: Vec<&str> = domains.keys().copied().collect();
        let pick = if selected.len() < cfg.uniform_until || cfg.benchmark_weights.is_empty() {
            rng.random_range(0..names.len())
        } else {
            let w: Vec<f64> = names
                .iter()
                .map(|d| cfg.benchmark_weights.get(*d).copied().unwrap_or(0.0))
                .collect();
            weighted(&mut rng, &w)
        };
        let name = names[pick];
        let Some(qs) = domains.get_mut(name) else { break };
        let i = if length_weighted {
            length_weighted_rank(&mut rng, qs.len())
        } else {
            rng.random_range(0..qs.len())
        };
        let drawn = qs.remove(i).key;
        // A seed drawn again (only when the seed set stays in the pool) adds nothing.
        if !taken.contains(drawn) {
            selected.push(drawn.to_string());
        }
        if qs.is_empty() {
            domains.remove(name);
        }
    }
    selected
}

/// 1K-random: a uniform sample without replacement.
pub fn random_select(pool: &[Candidate], target: usize, seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut keys: Vec<&Candidate> = pool.iter().collect();
    keys.sort_by(|a, b| a.key.cmp(b.key));
    let mut out = Vec::new();
    while out.len() < target && !keys.is_empty() {
        let i = rng.random_range(0..keys.len());
        out.push(keys.swap_remove(i).key.to_string());
    }
    out
}

/// 1K-longest: the longest traces (ties by key).
pub fn longest_select(pool: &[Candidate], target: usize) -> Vec<String> {
    let mut v: Vec<&Candidate> = pool.iter().collect();
    v.sort_by(|a, b| b.trace_tokens.cmp(&a.trace_tokens).then_with(|| a.key.cmp(b.key)));
    v.into_iter().take(target).map(|c| c.key.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Domain "a": 50 questions, "b": 3, "c": 20 (key, domain, trace length = index).
    fn questions() -> Vec<(String, &'static str, usize)> {
        let mut v = Vec::new();
        for (d, n) in [("a", 50), ("b", 3), ("c", 20)] {
            for i in 0..n {
                v.push((format!("{d}{i:03}"), d, i * 10));
            }
        }
        v
    }

    fn pool<'a>(qs: &'a [(String, &'static str, usize)]) -> Vec<Candidate<'a>> {
        qs.iter()
            .map(|(key, domain, trace_tokens)| Candidate {
                key,
                domain,
                trace_tokens: *trace_tokens,
            })
            .collect()
    }

    #[test]
    fn seeded_and_reproducible_with_the_seed_set_first() {
        let qs = questions();
        let p = pool(&qs);
        let seed_set = vec![p[5]];
        let cfg = SelectConfig {
            target: 30,
            uniform_until: 20,
            benchmark_weights: HashMap::from([("c".to_string(), 1.0)]),
            seed: 7,
            seed_set_in_pool: true,
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
        let qs = questions();
        let p: Vec<Candidate> = pool(&qs).into_iter().filter(|c| c.domain == "c").collect();
        let cfg = |seed| SelectConfig {
            target: 1,
            uniform_until: usize::MAX,
            benchmark_weights: HashMap::new(),
            seed,
            seed_set_in_pool: true,
        };
        // The first draw is the longest (weight 1 of ~2) about half the time.
        let firsts: Vec<String> = (0..400).map(|s| s1_select(&[], &p, &cfg(s))[0].clone()).collect();
        let longest = firsts.iter().filter(|k| *k == "c019").count();
        let second = firsts.iter().filter(|k| *k == "c018").count();
        assert!((160..240).contains(&longest), "{longest}");
        assert!((70..130).contains(&second), "{second}");
    }

    #[test]
    fn domains_sort_longest_first_then_by_key() {
        let keys = ["b", "a", "ab", "a\u{0}", "abcdefghz", "abcdefgha", "zz", "abcdefgh"];
        let cs: Vec<Candidate> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Candidate {
                key: k,
                domain: "d",
                trace_tokens: if i == 6 { 10 } else { 5 },
            })
            .collect();
        let refs: Vec<&Candidate> = cs.iter().collect();
        let got: Vec<&str> = by_domain(&refs)["d"].iter().map(|c| c.key).collect();
        let mut want: Vec<&Candidate> = cs.iter().collect();
        want.sort_by(|a, b| b.trace_tokens.cmp(&a.trace_tokens).then_with(|| a.key.cmp(b.key)));
        let want: Vec<&str> = want.iter().map(|c| c.key).collect();
        assert_eq!(got, want);
        assert_eq!(got[0], "zz");
    }

    #[test]
    fn length_weighted_rank_is_the_draw_over_every_weight() {
        for n in [1, 2, 7, 1099, 1100, 1101, 5000] {
            let all: Vec<f64> = (0..n).map(|r| (-(r as f64)).exp2()).collect();
            for seed in 0..200 {
                let mut a = StdRng::seed_from_u64(seed);
                let mut b = StdRng::seed_from_u64(seed);
                assert_eq!(
                    length_weighted_rank(&mut a, n),
                    weighted(&mut b, &all),
                    "n {n} seed {seed}"
                );
                assert_eq!(a.random::<u64>(), b.random::<u64>(), "the same random numbers used");
            }
        }
    }

    #[test]
    fn ablation_sets() {
        let qs = questions();
        let p = pool(&qs);
        assert_eq!(longest_select(&p, 3), ["a049", "a048", "a047"]);
        let r = random_select(&p, 10, 1);
        assert_eq!(r, random_select(&p, 10, 1));
        assert_eq!(r.len(), 10);
        let d = diverse_select(&p, 9, 3);
        // Uniform over 3 domains: "b" gets its share although it is small.
        assert!(d.iter().any(|k| k.starts_with('b')), "{d:?}");
        let w = benchmark_weights(&["05".into(), "05".into(), "11".into()], &["81".into(), "05".into()]);
        assert_eq!(w["05"], 2.0 + 0.0, "int(1 * 0.75) = 0");
        assert!(
            !w.contains_key("81"),
            "a domain whose count is 0 is left out, as a Counter sum"
        );
        assert_eq!(w["11"], 1.0);
    }

    #[test]
    fn benchmark_weights_are_s1s_integers() {
        // 6 AIME, 4 GPQA: ratio 0.5 * 6 / 4 = 0.75; GPQA "81" x3 -> int(2.25) = 2, "05" x1 -> 0.
        let aime: Vec<String> = ["05", "05", "11", "11", "11", "60"].map(String::from).to_vec();
        let gpqa: Vec<String> = ["81", "81", "81", "05"].map(String::from).to_vec();
        let w = benchmark_weights(&aime, &gpqa);
        let want = HashMap::from([("05", 2.0), ("11", 3.0), ("60", 1.0), ("81", 2.0)]);
        assert_eq!(w.len(), want.len(), "{w:?}");
        for (d, n) in want {
            assert_eq!(w[d], n, "{d}");
        }
    }

    #[test]
    fn the_seed_set_stays_in_the_pool_as_in_s1() {
        // Domain "a": the seed s (longest) and a1; domain "b": b1. Target 2, uniform domains.
        // s1: the first draw is "a" (1/2), then s (2/3, wasted: s was selected) or a1 (1/3); after
        // a wasted draw "a" holds only a1 and the next draw picks a1 or b1 (1/2 each). So
        // P(a1) = 1/2 * (1/3 + 2/3 * 1/2) = 1/3. With the seed set out of the pool P(a1) = 1/2.
        let cs = [("s", "a", 10), ("a1", "a", 5), ("b1", "b", 5)].map(|(key, domain, trace_tokens)| Candidate {
            key,
            domain,
            trace_tokens,
        });
        let share = |in_pool: bool| {
            let n = 3000;
            let hits = (0..n)
                .filter(|&seed| {
                    let cfg = SelectConfig {
                        target: 2,
                        uniform_until: usize::MAX,
                        benchmark_weights: HashMap::new(),
                        seed,
                        seed_set_in_pool: in_pool,
                    };
                    let got = s1_select(&cs[..1], &cs, &cfg);
                    assert_eq!(got.len(), 2);
                    assert_eq!(got[0], "s");
                    got[1] == "a1"
                })
                .count();
            hits as f64 / n as f64
        };
        let s1 = share(true);
        assert!((s1 - 1.0 / 3.0).abs() < 0.04, "{s1}");
        let out = share(false);
        assert!((out - 0.5).abs() < 0.04, "{out}");
    }
}
