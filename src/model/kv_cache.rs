//! A key/value cache with room to grow and to rewind: budget forcing drops the tokens of an
//! end-of-thinking delimiter the model already saw, so the cache can be cut back to any length.
//!
//! On the CPU with f32 and batch 1 the cache lives in plain vectors, laid out
//! `[kv_head][position][head_dim]`, which the decode kernels read directly; elsewhere (GPU, other
//! dtypes, batches) it holds candle tensors `[batch, kv_heads, capacity, head_dim]`.

use candle_core::{DType, Result, Tensor};

/// Host storage of one layer: keys and values `[heads][cap][dim]`.
pub struct HostKv {
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    pub heads: usize,
    pub dim: usize,
    pub cap: usize,
}

impl HostKv {
    fn new(heads: usize, dim: usize, cap: usize) -> Self {
        Self {
            k: vec![0.0; heads * cap * dim],
            v: vec![0.0; heads * cap * dim],
            heads,
            dim,
            cap,
        }
    }

    /// Room for at least `need` positions, keeping the first `keep`.
    pub fn reserve(&mut self, need: usize, keep: usize) {
        if need <= self.cap {
            return;
        }
        let cap = need.next_power_of_two().max(64);
        let mut grown = HostKv::new(self.heads, self.dim, cap);
        for h in 0..self.heads {
            let (src, dst) = (h * self.cap * self.dim, h * cap * self.dim);
            let n = keep * self.dim;
            grown.k[dst..dst + n].copy_from_slice(&self.k[src..src + n]);
            grown.v[dst..dst + n].copy_from_slice(&self.v[src..src + n]);
        }
        *self = grown;
    }

    /// Writes position `pos` of head `h` from `k`, `v` (`dim` values each).
    pub fn write(&mut self, h: usize, pos: usize, k: &[f32], v: &[f32]) {
        let at = (h * self.cap + pos) * self.dim;
        self.k[at..at + self.dim].copy_from_slice(k);
        self.v[at..at + self.dim].copy_from_slice(v);
    }

    /// Keys of head `h`, positions `0..len`.
    pub fn keys(&self, h: usize, len: usize) -> &[f32] {
        let at = h * self.cap * self.dim;
        &self.k[at..at + len * self.dim]
    }

    pub fn values(&self, h: usize, len: usize) -> &[f32] {
        let at = h * self.cap * self.dim;
        &self.v[at..at + len * self.dim]
    }
}

enum LayerKv {
    Empty,
    Host(HostKv),
    Device(Tensor, Tensor),
}

/// Keys and values of every layer for the positions seen so far.
pub struct KvCache {
    layers: Vec<LayerKv>,
    len: usize,
}

impl KvCache {
    pub fn new(num_layers: usize) -> Self {
        Self {
            layers: (0..num_layers).map(|_| LayerKv::Empty).collect(),
            len: 0,
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

    /// The host storage of `layer`, created for `heads` x `dim` if the layer is empty; `None` when
    /// the layer already holds device tensors.
    pub fn host(&mut self, layer: usize, heads: usize, dim: usize) -> Option<&mut HostKv> {
        if matches!(self.layers[layer], LayerKv::Empty) {
            self.layers[layer] = LayerKv::Host(HostKv::new(heads, dim, 64));
        }
        match &mut self.layers[layer] {
            LayerKv::Host(h) => Some(h),
            _ => None,
        }
    }

    /// Whether the fast CPU path can use this cache (empty, or kept on the host).
    pub fn is_host(&self) -> bool {
        self.layers.iter().all(|l| !matches!(l, LayerKv::Device(..)))
    }

    /// Writes `k`, `v` (`[b, kvh, t, d]`) at the current end for `layer` and returns the keys and
    /// values of all positions including them. [`KvCache::advance`] moves the end once every layer
    /// has appended.
    pub fn append(&mut self, layer: usize, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let (b, h, t, d) = k.dims4()?;
        let start = self.len;
        let need = start + t;
        let host_ok = b == 1 && k.device().is_cpu() && k.dtype() == DType::F32;
        if matches!(self.layers[layer], LayerKv::Empty) {
            self.layers[layer] = if host_ok {
                LayerKv::Host(HostKv::new(h, d, 64))
            } else {
                LayerKv::Device(
                    Tensor::zeros((b, h, 0, d), k.dtype(), k.device())?,
                    Tensor::zeros((b, h, 0, d), v.dtype(), v.device())?,
                )
            };
        }
        match &mut self.layers[layer] {
            LayerKv::Host(kv) => {
                kv.reserve(need, start);
                let kd = k.flatten_all()?.to_vec1::<f32>()?;
                let vd = v.flatten_all()?.to_vec1::<f32>()?;
                for hh in 0..h {
                    for p in 0..t {
                        let at = (hh * t + p) * d;
                        kv.write(hh, start + p, &kd[at..at + d], &vd[at..at + d]);
                    }
                }
                let mut ka = Vec::with_capacity(h * need * d);
                let mut va = Vec::with_capacity(h * need * d);
                for hh in 0..h {
                    ka.extend_from_slice(kv.keys(hh, need));
                    va.extend_from_slice(kv.values(hh, need));
                }
                Ok((
                    Tensor::from_vec(ka, (1, h, need, d), k.device())?,
                    Tensor::from_vec(va, (1, h, need, d), v.device())?,
                ))
            }
            LayerKv::Device(kc, vc) => {
                if kc.dim(2)? < need || kc.dim(0)? != b {
                    let cap = need.next_power_of_two().max(64);
                    let nk = Tensor::zeros((b, h, cap, d), k.dtype(), k.device())?;
                    let nv = Tensor::zeros((b, h, cap, d), v.dtype(), v.device())?;
                    if start > 0 && kc.dim(0)? == b {
                        nk.slice_set(&kc.narrow(2, 0, start)?, 2, 0)?;
                        nv.slice_set(&vc.narrow(2, 0, start)?, 2, 0)?;
                    }
                    *kc = nk;
                    *vc = nv;
                }
                kc.slice_set(&k.contiguous()?, 2, start)?;
                vc.slice_set(&v.contiguous()?, 2, start)?;
                Ok((kc.narrow(2, 0, need)?, vc.narrow(2, 0, need)?))
            }
            LayerKv::Empty => candle_core::bail!("kv cache layer {layer} is empty"),
        }
    }

    /// Moves the end forward by `t` positions after all layers appended them.
    pub fn advance(&mut self, t: usize) {
        self.len += t;
    }
}
