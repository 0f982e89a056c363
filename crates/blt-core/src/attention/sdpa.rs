//! Scaled dot-product attention shared by the self- and cross-attention layers.

use burn::{
    nn::Dropout,
    tensor::{Bool, Tensor, backend::Backend},
};

use crate::kernels::{AttentionInputs, attention};

/// `softmax(q·kᵀ/√d + mask)·v` with `true` mask entries excluded. A query whose keys are all
/// masked gets a zero output, never NaN.
///
/// Uses the fused attention op of [`crate::kernels`] (our CPU kernel on NdArray, Burn's flash
/// kernels on GPU inference) unless attention dropout is active, which the fused ops do not
/// support; then the same NaN-safe computation is spelled out with dropout on the probabilities.
///
/// # Shapes
/// - q: `[batch, heads, tq, dk]`, k: `[batch, heads, tk, dk]`, v: `[batch, heads, tk, dv]`
/// - mask: `[batch, tq, tk]` (shared by all heads); `None` = every key visible
/// - output: `[batch, heads, tq, dv]`
pub(crate) fn scaled_dot_product<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Option<Tensor<B, 3, Bool>>,
    dropout: &Dropout,
) -> Tensor<B, 4> {
    if dropout.prob == 0.0 || !B::ad_enabled(&q.device()) {
        return attention(AttentionInputs { q, k, v, mask });
    }
    let [batch, heads, tq, dk] = q.dims();
    let tk = k.dims()[2];
    let mask = mask.map(|m| m.unsqueeze_dim::<4>(1).expand([batch, heads, tq, tk]));
    let scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (dk as f64).sqrt());
    let scores = match mask {
        Some(mask) => scores.mask_fill(mask, f32::NEG_INFINITY),
        None => scores,
    };
    let max = scores.clone().max_dim(3).clamp_min(f32::MIN);
    let exp = (scores - max).exp();
    let sum = exp.clone().sum_dim(3).clamp_min(f32::MIN_POSITIVE);
    dropout.forward(exp / sum).matmul(v)
}
