//! `tokenizer.json` (+ `tokenizer_config.json` after a NUL byte) loaded from a folder, then used.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s1_studio::model::TextTokenizer;

fuzz_target!(|data: &[u8]| {
    thread_local! {
        static DIR: tempfile::TempDir = tempfile::tempdir().expect("a temporary folder");
    }
    let (tok, cfg) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    DIR.with(|d| {
        let _ = std::fs::write(d.path().join("tokenizer.json"), tok);
        let cfg_path = d.path().join("tokenizer_config.json");
        match cfg {
            Some(c) => {
                let _ = std::fs::write(&cfg_path, c);
            }
            None => {
                let _ = std::fs::remove_file(&cfg_path);
            }
        }
        if let Ok((t, _template)) = TextTokenizer::from_hf_folder(d.path()) {
            if let Ok(ids) = t.encode("Hello <|im_start|> world 123") {
                let _ = t.decode(&ids);
            }
        }
    });
});
