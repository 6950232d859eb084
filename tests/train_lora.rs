//! LoRA against peft (tests/fixtures/lora, from scripts/make_lora_fixture.py): the adapter
//! loads from peft's layout, the gradients of every adapter weight match PyTorch + peft, and the
//! merged model gives the adapted model's logits.

mod common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use s1_studio::model::decoder::{Decoder, Logits};
use s1_studio::model::lora::LoraConfig;
use s1_studio::train::step::accumulate_micro_batch;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn base() -> Decoder {
    common::fixture_decoder("qwen2")
}

use common::rel;

#[test]
fn adapter_gradients_match_peft() {
    let exp = candle_core::safetensors::load(fixtures().join("lora/expected.safetensors"), &Device::Cpu).unwrap();
    let adapter_dir = fixtures().join("lora/adapter");
    let cfg = LoraConfig::read(&adapter_dir).unwrap();
    assert_eq!((cfg.r, cfg.scale()), (4, 2.0));
    let adapter = candle_core::safetensors::load(adapter_dir.join("adapter_model.safetensors"), &Device::Cpu).unwrap();
    for fused in [true, false] {
        let mut dec = base();
        dec.set_fused_training_ops(fused);
        let named = dec.add_lora(&cfg, 0, Some(&adapter)).unwrap();
        assert_eq!(named.len(), 2 * 3 * 2, "A and B for 3 modules in 2 layers");
        let vars: Vec<_> = named.iter().map(|(_, v)| v.clone()).collect();
        let grads_fixture =
            candle_core::safetensors::load(fixtures().join("parity/qwen2/grads.safetensors"), &Device::Cpu).unwrap();
        let b = common::labelled_batch(&grads_fixture);
        let n = b.loss_tokens;
        let mut acc = vec![None; vars.len()];
        let loss = accumulate_micro_batch(&dec, &vars, &b, &vec![1.0 / n as f64; b.rows], false, &mut acc).unwrap();
        let want = exp["loss"].to_vec1::<f32>().unwrap()[0] as f64;
        assert!((loss - want).abs() < 1e-5 * want, "loss {loss} vs peft {want}");
        let mut worst = 0f32;
        for ((name, _), g) in named.iter().zip(&acc) {
            let e = &exp[&format!("grad.{name}")];
            let r = rel(g.as_ref().unwrap(), e);
            worst = worst.max(r);
            assert!(r < 1e-4, "{name}: relative error {r}");
        }
        eprintln!(
            "fused {fused}: loss {loss:.6} vs peft {want:.6}; 12 adapter gradients, worst relative error {worst:.2e}"
        );
        // Base weights are frozen: only adapters are variables.
        assert!(dec.has_lora());
    }
}

#[test]
fn merged_adapter_gives_the_adapted_logits() {
    let exp = candle_core::safetensors::load(fixtures().join("lora/expected.safetensors"), &Device::Cpu).unwrap();
    let ids = exp["input_ids"].to_dtype(DType::U32).unwrap();
    let mut dec = base();
    dec.load_lora(&fixtures().join("lora/adapter")).unwrap();
    let unmerged = dec.forward(&ids, None, Logits::All).unwrap();
    dec.merge_lora().unwrap();
    assert!(!dec.has_lora());
    let merged = dec.forward(&ids, None, Logits::All).unwrap();
    let (a, b) = (rel(&unmerged, &exp["logits"]), rel(&merged, &exp["logits"]));
    eprintln!("adapted logits vs peft: attached {a:.2e}, merged {b:.2e}");
    assert!(a < 1e-5 && b < 1e-5, "{a} {b}");
    // The adapter folder alone loads too: its base is found from adapter_config.json.
    let err = s1_studio::model::load_model(&fixtures().join("lora/adapter"), &Default::default())
        .err()
        .map(|e| e.to_string());
    // The parity fixture has no tokenizer, so the load stops there, after finding the base.
    assert!(err.as_deref().is_some_and(|e| e.contains("tokenizer")), "{err:?}");
}
