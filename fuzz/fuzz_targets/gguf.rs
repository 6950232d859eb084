//! A GGUF file: our header checks, then candle's parse, the config and the tokenizer from its
//! metadata. Never a panic, whatever the bytes.
#![no_main]

use std::io::Cursor;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use s1_studio::model::{gguf_check, ModelConfig, TextTokenizer};

fuzz_target!(|data: &[u8]| {
    let mut r = Cursor::new(data);
    if gguf_check::check_reader(&mut r, data.len() as u64).is_err() {
        return;
    }
    r.set_position(0);
    let Ok(content) = candle_core::quantized::gguf_file::Content::read(&mut r) else {
        return;
    };
    let p = Path::new("fuzz.gguf");
    if let Ok(cfg) = ModelConfig::from_gguf(p, &content) {
        let _ = cfg.num_parameters();
    }
    let _ = TextTokenizer::from_gguf(p, &content.metadata);
});
