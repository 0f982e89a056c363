//! Root-mean-square layer normalisation (Zhang & Sennrich, 2019), as used in every BLT block
//! (reference §8: eps 1e-5, learned scale initialised to one, no bias).

use burn::{
    config::Config,
    module::{Module, Param},
    tensor::{Tensor, backend::Backend},
};

/// Configuration of an [`RmsNorm`].
#[derive(Config, Debug)]
pub struct RmsNormConfig {
    /// Size of the normalised (last) dimension.
    pub d_model: usize,
    /// Added to the mean square before the square root. Default: 1e-5.
    #[config(default = 1e-5)]
    pub eps: f64,
}

impl RmsNormConfig {
    /// Builds the layer with its scale set to one.
    pub fn init<B: Backend>(&self, device: &B::Device) -> RmsNorm<B> {
        RmsNorm {
            gamma: Param::from_tensor(Tensor::ones([self.d_model], device)),
            eps: self.eps,
        }
    }
}

/// `y = x / sqrt(mean(x²) + eps) · γ` over the last dimension.
#[derive(Module, Debug)]
pub struct RmsNorm<B: Backend> {
    /// Learned scale, `[d_model]`.
    pub gamma: Param<Tensor<B, 1>>,
    /// Numerical-stability constant.
    pub eps: f64,
}

impl<B: Backend> RmsNorm<B> {
    /// Normalises over the last dimension.
    ///
    /// # Shapes
    /// - x: `[..., d_model]`
    /// - output: `[..., d_model]`
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        crate::kernels::rms_norm(x, self.gamma.val(), self.eps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{TestBackend, max_abs_diff};
    use burn::tensor::TensorData;

    #[test]
    fn matches_hand_computed_values() {
        let device = Default::default();
        let norm = RmsNormConfig::new(4).init::<TestBackend>(&device);
        let x = Tensor::<TestBackend, 2>::from_floats(
            [[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]],
            &device,
        );
        // mean(x²) = (1 + 4 + 9 + 16) / 4 = 7.5; rms = sqrt(7.50001).
        let rms = (7.5f32 + 1e-5).sqrt();
        let expected = Tensor::<TestBackend, 2>::from_data(
            TensorData::from([
                [1.0 / rms, 2.0 / rms, 3.0 / rms, 4.0 / rms],
                [0.0, 0.0, 0.0, 0.0],
            ]),
            &device,
        );
        assert!(max_abs_diff(norm.forward(x), expected) < 1e-6);
    }

    #[test]
    fn scale_and_eps_are_applied() {
        let device = Default::default();
        let mut norm = RmsNormConfig::new(2)
            .with_eps(1.0)
            .init::<TestBackend>(&device);
        norm.gamma = Param::from_tensor(Tensor::from_floats([2.0, -1.0], &device));
        let x = Tensor::<TestBackend, 1>::from_floats([3.0, 4.0], &device);
        // mean(x²) = 12.5; + eps 1 = 13.5.
        let r = 13.5f32.sqrt();
        let expected = Tensor::<TestBackend, 1>::from_floats([6.0 / r, -4.0 / r], &device);
        assert!(max_abs_diff(norm.forward(x), expected) < 1e-6);
    }

    #[test]
    fn large_inputs_match_a_float64_reference() {
        // 256 rows: enough that a SIMD backend takes its vector paths. An approximate reciprocal
        // (x86 `rcp`, 12 bits) would miss this bound by two orders of magnitude.
        let (rows, dim) = (256, 64);
        let device = Default::default();
        let norm = RmsNormConfig::new(dim).init::<TestBackend>(&device);
        let values: Vec<f32> = (0..rows * dim)
            .map(|i| ((i * 7919 % 1000) as f32 / 250.0) - 2.0)
            .collect();
        let expected: Vec<f32> = values
            .chunks(dim)
            .flat_map(|row| {
                let mean = row.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / dim as f64;
                let rms = (mean + 1e-5).sqrt();
                row.iter().map(move |&v| (f64::from(v) / rms) as f32)
            })
            .collect();
        let x = Tensor::<TestBackend, 2>::from_data(TensorData::new(values, [rows, dim]), &device);
        let expected =
            Tensor::<TestBackend, 2>::from_data(TensorData::new(expected, [rows, dim]), &device);
        let diff = max_abs_diff(norm.forward(x), expected);
        assert!(diff < 2e-6, "{diff}");
    }
}
