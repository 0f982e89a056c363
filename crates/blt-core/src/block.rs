//! Pre-norm transformer block (reference §8): `h = x + Attn(norm(x))`, `out = h + FFN(norm(h))`,
//! with residual dropout, no biases.

use burn::{
    config::Config,
    module::Module,
    nn::{Dropout, DropoutConfig},
    tensor::{Bool, Tensor, backend::Backend},
};

use crate::{
    attention::{AttentionKind, KvCache, SelfAttention, SelfAttentionConfig},
    error::CoreError,
    ffn::{SwiGlu, SwiGluConfig},
    norm::{RmsNorm, RmsNormConfig},
};

/// Configuration of a [`TransformerBlock`].
#[derive(Config, Debug)]
pub struct TransformerBlockConfig {
    /// Model width.
    pub d_model: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// SwiGLU hidden size. Default: `None` (the 8·d/3 rounded-to-256 rule).
    #[config(default = "None")]
    pub ffn_hidden_size: Option<usize>,
    /// Standard or differential attention. Default: standard.
    #[config(default = "AttentionKind::Standard")]
    pub attention: AttentionKind,
    /// RoPE base θ. Default: 5e5.
    #[config(default = 5e5)]
    pub rope_theta: f64,
    /// Longest sequence the block can encode. Default: 4096.
    #[config(default = 4096)]
    pub max_seq_len: usize,
    /// Dropout on attention probabilities. Default: 0.
    #[config(default = 0.0)]
    pub attention_dropout: f64,
    /// Dropout on each residual branch. Default: 0.
    #[config(default = 0.0)]
    pub resid_dropout: f64,
    /// RMSNorm epsilon. Default: 1e-5.
    #[config(default = 1e-5)]
    pub norm_eps: f64,
    /// 0-based depth (differential attention's λ_init). Default: 0.
    #[config(default = 0)]
    pub layer_index: usize,
    /// Divides the initial standard deviations. Default: 1.
    #[config(default = 1.0)]
    pub init_std_factor: f64,
}

impl TransformerBlockConfig {
    fn attention_config(&self) -> SelfAttentionConfig {
        SelfAttentionConfig::new(self.d_model, self.num_heads)
            .with_kind(self.attention)
            .with_rope_theta(self.rope_theta)
            .with_max_seq_len(self.max_seq_len)
            .with_dropout(self.attention_dropout)
            .with_layer_index(self.layer_index)
            .with_norm_eps(self.norm_eps)
            .with_init_std_factor(self.init_std_factor)
    }

    /// Checks that the sizes and rates are consistent.
    pub fn validate(&self) -> Result<(), CoreError> {
        self.attention_config().validate()?;
        if !(0.0..1.0).contains(&self.resid_dropout) {
            return Err(CoreError::OutOfRange {
                field: "resid_dropout",
                value: self.resid_dropout.to_string(),
                requirement: "must be in [0, 1)",
            });
        }
        Ok(())
    }

    /// Builds the block.
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails.
    pub fn init<B: Backend>(&self, device: &B::Device) -> TransformerBlock<B> {
        if let Err(err) = self.validate() {
            panic!("invalid transformer block config: {err}");
        }
        let norm = || {
            RmsNormConfig::new(self.d_model)
                .with_eps(self.norm_eps)
                .init(device)
        };
        TransformerBlock {
            attention_norm: norm(),
            attention: self.attention_config().init(device),
            ffn_norm: norm(),
            ffn: SwiGluConfig::new(self.d_model)
                .with_hidden_size(self.ffn_hidden_size)
                .with_init_std_factor(self.init_std_factor)
                .init(device),
            dropout: DropoutConfig::new(self.resid_dropout).init(),
        }
    }
}

/// Pre-norm transformer block. Build it with [`TransformerBlockConfig::init`].
#[derive(Module, Debug)]
pub struct TransformerBlock<B: Backend> {
    /// Norm before attention.
    pub attention_norm: RmsNorm<B>,
    /// Self-attention.
    pub attention: SelfAttention<B>,
    /// Norm before the feed-forward network.
    pub ffn_norm: RmsNorm<B>,
    /// Feed-forward network.
    pub ffn: SwiGlu<B>,
    /// Residual dropout.
    pub dropout: Dropout,
}

impl<B: Backend> TransformerBlock<B> {
    /// Runs the block over a whole sequence.
    ///
    /// # Shapes
    /// - x: `[batch, seq, d_model]`
    /// - mask: `[batch, seq, seq]`, `true` = masked
    /// - output: `[batch, seq, d_model]`
    pub fn forward(&self, x: Tensor<B, 3>, mask: Tensor<B, 3, Bool>) -> Tensor<B, 3> {
        let attended = self
            .attention
            .forward(self.attention_norm.forward(x.clone()), mask);
        self.feed_forward(x + self.dropout.forward(attended))
    }

    /// Runs the block for new tokens continuing a cached sequence.
    ///
    /// # Shapes
    /// - x: `[batch, new, d_model]`
    /// - segments: `batch` rows of `new` document ids (`None`: one document)
    /// - output: `[batch, new, d_model]`
    pub fn forward_cached(
        &self,
        x: Tensor<B, 3>,
        cache: &mut KvCache<B>,
        segments: Option<&[Vec<u32>]>,
    ) -> Tensor<B, 3> {
        self.forward_cached_at(x, cache, segments, None)
    }

    /// [`TransformerBlock::forward_cached`] with per-row rotary positions (see
    /// [`SelfAttention::forward_cached_at`]).
    ///
    /// # Shapes
    /// - x: `[batch, new, d_model]`; segments: `batch` rows of `new` ids; positions: `batch`
    /// - output: `[batch, new, d_model]`
    pub fn forward_cached_at(
        &self,
        x: Tensor<B, 3>,
        cache: &mut KvCache<B>,
        segments: Option<&[Vec<u32>]>,
        positions: Option<&[usize]>,
    ) -> Tensor<B, 3> {
        let attended = self.attention.forward_cached_at(
            self.attention_norm.forward(x.clone()),
            cache,
            segments,
            positions,
        );
        self.feed_forward(x + self.dropout.forward(attended))
    }

    fn feed_forward(&self, h: Tensor<B, 3>) -> Tensor<B, 3> {
        let out = self.ffn.forward(self.ffn_norm.forward(h.clone()));
        h + self.dropout.forward(out)
    }
}
