//! Attention layers: windowed causal self-attention (standard or differential) with RoPE and a
//! KV cache, and cross-attention with arbitrary per-query masks.

mod cache;
mod cross;
mod differential;
mod sdpa;
mod self_attn;

pub use cache::KvCache;
pub use cross::{CrossAttention, CrossAttentionConfig};
pub use differential::{DifferentialLambda, lambda_init};
pub use self_attn::{SelfAttention, SelfAttentionConfig};

/// Which self-attention a layer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttentionKind {
    /// Scaled dot-product multi-head attention.
    #[default]
    Standard,
    /// Differential attention (Ye et al., 2024, "Differential Transformer"): two softmax maps per
    /// head, `A1 − λ·A2`, with per-head RMS normalisation and a `(1 − λ_init)` output scale.
    Differential,
}
