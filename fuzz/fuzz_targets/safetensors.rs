//! A model folder's `model.safetensors`: opened and every tensor loaded (with the NaN check).
#![no_main]

use libfuzzer_sys::fuzz_target;
use s1_studio::model::weights::{SafetensorsWeights, WeightLoader};

fuzz_target!(|data: &[u8]| {
    thread_local! {
        static DIR: tempfile::TempDir = tempfile::tempdir().expect("a temporary folder");
    }
    DIR.with(|d| {
        let _ = std::fs::write(d.path().join("model.safetensors"), data);
        let Ok(mut w) = SafetensorsWeights::open(d.path(), candle_core::DType::F32, &candle_core::Device::Cpu) else {
            return;
        };
        let names: Vec<(String, Vec<usize>)> = w.shapes().collect();
        for (name, shape) in names {
            let _ = w.tensor(&name, &shape);
        }
    });
});
