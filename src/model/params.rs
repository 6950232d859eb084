//! The decoder's parameters by their Hugging Face names: listing them, turning them into
//! trainable variables, and replacing them (checkpoints, LoRA merges).

use candle_core::{Tensor, Var};

use super::decoder::{Decoder, Linear};
use super::error::{ModelError, Result};
use super::weights::Weight;

fn dense<'a>(name: &str, w: &'a mut Weight) -> Result<&'a mut Tensor> {
    match w {
        Weight::Dense(t) => Ok(t),
        _ => Err(ModelError::NotTrainable(format!(
            "{name} is quantized; training and saving need dense weights (load the model from safetensors, \
             or a GGUF with --dequantize)"
        ))),
    }
}

fn linear<'a>(out: &mut Vec<(String, &'a mut Tensor)>, name: &str, l: &'a mut Linear) -> Result<()> {
    out.push((format!("{name}.weight"), dense(name, &mut l.weight)?));
    if let Some(b) = l.bias.as_mut() {
        out.push((format!("{name}.bias"), b));
    }
    Ok(())
}

impl Decoder {
    /// Every parameter tensor with its Hugging Face name, in checkpoint order; a tied output
    /// head is not listed apart from `model.embed_tokens.weight`.
    pub(super) fn parameters_mut(&mut self) -> Result<Vec<(String, &mut Tensor)>> {
        let mut out: Vec<(String, &mut Tensor)> = vec![("model.embed_tokens.weight".into(), &mut self.embed_tokens)];
        for (i, l) in self.layers.iter_mut().enumerate() {
            let p = format!("model.layers.{i}");
            out.push((format!("{p}.input_layernorm.weight"), &mut l.input_layernorm.weight));
            let a = &mut l.self_attn;
            linear(&mut out, &format!("{p}.self_attn.q_proj"), &mut a.q_proj)?;
            linear(&mut out, &format!("{p}.self_attn.k_proj"), &mut a.k_proj)?;
            linear(&mut out, &format!("{p}.self_attn.v_proj"), &mut a.v_proj)?;
            linear(&mut out, &format!("{p}.self_attn.o_proj"), &mut a.o_proj)?;
            if let Some(n) = a.qk_norm.as_mut() {
                out.push((format!("{p}.self_attn.q_norm.weight"), &mut n.q.weight));
                out.push((format!("{p}.self_attn.k_norm.weight"), &mut n.k.weight));
            }
            out.push((
                format!("{p}.post_attention_layernorm.weight"),
                &mut l.post_attention_layernorm.weight,
            ));
            let m = &mut l.mlp;
            linear(&mut out, &format!("{p}.mlp.gate_proj"), &mut m.gate_proj)?;
            linear(&mut out, &format!("{p}.mlp.up_proj"), &mut m.up_proj)?;
            linear(&mut out, &format!("{p}.mlp.down_proj"), &mut m.down_proj)?;
        }
        out.push(("model.norm.weight".into(), &mut self.norm.weight));
        if !self.tied_head {
            linear(&mut out, "lm_head", &mut self.lm_head)?;
        }
        Ok(out)
    }

    /// The parameters by name (shared storage with the model).
    pub fn parameters(&mut self) -> Result<Vec<(String, Tensor)>> {
        Ok(self
            .parameters_mut()?
            .into_iter()
            .map(|(n, t)| (n, t.clone()))
            .collect())
    }

    /// Whether the output head shares the embedding matrix.
    pub fn tied_head(&self) -> bool {
        self.tied_head
    }

    /// Turns every parameter into a trainable variable (the model then computes with the
    /// variables, so an optimizer step is seen by the next forward) and returns them by name.
    pub fn make_trainable(&mut self) -> Result<Vec<(String, Var)>> {
        let mut vars = Vec::new();
        for (name, t) in self.parameters_mut()? {
            let v = Var::from_tensor(t)?;
            *t = v.as_tensor().clone();
            vars.push((name, v));
        }
        if self.tied_head {
            self.lm_head.weight = Weight::Dense(self.embed_tokens.clone());
        }
        self.differentiable = true;
        Ok(vars)
    }

    /// Freezes every parameter (for adapters): the model keeps its values as constants.
    pub fn freeze(&mut self) -> Result<()> {
        for (_, t) in self.parameters_mut()? {
            *t = t.detach();
        }
        if self.tied_head {
            self.lm_head.weight = Weight::Dense(self.embed_tokens.clone());
        }
        self.differentiable = true;
        Ok(())
    }
}
