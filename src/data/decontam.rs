//! Decontamination (S1_RECIPE.md §1): word 8-grams, lower-cased and whitespace-normalised, of each
//! training question against those of the evaluation sets; any shared 8-gram flags the question.
//! N-grams are kept as 64-bit hashes of per-word hashes, so a million questions check in about a
//! second; a hit is confirmed on the words themselves before it is reported.

use std::collections::HashMap;

/// s1's n.
pub const N: usize = 8;

/// The words of a text (split on whitespace) as byte spans, and a hash of each lower-cased word;
/// no allocation per word, so a million questions split quickly.
fn words(text: &str, spans: &mut Vec<(usize, usize)>, hashes: &mut Vec<u64>) {
    spans.clear();
    hashes.clear();
    let mut start = None;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let push = |c: char, h: &mut u64| {
        let mut buf = [0u8; 4];
        for b in c.encode_utf8(&mut buf).bytes() {
            *h = (*h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                spans.push((s, i));
                hashes.push(h);
            }
            continue;
        }
        if start.is_none() {
            start = Some(i);
            h = 0xcbf2_9ce4_8422_2325;
        }
        if c.is_ascii() {
            push(c.to_ascii_lowercase(), &mut h);
        } else {
            for l in c.to_lowercase() {
                push(l, &mut h);
            }
        }
    }
    if let Some(s) = start {
        spans.push((s, text.len()));
        hashes.push(h);
    }
}

/// The hash of n consecutive word hashes.
fn gram_hash(ws: &[u64]) -> u64 {
    ws.iter().fold(0x9E37_79B9_7F4A_7C15u64, |h, w| {
        (h.rotate_left(23) ^ w).wrapping_mul(0xBF58_476D_1CE4_E5B9)
    })
}

/// The n-gram's text: its words lower-cased, joined by one space.
fn gram_text(text: &str, spans: &[(usize, usize)]) -> String {
    spans
        .iter()
        .map(|(a, b)| text[*a..*b].to_lowercase())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The 8-grams of the evaluation sets, and which set (and text) each came from.
#[derive(Default)]
pub struct EvalIndex {
    /// hash -> (set index, the n-gram's words joined by a space)
    grams: HashMap<u64, (usize, String)>,
    pub sets: Vec<String>,
    /// Questions per set.
    pub sizes: Vec<usize>,
}

/// A question's overlap with one evaluation set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    pub set: String,
    /// The first shared 8-gram.
    pub ngram: String,
}

impl EvalIndex {
    /// Adds an evaluation set's questions.
    pub fn add_set<'a>(&mut self, name: &str, questions: impl IntoIterator<Item = &'a str>) {
        let idx = self.sets.len();
        self.sets.push(name.to_string());
        let mut n = 0;
        let (mut spans, mut hashes) = (Vec::new(), Vec::new());
        for q in questions {
            n += 1;
            words(q, &mut spans, &mut hashes);
            for (i, g) in hashes.windows(N).enumerate() {
                self.grams
                    .entry(gram_hash(g))
                    .or_insert_with(|| (idx, gram_text(q, &spans[i..i + N])));
            }
        }
        self.sizes.push(n);
    }

    pub fn is_empty(&self) -> bool {
        self.grams.is_empty()
    }

    /// The sets a question overlaps, each with its first shared 8-gram. A question of fewer than
    /// eight words cannot overlap.
    pub fn overlaps(&self, question: &str) -> Vec<Overlap> {
        let (mut spans, mut hashes) = (Vec::new(), Vec::new());
        words(question, &mut spans, &mut hashes);
        let mut out: Vec<Overlap> = Vec::new();
        for (i, g) in hashes.windows(N).enumerate() {
            if let Some((set, text)) = self.grams.get(&gram_hash(g)) {
                let joined = gram_text(question, &spans[i..i + N]);
                if *text == joined && !out.iter().any(|o| o.set == self.sets[*set]) {
                    out.push(Overlap {
                        set: self.sets[*set].clone(),
                        ngram: joined,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_shared_words_flag_seven_do_not() {
        let mut idx = EvalIndex::default();
        idx.add_set(
            "aime24",
            ["Find the number of ordered pairs of positive integers such that x plus y"],
        );
        // Case and spacing do not matter.
        let hit = idx.overlaps("Compute:   find THE number of ordered pairs of positive integers (a, b)");
        assert_eq!(
            hit,
            vec![Overlap {
                set: "aime24".into(),
                ngram: "find the number of ordered pairs of positive".into()
            }]
        );
        assert!(idx.overlaps("the number of ordered pairs of positive").is_empty());
        assert!(idx.overlaps("the number of ordered pairs of positive reals").is_empty());
    }
}
