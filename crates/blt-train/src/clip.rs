//! Gradient clipping by the **global** L2 norm over all parameters.
//!
//! Burn 0.21's `GradientClippingConfig::Norm` clips each parameter tensor on its own, which
//! changes the direction of the update. [`clip_grad_norm`] scales every gradient by the same
//! factor `min(1, max_norm / (‖g‖ + 1e-6))`, where `‖g‖` is the norm of all gradients
//! together (as `torch.nn.utils.clip_grad_norm_` does). Call it from an overridden
//! `TrainStep::optimize`, which receives the accumulated gradients, before `optim.step`.

use std::collections::HashSet;

use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};

/// Added to the norm before dividing, as in PyTorch.
const NORM_EPSILON: f64 = 1e-6;

/// Sums ‖g‖² over the float parameters of a module that have a gradient.
struct SquaredNorm<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    seen: HashSet<ParamId>,
    total: Option<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        // A tied parameter is visited once per use but has one gradient.
        if !self.seen.insert(param.id) {
            return;
        }
        let Some(grad) = self.grads.get::<B::InnerBackend, D>(param.id) else {
            return;
        };
        let squared = grad.square().sum();
        self.total = Some(match self.total.take() {
            Some(total) => total + squared,
            None => squared,
        });
    }
}

/// Multiplies the gradient of every float parameter by `factor`.
struct Scale<'a> {
    grads: &'a mut GradientsParams,
    seen: HashSet<ParamId>,
    factor: f64,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if !self.seen.insert(param.id) {
            return;
        }
        if let Some(grad) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            self.grads.register(param.id, grad.mul_scalar(self.factor));
        }
    }
}

/// The global L2 norm of the gradients in `grads` for the float parameters of `module`.
///
/// Reads one scalar back to the host. Parameters without a gradient are skipped.
pub fn grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &GradientsParams,
) -> f64 {
    let mut visitor = SquaredNorm::<B> {
        grads,
        seen: HashSet::new(),
        total: None,
    };
    module.visit(&mut visitor);
    visitor
        .total
        .map_or(0.0, |total| total.into_scalar().elem::<f64>().sqrt())
}

/// Clips `grads` so that their global L2 norm is at most `max_norm`.
///
/// Returns the (possibly scaled) gradients and the global norm **before** clipping. All
/// gradients are multiplied by `min(1, max_norm / (norm + 1e-6))`, so the update direction is
/// kept. Gradients are returned unchanged when no scaling is needed, when `max_norm` is not a
/// positive number (clipping disabled), or when the norm is not finite (NaN or infinite
/// gradients cannot be repaired by scaling; the caller can check the returned norm and skip
/// the step). Parameters without a gradient stay without one.
///
/// The sum of squares is computed in the backend's float type; with half-precision gradients
/// it can overflow for very large norms.
pub fn clip_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    mut grads: GradientsParams,
    max_norm: f64,
) -> (GradientsParams, f64) {
    let norm = grad_norm::<B, M>(module, &grads);
    let factor = max_norm / (norm + NORM_EPSILON);
    if norm.is_finite() && max_norm > 0.0 && factor < 1.0 {
        let mut visitor = Scale {
            grads: &mut grads,
            seen: HashSet::new(),
            factor,
        };
        module.visit(&mut visitor);
    }
    (grads, norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::backend::Backend;

    type B = Autodiff<NdArray>;
    type Inner = NdArray;

    #[derive(Module, Debug)]
    struct TwoLayers<B: Backend> {
        a: Linear<B>,
        b: Linear<B>,
    }

    fn model() -> TwoLayers<B> {
        let device = Default::default();
        TwoLayers {
            a: LinearConfig::new(3, 2).init(&device),
            b: LinearConfig::new(2, 4).init(&device),
        }
    }

    fn ids(m: &TwoLayers<B>) -> [ParamId; 4] {
        let bias = |l: &Linear<B>| l.bias.as_ref().map(|b| b.id).unwrap();
        [m.a.weight.id, bias(&m.a), m.b.weight.id, bias(&m.b)]
    }

    /// Known gradients: a.weight = 1 (6 values), a.bias = 3 (2), b.weight = 2 (8), b.bias none.
    /// Squared norm 6·1 + 2·9 + 8·4 = 56.
    fn known_grads(m: &TwoLayers<B>, scale: f32) -> GradientsParams {
        let device = Default::default();
        let [a_w, a_b, b_w, _] = ids(m);
        let mut grads = GradientsParams::new();
        grads.register(a_w, Tensor::<Inner, 2>::full([3, 2], scale, &device));
        grads.register(a_b, Tensor::<Inner, 1>::full([2], 3.0 * scale, &device));
        grads.register(b_w, Tensor::<Inner, 2>::full([2, 4], 2.0 * scale, &device));
        grads
    }

    fn values<const D: usize>(grads: &GradientsParams, id: ParamId) -> Vec<f32> {
        grads
            .get::<Inner, D>(id)
            .unwrap()
            .into_data()
            .to_vec::<f32>()
            .unwrap()
    }

    #[test]
    fn norm_is_global() {
        let m = model();
        let norm = grad_norm::<B, _>(&m, &known_grads(&m, 1.0));
        assert!((norm - 56f64.sqrt()).abs() < 1e-5, "{norm}");
        assert_eq!(grad_norm::<B, _>(&m, &GradientsParams::new()), 0.0);
    }

    #[test]
    fn clipping_scales_every_tensor_by_one_factor() {
        let m = model();
        let [a_w, a_b, b_w, b_b] = ids(&m);
        let (clipped, norm) = clip_grad_norm(&m, known_grads(&m, 1.0), 1.0);
        assert!((norm - 56f64.sqrt()).abs() < 1e-5);
        let after = grad_norm::<B, _>(&m, &clipped);
        assert!(after <= 1.0 + 1e-4 && (after - 1.0).abs() < 1e-4, "{after}");
        // Same factor everywhere: the direction is kept.
        let factor = 1.0 / 56f32.sqrt();
        let check = |got: Vec<f32>, original: f32| {
            for g in got {
                assert!(
                    (g - original * factor).abs() < 1e-5,
                    "{g} vs {}",
                    original * factor
                );
            }
        };
        check(values::<2>(&clipped, a_w), 1.0);
        check(values::<1>(&clipped, a_b), 3.0);
        check(values::<2>(&clipped, b_w), 2.0);
        // The parameter without a gradient still has none.
        assert!(clipped.get::<Inner, 1>(b_b).is_none());
        assert_eq!(clipped.len(), 3);
    }

    #[test]
    fn small_gradients_are_unchanged() {
        let m = model();
        let [a_w, a_b, b_w, _] = ids(&m);
        let (clipped, norm) = clip_grad_norm(&m, known_grads(&m, 0.01), 1.0);
        assert!((norm - 0.01 * 56f64.sqrt()).abs() < 1e-6);
        assert_eq!(values::<2>(&clipped, a_w), vec![0.01; 6]);
        assert_eq!(values::<1>(&clipped, a_b), vec![0.03; 2]);
        assert_eq!(values::<2>(&clipped, b_w), vec![0.02; 8]);
    }

    #[test]
    fn disabled_or_non_finite_leaves_gradients_alone() {
        let m = model();
        let [a_w, ..] = ids(&m);
        for max_norm in [0.0, -1.0, f64::NAN] {
            let (clipped, _) = clip_grad_norm(&m, known_grads(&m, 1.0), max_norm);
            assert_eq!(values::<2>(&clipped, a_w), vec![1.0; 6]);
        }
        let mut grads = known_grads(&m, 1.0);
        grads.register(
            a_w,
            Tensor::<Inner, 2>::full([3, 2], f32::NAN, &Default::default()),
        );
        let (clipped, norm) = clip_grad_norm(&m, grads, 1.0);
        assert!(norm.is_nan());
        assert_eq!(values::<2>(&clipped, m.b.weight.id), vec![2.0; 8]);
    }

    #[test]
    fn works_on_real_backward_gradients() {
        let m = model();
        let device = Default::default();
        let x = Tensor::<B, 2>::from_floats([[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]], &device);
        let loss = m.b.forward(m.a.forward(x)).square().sum();
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        let expected: f64 = ids(&m)
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let v = if i % 2 == 0 {
                    values::<2>(&grads, *id)
                } else {
                    values::<1>(&grads, *id)
                };
                v.iter().map(|g| f64::from(*g).powi(2)).sum::<f64>()
            })
            .sum::<f64>()
            .sqrt();
        let (clipped, norm) = clip_grad_norm(&m, grads, 0.5 * expected);
        assert!((norm - expected).abs() < 1e-4 * expected.max(1.0));
        let after = grad_norm::<B, _>(&m, &clipped);
        assert!((after - 0.5 * expected).abs() < 1e-4 * expected.max(1.0));
    }
}
