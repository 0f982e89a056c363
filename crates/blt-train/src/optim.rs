//! AdamW whose update runs as one fused pass per parameter ([`blt_core::kernels::adamw`]).
//!
//! Burn's `AdamW` composes each update from about a dozen whole-tensor ops; on the CPU that
//! was a tenth of a training step at the benchmark shapes. [`FusedAdamW`] computes the same
//! numbers (same formula, same order) and keeps Burn's state type, `AdamWState`, so the
//! optimizer records it writes into checkpoints are the ones Burn's `AdamW` writes: runs
//! checkpointed with either resume with the other.

use blt_core::kernels::{AdamWStep, Moments, adamw};
use burn::{
    module::AutodiffModule,
    optim::{
        AdamWState, AdaptiveMomentumState, LearningRate, SimpleOptimizer, adaptor::OptimizerAdaptor,
    },
    tensor::{
        Tensor,
        backend::{AutodiffBackend, Backend},
    },
};

/// AdamW with decoupled weight decay (no AMSGrad), updated in one pass per parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusedAdamW {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
}

impl FusedAdamW {
    /// The moments' decays `β₁`, `β₂`, the `ε` added to `√v̂`, and the decoupled weight decay.
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: f32) -> Self {
        Self {
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
        }
    }

    /// The optimizer for module `M`, as Burn's `AdamWConfig::init` builds one.
    pub fn init<B: AutodiffBackend, M: AutodiffModule<B>>(self) -> OptimizerAdaptor<Self, M, B> {
        OptimizerAdaptor::from(self)
    }
}

impl<B: Backend> SimpleOptimizer<B> for FusedAdamW {
    type State<const D: usize> = AdamWState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let (time, moments) = match state {
            Some(AdamWState { momentum }) => (
                momentum.time + 1,
                Some(Moments {
                    first: momentum.moment_1,
                    second: momentum.moment_2,
                }),
            ),
            None => (1, None),
        };
        let step = AdamWStep {
            lr,
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            weight_decay: self.weight_decay,
            time,
        };
        let (tensor, Moments { first, second }) = adamw(&step, tensor, grad, moments);
        let momentum = AdaptiveMomentumState::new(time, first, second);
        (tensor, Some(AdamWState::new(momentum)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        AdamWState::new(state.momentum.to_device(device))
    }
}

#[cfg(test)]
mod tests {
    use burn::{
        backend::{Autodiff, NdArray},
        module::Param,
        nn::Linear,
        optim::{AdamW, AdamWConfig, GradientsParams, Optimizer},
        record::{BinBytesRecorder, FullPrecisionSettings, Recorder},
        tensor::{Distribution, Tensor, backend::Backend},
    };

    use super::*;

    type AB = Autodiff<NdArray>;

    const BETAS: (f32, f32) = (0.9, 0.95);
    const EPSILON: f32 = 1e-8;
    const DECAY: f32 = 0.1;

    fn burns() -> OptimizerAdaptor<AdamW, Linear<AB>, AB> {
        AdamWConfig::new()
            .with_beta_1(BETAS.0)
            .with_beta_2(BETAS.1)
            .with_epsilon(EPSILON)
            .with_weight_decay(DECAY)
            .init()
    }

    fn ours() -> OptimizerAdaptor<FusedAdamW, Linear<AB>, AB> {
        FusedAdamW::new(BETAS.0, BETAS.1, EPSILON, DECAY).init()
    }

    /// One step on the loss `Σ (x·W + b)²` of a fixed batch.
    fn step<O: Optimizer<Linear<AB>, AB>>(
        optim: &mut O,
        model: Linear<AB>,
        x: &Tensor<AB, 2>,
    ) -> Linear<AB> {
        let loss = model.forward(x.clone()).square().sum();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        optim.step(1e-2, model, grads)
    }

    /// The largest absolute difference between the two models' weights and biases.
    fn max_diff(a: &Linear<AB>, b: &Linear<AB>) -> f32 {
        let weights = (a.weight.val() - b.weight.val()).abs().max().into_scalar();
        let bias = |l: &Linear<AB>| l.bias.as_ref().expect("the layer has a bias").val();
        let biases = (bias(a) - bias(b)).abs().max().into_scalar();
        weights.max(biases)
    }

    /// A layer with its parameters materialised (`LinearConfig::init` initialises lazily, and
    /// each clone of a lazy parameter would draw its own values) and a batch.
    fn setup() -> (Linear<AB>, Tensor<AB, 2>) {
        let device = Default::default();
        AB::seed(&device, 7);
        let normal = Distribution::Normal(0.0, 0.5);
        let model = Linear {
            weight: Param::from_tensor(Tensor::random([16, 12], normal, &device)),
            bias: Some(Param::from_tensor(Tensor::random([12], normal, &device))),
        };
        let x = Tensor::random([6, 16], Distribution::Normal(0.0, 1.0), &device);
        (model, x)
    }

    #[test]
    fn steps_like_burns_adamw() {
        let (start, x) = setup();
        let (mut a, mut b) = (start.clone(), start.clone());
        let (mut burn_optim, mut our_optim) = (burns(), ours());
        for _ in 0..4 {
            a = step(&mut burn_optim, a, &x);
            b = step(&mut our_optim, b, &x);
        }
        // Four steps of size ~lr moved the weights far more than the tolerance.
        assert!(max_diff(&a, &start) > 1e-2);
        let diff = max_diff(&a, &b);
        assert!(
            diff < 1e-6,
            "fused AdamW is {diff:e} from Burn's after four steps"
        );
    }

    #[test]
    fn resumes_from_burns_adamw_records() {
        let (model, x) = setup();
        let mut burn_optim = burns();
        let mut model = step(&mut burn_optim, model, &x);
        model = step(&mut burn_optim, model, &x);
        let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
        let bytes = recorder
            .record(burn_optim.to_record(), ())
            .expect("the record serialises");
        let record = Recorder::<AB>::load(&recorder, bytes, &Default::default())
            .expect("Burn's AdamW record loads as ours");
        let mut our_optim = ours().load_record(record);
        // Our third step continues Burn's moments and step count: the same as Burn's third.
        let a = step(&mut burn_optim, model.clone(), &x);
        let b = step(&mut our_optim, model, &x);
        let diff = max_diff(&a, &b);
        assert!(diff < 1e-6, "resumed step is {diff:e} from Burn's");
    }
}
