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

    /// Width of the rows it runs on.
    pub fn width(&self) -> usize {
        self.attention_norm.width()
    }

    /// Bytes of its weight matrices and biases.
    pub fn bytes(&self) -> usize {
        self.attention.bytes() + self.ffn.gate.bytes() + self.ffn.up.bytes() + self.ffn.down.bytes()
    }

    /// An empty cache for this block with an attention window of `window` keys.
    pub fn new_cache(&self, window: Option<usize>) -> HostKvCache {
        HostKvCache::new(self.attention.width(), window)
    }

    /// Runs the block for `x`, the next position of `cache` in document `segment`, in place:
    /// `h = x + Attn(norm(x))`, `x ← h + FFN(norm(h))`.
    pub fn step(&self, x: &mut [f32], cache: &mut HostKvCache, segment: u32) {
        self.steps(x, cache, &[segment]);
    }

    /// [`step`](Self::step) for consecutive positions, one row of `x` per entry of `segments`
    /// (see [`HostSelfAttention::steps`]).
    pub fn steps(&self, x: &mut [f32], cache: &mut HostKvCache, segments: &[u32]) {
        let attended = self
            .attention
            .steps(&self.attention_norm.apply_rows(x), cache, segments);
        add_assign(x, &attended);
        let out = self.ffn.apply_rows(&self.ffn_norm.apply_rows(x));
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
        self.apply_rows(x)
    }

    /// [`apply`](Self::apply) to each row of `x`, the products over all rows at once.
    pub fn apply_rows(&self, x: &[f32]) -> Vec<f32> {
        let mut gated = self.gate.apply_rows(x);
        let up = self.up.apply_rows(x);
        simd::dispatch(Gate {
            gate: &mut gated,
            up: &up,
        });
        self.down.apply_rows(&gated)
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
