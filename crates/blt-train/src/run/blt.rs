//! Stage two of a run: the BLT.

use std::{path::Path, sync::Arc};

use blt_data::{BltBatch, BltBatcher, ByteDataset, EntropyCache, Row};
use blt_model::{Blt, PatchingKind, seeded};
use burn::tensor::backend::AutodiffBackend;

use super::{Stage, TrainOptions, stage_settings};
use crate::{
    batches::{mean_patch_len, stage_loaders},
    config::RunConfig,
    error::Result,
    loader::MakeBatch,
    stage::{StageOutcome, run_stage},
    step::{BltTrainStep, StepBatch},
};

/// What stage two leaves: the best BLT by validation loss, the stage's outcome, and the mean
/// patch length of the training rows.
pub(super) struct BltStage<B: AutodiffBackend> {
    pub best: Blt<B::InnerBackend>,
    pub outcome: StageOutcome,
    pub mean_patch_length: f64,
}

/// Trains the BLT of `config` (its patching threshold already calibrated) on the planned row
/// groups, patching with `cache`'s entropies under entropy patching.
pub(super) fn train_blt<B: AutodiffBackend>(
    config: &RunConfig,
    cache: Option<Arc<EntropyCache>>,
    dataset: &ByteDataset,
    (train_groups, valid_groups): (Vec<Vec<Row>>, Vec<Vec<Row>>),
    run_dir: &Path,
    devices: &[B::Device],
    options: &TrainOptions,
) -> Result<BltStage<B>> {
    let device = &devices[0];
    let (t, m) = (&config.training, &config.model);
    let batcher = Arc::new(BltBatcher::new(m, cache)?);
    batcher.check_rows(dataset.rows())?;
    let stages = if m.patching == PatchingKind::Entropy {
        2
    } else {
        1
    };
    let settings = stage_settings(
        Stage::Blt,
        stages,
        run_dir.join(super::dir::BLT_STAGE_DIR),
        t,
        t.max_steps,
        options,
    );
    let first_epoch = settings.resume_epoch.unwrap_or(0);
    let trainer = BltTrainStep {
        model: seeded::<B, _>(device, t.seed.wrapping_add(1), || Blt::<B>::new(m, device))?,
        max_grad_norm: t.max_grad_norm,
        watch: Some(settings.watch.clone()),
    };
    let b = batcher.clone();
    let make: MakeBatch<B, StepBatch<BltBatch<B>>> = Arc::new(move |rows, place, d| {
        let batch = b
            .try_batch(rows, d)
            .expect("rows were checked before training");
        StepBatch::new(batch, place)
    });
    let b = batcher.clone();
    let make_valid: MakeBatch<B::InnerBackend, BltBatch<B::InnerBackend>> =
        Arc::new(move |rows, _, d| {
            b.try_batch(rows, d)
                .expect("rows were checked before training")
        });
    let mean_patch_length = mean_patch_len(&batcher, &train_groups);
    let (train, valid) = stage_loaders::<B, _, _>(
        train_groups,
        valid_groups,
        (make, make_valid),
        t,
        settings.steps,
        first_epoch,
        devices,
    );
    let (best, outcome) = run_stage::<B, _, _>(settings, trainer, train, valid, devices)?;
    Ok(BltStage {
        best: best.model,
        outcome,
        mean_patch_length,
    })
}
