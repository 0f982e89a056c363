//! SwiGLU feed-forward network (Shazeer, 2020): `w2(silu(w1·x) ⊙ w3·x)`, bias-free, with the
//! hidden size rule of the original BLT / Llama (reference §8).

use burn::{
    config::Config,
    module::Module,
    nn::Linear,
    tensor::{Tensor, backend::Backend},
};

use crate::{
    init::{fan_in_std, linear_no_bias},
    kernels::{linear, swiglu},
};

/// Hidden size `256 · ceil(floor(8·d/3) / 256)`: 768 → 2048, 1024 → 2816, 2048 → 5632.
pub fn swiglu_hidden_size(d_model: usize) -> usize {
    const MULTIPLE_OF: usize = 256;
    let raw = 8 * d_model / 3;
    raw.div_ceil(MULTIPLE_OF) * MULTIPLE_OF
}

/// Configuration of a [`SwiGlu`].
#[derive(Config, Debug)]
pub struct SwiGluConfig {
    /// Input and output size.
    pub d_model: usize,
    /// Hidden size. Default: `None`, meaning [`swiglu_hidden_size`]`(d_model)`.
    #[config(default = "None")]
    pub hidden_size: Option<usize>,
    /// Divides the initial standard deviations (the original's depth factor). Default: 1.
    #[config(default = 1.0)]
    pub init_std_factor: f64,
}

impl SwiGluConfig {
    /// The hidden size this configuration resolves to.
    pub fn resolved_hidden_size(&self) -> usize {
        self.hidden_size
            .unwrap_or_else(|| swiglu_hidden_size(self.d_model))
    }

    /// Builds the layer: w1, w3 with σ = d^-1/2, w2 with σ = hidden^-1/2 (each / factor).
    pub fn init<B: Backend>(&self, device: &B::Device) -> SwiGlu<B> {
        let hidden = self.resolved_hidden_size();
        let in_std = fan_in_std(self.d_model, self.init_std_factor);
        SwiGlu {
            gate: linear_no_bias(self.d_model, hidden, in_std, device),
            up: linear_no_bias(self.d_model, hidden, in_std, device),
            down: linear_no_bias(
                hidden,
                self.d_model,
                fan_in_std(hidden, self.init_std_factor),
                device,
            ),
        }
    }
}

/// SwiGLU feed-forward block.
#[derive(Module, Debug)]
pub struct SwiGlu<B: Backend> {
    /// `w1`, the gate projection `[d_model, hidden]`.
    pub gate: Linear<B>,
    /// `w3`, the up projection `[d_model, hidden]`.
    pub up: Linear<B>,
    /// `w2`, the down projection `[hidden, d_model]`.
    pub down: Linear<B>,
}

impl<B: Backend> SwiGlu<B> {
    /// Applies the feed-forward network.
    ///
    /// # Shapes
    /// - x: `[..., d_model]`
    /// - output: `[..., d_model]`
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let gated = swiglu(linear(&self.gate, x.clone()), linear(&self.up, x));
        linear(&self.down, gated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{TestBackend, max_abs_diff};
    use burn::{module::Param, tensor::Distribution};

    #[test]
    fn hidden_size_rule_matches_reference() {
        assert_eq!(swiglu_hidden_size(768), 2048);
        assert_eq!(swiglu_hidden_size(1024), 2816);
        assert_eq!(swiglu_hidden_size(2048), 5632);
        assert_eq!(
            SwiGluConfig::new(64)
                .with_hidden_size(Some(100))
                .resolved_hidden_size(),
            100
        );
    }

    #[test]
    fn computes_gated_product() {
        let device = Default::default();
        let mut ffn = SwiGluConfig::new(2)
            .with_hidden_size(Some(1))
            .init::<TestBackend>(&device);
        ffn.gate.weight = Param::from_tensor(Tensor::from_floats([[1.0], [0.0]], &device));
        ffn.up.weight = Param::from_tensor(Tensor::from_floats([[0.0], [2.0]], &device));
        ffn.down.weight = Param::from_tensor(Tensor::from_floats([[1.0, -1.0]], &device));
        let x = Tensor::<TestBackend, 2>::from_floats([[1.5, 0.5]], &device);
        // silu(1.5) · (2 · 0.5) = 1.5 · sigmoid(1.5).
        let g = 1.5f32 / (1.0 + (-1.5f32).exp());
        let expected = Tensor::<TestBackend, 2>::from_floats([[g, -g]], &device);
        assert!(max_abs_diff(ffn.forward(x), expected) < 1e-6);
    }

    #[test]
    fn shapes_and_init_scale() {
        let device = Default::default();
        let ffn = SwiGluConfig::new(48).init::<TestBackend>(&device);
        assert_eq!(ffn.gate.weight.dims(), [48, 256]);
        assert_eq!(ffn.down.weight.dims(), [256, 48]);
        let x =
            Tensor::<TestBackend, 3>::random([2, 5, 48], Distribution::Normal(0.0, 1.0), &device);
        assert_eq!(ffn.forward(x).dims(), [2, 5, 48]);
        let std: f32 = ffn
            .gate
            .weight
            .val()
            .powf_scalar(2.0)
            .mean()
            .sqrt()
            .into_scalar();
        let expected = (48f32).powf(-0.5) * 0.9733f32.sqrt();
        assert!((std - expected).abs() < 0.01, "std {std} vs {expected}");
    }
}
