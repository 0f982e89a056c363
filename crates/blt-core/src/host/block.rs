//! A pre-norm transformer block's step for one new position.

use burn::tensor::backend::Backend;

use super::{HostCopier, HostKvCache, HostLinear, HostRmsNorm, HostSelfAttention, add_assign};
use crate::{
    block::TransformerBlock,
    error::CoreError,
    ffn::SwiGlu,
    simd::{self, Simd, WithSimd},
};

/// A [`TransformerBlock`] (standard attention) on the host.
#[derive(Debug, Clone)]
pub struct HostBlock {
    attention_norm: HostRmsNorm,
    attention: HostSelfAttention,
    ffn_norm: HostRmsNorm,
    ffn: HostSwiGlu,
}

impl HostBlock {
    /// Copies `block`'s weights through `copier`; fails for differential attention.
    pub fn from_block<B: Backend>(
        block: &TransformerBlock<B>,
        copier: &mut HostCopier,
    ) -> Result<Self, CoreError> {
        Ok(Self {
            attention_norm: HostRmsNorm::from_norm(&block.attention_norm),
            attention: HostSelfAttention::from_attention(&block.attention, copier)?,
            ffn_norm: HostRmsNorm::from_norm(&block.ffn_norm),
            ffn: HostSwiGlu::from_swiglu(&block.ffn, copier),
        })
    }

    /// An empty cache for this block with an attention window of `window` keys.
    pub fn new_cache(&self, window: Option<usize>) -> HostKvCache {
        HostKvCache::new(self.attention.width(), window)
    }

    /// Runs the block for `x`, the next position of `cache` in document `segment`, in place:
    /// `h = x + Attn(norm(x))`, `x ← h + FFN(norm(h))`.
    pub fn step(&self, x: &mut [f32], cache: &mut HostKvCache, segment: u32) {
        let attended = self
            .attention
            .step(&self.attention_norm.apply(x), cache, segment);
        add_assign(x, &attended);
        let out = self.ffn.apply(&self.ffn_norm.apply(x));
        add_assign(x, &out);
    }
}

/// A [`SwiGlu`] on the host.
#[derive(Debug, Clone)]
pub struct HostSwiGlu {
    gate: HostLinear,
    up: HostLinear,
    down: HostLinear,
}

impl HostSwiGlu {
    /// Copies `ffn`'s weights to the host.
    pub fn from_swiglu<B: Backend>(ffn: &SwiGlu<B>, copier: &HostCopier) -> Self {
        Self {
            gate: copier.linear(&ffn.gate),
            up: copier.linear(&ffn.up),
            down: copier.linear(&ffn.down),
        }
    }

    /// `down(silu(gate·x) ⊙ up·x)`.
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let mut gated = self.gate.apply(x);
        let up = self.up.apply(x);
        simd::dispatch(Gate {
            gate: &mut gated,
            up: &up,
        });
        self.down.apply(&gated)
    }
}

/// `gate ← silu(gate) ⊙ up`.
struct Gate<'a> {
    gate: &'a mut [f32],
    up: &'a [f32],
}

impl WithSimd for Gate<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        for (g, &u) in self.gate.iter_mut().zip(self.up) {
            *g = *g / (1.0 + simd::exp(-*g)) * u;
        }
    }
}
