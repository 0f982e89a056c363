//! Masked next-byte cross-entropy and the statistics derived from it (bits per byte, accuracy,
//! confidence). Unlike Burn's `CrossEntropyLoss` with pad tokens (which averages over *all*
//! positions), padding here is excluded from both the sum and the count.

use burn::tensor::{Bool, Int, Tensor, activation::log_softmax, backend::Backend};

/// Sums over the unmasked targets of a batch.
#[derive(Debug, Clone)]
pub struct LossSums<B: Backend> {
    /// Σ −log p(target), nats, `[1]` (differentiable).
    pub loss_sum: Tensor<B, 1>,
    /// Σ p(target), `[1]`.
    pub confidence_sum: Tensor<B, 1>,
    /// Number of targets whose arg-max prediction is right, `[1]`.
    pub correct: Tensor<B, 1, Int>,
    /// Number of unmasked targets (bytes).
    pub count: usize,
}

impl<B: Backend> LossSums<B> {
    /// Mean loss in nats (the training objective), `[1]`.
    pub fn mean_loss(&self) -> Tensor<B, 1> {
        self.loss_sum.clone() / self.count.max(1) as f64
    }
}

/// Every position's log-probability of its target, and whether the arg-max prediction is the
/// target, flattened over batch and sequence.
///
/// # Shapes
/// - logits: `[batch, seq, vocab]`; targets: `[batch, seq]`
/// - output: `[batch · seq]` each
pub fn target_log_probs<B: Backend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
) -> (Tensor<B, 1>, Tensor<B, 1, Bool>) {
    let [batch, seq, vocab] = logits.dims();
    let n = batch * seq;
    let logits = logits.reshape([n, vocab]);
    let targets = targets.reshape([n, 1]);
    let log_p = log_softmax(logits.clone(), 1);
    let target_log_p = log_p.gather(1, targets.clone()).reshape([n]);
    let hit = logits.argmax(1).equal(targets).reshape([n]);
    (target_log_p, hit)
}

/// Cross-entropy of `logits` against `targets` where `mask` is `true`.
///
/// # Shapes
/// - logits: `[batch, seq, vocab]`; targets: `[batch, seq]`; mask: `[batch, seq]`
pub fn masked_cross_entropy<B: Backend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
    mask: Tensor<B, 2, Bool>,
    count: usize,
) -> LossSums<B> {
    let n: usize = mask.dims().iter().product();
    let keep = mask.reshape([n]).float();
    let (target_log_p, hit) = target_log_probs(logits, targets);
    let correct = hit.int() * keep.clone().int();
    LossSums {
        loss_sum: (target_log_p.clone().neg() * keep.clone()).sum(),
        confidence_sum: (target_log_p.exp() * keep).sum(),
        correct: correct.sum(),
        count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::{backend::NdArray, tensor::TensorData};

    #[test]
    fn padding_is_excluded_and_values_match_hand_computation() {
        let device = Default::default();
        // Two positions, vocab 2; the second is padding with garbage logits.
        let logits = Tensor::<NdArray, 3>::from_floats([[[0.0, 0.0], [100.0, -100.0]]], &device);
        let targets = Tensor::<NdArray, 2, Int>::from_ints([[1, 1]], &device);
        let mask =
            Tensor::<NdArray, 2, Bool>::from_data(TensorData::from([[true, false]]), &device);
        let sums = masked_cross_entropy(logits, targets, mask, 1);
        let loss: f32 = sums.mean_loss().into_scalar();
        assert!((loss - std::f32::consts::LN_2).abs() < 1e-6);
        let conf: f32 = sums.confidence_sum.into_scalar();
        assert!((conf - 0.5).abs() < 1e-6);
    }
}
