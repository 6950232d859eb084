//! The real Qwen tokenizer: ids of known strings, and incremental detokenization that never
//! splits a UTF-8 character, whatever the chunking.

mod common;

use s1_studio::generate::{build_prompt, BudgetConfig, Codec, IncrementalDecoder};
use s1_studio::model::{load_model, ChatMessage, LoadOptions};

fn qwen() -> s1_studio::model::TextTokenizer {
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 512);
    load_model(d.path(), &LoadOptions::default()).unwrap().tokenizer
}

#[test]
fn qwen_ids_match_the_reference() {
    let t = qwen();
    assert_eq!(t.encode("Hello world").unwrap(), vec![9707, 1879]);
    assert_eq!(t.encode("<|im_start|>think").unwrap()[0], 151644);
    assert_eq!(t.token_to_id("<|im_end|>"), Some(151645));
    assert_eq!(t.token_to_id("<|endoftext|>"), Some(151643));
    assert_eq!(t.token_to_id("</think>"), Some(151668));
    assert_eq!(t.max_token_id, 151668);
    assert_eq!(t.special.eos_ids, vec![151645]);
}

#[test]
fn incremental_decoding_never_splits_a_character() {
    let t = qwen();
    let text = "Wait, 日本語 and émojis 🙂🚀 — √2 ≈ 1.414; Ω.";
    let ids = t.encode(text).unwrap();
    // Several of these characters take more than one byte-level token.
    assert!(ids.len() > text.chars().filter(|c| c.is_ascii()).count() / 3);
    let mut dec = IncrementalDecoder::new();
    let mut out = String::new();
    let mut held_back = 0;
    for &id in &ids {
        match dec.push(&t as &dyn Codec, id) {
            Some(delta) => {
                assert!(!delta.contains('\u{FFFD}'), "a delta split a character: {delta:?}");
                out.push_str(&delta);
            }
            None => held_back += 1,
        }
    }
    assert!(held_back > 0, "no token was held back, so the test exercised nothing");
    assert_eq!(out, text);
}

#[test]
fn s1_prompt_is_the_qwen25_chat_format() {
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 512);
    let m = load_model(d.path(), &LoadOptions::default()).unwrap();
    let p = build_prompt(
        &m,
        &[ChatMessage::new("user", "What is 2+2?")],
        &BudgetConfig::default(),
    )
    .unwrap();
    let text = m.tokenizer.decode(&p.ids).unwrap();
    assert_eq!(
        text,
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n\
         <|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    );
    assert!(!p.has_thinking_start);
}
