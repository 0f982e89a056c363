//! Local encoder (reference §5): windowed causal byte blocks, then patch pooling into
//! `cross_attn_k` slots per patch — by cross-attention from max-pooled queries (the original
//! BLT), or by plain mean / max pooling.
//!
//! Causality: each patch's slots read only that patch's bytes (a gather of its positions), so a
//! patch summary never depends on later bytes.

use blt_core::{
    CrossAttention, CrossAttentionConfig, TransformerBlock, TransformerBlockConfig,
    init::linear_no_bias, kernels::linear,
};
use burn::{
    config::Config,
    module::Module,
    nn::Linear,
    tensor::{Bool, Int, Tensor, backend::Backend},
};

use crate::{config::Pooling, input::PoolingLayout};

/// Config of a [`LocalEncoder`] ([`crate::BltConfig::encoder_config`] derives it from a BLT
/// config).
#[derive(Config, Debug)]
pub struct LocalEncoderConfig {
    /// The byte-level blocks, in order.
    pub blocks: Vec<TransformerBlockConfig>,
    /// Width of the byte states.
    pub hidden_size: usize,
    /// Attention heads of the cross-attention pooling.
    pub num_heads: usize,
    /// Query slots per patch.
    pub cross_attn_k: usize,
    /// How a patch's bytes are pooled.
    pub pooling: Pooling,
    /// RMSNorm epsilon of the cross-attention.
    #[config(default = 1e-5)]
    pub norm_eps: f64,
    /// Dropout on the cross-attention's probabilities.
    #[config(default = 0.0)]
    pub attention_dropout: f64,
}

impl LocalEncoderConfig {
    /// Builds the encoder.
    pub fn init<B: Backend>(&self, device: &B::Device) -> LocalEncoder<B> {
        let d = self.hidden_size;
        LocalEncoder {
            blocks: self.blocks.iter().map(|c| c.init(device)).collect(),
            patch_projection: linear_no_bias(
                d,
                self.cross_attn_k * d,
                (d as f64).powf(-0.5),
                device,
            ),
            cross_attention: (self.pooling == Pooling::CrossAttention).then(|| {
                CrossAttentionConfig::new(d, d, self.num_heads)
                    .with_norm_eps(self.norm_eps)
                    .with_dropout(self.attention_dropout)
                    .init(device)
            }),
            mean_pooling: self.pooling == Pooling::Mean,
            k: self.cross_attn_k,
        }
    }
}

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
