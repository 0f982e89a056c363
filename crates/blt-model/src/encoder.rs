//! Local encoder (reference §5): windowed causal byte blocks, then patch pooling into
//! `cross_attn_k` slots per patch — by cross-attention from max-pooled queries (the original
//! BLT), or by plain mean / max pooling.
//!
//! Causality: each patch's slots read only that patch's bytes (a gather of its positions), so a
//! patch summary never depends on later bytes.

use blt_core::{
    CrossAttention, CrossAttentionConfig, TransformerBlock, init::linear_no_bias, kernels::linear,
};
use burn::{
    module::Module,
    nn::Linear,
    tensor::{Bool, Int, Tensor, backend::Backend},
};

use crate::{
    config::{BltConfig, Pooling},
    input::PoolingLayout,
    layers::local_block_configs,
};

/// The local encoder.
#[derive(Module, Debug)]
pub struct LocalEncoder<B: Backend> {
    /// Byte-level transformer blocks.
    pub blocks: Vec<TransformerBlock<B>>,
    /// `Linear(d → k·d)` turning a pooled patch vector into `k` query slots.
    pub patch_projection: Linear<B>,
    /// Cross-attention of the slots to their patch's bytes (cross-attention pooling only).
    pub cross_attention: Option<CrossAttention<B>>,
    /// Mean (not max) pooling of the bytes.
    pub mean_pooling: bool,
    /// Slots per patch.
    pub k: usize,
}

impl<B: Backend> LocalEncoder<B> {
    /// Builds the encoder for `config`.
    pub fn new(config: &BltConfig, device: &B::Device) -> Self {
        let d = config.hidden_size;
        Self {
            blocks: local_block_configs(config, config.encoder_layers, config.intermediate_size)
                .iter()
                .map(|c| c.init(device))
                .collect(),
            patch_projection: linear_no_bias(
                d,
                config.cross_attn_k * d,
                (d as f64).powf(-0.5),
                device,
            ),
            cross_attention: (config.pooling == Pooling::CrossAttention).then(|| {
                CrossAttentionConfig::new(d, d, config.num_heads)
                    .with_norm_eps(config.norm_eps)
                    .with_dropout(config.attention_dropout)
                    .init(device)
            }),
            mean_pooling: config.pooling == Pooling::Mean,
            k: config.cross_attn_k,
        }
    }

    /// Runs the byte blocks.
    ///
    /// # Shapes
    /// - x: `[batch, seq, d]`; mask: `[batch, seq, seq]`
    /// - output: `[batch, seq, d]`
    pub fn encode_bytes(&self, mut x: Tensor<B, 3>, mask: Tensor<B, 3, Bool>) -> Tensor<B, 3> {
        for block in &self.blocks {
            x = block.forward(x, mask.clone());
        }
        x
    }

    /// Pools each patch's byte states into `k` slots.
    ///
    /// # Shapes
    /// - bytes: `[batch, seq, d]`
    /// - output: `[batch, patches, k·d]`
    pub fn pool(&self, bytes: Tensor<B, 3>, layout: &PoolingLayout<B>) -> Tensor<B, 3> {
        let [batch, patches, max_len] = layout.valid.dims();
        let [_, seq, d] = bytes.dims();
        let gathered = bytes
            .reshape([batch * seq, d])
            .select(0, layout.index.clone())
            .reshape([batch, patches, max_len, d]);
        let valid = layout.valid.clone();
        let invalid4 = valid
            .clone()
            .bool_not()
            .unsqueeze_dim::<4>(3)
            .expand([batch, patches, max_len, d]);
        let pooled = if self.mean_pooling {
            let count = valid.clone().int().sum_dim(2).float().clamp_min(1.0);
            gathered
                .clone()
                .mask_fill(invalid4, 0.0)
                .sum_dim(2)
                .reshape([batch, patches, d])
                / count
        } else {
            let empty = valid
                .clone()
                .bool_not()
                .all_dim(2)
                .reshape([batch, patches, 1]);
            gathered
                .clone()
                .mask_fill(invalid4, f32::NEG_INFINITY)
                .max_dim(2)
                .reshape([batch, patches, d])
                .mask_fill(empty.expand([batch, patches, d]), 0.0)
        };
        let k = self.k;
        let queries = linear(&self.patch_projection, pooled).reshape([batch, patches * k, d]);
        let Some(cross) = &self.cross_attention else {
            return queries.reshape([batch, patches, k * d]);
        };
        let device = queries.device();
        let group = Tensor::<B, 1, Int>::arange(0..patches as i64, &device)
            .reshape([1, patches, 1])
            .expand([batch, patches, k])
            .reshape([batch, patches * k]);
        let slot_mask = valid
            .bool_not()
            .unsqueeze_dim::<4>(2)
            .expand([batch, patches, k, max_len])
            .reshape([batch, patches * k, max_len]);
        let context = gathered.reshape([batch, patches * max_len, d]);
        let attended =
            cross.forward_grouped(queries.clone(), context, group, max_len, Some(slot_mask));
        // The original returns `x + attn` from the module and adds `x` again at the call site
        // (reference §5): the double residual is kept for fidelity.
        (queries * 2.0 + attended).reshape([batch, patches, k * d])
    }
}
