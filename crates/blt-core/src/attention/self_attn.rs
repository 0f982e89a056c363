//! Multi-head self-attention with RoPE, local block-causal masks (sliding window, document
//! boundaries) and a KV cache; standard or differential (reference §5, §8; Ye et al., 2024).

use burn::{
    config::Config,
    module::Module,
    nn::{Dropout, DropoutConfig, Linear},
    tensor::{Bool, Tensor, backend::Backend},
};

use super::{
    AttentionKind, KvCache,
    differential::{DifferentialLambda, DifferentialLambdaConfig},
    sdpa::scaled_dot_product,
};
use crate::{
    error::CoreError,
    init::{fan_in_std, linear_no_bias},
    kernels::{self, linear},
    mask::{Span, local_causal_mask_at},
    rope::{Rope, RopeConfig},
};

/// Configuration of a [`SelfAttention`].
#[derive(Config, Debug)]
pub struct SelfAttentionConfig {
    /// Model width.
    pub d_model: usize,
    /// Number of heads; must divide `d_model` (and, for differential attention, the head
    /// dimension must be a multiple of 4).
    pub num_heads: usize,
    /// Standard or differential attention. Default: standard.
    #[config(default = "AttentionKind::Standard")]
    pub kind: AttentionKind,
    /// RoPE base θ. Default: 5e5.
    #[config(default = 5e5)]
    pub rope_theta: f64,
    /// Longest sequence (absolute position + 1) the layer can encode. Default: 4096.
    #[config(default = 4096)]
    pub max_seq_len: usize,
    /// Dropout on the attention probabilities (training only). Default: 0.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// 0-based depth of the layer (sets differential attention's λ_init). Default: 0.
    #[config(default = 0)]
    pub layer_index: usize,
    /// Epsilon of differential attention's head normalisation. Default: 1e-5.
    #[config(default = 1e-5)]
    pub norm_eps: f64,
    /// Divides the initial standard deviations (the original's depth factor). Default: 1.
    #[config(default = 1.0)]
    pub init_std_factor: f64,
}

impl SelfAttentionConfig {
    /// Checks that the sizes are consistent.
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.num_heads == 0 || !self.d_model.is_multiple_of(self.num_heads) {
            return Err(CoreError::NotDivisible {
                field: "num_heads",
                value: self.num_heads,
                other_field: "hidden_size",
                other_value: self.d_model,
            });
        }
        let head_dim = self.d_model / self.num_heads;
        let multiple = match self.kind {
            AttentionKind::Standard => 2,
            AttentionKind::Differential => 4,
        };
        if !head_dim.is_multiple_of(multiple) {
            return Err(CoreError::OutOfRange {
                field: "head dimension (hidden_size / num_heads)",
                value: head_dim.to_string(),
                requirement: if multiple == 2 {
                    "must be even for rotary encoding"
                } else {
                    "must be a multiple of 4 for differential attention"
                },
            });
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(CoreError::OutOfRange {
                field: "attention_dropout",
                value: self.dropout.to_string(),
                requirement: "must be in [0, 1)",
            });
        }
        Ok(())
    }

    /// Builds the layer (fused QKV projection, σ = d^-1/2 / factor).
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails; validate user configs first.
    pub fn init<B: Backend>(&self, device: &B::Device) -> SelfAttention<B> {
        if let Err(err) = self.validate() {
            panic!("invalid self-attention config: {err}");
        }
        let head_dim = self.d_model / self.num_heads;
        let std = fan_in_std(self.d_model, self.init_std_factor);
        let (rope_dim, differential) = match self.kind {
            AttentionKind::Standard => (head_dim, None),
            AttentionKind::Differential => (
                head_dim / 2,
                Some(
                    DifferentialLambdaConfig::new(head_dim / 2, head_dim, self.layer_index)
                        .with_norm_eps(self.norm_eps)
                        .init(device),
                ),
            ),
        };
        SelfAttention {
            qkv: linear_no_bias(self.d_model, 3 * self.d_model, std, device),
            output: linear_no_bias(self.d_model, self.d_model, std, device),
            rope: RopeConfig::new(rope_dim)
                .with_max_seq_len(self.max_seq_len)
                .with_theta(self.rope_theta)
                .init(device),
            differential,
            dropout: DropoutConfig::new(self.dropout).init(),
            num_heads: self.num_heads,
            head_dim,
        }
    }
}

/// Self-attention layer. Build it with [`SelfAttentionConfig::init`].
#[derive(Module, Debug)]
pub struct SelfAttention<B: Backend> {
    /// Fused `[wq | wk | wv]` projection, `[d_model, 3·d_model]`.
    pub qkv: Linear<B>,
    /// Output projection `wo`, `[d_model, d_model]`.
    pub output: Linear<B>,
    /// Rotary encoding (per head, or per half-head for differential attention).
    pub rope: Rope<B>,
    /// λ and head normalisation when the layer is differential.
    pub differential: Option<DifferentialLambda<B>>,
    /// Attention-probability dropout.
    pub dropout: Dropout,
    num_heads: usize,
    head_dim: usize,
}

/// Where the rotary encoding puts new tokens.
#[derive(Debug, Clone, Copy)]
enum RopeAt<'a> {
    /// Every row from this position on.
    Offset(usize),
    /// Row `r` from `positions[r]` on.
    Rows(&'a [usize]),
}

impl<B: Backend> SelfAttention<B> {
    /// Attends over a whole sequence starting at position 0.
    ///
    /// # Shapes
    /// - x: `[batch, seq, d_model]`
    /// - mask: `[batch, seq, seq]`, `true` = masked (see [`crate::mask::local_causal_mask`])
    /// - output: `[batch, seq, d_model]`
    pub fn forward(&self, x: Tensor<B, 3>, mask: Tensor<B, 3, Bool>) -> Tensor<B, 3> {
        let qkv = self.rotated_qkv(x, RopeAt::Offset(0));
        // Our kernel splits and merges the heads itself (not for differential layers, nor with
        // attention dropout in training, which only the composition applies).
        let kernel_fits = self.differential.is_none()
            && (self.dropout.prob == 0.0 || !B::ad_enabled(&qkv.device()));
        if kernel_fits
            && let Some(merged) =
                kernels::qkv_attention(qkv.clone(), Some(mask.clone()), self.num_heads)
        {
            return linear(&self.output, merged);
        }
        let (q, k, v) = self.split_heads(qkv);
        self.attend(q, k, v, mask)
    }

    /// Attends for new tokens that continue the cached sequence, then caches their keys and
    /// values. The mask (window and documents) is built from the cache's positions.
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

    /// [`SelfAttention::forward_cached`] for rows that are not aligned: row `r`'s new tokens
    /// take rotary positions from `positions[r]` on (`None`: the cache's position). The mask
    /// still uses the cache's shared positions, which keep every row's order and distances, so
    /// a row that starts late (left padding, hidden by a segment id no real token uses) sees
    /// exactly what it would see alone.
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
        let [batch, new, _] = x.dims();
        let device = x.device();
        let at = match positions {
            Some(p) => RopeAt::Rows(p),
            None => RopeAt::Offset(cache.next),
        };
        let (q, k, v) = self.project(x, at);
        let new_segments: Vec<Vec<u32>> = match segments {
            Some(s) => s.to_vec(),
            None => vec![vec![0; new]; batch],
        };
        let cached_segments = if cache.segments.is_empty() {
            vec![Vec::new(); batch]
        } else {
            cache.segments.clone()
        };
        let key_segments: Vec<Vec<u32>> = cached_segments
            .iter()
            .zip(&new_segments)
            .map(|(old, new)| old.iter().chain(new).copied().collect())
            .collect();
        let (keys, values) = cache.extended(k, v);
        let mask = local_causal_mask_at::<B>(
            batch,
            Span {
                start: cache.next,
                len: new,
            },
            Span {
                start: cache.start,
                len: cache.len() + new,
            },
            cache.window,
            Some(&new_segments),
            Some(&key_segments),
            &device,
        );
        let out = self.attend(q, keys.clone(), values.clone(), mask);
        cache.store(keys, values, new, new_segments);
        out
    }

    /// Heads and their dimension.
    pub(crate) fn heads(&self) -> (usize, usize) {
        (self.num_heads, self.head_dim)
    }

    /// Projects to rotated queries and keys and to values, in attention layout. Differential
    /// layers put their two query/key halves on the head axis: `[batch, 2·heads, seq, dh/2]`.
    fn project(
        &self,
        x: Tensor<B, 3>,
        at: RopeAt<'_>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4>) {
        self.split_heads(self.rotated_qkv(x, at))
    }

    /// The fused projection `[batch, seq, 3·heads·head_dim]` with queries and keys rotated.
    fn rotated_qkv(&self, x: Tensor<B, 3>, at: RopeAt<'_>) -> Tensor<B, 3> {
        let (h, dh) = (self.num_heads, self.head_dim);
        // Rotate queries and keys while they are still contiguous `[q | k | v]` rows: the same
        // values as rotating each head after the split, several times cheaper on NdArray.
        // Differential layers rotate each half-head, which tiles the same way.
        let qkv = linear(&self.qkv, x);
        match at {
            RopeAt::Offset(offset) => self.rope.apply_flat(qkv, 2 * h * dh, offset),
            RopeAt::Rows(positions) => self.rope.apply_flat_at(qkv, 2 * h * dh, positions),
        }
    }

    /// Queries, keys and values in attention layout from the fused projection.
    fn split_heads(&self, qkv: Tensor<B, 3>) -> (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4>) {
        let [batch, seq, _] = qkv.dims();
        let (h, dh) = (self.num_heads, self.head_dim);
        let qkv = qkv.reshape([batch, seq, 3 * h, dh]).swap_dims(1, 2);
        let q = qkv.clone().narrow(1, 0, h);
        let k = qkv.clone().narrow(1, h, h);
        let v = qkv.narrow(1, 2 * h, h);
        let split = |t: Tensor<B, 4>| match self.differential {
            None => t,
            // [b, h, s, dh] -> [b, h, s, 2, dh/2] -> [b, 2, h, s, dh/2] -> [b, 2h, s, dh/2]
            Some(_) => t
                .reshape([batch, h, seq, 2, dh / 2])
                .permute([0, 3, 1, 2, 4])
                .reshape([batch, 2 * h, seq, dh / 2]),
        };
        (split(q), split(k), v)
    }

    fn attend(
        &self,
        q: Tensor<B, 4>,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
        mask: Tensor<B, 3, Bool>,
    ) -> Tensor<B, 3> {
        let [batch, _, seq, _] = q.dims();
        let h = self.num_heads;
        let heads = match &self.differential {
            None => scaled_dot_product(q, k, v, Some(mask), &self.dropout),
            Some(diff) => {
                let both = scaled_dot_product(
                    q,
                    k,
                    Tensor::cat(vec![v.clone(), v], 1),
                    Some(mask),
                    &self.dropout,
                );
                diff.combine(both.clone().narrow(1, 0, h), both.narrow(1, h, h))
            }
        };
        let merged = heads
            .swap_dims(1, 2)
            .reshape([batch, seq, h * self.head_dim]);
        linear(&self.output, merged)
    }
}
