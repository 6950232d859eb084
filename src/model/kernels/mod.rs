//! The compute under the model: CPU matrix kernels (gemm for training, gemv for decoding, the
//! vectorised elementwise math, the decode thread pool), the ops with their own backward that
//! the decoder's training path uses (linear, attention, RMSNorm/rope/softmax/SwiGLU, the fused
//! block), the launchers of the CUDA kernels in kernels/*.cu, and per-op timing. Nothing here
//! knows about model files, tokenizers or configs: the model passes slices, tensors and shapes.

pub mod cpu_gemm;
pub mod cpu_gemv;
pub mod cpu_pool;
pub mod cpu_vmath;
#[cfg(feature = "cuda")]
pub mod cuda_train_ops;
pub mod fused_attention;
pub mod fused_block;
pub mod fused_linear;
pub mod fused_ops;
pub mod op_profile;
