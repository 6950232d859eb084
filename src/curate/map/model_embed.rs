//! Question vectors from a model: the mean of its last hidden states (after the final norm,
//! before the head) over the question's tokens, scaled to unit length. A model that has read
//! mathematics places questions by what they ask rather than by the words they share, so its
//! map refines the hashed TF-IDF one (embed.rs); it is stored under its own embedder name.
//!
//! Questions are cut to their first `max_tokens` tokens ([`MAX_TOKENS`] by default), tokenized
//! without special tokens. Sequences of a batch are padded on the right; the attention is
//! causal, so padding never reaches a sequence's own positions and the mean over them is the
//! one the sequence has alone.

use candle_core::Tensor;

use crate::model::decoder::Decoder;

/// Tokens of a question the model reads by default (the rest is cut): the first 1,000 of the
/// shared pool's MATH train questions are a median of 40 SmolLM2 tokens and 26 of them exceed
/// 256, so nearly all stay whole while a long outlier (up to 1,044 there) cannot make a batch's
/// padding, or its attention, expensive.
pub const MAX_TOKENS: usize = 256;

/// The stored embedder name of the model `model` (its file or folder name) reading at most
/// `max_tokens` tokens.
pub fn embedder_name(model: &str, max_tokens: usize) -> String {
    format!("model-{model}-t{max_tokens}")
}

/// Scales `v` to unit length (a zero vector stays zero).
fn normalise(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// The unit-length mean of the last hidden states of each token sequence, in order (an empty
/// sequence: zeros). Sequences run `batch` at a time, padded on the right to the longest of
/// their batch (sort them by length first to pad little), or one at a time where the model's
/// own kernels are faster so.
pub fn embed_sequences(dec: &Decoder, seqs: &[Vec<u32>], batch: usize) -> candle_core::Result<Vec<Vec<f32>>> {
    let hidden = dec.config().hidden_size;
    let batch = if dec.hidden_states_one_at_a_time() {
        1
    } else {
        batch.max(1)
    };
    let mut out = Vec::with_capacity(seqs.len());
    for group in seqs.chunks(batch) {
        let t = group.iter().map(Vec::len).max().unwrap_or(0);
        if t == 0 {
            out.extend(group.iter().map(|_| vec![0f32; hidden]));
            continue;
        }
        let ids: Vec<u32> = group
            .iter()
            .flat_map(|s| s.iter().copied().chain(std::iter::repeat_n(0, t - s.len())))
            .collect();
        let ids = Tensor::from_vec(ids, (group.len(), t), dec.device())?;
        // [b, t, hidden] on the host.
        let states = dec.hidden_states(&ids)?.to_vec3::<f32>()?;
        for (s, rows) in group.iter().zip(states) {
            let mut mean = vec![0f32; hidden];
            for row in rows.iter().take(s.len()) {
                mean.iter_mut().zip(row).for_each(|(m, x)| *m += x);
            }
            let n = s.len().max(1) as f32;
            mean.iter_mut().for_each(|m| *m /= n);
            out.push(normalise(mean));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_unit_length() {
        assert_eq!(embedder_name("m.gguf", 256), "model-m.gguf-t256");
        let v = normalise(vec![3.0, 4.0]);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        assert_eq!(normalise(vec![0.0; 3]), vec![0.0; 3]);
    }
}
