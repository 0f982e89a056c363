//! Burn building blocks shared by every Byte Latent Transformer component: RMSNorm, rotary
//! position encoding, SwiGLU, windowed causal self-attention (standard and differential) with a
//! KV cache, cross-attention with arbitrary masks, the pre-norm transformer block and the mask
//! builders they consume.
//!
//! Everything here is generic over a Burn [`Backend`](burn::tensor::backend::Backend) and enables
//! no backend feature. This crate must never depend on the patching, data or training crates:
//! it knows nothing about bytes or patches, only about tensors.

pub mod attention;
mod block;
mod error;
mod ffn;
pub mod fs;
pub mod init;
pub mod kernels;

pub mod mask;
mod norm;
mod rope;

pub use attention::{
    AttentionKind, CrossAttention, CrossAttentionConfig, KvCache, SelfAttention,
    SelfAttentionConfig,
};
pub use block::{TransformerBlock, TransformerBlockConfig};
pub use error::CoreError;
pub use ffn::{SwiGlu, SwiGluConfig, swiglu_hidden_size};
pub use norm::{RmsNorm, RmsNormConfig};
pub use rope::{Rope, RopeConfig};

#[cfg(test)]
pub(crate) mod test_util {
    /// The one backend the unit tests run on.
    pub type TestBackend = burn::backend::NdArray;

    use burn::tensor::{ElementConversion, Tensor, backend::Backend};

    /// Largest absolute difference between two tensors of equal shape.
    pub fn max_abs_diff<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f32 {
        assert_eq!(a.dims(), b.dims(), "shape mismatch");
        (a - b).abs().max().into_scalar().elem::<f32>()
    }
}
