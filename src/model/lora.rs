//! Low-rank adapters (LoRA) on the decoder's linear layers, in peft's layout: `y = x W^T + b +
//! scale (x A^T) B^T` with A `[r, in]`, B `[out, r]`, scale `alpha / r` (or `alpha / sqrt(r)`
//! with rsLoRA). Adapters are attached for training (the base frozen), saved and read as
//! adapter_config.json + adapter_model.safetensors, and merged into the base weights
//! (`W += scale B A`) for inference and export.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Tensor, Var};

use super::decoder::{Decoder, Linear};
use super::error::{ModelError, Result};
use super::weights::Weight;

/// The modules adapters can attach to.
pub const MODULES: &[&str] = &[
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

#[derive(Clone)]
pub struct Lora {
    pub a: Tensor,
    pub b: Tensor,
    pub scale: f64,
}

impl Lora {
    pub(super) fn forward_composed(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dims = x.dims().to_vec();
        let inp = dims[dims.len() - 1];
        let rows = x.elem_count() / inp;
        let h = x.reshape((rows, inp))?.matmul(&self.a.t()?)?.matmul(&self.b.t()?)?;
        let mut out = dims;
        *out.last_mut().unwrap_or(&mut 0) = self.b.dim(0)?;
        h.reshape(out)? * self.scale
    }

    pub(super) fn forward_fused(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = super::kernels::fused_linear::linear(x, &self.a, None)?;
        super::kernels::fused_linear::linear(&h, &self.b, None)? * self.scale
    }
}

/// An adapter's settings as peft writes them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoraConfig {
    pub r: usize,
    pub lora_alpha: f64,
    pub target_modules: Vec<String>,
    #[serde(default)]
    pub use_rslora: bool,
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
}

impl LoraConfig {
    pub fn scale(&self) -> f64 {
        if self.use_rslora {
            self.lora_alpha / (self.r as f64).sqrt()
        } else {
            self.lora_alpha / self.r as f64
        }
    }

    /// adapter_config.json as peft writes it (the fields peft needs to load the adapter).
    pub fn to_peft_json(&self) -> serde_json::Value {
        serde_json::json!({
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "r": self.r,
            "lora_alpha": self.lora_alpha,
            "target_modules": self.target_modules,
            "use_rslora": self.use_rslora,
            "lora_dropout": 0.0,
            "bias": "none",
            "fan_in_fan_out": false,
            "inference_mode": true,
            "base_model_name_or_path": self.base_model_name_or_path,
        })
    }

    /// Reads `dir/adapter_config.json`, refusing what this engine does not implement.
    pub fn read(dir: &Path) -> Result<Self> {
        let p = dir.join("adapter_config.json");
        let text = std::fs::read_to_string(&p).map_err(|e| ModelError::bad(&p, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ModelError::bad(&p, format!("not valid JSON: {e}")))?;
        if v.get("peft_type").and_then(|t| t.as_str()).is_some_and(|t| t != "LORA") {
            return Err(ModelError::unsupported(
                &p,
                format!("peft_type {} (only LORA)", v["peft_type"]),
            ));
        }
        if v.get("fan_in_fan_out").and_then(|t| t.as_bool()) == Some(true) {
            return Err(ModelError::unsupported(&p, "fan_in_fan_out adapters"));
        }
        if v.get("bias").and_then(|t| t.as_str()).is_some_and(|b| b != "none") {
            return Err(ModelError::unsupported(&p, "adapters that train biases"));
        }
        if v.get("use_dora").and_then(|t| t.as_bool()) == Some(true) {
            return Err(ModelError::unsupported(&p, "DoRA adapters"));
        }
        let mut cfg: LoraConfig = serde_json::from_value(v).map_err(|e| ModelError::bad(&p, e))?;
        if let Some(bad) = cfg.target_modules.iter().find(|m| !MODULES.contains(&m.as_str())) {
            return Err(ModelError::unsupported(
                &p,
                format!("target module `{bad}` (supported: {})", MODULES.join(", ")),
            ));
        }
        cfg.target_modules.sort();
        Ok(cfg)
    }
}

/// peft's name for the adapter weight `which` ("lora_A" or "lora_B") of layer `i`'s module.
fn peft_name(i: usize, module: &str, which: &str) -> String {
    let block = if matches!(module, "gate_proj" | "up_proj" | "down_proj") {
        "mlp"
    } else {
        "self_attn"
    };
    format!("base_model.model.model.layers.{i}.{block}.{module}.{which}.weight")
}

impl Decoder {
    fn targets_mut(&mut self, modules: &[String]) -> Vec<(usize, String, &mut Linear)> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter_mut().enumerate() {
            let a = &mut l.self_attn;
            let m = &mut l.mlp;
            for (name, lin) in [
                ("q_proj", &mut a.q_proj),
                ("k_proj", &mut a.k_proj),
                ("v_proj", &mut a.v_proj),
                ("o_proj", &mut a.o_proj),
                ("gate_proj", &mut m.gate_proj),
                ("up_proj", &mut m.up_proj),
                ("down_proj", &mut m.down_proj),
            ] {
                if modules.iter().any(|t| t == name) {
                    out.push((i, name.to_string(), lin));
                }
            }
        }
        out
    }

    pub fn has_lora(&self) -> bool {
        self.layers.iter().any(|l| {
            let (a, m) = (&l.self_attn, &l.mlp);
            [
                &a.q_proj,
                &a.k_proj,
                &a.v_proj,
                &a.o_proj,
                &m.gate_proj,
                &m.up_proj,
                &m.down_proj,
            ]
            .iter()
            .any(|x| x.lora.is_some())
        })
    }

    /// Freezes the base and attaches fresh adapters as peft initialises them (A uniform in
    /// ±1/sqrt(in), B zero, so training starts from the base model), or the adapter weights of
    /// `init` when given (a resume). Returns the trainable variables by peft name.
    pub fn add_lora(
        &mut self,
        cfg: &LoraConfig,
        seed: u64,
        init: Option<&HashMap<String, Tensor>>,
    ) -> Result<Vec<(String, Var)>> {
        self.freeze()?;
        let device = self.device.clone();
        let mut vars = Vec::new();
        for (k, (i, name, lin)) in self.targets_mut(&cfg.target_modules).into_iter().enumerate() {
            let Weight::Dense(w) = &lin.weight else {
                return Err(ModelError::NotTrainable(format!("layer {i} {name} is quantized")));
            };
            let (out, inp) = w.dims2()?;
            let (an, bn) = (peft_name(i, &name, "lora_A"), peft_name(i, &name, "lora_B"));
            let (a, b) = match init {
                Some(t) => {
                    let get = |n: &str, shape: (usize, usize)| -> Result<Tensor> {
                        let x = t
                            .get(n)
                            .ok_or_else(|| ModelError::NotTrainable(format!("the adapter lacks `{n}`")))?;
                        if x.dims2()? != shape {
                            return Err(ModelError::NotTrainable(format!(
                                "`{n}` has shape {:?}, expected {shape:?}",
                                x.dims()
                            )));
                        }
                        Ok(x.to_dtype(DType::F32)?.to_device(&device)?)
                    };
                    (get(&an, (cfg.r, inp))?, get(&bn, (out, cfg.r))?)
                }
                None => {
                    let bound = 1.0 / (inp as f64).sqrt();
                    let a = seeded_uniform(seed.wrapping_add(k as u64), cfg.r * inp, bound);
                    (
                        Tensor::from_vec(a, (cfg.r, inp), &device)?,
                        Tensor::zeros((out, cfg.r), DType::F32, &device)?,
                    )
                }
            };
            let (va, vb) = (Var::from_tensor(&a)?, Var::from_tensor(&b)?);
            lin.lora = Some(Lora {
                a: va.as_tensor().clone(),
                b: vb.as_tensor().clone(),
                scale: cfg.scale(),
            });
            vars.push((an, va));
            vars.push((bn, vb));
        }
        if vars.is_empty() {
            return Err(ModelError::NotTrainable(format!(
                "no layer matches the LoRA target modules {:?}",
                cfg.target_modules
            )));
        }
        Ok(vars)
    }

    /// The attached adapters' weights by peft name (for adapter_model.safetensors).
    pub fn lora_tensors(&mut self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for (i, name, lin) in self.targets_mut(&MODULES.iter().map(|m| m.to_string()).collect::<Vec<_>>()) {
            if let Some(l) = &lin.lora {
                out.insert(
                    peft_name(i, &name, "lora_A"),
                    l.a.to_device(&candle_core::Device::Cpu)?.contiguous()?,
                );
                out.insert(
                    peft_name(i, &name, "lora_B"),
                    l.b.to_device(&candle_core::Device::Cpu)?.contiguous()?,
                );
            }
        }
        Ok(out)
    }

    /// Folds every attached adapter into its base weight (`W += scale B A`) and detaches it.
    pub fn merge_lora(&mut self) -> Result<()> {
        for (_, _, lin) in self.targets_mut(&MODULES.iter().map(|m| m.to_string()).collect::<Vec<_>>()) {
            let Some(l) = lin.lora.take() else { continue };
            let Weight::Dense(w) = &lin.weight else {
                return Err(ModelError::NotTrainable(
                    "cannot merge an adapter into quantized weights".into(),
                ));
            };
            let delta = (l.b.to_dtype(DType::F32)?.matmul(&l.a.to_dtype(DType::F32)?)? * l.scale)?;
            let merged = (w.to_dtype(DType::F32)? + delta)?.to_dtype(w.dtype())?.detach();
            lin.weight = Weight::Dense(merged);
        }
        Ok(())
    }

    /// Reads a peft adapter folder and attaches it (not trainable), checking every tensor.
    pub fn load_lora(&mut self, dir: &Path) -> Result<LoraConfig> {
        let cfg = LoraConfig::read(dir)?;
        let p = dir.join("adapter_model.safetensors");
        let tensors =
            candle_core::safetensors::load(&p, &candle_core::Device::Cpu).map_err(|e| ModelError::bad(&p, e))?;
        let expected = self.targets_mut(&cfg.target_modules).len() * 2;
        let known: Vec<String> = tensors.keys().filter(|k| k.contains("lora_")).cloned().collect();
        if known.len() != expected {
            return Err(ModelError::bad(
                &p,
                format!(
                    "{} adapter tensors, but {expected} for {:?} over {} layers",
                    known.len(),
                    cfg.target_modules,
                    self.layers.len()
                ),
            ));
        }
        let vars = self
            .add_lora(&cfg, 0, Some(&tensors))
            .map_err(|e| ModelError::bad(&p, e))?;
        // Loaded adapters are constants.
        for (_, _, lin) in self.targets_mut(&cfg.target_modules) {
            if let Some(l) = lin.lora.as_mut() {
                l.a = l.a.detach();
                l.b = l.b.detach();
            }
        }
        drop(vars);
        self.differentiable = false;
        Ok(cfg)
    }
}

/// Deterministic uniform values in [-bound, bound] (splitmix64).
fn seeded_uniform(seed: u64, n: usize, bound: f64) -> Vec<f32> {
    let mut s = seed ^ 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let u = (z >> 11) as f64 / (1u64 << 53) as f64;
            ((2.0 * u - 1.0) * bound) as f32
        })
        .collect()
}
