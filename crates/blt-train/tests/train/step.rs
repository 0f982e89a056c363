//! The training step: gradient accumulation over micro-batches equals one large batch, and
//! the global-norm clipping in `optimize` bounds the update.

use blt_data::{BltBatcher, Row};
use blt_train::{BatchPlace, BltTrainStep, StepBatch, grad_norm};
use burn::optim::{GradientsAccumulator, GradientsParams, SgdConfig};
use burn::prelude::*;
use burn::train::TrainStep;

use crate::common::{self, Settings, TrainB, gradients, norm, parameters, relative_difference};

/// Rows of very different lengths, so that micro-batches hold different numbers of targets.
const TEXTS: [&str; 4] = [
    "And God said,",
    "Let there be",
    "In the beginning God created the heaven and the earth. And the earth was without form.",
    "And God saw the light, that it was good: and God divided the light from the darkness.",
];

fn rows() -> Vec<Row> {
    TEXTS
        .iter()
        .enumerate()
        .map(|(i, text)| Row::new(i, i, text.as_bytes(), false))
        .collect()
}

fn targets(rows: &[Row]) -> usize {
    rows.iter().map(Row::num_targets).sum()
}

struct Setup {
    trainer: BltTrainStep<TrainB>,
    batcher: BltBatcher,
    rows: Vec<Row>,
}

fn setup(max_grad_norm: f64) -> Setup {
    let config = common::config(&Settings {
        patching: "space",
        steps: 4,
        entropy_steps: 4,
        dropout: 0.0,
        accumulation: 1,
    });
    let device = Default::default();
    TrainB::seed(&device, 11);
    Setup {
        trainer: BltTrainStep {
            model: blt_model::Blt::new(&config.model, &device).unwrap(),
            max_grad_norm,
            watch: None,
        },
        batcher: BltBatcher::new(&config.model, None).unwrap(),
        rows: rows(),
    }
}

impl Setup {
    /// Gradients of one micro-batch of `rows` whose step has `step_targets` targets.
    fn grads(&self, rows: &[Row], step_targets: usize) -> GradientsParams {
        let batch = self
            .batcher
            .try_batch::<TrainB>(rows, &Default::default())
            .unwrap();
        let place = BatchPlace {
            position: 0,
            step_targets,
        };
        TrainStep::step(&self.trainer, StepBatch::new(batch, place)).grads
    }

    /// The gradients summed over micro-batches of `size` rows, each scaled by `scale(rows)`.
    fn accumulated(&self, size: usize, scale: impl Fn(&[Row]) -> usize) -> GradientsParams {
        let mut accumulator = GradientsAccumulator::new();
        for micro in self.rows.chunks(size) {
            let grads = self.grads(micro, scale(micro));
            accumulator.accumulate::<TrainB>(&self.trainer, grads);
        }
        accumulator.grads()
    }

    /// The trainer after one optimizer step (SGD, learning rate `lr`) with `grads`.
    fn stepped(&self, grads: GradientsParams, lr: f64) -> BltTrainStep<TrainB> {
        let mut optim = SgdConfig::new().init::<TrainB, BltTrainStep<TrainB>>();
        TrainStep::optimize::<TrainB, _>(self.trainer.clone(), &mut optim, lr, grads)
    }
}

#[test]
fn accumulated_micro_batches_equal_one_large_batch() {
    let _serial = common::serial();
    let s = setup(1.0);
    let total = targets(&s.rows);
    // Two micro-batches of two rows, of very different numbers of targets.
    let counts: Vec<usize> = s.rows.chunks(2).map(targets).collect();
    assert!(counts[1] > 5 * counts[0], "{counts:?}");
    let large = s.grads(&s.rows, total);
    let accumulated = s.accumulated(2, |_| total);
    let (g_large, g_accumulated) = (
        gradients(&s.trainer, &large),
        gradients(&s.trainer, &accumulated),
    );
    assert!(norm(&g_large) > 0.0);
    let difference = relative_difference(&g_large, &g_accumulated);
    // f32 rounding: padding to other lengths changes the summation order (the same rows in
    // another order already differ by ~5e-6); one target weighted wrongly in 194 would be 5e-3.
    assert!(difference < 1e-4, "gradients differ by {difference}");

    // The test can tell: averaging the micro-batches' means (loss / k) gives other gradients.
    let mean_of_means = s.accumulated(2, |micro| 2 * targets(micro));
    let wrong = relative_difference(&g_large, &gradients(&s.trainer, &mean_of_means));
    assert!(wrong > 1e-2, "{wrong}");

    // And the parameters after one optimizer step (clipping included) agree.
    let after_large = parameters(&s.stepped(large, 0.5).model);
    let after_accumulated = parameters(&s.stepped(accumulated, 0.5).model);
    let difference = relative_difference(&after_large, &after_accumulated);
    assert!(difference < 1e-5, "parameters differ by {difference}");
}

#[test]
fn clipping_bounds_the_global_norm_of_the_update() {
    let _serial = common::serial();
    let unclipped = setup(0.0);
    // Gradients are not `Clone`: recompute them (deterministically) for each step.
    let grads = || unclipped.grads(&unclipped.rows, targets(&unclipped.rows));
    let raw = grad_norm::<TrainB, _>(&unclipped.trainer, &grads());
    assert!(raw > 0.0);
    let before = parameters(&unclipped.trainer.model);
    // With SGD at learning rate 1 the update is the (clipped) gradient itself.
    let update_norm = |after: Vec<Vec<f32>>| {
        let delta: Vec<Vec<f32>> = before
            .iter()
            .zip(&after)
            .map(|(b, a)| b.iter().zip(a).map(|(b, a)| b - a).collect())
            .collect();
        norm(&delta)
    };
    let free = update_norm(parameters(&unclipped.stepped(grads(), 1.0).model));
    assert!((free - raw).abs() < 1e-3 * raw, "{free} vs {raw}");

    for max_norm in [raw / 4.0, raw / 100.0] {
        let clipped = BltTrainStep {
            max_grad_norm: max_norm,
            ..unclipped.trainer.clone()
        };
        let setup = Setup {
            trainer: clipped,
            batcher: unclipped.batcher.clone(),
            rows: Vec::new(),
        };
        let update = update_norm(parameters(&setup.stepped(grads(), 1.0).model));
        assert!(
            (update - max_norm).abs() < 1e-3 * max_norm,
            "update {update}, max {max_norm}, raw {raw}"
        );
    }
    // A bound above the norm changes nothing.
    let loose = Setup {
        trainer: BltTrainStep {
            max_grad_norm: 2.0 * raw,
            ..unclipped.trainer.clone()
        },
        batcher: unclipped.batcher.clone(),
        rows: Vec::new(),
    };
    let update = update_norm(parameters(&loose.stepped(grads(), 1.0).model));
    assert!((update - raw).abs() < 1e-3 * raw, "{update} vs {raw}");
}
