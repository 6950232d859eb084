//! Decontamination (S1_RECIPE.md §1): word 8-grams, lower-cased and whitespace-normalised, of each
//! training question against those of the evaluation sets; any shared 8-gram flags the question.
//! N-grams are kept as 64-bit hashes (FNV-1a over the words), so a million questions check in
//! seconds; a hit is confirmed on the words themselves before it is reported.

use std::collections::HashMap;

/// s1's n.
pub const N: usize = 8;

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(|w| w.to_lowercase()).collect()
}

fn hash_words(ws: &[String]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for w in ws {
        for b in w.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        h = (h ^ 0x20).wrapping_mul(0x0100_0000_01b3);
    }
    h
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
        for q in questions {
            n += 1;
            let ws = words(q);
            for g in ws.windows(N) {
                self.grams.entry(hash_words(g)).or_insert_with(|| (idx, g.join(" ")));
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
        let ws = words(question);
        let mut out: Vec<Overlap> = Vec::new();
        for g in ws.windows(N) {
            if let Some((set, text)) = self.grams.get(&hash_words(g)) {
                let joined = g.join(" ");
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
