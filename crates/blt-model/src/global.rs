//! Global latent transformer over patches (reference §6): optional input projection when
//! `k · hidden_size ≠ global_hidden_size`, causal (block-causal per document) pre-norm blocks,
//! no final norm. Optionally, a gated memory per layer (the seed's hierarchical memory).

use blt_core::{
    KvCache, TransformerBlock, TransformerBlockConfig, init::linear_no_bias, kernels::linear,
};
use burn::{
    config::Config,
    module::{Module, Param},
    nn::{Linear, LinearConfig},
    tensor::{Bool, Tensor, activation::sigmoid, backend::Backend},
};

/// Config of a [`GlobalTransformer`] ([`crate::BltConfig::global_config`] derives it from a
/// BLT config).
#[derive(Config, Debug)]
pub struct GlobalTransformerConfig {
    /// The blocks over patches, in order.
    pub blocks: Vec<TransformerBlockConfig>,
    /// Width of a patch's input (`k · hidden_size` of the encoder's slots).
    pub input_size: usize,
    /// Width of the global model.
    pub hidden_size: usize,
    /// A gated memory in every block.
    #[config(default = false)]
    pub hierarchical_memory: bool,
}

impl GlobalTransformerConfig {
    /// Builds the global model, with an input projection when the widths differ.
    pub fn init<B: Backend>(&self, device: &B::Device) -> GlobalTransformer<B> {
        let (input, d) = (self.input_size, self.hidden_size);
        GlobalTransformer {
            input_projection: (input != d)
                .then(|| linear_no_bias(input, d, (input as f64).powf(-0.5), device)),
            blocks: self.blocks.iter().map(|c| c.init(device)).collect(),
            memories: if self.hierarchical_memory {
                (0..self.blocks.len())
                    .map(|_| HierarchicalMemory::new(d, device))
                    .collect()
            } else {
                Vec::new()
            },
        }
    }
}

/// A learned memory vector mixed into the residual stream through a sigmoid gate computed from
/// `[h; m]`: `h + σ(W[h; m] + b) ⊙ m`. Position-wise, so it cannot leak the future.
#[derive(Module, Debug)]
pub struct HierarchicalMemory<B: Backend> {
    /// The memory vector, `[d]`.
    pub memory: Param<Tensor<B, 1>>,
    /// Gate `Linear(2d → d)` with bias.
    pub gate: Linear<B>,
}

impl<B: Backend> HierarchicalMemory<B> {
    fn new(d: usize, device: &B::Device) -> Self {
        Self {
            memory: blt_core::init::trunc_normal_param([d], (d as f64).powf(-0.5), device),
            gate: LinearConfig::new(2 * d, d).init(device),
        }
    }

    /// Mixes the memory in.
    ///
    /// # Shapes
    /// - h: `[batch, seq, d]`; output: `[batch, seq, d]`
    pub fn forward(&self, h: Tensor<B, 3>) -> Tensor<B, 3> {
        let [batch, seq, d] = h.dims();
        let memory = self.memory.val().reshape([1, 1, d]).expand([batch, seq, d]);
        let gate = sigmoid(linear(
            &self.gate,
            Tensor::cat(vec![h.clone(), memory.clone()], 2),
        ));
        h + gate * memory
    }
}

/// The global transformer.
#[derive(Module, Debug)]
pub struct GlobalTransformer<B: Backend> {
    /// `Linear(k·d → d_global)` when the widths differ.
    pub input_projection: Option<Linear<B>>,
    /// Pre-norm blocks over patches.
    pub blocks: Vec<TransformerBlock<B>>,
    /// One gated memory per block when `hierarchical_memory` is on (else empty).
    pub memories: Vec<HierarchicalMemory<B>>,
}

impl<B: Backend> GlobalTransformer<B> {
    fn project(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        match &self.input_projection {
            Some(p) => linear(p, x),
            None => x,
        }
    }

    fn remember(&self, layer: usize, h: Tensor<B, 3>) -> Tensor<B, 3> {
        match self.memories.get(layer) {
            Some(m) => m.forward(h),
            None => h,
        }
    }

    /// Runs over all patches.
    ///
    /// # Shapes
    /// - x: `[batch, patches, k·d]`; mask: `[batch, patches, patches]`
    /// - output: `[batch, patches, d_global]`
    pub fn forward(&self, x: Tensor<B, 3>, mask: Tensor<B, 3, Bool>) -> Tensor<B, 3> {
        let mut h = self.project(x);
        for (layer, block) in self.blocks.iter().enumerate() {
            h = self.remember(layer, block.forward(h, mask.clone()));
        }
        h
    }

    /// Runs one or more new patches against the cached earlier ones; `positions` as in
    /// `TransformerBlock::forward_cached_at`.
    ///
    /// # Shapes
    /// - x: `[batch, new, k·d]`; positions: `batch` entries; output: `[batch, new, d_global]`
    pub fn forward_cached(
        &self,
        x: Tensor<B, 3>,
        caches: &mut [KvCache<B>],
        segments: Option<&[Vec<u32>]>,
        positions: Option<&[usize]>,
    ) -> Tensor<B, 3> {
        let mut h = self.project(x);
        for (layer, (block, cache)) in self.blocks.iter().zip(caches.iter_mut()).enumerate() {
            let attended = block.forward_cached_at(h, cache, segments, positions);
            h = self.remember(layer, attended);
        }
        h
    }

    /// Fresh caches (no window: the global model sees every earlier patch).
    pub fn new_caches(&self) -> Vec<KvCache<B>> {
        self.blocks.iter().map(|_| KvCache::new(None)).collect()
    }
}
