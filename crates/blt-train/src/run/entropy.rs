//! Stage one of a run and what follows it: the entropy model (trained, reused from another
//! run, or reloaded on resume), the entropy cache over the corpus, and the calibration of the
//! entropy threshold.

use std::{path::Path, sync::Arc, time::Instant};

use blt_data::{ByteDataset, EntropyCache, Progress, Row, SplitDataset, compute_entropies};
use blt_model::{
    BltConfig, EntropyModel, EntropyModelConfig, PatchingKind, entropy_model_identity,
    load_entropy_model, save_entropy_model, seeded,
};
use blt_patching::{CalibrationOptions, calibrate_threshold};
use burn::{
    tensor::backend::{AutodiffBackend, Backend},
    train::Interrupter,
};

use super::{Stage, TrainOptions, dir::ENTROPY_CACHE_FILE, stage_settings};
use crate::{
    batches::{byte_lm_batch, stage_loaders},
    config::RunConfig,
    error::{Result, TrainError},
    loader::MakeBatch,
    stage::{StageOutcome, run_stage},
    step::{ByteLmBatch, EntropyTrainStep, StepBatch},
};

/// What stage one leaves.
pub(super) struct EntropyStage<B: Backend> {
    /// The entropy model; `None` when the user stopped the run during its training.
    pub model: Option<EntropyModel<B>>,
    /// The outcome of its training, when this run trained it.
    pub outcome: Option<StageOutcome>,
}

/// The entropy model of a run with entropy patching: the one given with `--entropy-model`
/// (copied into the run), the run's own on a resume after stage one, or a newly trained one.
pub(super) fn entropy_model_stage<B: AutodiffBackend>(
    config: &RunConfig,
    train_groups: &[Vec<Row>],
    valid_groups: &[Vec<Row>],
    run_dir: &Path,
    devices: &[B::Device],
    options: &TrainOptions,
) -> Result<EntropyStage<B::InnerBackend>> {
    let device = &devices[0];
    let entropy_dir = run_dir.join("entropy");
    if let Some(dir) = &options.entropy_model {
        let (_, model) = load_entropy_model::<B::InnerBackend>(dir, device)?;
        save_entropy_model(&entropy_dir, &config.model, &model)?;
        return Ok(EntropyStage {
            model: Some(model),
            outcome: None,
        });
    }
    if options.resume && entropy_dir.join(blt_model::MANIFEST_FILE).exists() {
        let (_, model) = load_entropy_model::<B::InnerBackend>(&entropy_dir, device)?;
        return Ok(EntropyStage {
            model: Some(model),
            outcome: None,
        });
    }
    let (model, outcome) = train_entropy_model::<B>(
        config,
        train_groups,
        valid_groups,
        run_dir,
        devices,
        options,
    )?;
    let interrupted = outcome.interrupted;
    if interrupted {
        tracing::warn!("stopped during the entropy stage; resume with --resume");
    }
    Ok(EntropyStage {
        model: (!interrupted).then_some(model),
        outcome: Some(outcome),
    })
}

/// Stage one: trains the entropy model, saves it under `run_dir/entropy`.
fn train_entropy_model<B: AutodiffBackend>(
    config: &RunConfig,
    train_groups: &[Vec<Row>],
    valid_groups: &[Vec<Row>],
    run_dir: &Path,
    devices: &[B::Device],
    options: &TrainOptions,
) -> Result<(EntropyModel<B::InnerBackend>, StageOutcome)> {
    let device = &devices[0];
    let t = &config.training;
    let m = &config.model;
    let settings = stage_settings(
        Stage::Entropy,
        2,
        run_dir.join(super::dir::ENTROPY_STAGE_DIR),
        t,
        t.entropy_steps,
        options,
    );
    let first_epoch = settings.resume_epoch.unwrap_or(0);
    let trainer = EntropyTrainStep {
        model: seeded::<B, _>(device, t.seed, || {
            EntropyModelConfig::from_blt(m).init::<B>(device)
        }),
        max_grad_norm: t.max_grad_norm,
        watch: Some(settings.watch.clone()),
    };
    let (window, reset) = (m.entropy_context_size, m.entropy_resets());
    let make: MakeBatch<B, StepBatch<ByteLmBatch<B>>> = Arc::new(move |rows, place, d| {
        StepBatch::new(byte_lm_batch(rows, window, reset, d), place)
    });
    let make_valid: MakeBatch<B::InnerBackend, ByteLmBatch<B::InnerBackend>> =
        Arc::new(move |rows, _, d| byte_lm_batch(rows, window, reset, d));
    let (train, valid) = stage_loaders::<B, _, _>(
        train_groups.to_vec(),
        valid_groups.to_vec(),
        (make, make_valid),
        t,
        settings.steps,
        first_epoch,
        devices,
    );
    let (trainer, outcome) = run_stage::<B, _, _>(settings, trainer, train, valid, devices)?;
    // An interrupted stage is not saved as the entropy model: a resumed run continues it.
    if !outcome.interrupted {
        save_entropy_model(&run_dir.join("entropy"), m, &trainer.model)?;
    }
    Ok((trainer.model, outcome))
}

/// A [`Progress`] that the run's interrupter (Ctrl-C, `q`) also stops.
struct Interruptible<'a> {
    inner: &'a (dyn Progress + Send),
    interrupter: &'a Interrupter,
}

impl Progress for Interruptible<'_> {
    fn start(&self, task: &str, total: usize) {
        self.inner.start(task, total);
    }
    fn update(&self, done: usize) {
        self.inner.update(done);
    }
    fn finish(&self) {
        self.inner.finish();
    }
    fn should_stop(&self) -> bool {
        self.interrupter.should_stop() || self.inner.should_stop()
    }
}

/// The entropy cache: every row of both splits, each computed on its own, read from
/// `run_dir/entropy_cache.bin` when it matches the corpus and the entropy model. `None` when
/// the user stopped the run during the computation; nothing is written then, and the entropy
/// model is already saved, so a resumed run starts the cache over.
pub(super) fn entropy_cache<B: Backend>(
    model: &EntropyModel<B>,
    dataset: &ByteDataset,
    m: &BltConfig,
    run_dir: &Path,
    device: &B::Device,
    options: &TrainOptions,
) -> Result<Option<Arc<EntropyCache>>> {
    let identity = entropy_model_identity(&run_dir.join("entropy"))?;
    let rows = dataset.rows();
    let started = Instant::now();
    let progress = Interruptible {
        inner: options.progress.as_ref(),
        interrupter: &options.interrupter,
    };
    let computed = EntropyCache::load_or_compute(
        &run_dir.join(ENTROPY_CACHE_FILE),
        &identity,
        rows,
        m.entropy_resets(),
        &progress,
        |block| compute_entropies(model, block, m.entropy_resets(), 16, device, &()),
    );
    let cache = match computed {
        Err(blt_data::DataError::Interrupted { done, total }) => {
            tracing::warn!(
                done,
                total,
                "stopped while computing the entropy cache; resume with --resume"
            );
            return Ok(None);
        }
        other => other?,
    };
    tracing::info!(
        rows = rows.len(),
        seconds = started.elapsed().as_secs_f64(),
        "entropy cache ready"
    );
    Ok(Some(Arc::new(cache)))
}

/// Entropy values calibration reads at most: 64 MB of `f32`. A larger training split is
/// sampled (every k-th row), which leaves the mean patch length it finds within a fraction of
/// a percent while memory stays bounded whatever the corpus size.
const CALIBRATION_VALUES: usize = 1 << 24;

/// The entropy threshold that gives the training rows (or an even sample of them, see
/// [`CALIBRATION_VALUES`]) a mean patch length of `target` bytes (the original tunes it by
/// hand, its issue #106).
pub(super) fn calibrate(
    cache: &EntropyCache,
    train: &SplitDataset,
    m: &BltConfig,
    target: f64,
) -> Result<f32> {
    let positions: usize = train.rows().map(Row::num_targets).sum();
    let every = positions.div_ceil(CALIBRATION_VALUES).max(1);
    let sample: Vec<_> = train
        .rows()
        .step_by(every)
        .filter_map(|r| cache.get(r.index))
        .collect();
    let rows: Vec<&[f32]> = sample.iter().map(|h| h.as_ref()).collect();
    let options = CalibrationOptions {
        monotonic: m.monotonic_entropy,
        min_patch_size: m.min_patch_size,
        max_patch_size: (m.max_patch_size > 0).then_some(m.max_patch_size),
    };
    let found = calibrate_threshold(&rows, target, &options)?;
    tracing::info!(
        threshold = found.threshold,
        mean_patch_length = found.mean_patch_len,
        "calibrated the entropy threshold"
    );
    Ok(found.threshold)
}

/// `--entropy-model DIR` must be the entropy model the run config describes: one trained with
/// other settings would fail to load later, or patch differently from what generation assumes.
pub(super) fn check_entropy_model(dir: &Path, m: &BltConfig) -> Result<()> {
    let bad = |reason: String| {
        Err(TrainError::InvalidConfig(format!(
            "--entropy-model {}: {reason}",
            dir.display()
        )))
    };
    if m.patching != PatchingKind::Entropy {
        return bad(format!(
            "an entropy model is only used with model.patching = \"entropy\" (this run patches \
             with \"{}\")",
            format!("{:?}", m.patching).to_lowercase()
        ));
    }
    let theirs = blt_model::load_config(dir)?;
    let fields = |c: &BltConfig| {
        [
            ("entropy_model_layers", c.entropy_model_layers.to_string()),
            ("entropy_hidden_size", c.entropy_hidden_size.to_string()),
            ("entropy_num_heads", c.entropy_num_heads.to_string()),
            (
                "entropy_intermediate_size",
                c.entropy_intermediate_size.to_string(),
            ),
            ("entropy_context_size", c.entropy_context_size.to_string()),
            ("entropy_rope_theta", c.entropy_rope_theta.to_string()),
            ("reset_entropy_context", c.reset_entropy_context.to_string()),
            ("norm_eps", c.norm_eps.to_string()),
        ]
    };
    for ((field, there), (_, here)) in fields(&theirs).into_iter().zip(fields(m)) {
        if there != here {
            return bad(format!(
                "model.{field} is {there} there but {here} in the run config; set it to {there} \
                 or train a new entropy model"
            ));
        }
    }
    Ok(())
}
