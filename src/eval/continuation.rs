//! The text a sweep grades: the whole continuation, as s1 grades it, with a think-tag model's
//! answer delimiter read as s1's so that the answer part is what follows the thinking.

use crate::generate::{Generation, ThinkingFormat};
use crate::grade::extract::ANSWER_DELIMITER;
use crate::model::LoadedModel;

/// The whole continuation as s1 grades it (vllm_causallms.py joins the thinking start, the
/// thinking, the answer delimiter or the forced `<|im_start|>answer\nFinal Answer:`, and the
/// answer): every token after the prompt, delimiters and injected strings included.
pub fn continuation(model: &LoadedModel, gen: &Generation) -> String {
    match model.tokenizer.decode(&gen.output_ids) {
        Ok(text) => text,
        // Not expected (the ids came from this tokenizer); the parts in s1's order instead.
        Err(_) => {
            let f = ThinkingFormat::s1();
            let end = if gen.forced_end {
                let nl = if gen.thinking.ends_with('\n') { "" } else { "\n" };
                format!("{nl}{}\n", f.answer_start)
            } else {
                f.answer_start
            };
            format!("{}{}{end}{}", f.start, gen.thinking, gen.answer)
        }
    }
}

/// The continuation as the grader reads it: s1's extraction takes the part after the last
/// `<|im_start|>answer`; with another format (think tags) the last of that format's answer
/// delimiter (`</think>`) stands for it, so that a `\boxed{}` of the thinking is not taken for
/// the answer. s1's continuations are unchanged.
pub fn graded_text(continuation: String, format: &ThinkingFormat) -> String {
    if format.is_s1() || format.answer_start.is_empty() {
        return continuation;
    }
    match continuation.rfind(&format.answer_start) {
        Some(i) => format!(
            "{}{ANSWER_DELIMITER}{}",
            &continuation[..i],
            &continuation[i + format.answer_start.len()..]
        ),
        None => continuation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_think_tag_answer_is_read_after_the_thinking() {
        let tags = ThinkingFormat::think_tags();
        let text = "<think>maybe \\boxed{3}</think>\n\nThe answer is \\boxed{4}.".to_string();
        let g = graded_text(text.clone(), &tags);
        assert_eq!(crate::grade::extract::answer_section(&g), "The answer is \\boxed{4}.");
        let forced = "<think>\\boxed{3}\n</think>\nFinal Answer: 5".to_string();
        assert_eq!(
            crate::grade::extract::answer_section(&graded_text(forced, &tags)),
            "Final Answer: 5"
        );
        let s1 = "<|im_start|>think\nx</think><|im_start|>answer\n7".to_string();
        assert_eq!(graded_text(s1.clone(), &ThinkingFormat::s1()), s1);
    }
}
