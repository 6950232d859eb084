//! Question vectors without a model: hashed word n-gram TF-IDF with a seeded random projection
//! (the "hashing trick" followed by a Johnson-Lindenstrauss sign projection). It needs no
//! download and runs at import speed, so the pool's map can appear as soon as questions are in;
//! a model's embeddings can refine it later under another embedder name.
//!
//! A question's words are lowercase runs of letters and digits, and LaTeX commands (`\frac`)
//! as words of their own; its features are the words and the pairs of neighbouring words, each
//! hashed (FNV-1a, stable across runs and platforms) into [`BUCKETS`] buckets. A feature's weight
//! is `(1 + ln tf) * idf` with `idf = ln((N + 1) / (df + 1)) + 1` over the questions embedded
//! together; each bucket adds its weight times a ±1 sign per output dimension, the signs being
//! the bits of a seeded hash of the bucket, and the sum is scaled to unit length.

/// Hash buckets of the word and word-pair features.
pub const BUCKETS: u32 = 1 << 20;

/// The embedder's stored name for `dim` dimensions and projection seed `seed`.
pub fn embedder_name(dim: usize, seed: u64) -> String {
    format!("tfidf-hash-{dim}-s{seed}")
}

/// Whether a stored embedder name is this embedder's (any dimensions and seed).
pub fn is_tfidf(name: &str) -> bool {
    name.starts_with("tfidf-hash-")
}

/// FNV-1a, 64 bits: a fixed hash so the same question gives the same features everywhere.
fn fnv1a(bytes: &[u8], start: u64) -> u64 {
    let mut h = start;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// SplitMix64's finaliser: 64 well-mixed bits from any 64-bit value.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The question's words: lowercase alphanumeric runs, and `\command`s.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut command = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            cur.extend(c.to_lowercase());
            continue;
        }
        if !cur.is_empty() {
            out.push(if command {
                format!("\\{cur}")
            } else {
                std::mem::take(&mut cur)
            });
            cur.clear();
        }
        command = c == '\\';
    }
    if !cur.is_empty() {
        out.push(if command { format!("\\{cur}") } else { cur });
    }
    out
}

/// A question's features: (bucket, term count), sorted by bucket.
pub fn features(text: &str) -> Vec<(u32, u32)> {
    let w = words(text);
    let mut hashes: Vec<u32> = Vec::with_capacity(w.len() * 2);
    for (i, word) in w.iter().enumerate() {
        let h = fnv1a(word.as_bytes(), FNV_START);
        hashes.push((h % BUCKETS as u64) as u32);
        if let Some(next) = w.get(i + 1) {
            // The pair: the first word's hash continued over a separator and the second word.
            let h2 = fnv1a(next.as_bytes(), fnv1a(b" ", h));
            hashes.push((h2 % BUCKETS as u64) as u32);
        }
    }
    hashes.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::new();
    for h in hashes {
        match out.last_mut() {
            Some((b, n)) if *b == h => *n += 1,
            _ => out.push((h, 1)),
        }
    }
    out
}

/// Document frequencies of the buckets over a set of questions' features.
#[derive(Debug, Clone)]
pub struct DocFreq {
    pub df: Vec<u32>,
    pub docs: usize,
}

impl DocFreq {
    pub fn new() -> Self {
        Self {
            df: vec![0; BUCKETS as usize],
            docs: 0,
        }
    }

    pub fn add(&mut self, feats: &[(u32, u32)]) {
        self.docs += 1;
        for &(b, _) in feats {
            if let Some(d) = self.df.get_mut(b as usize) {
                *d += 1;
            }
        }
    }

    fn idf(&self, bucket: u32) -> f32 {
        let df = self.df.get(bucket as usize).copied().unwrap_or(0) as f32;
        ((self.docs as f32 + 1.0) / (df + 1.0)).ln() + 1.0
    }
}

impl Default for DocFreq {
    fn default() -> Self {
        Self::new()
    }
}

/// The unit-length `dim`-dimensional vector of a question's features (all zeros for a question
/// without words). `dim` is a multiple of 64 (one seeded 64-bit hash gives 64 signs).
pub fn project(feats: &[(u32, u32)], df: &DocFreq, dim: usize, seed: u64) -> Vec<f32> {
    let mut v = vec![0f32; dim];
    let blocks = dim.div_ceil(64);
    for &(b, tf) in feats {
        let w = (1.0 + (tf as f32).ln()) * df.idf(b);
        for blk in 0..blocks {
            let bits = mix64((b as u64) ^ mix64(seed.wrapping_add(blk as u64)));
            for (j, x) in v[blk * 64..((blk + 1) * 64).min(dim)].iter_mut().enumerate() {
                *x += if (bits >> j) & 1 == 1 { w } else { -w };
            }
        }
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cos(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn words_keep_latex_commands_and_lowercase() {
        assert_eq!(
            words("Find $\\frac{a}{B2}$, then x^2."),
            ["find", "\\frac", "a", "b2", "then", "x", "2"]
        );
        assert!(words("  ").is_empty());
    }

    #[test]
    fn similar_questions_are_closer_than_unrelated_ones() {
        let qs = [
            "Find the number of positive integers n less than 1000 such that n is divisible by 7.",
            "Find the number of positive integers n less than 500 such that n is divisible by 11.",
            "A triangle has sides 3, 4 and 5. What is the radius of its inscribed circle?",
        ];
        let feats: Vec<_> = qs.iter().map(|q| features(q)).collect();
        let mut df = DocFreq::new();
        feats.iter().for_each(|f| df.add(f));
        let v: Vec<_> = feats.iter().map(|f| project(f, &df, 64, 7)).collect();
        for x in &v {
            assert!((cos(x, x) - 1.0).abs() < 1e-4);
        }
        assert!(
            cos(&v[0], &v[1]) > cos(&v[0], &v[2]) + 0.2,
            "{} {}",
            cos(&v[0], &v[1]),
            cos(&v[0], &v[2])
        );
        // The same seed gives the same vector; another seed another one.
        assert_eq!(project(&feats[0], &df, 64, 7), v[0]);
        assert!(is_tfidf(&embedder_name(64, 7)) && !is_tfidf("model-m.gguf-t256"));
        assert_ne!(project(&feats[0], &df, 64, 8), v[0]);
        assert!(project(&[], &df, 128, 7).iter().all(|x| *x == 0.0));
    }
}
