//! A chat template (before the first NUL byte) rendered over a message (after it): a hostile
//! template ends in an error within its fuel and output budget.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s1_studio::model::{ChatMessage, ChatTemplate};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (src, msg) = text.split_once('\0').unwrap_or((&text, "Hi"));
    let Ok(t) = ChatTemplate::new(src, Some("<s>"), Some("</s>")) else {
        return;
    };
    let msgs = [ChatMessage::new("system", "Be brief."), ChatMessage::new("user", msg)];
    let _ = t.render(&msgs, true, Some(true));
});
