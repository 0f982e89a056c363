//! The λ re-parameterisation and head normalisation of differential attention
//! (Ye et al., 2024, "Differential Transformer", §2.1; reference code microsoft/unilm `Diff-Transformer`).
//!
//! λ = exp(λq1·λk1) − exp(λq2·λk2) + λ_init, with λ_init = 0.8 − 0.6·exp(−0.3·layer), and each
//! head's output normalised by RMSNorm then scaled by (1 − λ_init).

use burn::{
    config::Config,
    module::{Module, Param},
    tensor::{Tensor, backend::Backend},
};

use crate::{
    init::trunc_normal_param,
    norm::{RmsNorm, RmsNormConfig},
};

/// λ_init for a layer at 0-based depth `layer`: `0.8 − 0.6·exp(−0.3·layer)`.
pub fn lambda_init(layer: usize) -> f64 {
    0.8 - 0.6 * (-0.3 * layer as f64).exp()
}

/// Configuration of a [`DifferentialLambda`].
#[derive(Config, Debug)]
pub struct DifferentialLambdaConfig {
    /// Dimension of each of the two query/key halves (half the head dimension).
    pub half_head_dim: usize,
    /// Full head dimension (the value width), normalised per head.
    pub head_dim: usize,
    /// 0-based depth of the layer, which sets λ_init.
    pub layer_index: usize,
    /// RMSNorm epsilon of the head normalisation. Default: 1e-5.
    #[config(default = 1e-5)]
    pub norm_eps: f64,
}

impl DifferentialLambdaConfig {
    /// Builds the λ vectors (N(0, 0.1²), truncated) and the head normalisation.
    pub fn init<B: Backend>(&self, device: &B::Device) -> DifferentialLambda<B> {
        let vector = || trunc_normal_param([self.half_head_dim], 0.1, device);
        DifferentialLambda {
            lambda_q1: vector(),
            lambda_k1: vector(),
            lambda_q2: vector(),
            lambda_k2: vector(),
            head_norm: RmsNormConfig::new(self.head_dim)
                .with_eps(self.norm_eps)
                .init(device),
            lambda_init: lambda_init(self.layer_index),
        }
    }
}

/// Learned λ and per-head normalisation of one differential attention layer.
#[derive(Module, Debug)]
pub struct DifferentialLambda<B: Backend> {
    /// λq1, `[half_head_dim]`.
    pub lambda_q1: Param<Tensor<B, 1>>,
    /// λk1, `[half_head_dim]`.
    pub lambda_k1: Param<Tensor<B, 1>>,
    /// λq2, `[half_head_dim]`.
    pub lambda_q2: Param<Tensor<B, 1>>,
    /// λk2, `[half_head_dim]`.
    pub lambda_k2: Param<Tensor<B, 1>>,
    /// Per-head RMSNorm over the head dimension ("headwise normalisation").
    pub head_norm: RmsNorm<B>,
    /// λ_init of this layer.
    pub lambda_init: f64,
}

impl<B: Backend> DifferentialLambda<B> {
    /// The scalar λ as a `[1]` tensor (kept on device: no host round-trip).
    pub fn lambda(&self) -> Tensor<B, 1> {
        let first = (self.lambda_q1.val() * self.lambda_k1.val()).sum().exp();
        let second = (self.lambda_q2.val() * self.lambda_k2.val()).sum().exp();
        first - second + self.lambda_init
    }

    /// Combines the two attention outputs: `norm(o1 − λ·o2) · (1 − λ_init)`.
    ///
    /// # Shapes
    /// - first, second: `[batch, heads, seq, head_dim]`
    /// - output: `[batch, heads, seq, head_dim]`
    pub fn combine(&self, first: Tensor<B, 4>, second: Tensor<B, 4>) -> Tensor<B, 4> {
        let lambda = self.lambda().reshape([1, 1, 1, 1]);
        let diff = first - second * lambda;
        self.head_norm.forward(diff) * (1.0 - self.lambda_init)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_init_follows_depth_schedule() {
        assert!((lambda_init(0) - 0.2).abs() < 1e-12);
        assert!((lambda_init(1) - (0.8 - 0.6 * (-0.3f64).exp())).abs() < 1e-12);
        assert!(lambda_init(40) > 0.79 && lambda_init(40) < 0.8);
    }
}
