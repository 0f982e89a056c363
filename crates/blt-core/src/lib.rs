//! Burn building blocks shared by every Byte Latent Transformer component: RMSNorm, rotary
//! position encoding, SwiGLU, windowed causal self-attention (standard and differential) with a
//! KV cache, cross-attention with arbitrary masks, the pre-norm transformer block and the mask
//! builders they consume.
//!
//! Everything here is generic over a Burn [`Backend`](burn::tensor::backend::Backend) and enables
//! no backend feature. This crate must never depend on the patching, data or training crates:
//! it knows nothing about bytes or patches, only about tensors.
//!
//! # Example
//!
//! One pre-norm transformer block over a batch of two sequences, under a causal mask with a
//! sliding window of 4 keys:
//!
//! ```
//! use blt_core::{TransformerBlockConfig, mask::local_causal_mask};
//! use burn::{backend::NdArray, tensor::{Distribution, Tensor}};
//!
//! let device = Default::default();
//! let block = TransformerBlockConfig::new(32, 4).with_max_seq_len(16).init::<NdArray>(&device);
//! let x = Tensor::<NdArray, 3>::random([2, 10, 32], Distribution::Normal(0.0, 1.0), &device);
//! let mask = local_causal_mask(2, 10, Some(4), None, &device);
//! let y = block.forward(x.clone(), mask);
//! assert_eq!(y.dims(), [2, 10, 32]);
//!
//! // Causal: the first 6 positions do not see the last 4.
//! let prefix = x.slice([0..2, 0..6]);
//! let y_prefix = block.forward(prefix, local_causal_mask(2, 6, Some(4), None, &device));
//! y.slice([0..2, 0..6]).into_data().assert_approx_eq::<f32>(
//!     &y_prefix.into_data(),
//!     burn::tensor::Tolerance::absolute(1e-5),
//! );
//! ```

pub mod attention;
mod block;
mod error;
mod ffn;
pub mod fs;
pub mod host;
pub mod init;
pub mod kernels;

pub mod mask;
mod norm;
pub mod progress;
mod rope;
mod simd;

pub use attention::{
    AttentionKind, CrossAttention, CrossAttentionConfig, KvCache, SelfAttention,
    SelfAttentionConfig,
};
pub use block::{TransformerBlock, TransformerBlockConfig};
pub use error::CoreError;
pub use ffn::{SwiGlu, SwiGluConfig, swiglu_hidden_size};
pub use norm::{RmsNorm, RmsNormConfig};
pub use progress::Progress;
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
