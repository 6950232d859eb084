//! `config.json`: parsed and checked; a config that passes has a parameter count.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s1_studio::model::ModelConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(c) = ModelConfig::from_hf_json(std::path::Path::new("config.json"), &v) {
        assert!(c.checked_num_parameters().is_some());
        let _ = c.to_hf_json();
    }
});
