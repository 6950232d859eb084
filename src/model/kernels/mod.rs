//! The compute under the model: CPU matrix kernels (gemm for training, gemv for decoding, the
//! vectorised elementwise math, the decode thread pool), the ops with their own backward that
//! the decoder's training path uses (linear, attention, RMSNorm/rope/softmax/SwiGLU, the fused
//! block), the launchers of the CUDA kernels in kernels/*.cu, and per-op timing. Nothing here
//! knows about model files, tokenizers or configs: the model passes slices, tensors and shapes.

/// The CUDA side of a candle custom op's forward, compiled only with the `cuda` feature:
/// `cuda_fwd!(|self, (xs, xl), (ws, wl)| { .. })` writes `CustomOpN::cuda_fwd` with one
/// (storage, layout) pair per input, so that an op states only what differs (the launcher it
/// calls and the output's shape) and a build without CUDA sees no CUDA types.
macro_rules! cuda_fwd {
    (|$this:ident $(, ($storage:ident, $layout:ident))+| $body:block) => {
        #[cfg(feature = "cuda")]
        fn cuda_fwd(
            &$this,
            $($storage: &candle_core::CudaStorage, $layout: &candle_core::Layout),+
        ) -> candle_core::Result<(candle_core::CudaStorage, candle_core::Shape)> $body
    };
}
#[cfg(feature = "cuda")]
pub(crate) use cuda_fwd;

pub mod cpu_gemm;
pub mod cpu_gemv;
pub mod cpu_pool;
mod cpu_quant_k;
mod cpu_quant_legacy;
pub mod cpu_vmath;
#[cfg(feature = "cuda")]
pub mod cuda_flash_attention;
#[cfg(feature = "cuda")]
pub mod cuda_train_ops;
pub mod flash_attention;
pub mod flash_kernel;
pub mod fused_attention;
pub mod fused_block;
pub mod fused_embedding;
pub mod fused_linear;
pub mod fused_ops;
pub mod op_profile;
