//! Decontamination (S1_RECIPE.md §1): word 8-grams, lower-cased and whitespace-normalised, of each
//! training question against those of the evaluation sets; any shared 8-gram flags the question.
//! N-grams are kept as 64-bit hashes of per-word hashes, so a million questions check in about a
//! second; a hit is confirmed on the words themselves before it is reported.
//!
//! The words are s1's (decontaminate_util.py: `' '.join(text.lower().strip().split())`, then
//! `words[i:i+8]`): split on what Python's `str.split()` calls whitespace (Unicode White_Space
//! and the separators U+001C..U+001F), lower-cased as Python's `str.lower()` (a word is
//! lower-cased whole, so a final capital sigma becomes `ς`), punctuation kept.

use std::collections::HashMap;

/// s1's n.
pub const N: usize = 8;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(h: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(h, |h, b| (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// The words of a text (split as Python's `str.split()`) as byte spans, and a hash of each
/// lower-cased word. An ASCII word is hashed as it is read, without allocating; a word with other
/// characters is lower-cased whole (`str::to_lowercase`, which knows the final sigma, as Python's
/// `str.lower()`).
fn words(text: &str, spans: &mut Vec<(usize, usize)>, hashes: &mut Vec<u64>) {
    spans.clear();
    hashes.clear();
    let mut start = None;
    let mut ascii = true;
    let mut h: u64 = FNV_OFFSET;
    let mut finish = |s: usize, e: usize, h: u64, ascii: bool| {
        spans.push((s, e));
        hashes.push(if ascii {
            h
        } else {
            fnv(FNV_OFFSET, text[s..e].to_lowercase().as_bytes())
        });
    };
    for (i, c) in text.char_indices() {
        if crate::pytext::is_space(c) {
            if let Some(s) = start.take() {
                finish(s, i, h, ascii);
            }
            continue;
        }
        if start.is_none() {
            start = Some(i);
            h = FNV_OFFSET;
            ascii = true;
        }
        if c.is_ascii() {
            h = fnv(h, &[c.to_ascii_lowercase() as u8]);
        } else {
            ascii = false;
        }
    }
    if let Some(s) = start {
        finish(s, text.len(), h, ascii);
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

/// The hashes of a text's 8-grams, in order (none for a text of fewer than eight words).
pub fn gram_hashes(text: &str) -> Vec<u64> {
    let (mut spans, mut hashes) = (Vec::new(), Vec::new());
    words(text, &mut spans, &mut hashes);
    hashes.windows(N).map(gram_hash).collect()
}

/// The text of a text's `i`-th 8-gram: its words lower-cased, joined by one space.
pub fn gram_at(text: &str, i: usize) -> String {
    let (mut spans, mut hashes) = (Vec::new(), Vec::new());
    words(text, &mut spans, &mut hashes);
    spans.get(i..i + N).map(|s| gram_text(text, s)).unwrap_or_default()
}

/// s1's cross-source rule (collect_data.py): the sources are taken in order, and each source's
/// questions that survive decontamination join the test set before the next source is checked,
/// so a question sharing an 8-gram with an earlier source's question is dropped. Kept as hashes
/// only (8 bytes and a source index per 8-gram; a 64-bit collision is vanishingly rare).
#[derive(Default)]
pub struct CrossIndex {
    grams: HashMap<u64, u32>,
    pub sources: Vec<String>,
}

impl CrossIndex {
    /// The first earlier source whose questions share an 8-gram with `question`, and the
    /// shared 8-gram.
    pub fn first_overlap(&self, question: &str) -> Option<(String, String)> {
        let hashes = gram_hashes(question);
        hashes.iter().enumerate().find_map(|(i, h)| {
            self.grams
                .get(h)
                .map(|&s| (self.sources[s as usize].clone(), gram_at(question, i)))
        })
    }

    /// Adds a source's surviving questions, as their [`gram_hashes`].
    pub fn add_source(&mut self, name: &str, grams: impl IntoIterator<Item = u64>) {
        let idx = self.sources.len() as u32;
        self.sources.push(name.to_string());
        for g in grams {
            self.grams.entry(g).or_insert(idx);
        }
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

    #[test]
    fn words_as_pythons_split_and_lower() {
        let mut idx = EvalIndex::default();
        idx.add_set("greek", ["ένας δύο τρία τέσσερα πέντε έξι επτά ΟΔΟΣ"]);
        // Python: "ΟΔΟΣ".lower() == "οδος" (final sigma); "οδοσ" is another word.
        assert_eq!(idx.overlaps("ένας δύο τρία τέσσερα πέντε έξι επτά οδος").len(), 1);
        assert!(idx.overlaps("ένας δύο τρία τέσσερα πέντε έξι επτά οδοσ").is_empty());
        // Python's str.split() splits at U+001F (a unit separator); Rust's is_whitespace does not.
        let mut idx = EvalIndex::default();
        idx.add_set("sep", ["a b c d e f g h"]);
        let hit = idx.overlaps("a\u{1f}b c d e f g h");
        assert_eq!(hit.len(), 1, "{hit:?}");
        assert_eq!(hit[0].ngram, "a b c d e f g h");
        // Punctuation stays part of the word, as in s1.
        assert!(idx.overlaps("a b c d e f g h.").is_empty());
    }

    #[test]
    fn cross_source_index() {
        let mut x = CrossIndex::default();
        assert_eq!(x.first_overlap("one two three four five six seven eight"), None);
        x.add_source(
            "first",
            gram_hashes("zero one two three four five six seven eight nine"),
        );
        assert_eq!(
            x.first_overlap("One two three four five six seven EIGHT"),
            Some(("first".into(), "one two three four five six seven eight".into()))
        );
        assert_eq!(x.first_overlap("two three four five six seven eight ten"), None);
    }
}
