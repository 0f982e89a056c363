//! Batches of a run: row groups of the train and validation splits, entropy-model batches,
//! and each stage's loaders.

use std::sync::Arc;

use blt_data::{BatchPlan, BatchPlanConfig, BltBatcher, Row, SplitDataset};
use blt_model::EntropyResets;
use burn::{
    data::dataset::Dataset,
    tensor::{
        Bool, Int, Tensor, TensorData,
        backend::{AutodiffBackend, Backend},
    },
};

use crate::{
    config::TrainingConfig,
    error::{Result, TrainError},
    loader::{EpochLoader, MakeBatch},
    step::ByteLmBatch,
};

/// Rows grouped into batches.
pub(crate) type RowGroups = Vec<Vec<Row>>;

fn plan_groups<D: Dataset<Row>>(data: &D, batch: &BatchPlanConfig) -> Result<Vec<Vec<Row>>> {
    let plan = BatchPlan::new(data, batch)?;
    Ok(plan
        .groups()
        .iter()
        .map(|g| g.iter().filter_map(|&i| data.get(i)).collect())
        .collect())
}

/// Train and validation row groups.
pub(crate) fn loaders_groups(
    split_train: &SplitDataset,
    split_valid: &SplitDataset,
    t: &TrainingConfig,
) -> Result<(RowGroups, RowGroups)> {
    let train = plan_groups(
        split_train,
        &BatchPlanConfig {
            batch_size: t.batch_size,
            max_batch_bytes: t.max_batch_bytes,
            seed: None,
        },
    )?;
    let mut valid = plan_groups(
        split_valid,
        &BatchPlanConfig {
            batch_size: t.eval_batch_size,
            max_batch_bytes: None,
            seed: None,
        },
    )?;
    if t.eval_batches > 0 {
        valid.truncate(t.eval_batches);
    }
    if train.is_empty() || valid.is_empty() {
        let rows = split_train.len() + split_valid.len();
        return Err(TrainError::InvalidConfig(format!(
            "the data gives {} training and {} validation rows, and each split needs one: \
             add text, or lower training.max_sequence_length ({}) so that the corpus makes \
             more rows ({rows} now)",
            split_train.len(),
            split_valid.len(),
            t.max_sequence_length
        )));
    }
    Ok((train, valid))
}

/// Builds an entropy-model batch: windowed causal mask, the context restarting where `reset`
/// says (documents, newlines), targets shifted by one.
pub fn byte_lm_batch<B: Backend>(
    rows: &[Row],
    window: usize,
    reset: EntropyResets,
    device: &B::Device,
) -> ByteLmBatch<B> {
    let batch = rows.len();
    let seq = rows.iter().map(Row::num_targets).max().unwrap_or(1);
    let mut ids = vec![0i64; batch * seq];
    let mut targets = vec![0i64; batch * seq];
    let mut real = vec![false; batch * seq];
    let mut segments = Vec::with_capacity(batch);
    for (b, row) in rows.iter().enumerate() {
        let input = row.input();
        for (t, (&x, y)) in input.iter().zip(row.iter_ids().skip(1)).enumerate() {
            ids[b * seq + t] = x as i64;
            targets[b * seq + t] = y as i64;
            real[b * seq + t] = true;
        }
        let mut seg = reset.segments(&input);
        seg.resize(seq, u32::MAX);
        segments.push(seg);
    }
    let num_targets = real.iter().filter(|&&r| r).count();
    ByteLmBatch {
        ids: Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [batch, seq]), device),
        targets: Tensor::<B, 2, Int>::from_data(TensorData::new(targets, [batch, seq]), device),
        target_mask: Tensor::<B, 2, Bool>::from_data(TensorData::new(real, [batch, seq]), device),
        mask: blt_core::mask::local_causal_mask(batch, seq, Some(window), Some(&segments), device),
        num_targets,
    }
}

/// A stage's train and validation loaders.
pub(crate) type StageLoaders<B, O, OV> = (
    Arc<EpochLoader<B, O>>,
    Arc<EpochLoader<<B as AutodiffBackend>::InnerBackend, OV>>,
);

/// The train loader (`steps_per_epoch × accumulation` micro-batches per epoch, seeded order,
/// starting at `first_epoch`, each knowing its step's targets, and ending after the stage's
/// `steps`: the last epoch is cut short when `steps` is not a multiple of `steps_per_epoch`)
/// and the validation loader (every validation group, in order). The train loader splits into
/// one share per device of `devices` (the first holds both loaders).
pub(crate) fn stage_loaders<B: AutodiffBackend, O: Send + 'static, OV: Send + 'static>(
    train_groups: RowGroups,
    valid_groups: RowGroups,
    (make, make_valid): (MakeBatch<B, O>, MakeBatch<B::InnerBackend, OV>),
    t: &TrainingConfig,
    steps: usize,
    first_epoch: usize,
    devices: &[B::Device],
) -> StageLoaders<B, O, OV> {
    let device = &devices[0];
    let per_epoch = t.steps_per_epoch * t.gradient_accumulation_steps;
    let valid_len = valid_groups.len();
    let train = EpochLoader::new(
        train_groups,
        make,
        per_epoch,
        Some(t.seed),
        first_epoch,
        device.clone(),
    )
    .with_accumulation(t.gradient_accumulation_steps)
    .with_total(steps * t.gradient_accumulation_steps)
    .with_shards(devices.len());
    let valid = EpochLoader::new(valid_groups, make_valid, valid_len, None, 0, device.clone());
    (Arc::new(train), Arc::new(valid))
}

/// Mean patch length over (a sample of) the training rows.
pub(crate) fn mean_patch_len(batcher: &BltBatcher, groups: &[Vec<Row>]) -> f64 {
    let (mut positions, mut patches) = (0usize, 0usize);
    for row in groups.iter().flatten().take(512) {
        if let Ok(prepared) = batcher.prepare(row) {
            positions += prepared.len();
            patches += prepared.patches.num_patches();
        }
    }
    positions as f64 / patches.max(1) as f64
}
