//! Which tokens of a rendered example are trained on. The `s1` preset re-implements what s1's
//! train/sft.py gets from TRL 0.12's `DataCollatorForCompletionOnlyLM`; the assistant turn alone
//! is an option.

use crate::model::TextTokenizer;

/// How the loss mask is chosen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LossMask {
    /// s1's: TRL's completion-only collator as sft.py sets it up. Every token after the response
    /// template (`<|im_start|>assistant\n` for Qwen) to the end of the sequence is trained on,
    /// which includes the `\n` after `<|im_end|>`; tokens equal to the pad token (`<|fim_pad|>`)
    /// are not.
    #[default]
    Completion,
    /// The assistant turn only: from after the generation prompt through its first end-of-turn
    /// token (the `\n` after `<|im_end|>` is not trained on).
    Turn,
}

impl LossMask {
    /// The name used by the CLI and the settings file.
    pub fn name(self) -> &'static str {
        match self {
            LossMask::Completion => "completion",
            LossMask::Turn => "turn",
        }
    }
}

/// The instruction and response templates s1's sft.py hands TRL, for the model family whose
/// generation prompt (the rendered prompt before the assistant's text) ends as Qwen's or
/// Llama 3's does; `None` for other templates (sft.py has none for them).
pub fn trl_templates(generation_prompt: &str) -> Option<(&'static str, &'static str)> {
    const QWEN: (&str, &str) = ("<|im_start|>user", "<|im_start|>assistant\n");
    const LLAMA: (&str, &str) = (
        "<|start_header_id|>user<|end_header_id|>",
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    );
    [QWEN, LLAMA]
        .into_iter()
        .find(|(_, response)| generation_prompt.ends_with(response))
}

/// The pad token s1's sft.py sets (`<|fim_pad|>` for Qwen, `<|reserved_special_token_5|>` for
/// Llama): TRL's collator takes every token with its id out of the loss.
pub fn trl_pad(tokenizer: &TextTokenizer) -> Option<u32> {
    ["<|fim_pad|>", "<|reserved_special_token_5|>"]
        .into_iter()
        .find_map(|t| tokenizer.token_to_id(t))
}

/// Starts of the occurrences of `pattern` in `ids`.
fn occurrences(ids: &[u32], pattern: &[u32]) -> Vec<usize> {
    if pattern.is_empty() || ids.len() < pattern.len() {
        return Vec::new();
    }
    ids.windows(pattern.len())
        .enumerate()
        .filter(|(_, w)| *w == pattern)
        .map(|(i, _)| i)
        .collect()
}

/// TRL 0.12's `DataCollatorForCompletionOnlyLM` (with an instruction template) on one row of
/// `ids`: whether each token keeps its label. As TRL: the labels start as the ids with the pad
/// token's positions out; a row without the response or the instruction template trains on
/// nothing; the k-th instruction..response pair is masked (the first from the row's start, and
/// from the start when the first response comes before the first instruction); when there are
/// more instructions than responses, everything from the last instruction on is masked.
pub fn completion_only(ids: &[u32], instruction: &[u32], response: &[u32], pad: Option<u32>) -> Vec<bool> {
    let n = ids.len();
    let mut keep: Vec<bool> = ids.iter().map(|&id| Some(id) != pad).collect();
    let responses: Vec<usize> = occurrences(ids, response)
        .into_iter()
        .map(|i| i + response.len())
        .collect();
    let mut humans = occurrences(ids, instruction);
    if responses.is_empty() || humans.is_empty() {
        return vec![false; n];
    }
    if humans[0] > responses[0] {
        humans.insert(0, 0);
    }
    for (k, (&start, &end)) in humans.iter().zip(&responses).enumerate() {
        let from = if k == 0 { 0 } else { start };
        // A Python slice whose start is past its end is empty.
        if from < end {
            keep[from..end.min(n)].iter_mut().for_each(|b| *b = false);
        }
    }
    if responses.len() < humans.len() {
        if let Some(&last) = humans.last() {
            keep[last.min(n)..].iter_mut().for_each(|b| *b = false);
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    // Templates as ids: instruction [1, 2], response [1, 3, 4]; pad 9.
    const I: &[u32] = &[1, 2];
    const R: &[u32] = &[1, 3, 4];

    fn kept(ids: &[u32]) -> Vec<usize> {
        completion_only(ids, I, R, Some(9))
            .iter()
            .enumerate()
            .filter(|(_, k)| **k)
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn trains_from_the_response_template_to_the_end() {
        // system, user, assistant, text, end, newline
        assert_eq!(kept(&[1, 7, 5, 1, 2, 6, 1, 3, 4, 8, 8, 0, 5]), vec![9, 10, 11, 12]);
    }

    #[test]
    fn pads_and_missing_templates_are_out() {
        assert_eq!(kept(&[1, 2, 6, 1, 3, 4, 8, 9, 8]), vec![6, 8]);
        assert!(kept(&[1, 2, 6, 8, 8]).is_empty());
        assert!(kept(&[6, 1, 3, 4, 8]).is_empty());
        // The response template cut off at the end of the row (truncation).
        assert!(kept(&[1, 2, 6, 1, 3]).is_empty());
    }

    #[test]
    fn a_second_instruction_inside_the_answer_masks_the_rest() {
        assert_eq!(kept(&[1, 2, 6, 1, 3, 4, 8, 8, 1, 2, 8, 8]), vec![6, 7]);
        // Two turns: the second user part is masked, both answers trained.
        assert_eq!(kept(&[1, 2, 6, 1, 3, 4, 8, 1, 2, 6, 1, 3, 4, 8, 5]), vec![6, 13, 14]);
    }

    #[test]
    fn templates_by_generation_prompt() {
        assert_eq!(
            trl_templates("<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n"),
            Some(("<|im_start|>user", "<|im_start|>assistant\n"))
        );
        assert!(trl_templates("<|user|>\nx</s>\n<|assistant|>\n").is_none());
    }
}
