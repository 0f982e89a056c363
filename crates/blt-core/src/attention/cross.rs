//! Cross-attention with separate query and key/value RMSNorms, no RoPE, and an arbitrary
//! per-query boolean mask (reference §5: the original's `CrossAttention`).
//!
//! Unlike Burn's `CrossAttention` (key-padding masks only, uniform weights on fully masked
//! rows) and the Hugging Face port (`finfo.min` masking, also uniform), a query whose keys are
//! all masked returns exactly zero here. The original's double residual is left to the caller.

use burn::{
    config::Config,
    module::Module,
    nn::{Dropout, DropoutConfig, Linear},
    tensor::{Bool, Int, Tensor, backend::Backend},
};

use super::sdpa::scaled_dot_product;
use crate::{
    error::CoreError,
    init::{fan_in_std, linear_no_bias},
    kernels::linear,
    norm::{RmsNorm, RmsNormConfig},
};

/// Configuration of a [`CrossAttention`].
#[derive(Config, Debug)]
pub struct CrossAttentionConfig {
    /// Query (and output) width.
    pub d_query: usize,
    /// Key/value source width.
    pub d_kv: usize,
    /// Number of heads; must divide `d_query`.
    pub num_heads: usize,
    /// Epsilon of both RMSNorms. Default: 1e-5.
    #[config(default = 1e-5)]
    pub norm_eps: f64,
    /// Dropout on attention probabilities (training only). Default: 0.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Divides the initial standard deviations. Default: 1.
    #[config(default = 1.0)]
    pub init_std_factor: f64,
}

impl CrossAttentionConfig {
    /// Checks that the sizes are consistent.
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.num_heads == 0 || !self.d_query.is_multiple_of(self.num_heads) {
            return Err(CoreError::NotDivisible {
                field: "num_heads",
                value: self.num_heads,
                other_field: "cross-attention width",
                other_value: self.d_query,
            });
        }
        Ok(())
    }

    /// Builds the layer (σ = d^-1/2 / factor for every projection).
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails.
    pub fn init<B: Backend>(&self, device: &B::Device) -> CrossAttention<B> {
        if let Err(err) = self.validate() {
            panic!("invalid cross-attention config: {err}");
        }
        let q_std = fan_in_std(self.d_query, self.init_std_factor);
        let kv_std = fan_in_std(self.d_kv, self.init_std_factor);
        CrossAttention {
            query_norm: RmsNormConfig::new(self.d_query)
                .with_eps(self.norm_eps)
                .init(device),
            kv_norm: RmsNormConfig::new(self.d_kv)
                .with_eps(self.norm_eps)
                .init(device),
            wq: linear_no_bias(self.d_query, self.d_query, q_std, device),
            wk: linear_no_bias(self.d_kv, self.d_query, kv_std, device),
            wv: linear_no_bias(self.d_kv, self.d_query, kv_std, device),
            wo: linear_no_bias(self.d_query, self.d_query, q_std, device),
            dropout: DropoutConfig::new(self.dropout).init(),
            num_heads: self.num_heads,
        }
    }
}

/// Cross-attention layer. Build it with [`CrossAttentionConfig::init`].
#[derive(Module, Debug)]
pub struct CrossAttention<B: Backend> {
    /// RMSNorm on the queries.
    pub query_norm: RmsNorm<B>,
    /// RMSNorm on the keys/values source.
    pub kv_norm: RmsNorm<B>,
    /// Query projection.
    pub wq: Linear<B>,
    /// Key projection.
    pub wk: Linear<B>,
    /// Value projection.
    pub wv: Linear<B>,
    /// Output projection.
    pub wo: Linear<B>,
    /// Attention-probability dropout.
    pub dropout: Dropout,
    num_heads: usize,
}

impl<B: Backend> CrossAttention<B> {
    /// Attention heads.
    pub(crate) fn num_heads(&self) -> usize {
        self.num_heads
    }

    /// Attends from `queries` to `context`; returns the attention output only (no residual).
    ///
    /// # Shapes
    /// - queries: `[batch, tq, d_query]`
    /// - context: `[batch, tk, d_kv]`
    /// - mask: `[batch, tq, tk]`, `true` = masked; rows with every key masked give zeros
    /// - output: `[batch, tq, d_query]`
    pub fn forward(
        &self,
        queries: Tensor<B, 3>,
        context: Tensor<B, 3>,
        mask: Tensor<B, 3, Bool>,
    ) -> Tensor<B, 3> {
        let [batch, tq, d] = queries.dims();
        let tk = context.dims()[1];
        let (h, dh) = (self.num_heads, d / self.num_heads);
        let q = linear(&self.wq, self.query_norm.forward(queries));
        let context = self.kv_norm.forward(context);
        let k = linear(&self.wk, context.clone());
        let v = linear(&self.wv, context);
        let heads = |t: Tensor<B, 3>, len: usize| t.reshape([batch, len, h, dh]).swap_dims(1, 2);
        // Which rows see at least one key: enforce exact zeros whatever the backend's kernel
        // does with a fully masked row.
        let any_visible = mask.clone().bool_not().any_dim(2).float();
        let out = scaled_dot_product(
            heads(q, tq),
            heads(k, tk),
            heads(v, tk),
            Some(mask),
            &self.dropout,
        );
        let out = out.swap_dims(1, 2).reshape([batch, tq, d]);
        linear(&self.wo, out) * any_visible
    }

    /// Attends from each query to one *group* of `group_size` consecutive context rows only,
    /// chosen by `group_index` (e.g. the `k` slots of one patch, or the bytes of one patch laid
    /// out in fixed-size groups). Cost grows with `tq · group_size`, not `tq · tk`: keys and
    /// values are projected once, then gathered per query.
    ///
    /// # Shapes
    /// - queries: `[batch, tq, d_query]`
    /// - context: `[batch, groups · group_size, d_kv]`
    /// - group_index: `[batch, tq]`, each in `0..groups`
    /// - mask: `[batch, tq, group_size]`, `true` = masked (`None`: all visible); rows with
    ///   every key masked give zeros
    /// - output: `[batch, tq, d_query]`
    pub fn forward_grouped(
        &self,
        queries: Tensor<B, 3>,
        context: Tensor<B, 3>,
        group_index: Tensor<B, 2, Int>,
        group_size: usize,
        mask: Option<Tensor<B, 3, Bool>>,
    ) -> Tensor<B, 3> {
        let [batch, tq, d] = queries.dims();
        let tk = context.dims()[1];
        assert!(
            tk.is_multiple_of(group_size),
            "context length {tk} is not a multiple of {group_size}"
        );
        let groups = tk / group_size;
        let (h, dh) = (self.num_heads, d / self.num_heads);
        let q = linear(&self.wq, self.query_norm.forward(queries))
            .reshape([batch * tq, 1, h, dh])
            .swap_dims(1, 2);
        let context = self.kv_norm.forward(context);
        let device = context.device();
        let row_offset = Tensor::<B, 1, Int>::arange(0..batch as i64, &device)
            .mul_scalar(groups as i64)
            .reshape([batch, 1]);
        let rows = (group_index + row_offset).reshape([batch * tq]);
        let gather = |t: Tensor<B, 3>| {
            t.reshape([batch * groups, group_size * d])
                .select(0, rows.clone())
                .reshape([batch * tq, group_size, h, dh])
                .swap_dims(1, 2)
        };
        let k = gather(linear(&self.wk, context.clone()));
        let v = gather(linear(&self.wv, context));
        let any_visible = mask
            .as_ref()
            .map(|m| m.clone().bool_not().any_dim(2).float());
        let mask = mask.map(|m| m.reshape([batch * tq, 1, group_size]));
        let out = scaled_dot_product(q, k, v, mask, &self.dropout).reshape([batch, tq, d]);
        let out = linear(&self.wo, out);
        match any_visible {
            Some(visible) => out * visible,
            None => out,
        }
    }
}
