//! Local decoder (reference §7): starts from the encoder's byte states; every layer first
//! cross-attends from byte `i` to the `k` slots of global patch `dec(i) = enc(i+1) − 1` only,
//! then runs a windowed causal byte block; a final RMSNorm and a 260-way head give the logits.
//!
//! Causality: patch `dec(i)` ends at or before byte `i` and the global model is causal, so byte
//! `i` never reads a summary of a later byte.

use blt_core::{
    CrossAttention, CrossAttentionConfig, KvCache, RmsNorm, RmsNormConfig, TransformerBlock,
    TransformerBlockConfig, init::linear_no_bias, kernels::linear,
};
use blt_patching::VOCAB_SIZE;
use burn::{
    config::Config,
    module::Module,
    nn::Linear,
    tensor::{Bool, Int, Tensor, backend::Backend},
};

/// Config of a [`LocalDecoder`] ([`crate::BltConfig::decoder_config`] derives it from a BLT
/// config).
#[derive(Config, Debug)]
pub struct LocalDecoderConfig {
    /// The byte-level blocks, one per layer, in order.
    pub blocks: Vec<TransformerBlockConfig>,
    /// Width of the byte states.
    pub hidden_size: usize,
    /// Width of the global model's patch states.
    pub global_hidden_size: usize,
    /// Attention heads of each layer's cross-attention.
    pub num_heads: usize,
    /// Slots per patch.
    pub cross_attn_k: usize,
    /// RMSNorm epsilon of the cross-attentions and the final norm.
    #[config(default = 1e-5)]
    pub norm_eps: f64,
    /// Dropout on the cross-attentions' probabilities.
    #[config(default = 0.0)]
    pub attention_dropout: f64,
}

impl LocalDecoderConfig {
    /// Builds the decoder: one cross-attention before each block.
    pub fn init<B: Backend>(&self, device: &B::Device) -> LocalDecoder<B> {
        let d = self.hidden_size;
        let dg = self.global_hidden_size;
        LocalDecoder {
            patch_projection: linear_no_bias(
                dg,
                self.cross_attn_k * d,
                (dg as f64).powf(-0.5),
                device,
            ),
            cross_attentions: (0..self.blocks.len())
                .map(|_| {
                    CrossAttentionConfig::new(d, d, self.num_heads)
                        .with_norm_eps(self.norm_eps)
                        .with_dropout(self.attention_dropout)
                        .init(device)
                })
                .collect(),
            blocks: self.blocks.iter().map(|c| c.init(device)).collect(),
            norm: RmsNormConfig::new(d).with_eps(self.norm_eps).init(device),
            head: linear_no_bias(d, VOCAB_SIZE, (d as f64).powf(-0.5), device),
            k: self.cross_attn_k,
        }
    }
}

/// The local decoder.
#[derive(Module, Debug)]
pub struct LocalDecoder<B: Backend> {
    /// `Linear(d_global → k·d)`: each global patch output becomes `k` slots.
    pub patch_projection: Linear<B>,
    /// One cross-attention per layer.
    pub cross_attentions: Vec<CrossAttention<B>>,
    /// One byte block per layer.
    pub blocks: Vec<TransformerBlock<B>>,
    /// Final norm.
    pub norm: RmsNorm<B>,
    /// Output head `Linear(d → 260)`.
    pub head: Linear<B>,
    /// Slots per patch.
    pub k: usize,
}

impl<B: Backend> LocalDecoder<B> {
    /// Projects global patch outputs to decoder slots.
    ///
    /// # Shapes
    /// - global: `[batch, patches, d_global]`; output: `[batch, patches · k, d]`
    pub fn patch_slots(&self, global: Tensor<B, 3>) -> Tensor<B, 3> {
        let [batch, patches, _] = global.dims();
        let slots = linear(&self.patch_projection, global);
        let d = slots.dims()[2] / self.k;
        slots.reshape([batch, patches * self.k, d])
    }

    /// Decodes every position.
    ///
    /// # Shapes
    /// - bytes: `[batch, seq, d]` (encoder byte states)
    /// - slots: `[batch, patches · k, d]` (see [`patch_slots`](Self::patch_slots))
    /// - decoder_patch_ids: `[batch, seq]`; mask: `[batch, seq, seq]`
    /// - output: logits `[batch, seq, 260]`
    pub fn forward(
        &self,
        mut h: Tensor<B, 3>,
        slots: Tensor<B, 3>,
        decoder_patch_ids: Tensor<B, 2, Int>,
        mask: Tensor<B, 3, Bool>,
    ) -> Tensor<B, 3> {
        for (cross, block) in self.cross_attentions.iter().zip(&self.blocks) {
            let read = cross.forward_grouped(
                h.clone(),
                slots.clone(),
                decoder_patch_ids.clone(),
                self.k,
                None,
            );
            // Double residual of the original (reference §7.1).
            h = block.forward(h * 2.0 + read, mask.clone());
        }
        linear(&self.head, self.norm.forward(h))
    }

    /// Decodes new positions against cached earlier ones; `positions` as in
    /// `TransformerBlock::forward_cached_at`.
    ///
    /// # Shapes
    /// - h: `[batch, new, d]`; slots: `[batch, groups · k, d]`; group_index: `[batch, new]`
    /// - positions: `batch` entries
    /// - output: logits `[batch, new, 260]`
    pub fn forward_cached(
        &self,
        mut h: Tensor<B, 3>,
        slots: Tensor<B, 3>,
        group_index: Tensor<B, 2, Int>,
        caches: &mut [KvCache<B>],
        segments: Option<&[Vec<u32>]>,
        positions: Option<&[usize]>,
    ) -> Tensor<B, 3> {
        for ((cross, block), cache) in self
            .cross_attentions
            .iter()
            .zip(&self.blocks)
            .zip(caches.iter_mut())
        {
            let read =
                cross.forward_grouped(h.clone(), slots.clone(), group_index.clone(), self.k, None);
            h = block.forward_cached_at(h * 2.0 + read, cache, segments, positions);
        }
        linear(&self.head, self.norm.forward(h))
    }
}
