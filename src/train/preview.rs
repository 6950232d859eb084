//! The data preview that the Train view shows before Start (as LlamaBoard's): the first example
//! rendered through the model's chat template with the tokens in the loss marked, token counts,
//! and how many examples the block size truncates. Only the tokenizer and template are read, not
//! the weights, so it is quick; it runs on a worker thread.

use super::data::Renderer;
use super::TrainSettings;
use crate::model::chat_template::{ChatTemplate, CHATML_TEMPLATE};
use crate::model::tokenizer::TextTokenizer;

/// What the preview shows.
#[derive(Debug, Clone, PartialEq)]
pub struct DataPreview {
    pub examples: usize,
    /// Examples longer than the block size, and the tokens cut from them.
    pub truncated: usize,
    pub tokens_cut: usize,
    /// Tokens after truncation: all of them, those in the loss, and the longest example's.
    pub tokens: usize,
    pub loss_tokens: usize,
    pub longest: usize,
    /// The first example as text spans, each marked whether its tokens are in the loss.
    pub first: Vec<(String, bool)>,
    /// The first example's data line.
    pub first_line: usize,
}

/// The model folder's tokenizer and the chat template rows are rendered with (the tokenizer's
/// own, else ChatML), as the preview and the run-folder export read them; errors name the folder.
pub fn tokenizer_and_template(s: &TrainSettings) -> Result<(TextTokenizer, ChatTemplate), String> {
    let (tokenizer, source) = TextTokenizer::from_hf_folder(&s.model).map_err(|e| e.to_string())?;
    let (bos, eos) = (tokenizer.special.bos.as_deref(), tokenizer.special.eos.as_deref());
    let template = ChatTemplate::new(source.as_deref().unwrap_or(CHATML_TEMPLATE), bos, eos)
        .map_err(|e| format!("{}: chat template: {e}", s.model.display()))?;
    Ok((tokenizer, template))
}

/// Renders and tokenizes every row as training would; errors name the file (and row).
pub fn preview(s: &TrainSettings) -> Result<DataPreview, String> {
    let (tokenizer, template) = tokenizer_and_template(s)?;
    let renderer = Renderer {
        tokenizer: &tokenizer,
        template: &template,
        block_size: s.block_size,
        mask: s.loss_mask,
    };
    let (examples, truncated) = super::trainer::prepare_examples(s, &renderer).map_err(|e| e.to_string())?;
    let Some(first) = examples.first() else {
        return Err(format!("{}: no rows", s.data.display()));
    };
    let mut spans: Vec<(Vec<u32>, bool)> = Vec::new();
    for (i, id) in first.ids.iter().enumerate() {
        let on = first.in_loss(i);
        match spans.last_mut() {
            Some((ids, o)) if *o == on => ids.push(*id),
            _ => spans.push((vec![*id], on)),
        }
    }
    let first_spans = spans
        .into_iter()
        .map(|(ids, on)| tokenizer.decode(&ids).map(|t| (t, on)).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    Ok(DataPreview {
        examples: examples.len(),
        truncated,
        tokens_cut: examples.iter().map(|e| e.truncated).sum(),
        tokens: examples.iter().map(|e| e.ids.len()).sum(),
        loss_tokens: examples.iter().map(|e| e.loss_tokens()).sum(),
        longest: examples.iter().map(|e| e.ids.len() + e.truncated).max().unwrap_or(0),
        first: first_spans,
        first_line: first.line,
    })
}
