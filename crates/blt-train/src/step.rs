//! Train and inference steps for Burn's Learner: masked cross-entropy, loss scaled for gradient
//! accumulation, clipping by the global gradient norm in `optimize`, and a guard that stops the
//! run at the first non-finite loss without applying its update.

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
    metrics::{LmOutput, LmStats},
};

/// Watches the training loss: counts micro-batches and, at the first NaN or infinite loss,
/// records it and asks the Learner to stop.
#[derive(Clone)]
pub struct LossGuard {
    interrupter: Interrupter,
    accumulation: usize,
    micro_batches: Arc<AtomicUsize>,
    failure: Arc<Mutex<Option<(usize, f64)>>>,
}

impl std::fmt::Debug for LossGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LossGuard")
            .field("micro_batches", &self.micro_batches)
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

impl LossGuard {
    /// A guard stopping `interrupter`; `accumulation` micro-batches make one optimizer step;
    /// `done_steps` optimizer steps were already taken (resume).
    pub fn new(interrupter: Interrupter, accumulation: usize, done_steps: usize) -> Self {
        Self {
            interrupter,
            accumulation,
            micro_batches: Arc::new(AtomicUsize::new(done_steps * accumulation)),
            failure: Arc::new(Mutex::new(None)),
        }
    }

    fn observe(&self, loss: f64) {
        let micro = self.micro_batches.fetch_add(1, Ordering::SeqCst);
        if !loss.is_finite() {
            let mut failure = self.failure.lock().expect("loss guard lock");
            if failure.is_none() {
                *failure = Some((micro / self.accumulation + 1, loss));
                self.interrupter.stop(Some("non-finite loss"));
            }
        }
    }

    /// The optimizer step and loss of the first non-finite loss, if any.
    pub fn failure(&self) -> Option<(usize, f64)> {
        *self.failure.lock().expect("loss guard lock")
    }

    /// Optimizer steps completed so far (including resumed ones).
    pub fn steps(&self) -> usize {
        self.micro_batches.load(Ordering::SeqCst) / self.accumulation
    }

    fn tripped(&self) -> bool {
        self.failure().is_some()
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

/// Records the loss with the guard, then back-propagates the mean loss scaled for gradient
/// accumulation (the Learner sums the micro-batches' gradients).
fn guarded_backward<B: AutodiffBackend>(
    guard: Option<&LossGuard>,
    sums: &LossSums<B>,
    stats: &LmStats,
    accumulation: usize,
) -> B::Gradients {
    if let Some(guard) = guard {
        guard.observe(stats.loss_sum / stats.bytes.max(1) as f64);
    }
    (sums.mean_loss() / accumulation as f64).backward()
}

/// One optimizer step after clipping by the global gradient norm; skipped once the guard has
/// seen a non-finite loss, so a NaN never reaches the weights.
fn clipped_step<AB, M, O>(
    module: M,
    guard: Option<&LossGuard>,
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
    if guard.is_some_and(LossGuard::tripped) {
        return module;
    }
    let grads = if max_norm > 0.0 {
        clip_grad_norm::<AB, M>(&module, grads, max_norm).0
    } else {
        grads
    };
    optim.step(lr, module, grads)
}

/// The BLT wrapped for the Learner.
#[derive(Module, Debug)]
pub struct BltTrainer<B: Backend> {
    /// The model.
    pub model: Blt<B>,
    /// Global-norm clip (0: off).
    pub max_grad_norm: f64,
    /// Micro-batches per optimizer step (the loss is divided by it).
    pub accumulation: usize,
    /// Loss watcher.
    #[module(skip)]
    pub guard: Option<LossGuard>,
}

impl<B: Backend> BltTrainer<B> {
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

impl<B: AutodiffBackend> TrainStep for BltTrainer<B> {
    type Input = BltBatch<B>;
    type Output = LmOutput;

    fn step(&self, batch: BltBatch<B>) -> TrainOutput<LmOutput> {
        let (sums, stats) = self.loss(&batch);
        let grads = guarded_backward(self.guard.as_ref(), &sums, &stats, self.accumulation);
        TrainOutput::new(self, grads, LmOutput::new(stats))
    }

    fn optimize<AB, O>(self, optim: &mut O, lr: f64, grads: GradientsParams) -> Self
    where
        AB: AutodiffBackend,
        O: Optimizer<Self, AB>,
        Self: AutodiffModule<AB>,
    {
        let (guard, max_norm) = (self.guard.clone(), self.max_grad_norm);
        clipped_step(self, guard.as_ref(), max_norm, optim, lr, grads)
    }
}

impl<B: Backend> InferenceStep for BltTrainer<B> {
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

/// The entropy model wrapped for the Learner.
#[derive(Module, Debug)]
pub struct EntropyTrainer<B: Backend> {
    /// The model.
    pub model: EntropyModel<B>,
    /// Global-norm clip (0: off).
    pub max_grad_norm: f64,
    /// Micro-batches per optimizer step.
    pub accumulation: usize,
    /// Loss watcher.
    #[module(skip)]
    pub guard: Option<LossGuard>,
}

impl<B: Backend> EntropyTrainer<B> {
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

impl<B: AutodiffBackend> TrainStep for EntropyTrainer<B> {
    type Input = ByteLmBatch<B>;
    type Output = LmOutput;

    fn step(&self, batch: ByteLmBatch<B>) -> TrainOutput<LmOutput> {
        let (sums, stats) = self.loss(&batch);
        let grads = guarded_backward(self.guard.as_ref(), &sums, &stats, self.accumulation);
        TrainOutput::new(self, grads, LmOutput::new(stats))
    }

    fn optimize<AB, O>(self, optim: &mut O, lr: f64, grads: GradientsParams) -> Self
    where
        AB: AutodiffBackend,
        O: Optimizer<Self, AB>,
        Self: AutodiffModule<AB>,
    {
        let (guard, max_norm) = (self.guard.clone(), self.max_grad_norm);
        clipped_step(self, guard.as_ref(), max_norm, optim, lr, grads)
    }
}

impl<B: Backend> InferenceStep for EntropyTrainer<B> {
    type Input = ByteLmBatch<B>;
    type Output = LmOutput;

    fn step(&self, batch: ByteLmBatch<B>) -> LmOutput {
        LmOutput::new(self.loss(&batch).1)
    }
}
