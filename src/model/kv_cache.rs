//! A key/value cache with room to grow and to rewind: budget forcing drops the tokens of an
//! end-of-thinking delimiter the model already saw, so the cache can be cut back to any length.

use candle_core::{Result, Tensor};

/// Keys and values of every layer for the positions seen so far, `[batch, kv_heads, len, head_dim]`.
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
    capacity: usize,
}

impl KvCache {
    pub fn new(num_layers: usize) -> Self {
        Self {
            layers: (0..num_layers).map(|_| None).collect(),
            len: 0,
            capacity: 0,
        }
    }

    /// Number of positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every position at or after `len`.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Writes `k`, `v` (`[b, kvh, t, d]`) at the current end for `layer` and returns the keys and
    /// values of all positions including them. [`KvCache::advance`] moves the end once every layer
    /// has appended.
    pub fn append(&mut self, layer: usize, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let (b, h, t, d) = k.dims4()?;
        let need = self.len + t;
        let slot = &mut self.layers[layer];
        let grow = match slot {
            Some((kc, _)) => kc.dim(2)? < need || kc.dim(0)? != b,
            None => true,
        };
        if grow {
            let cap = need.max(self.capacity).next_power_of_two().max(64);
            let kc = Tensor::zeros((b, h, cap, d), k.dtype(), k.device())?;
            let vc = Tensor::zeros((b, h, cap, d), v.dtype(), v.device())?;
            if let Some((ok, ov)) = slot.as_ref() {
                if self.len > 0 && ok.dim(0)? == b {
                    kc.slice_set(&ok.narrow(2, 0, self.len)?, 2, 0)?;
                    vc.slice_set(&ov.narrow(2, 0, self.len)?, 2, 0)?;
                }
            }
            self.capacity = self.capacity.max(cap);
            *slot = Some((kc, vc));
        }
        let Some((kc, vc)) = slot.as_ref() else {
            candle_core::bail!("kv cache slot for layer {layer} is empty");
        };
        kc.slice_set(&k.contiguous()?, 2, self.len)?;
        vc.slice_set(&v.contiguous()?, 2, self.len)?;
        Ok((kc.narrow(2, 0, need)?, vc.narrow(2, 0, need)?))
    }

    /// Moves the end forward by `t` positions after all layers appended them.
    pub fn advance(&mut self, t: usize) {
        self.len += t;
    }
}
