//! Weight initialisation following the original BLT (reference §8): truncated normal
//! distributions cut at ±3σ, with σ = fan_in^-1/2 divided by a depth factor.

use burn::{
    module::{Param, ParamId},
    nn::Linear,
    tensor::{Distribution, Shape, Tensor, backend::Backend},
};

/// Number of re-draws for samples that fall outside ±3σ before the rest are clamped.
const REDRAWS: usize = 4;

/// Samples a tensor from N(0, σ²) truncated to [−3σ, 3σ].
///
/// Out-of-range samples are re-drawn a few times (the probability of staying out after four
/// re-draws is about 5e-11), then clamped, so the result is a proper truncated normal.
pub fn trunc_normal<B: Backend, const D: usize>(
    shape: [usize; D],
    std: f64,
    device: &B::Device,
) -> Tensor<B, D> {
    let bound = 3.0 * std;
    let mut x = Tensor::<B, D>::random(shape, Distribution::Normal(0.0, std), device);
    for _ in 0..REDRAWS {
        let outside = x.clone().abs().greater_elem(bound);
        let fresh = Tensor::<B, D>::random(shape, Distribution::Normal(0.0, std), device);
        x = x.mask_where(outside, fresh);
    }
    x.clamp(-bound, bound)
}

/// A parameter initialised lazily (on first use) from [`trunc_normal`]: building a model costs
/// nothing until its weights are needed, and loading a record never draws them at all.
pub fn trunc_normal_param<B: Backend, const D: usize>(
    shape: [usize; D],
    std: f64,
    device: &B::Device,
) -> Param<Tensor<B, D>> {
    Param::uninitialized(
        ParamId::new(),
        move |device, require_grad| {
            let tensor = trunc_normal::<B, D>(shape, std, device);
            if require_grad {
                tensor.require_grad()
            } else {
                tensor
            }
        },
        device.clone(),
        true,
        Shape::from(shape),
    )
}

/// A bias-free [`Linear`] (`[d_input, d_output]` weight) with a truncated-normal weight of the
/// given standard deviation.
pub fn linear_no_bias<B: Backend>(
    d_input: usize,
    d_output: usize,
    std: f64,
    device: &B::Device,
) -> Linear<B> {
    Linear {
        weight: trunc_normal_param([d_input, d_output], std, device),
        bias: None,
    }
}

/// The standard deviation `dim^-1/2 / factor` used throughout the original BLT.
pub fn fan_in_std(dim: usize, factor: f64) -> f64 {
    (dim as f64).powf(-0.5) / factor
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestBackend;

    #[test]
    fn trunc_normal_respects_bound_and_scale() {
        let device = Default::default();
        TestBackend::seed(&device, 7);
        let std = 0.05;
        let x = trunc_normal::<TestBackend, 2>([256, 256], std, &device);
        let max: f32 = x.clone().abs().max().into_scalar();
        assert!(max <= (3.0 * std) as f32 + 1e-7, "max {max} beyond 3σ");
        let var: f32 = x.powf_scalar(2.0).mean().into_scalar();
        // The variance of a normal truncated at ±3σ is 0.9733 σ².
        let ratio = var as f64 / (std * std);
        assert!((ratio - 0.9733).abs() < 0.02, "variance ratio {ratio}");
    }
}
