//! Embedding rows with a backward for the decoder's training path. On the CPU this is candle's
//! index_select; on CUDA (feature `cuda`) a kernel pair (cuda_train_ops.rs), because candle's
//! index_select backward (index_add) loops over the ids serially in the table's dtype, while this
//! op adds the row gradients with f32 atomics.

#[cfg(feature = "cuda")]
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape};
use candle_core::{Result, Tensor};

#[cfg(feature = "cuda")]
use super::fused_ops::supported_cuda;

#[cfg(feature = "cuda")]
struct Embedding;

#[cfg(feature = "cuda")]
impl CustomOp2 for Embedding {
    fn name(&self) -> &'static str {
        "s1-embedding"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        let _span = super::op_profile::span(self.name());
        candle_core::bail!("s1-embedding runs on CUDA (the CPU uses index_select)")
    }

    cuda_fwd!(|self, (ws, wl), (is, il)| {
        let h = wl.shape().dims2()?.1;
        let n = il.shape().elem_count();
        Ok((super::cuda_train_ops::emb_fwd((ws, wl), (is, il))?, Shape::from((n, h))))
    });

    fn bwd(&self, w: &Tensor, ids: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let vocab = w.dim(0)?;
        let dw = ids.apply_op2_no_bwd(&dy.contiguous()?, &EmbeddingBwd { vocab })?;
        Ok((Some(dw), None))
    }
}

#[cfg(feature = "cuda")]
struct EmbeddingBwd {
    vocab: usize,
}

#[cfg(feature = "cuda")]
impl CustomOp2 for EmbeddingBwd {
    fn name(&self) -> &'static str {
        "s1-embedding-bwd"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        let _span = super::op_profile::span(self.name());
        candle_core::bail!("s1-embedding-bwd runs on CUDA")
    }

    cuda_fwd!(|self, (is, il), (gs, gl)| {
        let h = gl.shape().dims2()?.1;
        let dw = super::cuda_train_ops::emb_bwd(self.vocab, (is, il), (gs, gl))?;
        Ok((dw, Shape::from((self.vocab, h))))
    });
}

/// Rows `ids` (u32, any shape, flattened) of `table` `[vocab, h]` as `[n, h]`, with a backward
/// to the table: the CUDA kernels where they apply, else candle's index_select.
pub fn embedding(table: &Tensor, ids: &Tensor) -> Result<Tensor> {
    let ids = ids.flatten_all()?;
    #[cfg(feature = "cuda")]
    if supported_cuda(table) && ids.dtype() == DType::U32 {
        return table.contiguous()?.apply_op2(&ids.contiguous()?, Embedding);
    }
    table.index_select(&ids, 0)
}
