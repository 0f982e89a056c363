//! Train and inference steps for Burn's Learner: masked cross-entropy, loss scaled for gradient
//! accumulation, clipping by the global gradient norm in `optimize`, and a watch that stops the
//! run at the first non-finite loss without applying its update.
//!
//! # Gradient accumulation
//!
//! The objective of one optimizer step is the mean loss over **every target byte of the step**,
//! whatever the number of micro-batches. Each micro-batch therefore back-propagates
//! `loss_sum / step_targets`, where `step_targets` ([`StepBatch::step_targets`]) counts the
//! targets of all micro-batches of its step; the Learner sums the micro-batches' gradients, so
//! `k` micro-batches give exactly the gradient of one batch holding all their rows. (Dividing
//! each micro-batch's *mean* by `k` instead would weight the bytes of short micro-batches more.)
//!
//! # Dropout and resuming
//!
//! Before each micro-batch the backend's generator is re-seeded from the run's seed and the
//! micro-batch's position in the stream, so the dropout masks of a step do not depend on what
//! ran before it: a run resumed from a checkpoint draws the same masks as an uninterrupted one.
//! (With several devices on a backend whose generator is one per process, as on the CPU
//! backends, the workers' seeds and draws interleave: dropout is then not reproducible.)

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use blt_data::BltBatch;
use blt_model::{Blt, EntropyModel, LossSums, masked_cross_entropy};
use burn::{
    module::{AutodiffModule, Module},
    optim::{GradientsParams, Optimizer},
    tensor::{
        Bool, Int, Tensor,
        backend::{AutodiffBackend, Backend},
    },
    train::{InferenceStep, Interrupter, TrainOutput, TrainStep},
};

use crate::{
    clip::clip_grad_norm,
    loader::BatchPlace,
    metrics::{LmOutput, LmStats},
};

/// Watches the steps of a stage: counts micro-batches, seeds each one's dropout, stops the
/// Learner after a requested number of steps and, at the first NaN or infinite loss, records it
/// and asks the Learner to stop.
#[derive(Clone)]
pub struct StepWatch {
    interrupter: Interrupter,
    accumulation: usize,
    seed: u64,
    stop_after: Option<usize>,
    micro_batches: Arc<AtomicUsize>,
    failure: Arc<Mutex<Option<(usize, f64)>>>,
}

impl std::fmt::Debug for StepWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepWatch")
            .field("micro_batches", &self.micro_batches)
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

impl StepWatch {
    /// A watch stopping `interrupter`; `accumulation` micro-batches make one optimizer step;
    /// `done_steps` optimizer steps were already taken (resume); `seed` seeds the dropout of
    /// every micro-batch.
    pub fn new(
        interrupter: Interrupter,
        accumulation: usize,
        done_steps: usize,
        seed: u64,
    ) -> Self {
        Self {
            interrupter,
            accumulation: accumulation.max(1),
            seed,
            stop_after: None,
            micro_batches: Arc::new(AtomicUsize::new(done_steps * accumulation.max(1))),
            failure: Arc::new(Mutex::new(None)),
        }
    }

    /// Stops the Learner (as the interrupter would) once `steps` optimizer steps are complete,
    /// counting resumed ones.
    pub fn with_stop_after(mut self, steps: Option<usize>) -> Self {
        self.stop_after = steps;
        self
    }

    /// Seeds the backend's generator for the micro-batch at stream `position`, about to run
    /// (see the [module docs](self)).
    fn seed_micro_batch<B: Backend>(&self, position: usize, device: &B::Device) {
        B::seed(device, mix_seed(self.seed, position as u64));
    }

    fn observe(&self, loss: f64) {
        let micro = self.micro_batches.fetch_add(1, Ordering::SeqCst);
        if let Some(steps) = self.stop_after
            && micro + 1 == steps * self.accumulation
        {
            self.interrupter
                .stop(Some(&format!("stopped after {steps} steps as requested")));
        }
        if !loss.is_finite() {
            let mut failure = self.failure.lock().expect("step watch lock");
            if failure.is_none() {
                *failure = Some((micro / self.accumulation + 1, loss));
                self.interrupter.stop(Some("non-finite loss"));
            }
        }
    }

    /// The optimizer step and loss of the first non-finite loss, if any.
    pub fn failure(&self) -> Option<(usize, f64)> {
        *self.failure.lock().expect("step watch lock")
    }

    /// Optimizer steps completed so far (including resumed ones).
    pub fn steps(&self) -> usize {
        self.micro_batches.load(Ordering::SeqCst) / self.accumulation
    }

    fn tripped(&self) -> bool {
        self.failure().is_some()
    }
}

/// SplitMix64 of `seed + index`: well-spread seeds for consecutive indices.
fn mix_seed(seed: u64, index: u64) -> u64 {
    let mut z = seed.wrapping_add(index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A training micro-batch with the number of target bytes of its whole optimizer step (all
/// its micro-batches), which scales its loss (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct StepBatch<T> {
    /// The micro-batch.
    pub batch: T,
    /// Target bytes of every micro-batch of the optimizer step this one belongs to.
    pub step_targets: usize,
    /// Its position in the training stream, which seeds its dropout.
    pub position: usize,
}

impl<T> StepBatch<T> {
    /// Wraps a micro-batch at `place` in the stream.
    pub fn new(batch: T, place: BatchPlace) -> Self {
        Self {
            batch,
            step_targets: place.step_targets,
            position: place.position,
        }
    }
}

/// Reads the loss sums to the host once (one transfer for the three scalars).
fn host_stats<B: Backend>(sums: &LossSums<B>, patches: usize, positions: usize) -> LmStats {
    let floats = Tensor::cat(
        vec![
            sums.loss_sum.clone(),
            sums.confidence_sum.clone(),
            sums.correct.clone().float(),
        ],
        0,
    );
    let values: Vec<f32> = floats
        .into_data()
        .convert::<f32>()
        .to_vec()
        .expect("f32 sums");
    LmStats {
        loss_sum: values[0] as f64,
        bytes: sums.count,
        correct: values[2].round() as usize,
        confidence_sum: values[1] as f64,
        patches,
        positions,
    }
}

/// Records the loss with the watch, then back-propagates the loss sum divided by the targets
/// of the whole optimizer step (the Learner sums the micro-batches' gradients).
fn watched_backward<B: AutodiffBackend>(
    watch: Option<&StepWatch>,
    sums: &LossSums<B>,
    stats: &LmStats,
    step_targets: usize,
) -> B::Gradients {
    if let Some(watch) = watch {
        watch.observe(stats.loss_sum / stats.bytes.max(1) as f64);
    }
    (sums.loss_sum.clone() / step_targets.max(1) as f64).backward()
}

/// One optimizer step after clipping by the global gradient norm; skipped once the watch has
/// seen a non-finite loss, so a NaN never reaches the weights.
fn clipped_step<AB, M, O>(
    module: M,
    watch: Option<&StepWatch>,
    max_norm: f64,
    optim: &mut O,
    lr: f64,
    grads: GradientsParams,
) -> M
where
    AB: AutodiffBackend,
    M: AutodiffModule<AB>,
    O: Optimizer<M, AB>,
{
    if watch.is_some_and(StepWatch::tripped) {
        return module;
    }
    let grads = if max_norm > 0.0 {
        clip_grad_norm::<AB, M>(&module, grads, max_norm).0
    } else {
        grads
    };
    optim.step(lr, module, grads)
}

/// The BLT as Burn's Learner trains it: the model with its training and validation steps.
#[derive(Module, Debug)]
pub struct BltTrainStep<B: Backend> {
    /// The model.
    pub model: Blt<B>,
    /// Global-norm clip (0: off).
    pub max_grad_norm: f64,
    /// Micro-batch counting, dropout seeding, the step limit and the non-finite-loss stop (none:
    /// none of them).
    #[module(skip)]
    pub watch: Option<StepWatch>,
}

impl<B: Backend> BltTrainStep<B> {
    fn loss(&self, batch: &BltBatch<B>) -> (LossSums<B>, LmStats) {
        let logits = self.model.forward(&batch.input).logits;
        let sums = masked_cross_entropy(
            logits,
            batch.targets.clone(),
            batch.target_mask.clone(),
            batch.num_targets,
        );
        let positions = batch.input.lengths.iter().sum();
        let patches = batch.input.patch_counts.iter().sum();
        let stats = host_stats(&sums, patches, positions);
        (sums, stats)
    }
}

impl<B: AutodiffBackend> TrainStep for BltTrainStep<B> {
    type Input = StepBatch<BltBatch<B>>;
    type Output = LmOutput;

    fn step(&self, batch: StepBatch<BltBatch<B>>) -> TrainOutput<LmOutput> {
        if let Some(watch) = &self.watch {
            watch.seed_micro_batch::<B>(batch.position, &batch.batch.targets.device());
        }
        let (sums, stats) = self.loss(&batch.batch);
        let grads = watched_backward(self.watch.as_ref(), &sums, &stats, batch.step_targets);
        TrainOutput::new(self, grads, LmOutput::new(stats))
    }

    fn optimize<AB, O>(self, optim: &mut O, lr: f64, grads: GradientsParams) -> Self
    where
        AB: AutodiffBackend,
        O: Optimizer<Self, AB>,
        Self: AutodiffModule<AB>,
    {
        let (watch, max_norm) = (self.watch.clone(), self.max_grad_norm);
        clipped_step(self, watch.as_ref(), max_norm, optim, lr, grads)
    }
}

impl<B: Backend> InferenceStep for BltTrainStep<B> {
    type Input = BltBatch<B>;
    type Output = LmOutput;

    fn step(&self, batch: BltBatch<B>) -> LmOutput {
        LmOutput::new(self.loss(&batch).1)
    }
}

/// A batch for the entropy model (a plain byte LM).
#[derive(Debug, Clone)]
pub struct ByteLmBatch<B: Backend> {
    /// Input ids, `[batch, seq]`.
    pub ids: Tensor<B, 2, Int>,
    /// Next-byte targets, `[batch, seq]`.
    pub targets: Tensor<B, 2, Int>,
    /// Real targets, `[batch, seq]`.
    pub target_mask: Tensor<B, 2, Bool>,
    /// Windowed causal mask (documents and, optionally, newlines reset it), `[batch, seq, seq]`.
    pub mask: Tensor<B, 3, Bool>,
    /// Number of real targets.
    pub num_targets: usize,
}

/// The entropy model as Burn's Learner trains it: the model with its training and validation
/// steps.
#[derive(Module, Debug)]
pub struct EntropyTrainStep<B: Backend> {
    /// The model.
    pub model: EntropyModel<B>,
    /// Global-norm clip (0: off).
    pub max_grad_norm: f64,
    /// Micro-batch counting, dropout seeding, the step limit and the non-finite-loss stop (none:
    /// none of them).
    #[module(skip)]
    pub watch: Option<StepWatch>,
}

impl<B: Backend> EntropyTrainStep<B> {
    fn loss(&self, batch: &ByteLmBatch<B>) -> (LossSums<B>, LmStats) {
        let logits = self.model.forward(batch.ids.clone(), batch.mask.clone());
        let sums = masked_cross_entropy(
            logits,
            batch.targets.clone(),
            batch.target_mask.clone(),
            batch.num_targets,
        );
        let stats = host_stats(&sums, 0, batch.num_targets);
        (sums, stats)
    }
}

impl<B: AutodiffBackend> TrainStep for EntropyTrainStep<B> {
    type Input = StepBatch<ByteLmBatch<B>>;
    type Output = LmOutput;

    fn step(&self, batch: StepBatch<ByteLmBatch<B>>) -> TrainOutput<LmOutput> {
        if let Some(watch) = &self.watch {
            watch.seed_micro_batch::<B>(batch.position, &batch.batch.ids.device());
        }
        let (sums, stats) = self.loss(&batch.batch);
        let grads = watched_backward(self.watch.as_ref(), &sums, &stats, batch.step_targets);
        TrainOutput::new(self, grads, LmOutput::new(stats))
    }

    fn optimize<AB, O>(self, optim: &mut O, lr: f64, grads: GradientsParams) -> Self
    where
        AB: AutodiffBackend,
        O: Optimizer<Self, AB>,
        Self: AutodiffModule<AB>,
    {
        let (watch, max_norm) = (self.watch.clone(), self.max_grad_norm);
        clipped_step(self, watch.as_ref(), max_norm, optim, lr, grads)
    }
}

impl<B: Backend> InferenceStep for EntropyTrainStep<B> {
    type Input = ByteLmBatch<B>;
    type Output = LmOutput;

    fn step(&self, batch: ByteLmBatch<B>) -> LmOutput {
        LmOutput::new(self.loss(&batch).1)
    }
}
