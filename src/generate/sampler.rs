//! Token sampling: greedy, temperature, top-k, top-p, seeded; ids the tokenizer does not know
//! (embedding rows past the vocabulary) and banned ids are never picked.

use crate::model::argmax;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How to pick the next token.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SamplingParams {
    /// 0 is greedy.
    pub temperature: f64,
    /// Nucleus sampling; 1.0 keeps every token.
    pub top_p: f64,
    /// Keep only the k most likely tokens; 0 keeps every token.
    pub top_k: usize,
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            seed: 0,
        }
    }
}

/// A seeded sampler.
pub struct Sampler {
    params: SamplingParams,
    rng: StdRng,
    /// Ids above this are masked (the tokenizer's highest id).
    max_token_id: u32,
}

impl Sampler {
    pub fn new(params: SamplingParams, max_token_id: u32) -> Self {
        Self {
            rng: StdRng::seed_from_u64(params.seed),
            params,
            max_token_id,
        }
    }

    /// Picks a token from `logits`, never one of `banned` nor one above the tokenizer's range.
    pub fn sample(&mut self, logits: &mut [f32], banned: &[u32]) -> u32 {
        let limit = (self.max_token_id as usize + 1).min(logits.len());
        for x in logits[limit..].iter_mut() {
            *x = f32::NEG_INFINITY;
        }
        for &b in banned {
            if let Some(x) = logits.get_mut(b as usize) {
                *x = f32::NEG_INFINITY;
            }
        }
        for x in logits.iter_mut() {
            if x.is_nan() {
                *x = f32::NEG_INFINITY;
            }
        }
        let logits = &logits[..limit];
        if self.params.temperature <= 0.0 {
            return argmax(logits);
        }
        let inv_t = 1.0 / self.params.temperature as f32;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if max == f32::NEG_INFINITY {
            return 0;
        }
        // Candidates sorted by probability, cut by top-k, then by top-p.
        let mut cand: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter(|(_, &l)| l > f32::NEG_INFINITY)
            .map(|(i, &l)| (i as u32, ((l - max) * inv_t).exp()))
            .collect();
        let k = if self.params.top_k == 0 {
            cand.len()
        } else {
            self.params.top_k.min(cand.len())
        };
        let total: f32 = cand.iter().map(|c| c.1).sum();
        let p = self.params.top_p.clamp(0.0, 1.0) as f32;
        let need_sorted = k < cand.len() || p < 1.0;
        if need_sorted {
            // Sort only a head large enough for top-k / top-p; most mass sits in few tokens.
            let mut head = k.clamp(1, 1024);
            loop {
                let head_n = head.min(cand.len());
                if head_n < cand.len() {
                    cand.select_nth_unstable_by(head_n - 1, |a, b| b.1.total_cmp(&a.1));
                }
                cand[..head_n].sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
                let mut keep = head_n.min(k);
                if p < 1.0 {
                    let mut cum = 0.0;
                    let mut reached = None;
                    for (i, c) in cand[..keep].iter().enumerate() {
                        cum += c.1 / total;
                        if cum >= p {
                            reached = Some(i + 1);
                            break;
                        }
                    }
                    match reached {
                        Some(n) => keep = n,
                        None if head_n < k && head_n < cand.len() => {
                            head = (head * 8).min(cand.len());
                            continue;
                        }
                        None => {}
                    }
                }
                cand.truncate(keep);
                break;
            }
        }
        let sum: f32 = cand.iter().map(|c| c.1).sum();
        let mut r = self.rng.random::<f32>() * sum;
        for &(id, w) in &cand {
            if r < w {
                return id;
            }
            r -= w;
        }
        cand.last().map_or(0, |c| c.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(temperature: f64, top_p: f64, top_k: usize, seed: u64) -> SamplingParams {
        SamplingParams {
            temperature,
            top_p,
            top_k,
            seed,
        }
    }

    #[test]
    fn greedy_masks_ids_past_the_tokenizer_and_banned_ids() {
        let mut s = Sampler::new(SamplingParams::default(), 3);
        let mut l = vec![0.0, 1.0, 2.0, 0.5, 9.0, 9.0];
        assert_eq!(s.sample(&mut l, &[]), 2);
        let mut l = vec![0.0, 1.0, 2.0, 0.5, 9.0];
        assert_eq!(s.sample(&mut l, &[2]), 1);
    }

    #[test]
    fn seeded_sampling_repeats_and_respects_top_k_and_top_p() {
        let logits: Vec<f32> = (0..1000).map(|i| (i % 97) as f32 * 0.05).collect();
        let draw = |p: SamplingParams| {
            let mut s = Sampler::new(p, 999);
            (0..200).map(|_| s.sample(&mut logits.clone(), &[])).collect::<Vec<_>>()
        };
        let a = draw(params(1.0, 1.0, 0, 7));
        assert_eq!(a, draw(params(1.0, 1.0, 0, 7)));
        assert_ne!(a, draw(params(1.0, 1.0, 0, 8)));
        // top-k 3: the three largest logits are ids 96, 193, 290 (value 4.8), … all 96 mod 97.
        for id in draw(params(1.0, 1.0, 3, 1)) {
            assert_eq!(id % 97, 96, "{id}");
        }
        // A sharp distribution with top-p 0.5 keeps only the dominant token.
        let mut sharp = vec![0.0f32; 50];
        sharp[7] = 10.0;
        let mut s = Sampler::new(params(1.0, 0.5, 0, 3), 49);
        for _ in 0..50 {
            assert_eq!(s.sample(&mut sharp.clone(), &[]), 7);
        }
        // Top-p over the whole vocabulary still samples more than one token.
        let distinct: std::collections::HashSet<u32> = draw(params(1.0, 0.95, 0, 5)).into_iter().collect();
        assert!(distinct.len() > 20);
    }
}
