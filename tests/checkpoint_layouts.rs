//! Checkpoint layouts users have: sharded safetensors with an index, bf16/f16 weights converted
//! to the compute dtype.

mod common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use s1_studio::model::{load_model, LoadOptions, Logits};

fn logits(dir: &Path) -> Tensor {
    let m = load_model(dir, &LoadOptions::default()).unwrap();
    let ids = Tensor::new(&[[9707u32, 1879, 151644, 42, 7]], &Device::Cpu).unwrap();
    m.decoder.forward(&ids, None, Logits::All).unwrap()
}

fn rel(a: &Tensor, b: &Tensor) -> f32 {
    let n = |t: &Tensor| {
        t.sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .sqrt()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    n(&(a - b).unwrap()) / n(b)
}

#[test]
fn sharded_checkpoint_with_index_loads_like_one_file() {
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 512);
    let want = logits(d.path());
    let file = d.path().join("model.safetensors");
    let all = candle_core::safetensors::load(&file, &Device::Cpu).unwrap();
    let mut names: Vec<&String> = all.keys().collect();
    names.sort();
    let (a, b) = names.split_at(names.len() / 2);
    let mut index = serde_json::Map::new();
    for (shard, part) in [
        ("model-00001-of-00002.safetensors", a),
        ("model-00002-of-00002.safetensors", b),
    ] {
        let tensors: HashMap<String, Tensor> = part.iter().map(|n| ((*n).clone(), all[*n].clone())).collect();
        candle_core::safetensors::save(&tensors, d.path().join(shard)).unwrap();
        for n in part {
            index.insert((*n).clone(), shard.into());
        }
    }
    std::fs::remove_file(&file).unwrap();
    let idx = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": index});
    std::fs::write(d.path().join("model.safetensors.index.json"), idx.to_string()).unwrap();
    let got = logits(d.path());
    assert_eq!(rel(&got, &want), 0.0);
    // A shard listed in the index but missing is named in the error.
    std::fs::remove_file(d.path().join("model-00002-of-00002.safetensors")).unwrap();
    let err = load_model(d.path(), &LoadOptions::default()).err().unwrap().to_string();
    assert!(
        err.contains("model-00002-of-00002.safetensors") && err.contains("not found"),
        "{err}"
    );
}

#[test]
fn bf16_and_f16_weights_convert_to_f32() {
    let d = tempfile::tempdir().unwrap();
    common::tiny_qwen(d.path(), 512);
    let want = logits(d.path());
    let file = d.path().join("model.safetensors");
    let all = candle_core::safetensors::load(&file, &Device::Cpu).unwrap();
    for (dtype, tol) in [(DType::BF16, 2e-2), (DType::F16, 3e-3)] {
        let conv: HashMap<String, Tensor> = all
            .iter()
            .map(|(k, v)| (k.clone(), v.to_dtype(dtype).unwrap()))
            .collect();
        candle_core::safetensors::save(&conv, &file).unwrap();
        let got = logits(d.path());
        let r = rel(&got, &want);
        assert!(r > 0.0 && r < tol, "{dtype:?}: relative error {r}");
    }
}
