//! [`BltBatcher`]: rows → [`BltBatch`] (the model's [`BltInput`] plus targets), through
//! blt-model's [`RowPreparer`] and [`BltInput::from_rows`], so n-gram ids, encoder and decoder
//! patch ids, masks, the pooling layout and the bucketed patch count are exactly the model's.
//!
//! For `entropy` patching the batcher reads each row's entropies from an [`EntropyCache`] by row
//! id and patches with blt-patching's `Patcher::patch(input, Some(entropies))`; a row without
//! entropies is an error, never a silent fallback. Other schemes ignore the cache.

use std::{borrow::Cow, sync::Arc};

use blt_model::{BltConfig, BltInput, PatchingKind, PreparedRow, RowPreparer};
use blt_patching::PAD_ID;
use burn::{
    data::dataloader::batcher::Batcher,
    tensor::{Bool, Int, Tensor, TensorData, backend::Backend},
};

use crate::{
    cache::EntropyCache,
    dataset::Row,
    error::{DataError, Result},
};

/// One training or evaluation batch.
#[derive(Debug, Clone)]
pub struct BltBatch<B: Backend> {
    /// The model input (rows' `ids[..n − 1]`, right-padded).
    pub input: BltInput<B>,
    /// Next-byte targets (rows' `ids[1..]`), `[batch, seq]`; padding is PAD (0).
    pub targets: Tensor<B, 2, Int>,
    /// `true` where a target is real, `[batch, seq]`.
    pub target_mask: Tensor<B, 2, Bool>,
    /// Real targets in the batch (bytes and EOS to predict).
    pub num_targets: usize,
    /// Mean patch length: real input positions per real patch.
    pub mean_patch_len: f64,
}

impl<B: Backend> BltBatch<B> {
    /// Moves every tensor to `device`.
    pub fn to_device(self, device: &B::Device) -> Self {
        Self {
            input: self.input.to_device(device),
            targets: self.targets.to_device(device),
            target_mask: self.target_mask.to_device(device),
            ..self
        }
    }
}

/// Builds [`BltBatch`]es for one model config. Cheap to clone (the cache is shared).
#[derive(Debug, Clone)]
pub struct BltBatcher {
    config: BltConfig,
    preparer: RowPreparer,
    entropies: Option<Arc<EntropyCache>>,
}

impl BltBatcher {
    /// A batcher for `config`. `entropies` is required when `config.patching` is `entropy`
    /// (and its context resets must be `config.entropy_resets()`); it is ignored otherwise.
    pub fn new(config: &BltConfig, entropies: Option<Arc<EntropyCache>>) -> Result<Self> {
        config.validate()?;
        let entropies = match (config.patching, entropies) {
            (PatchingKind::Entropy, None) => {
                return Err(DataError::InvalidConfig(
                    "entropy patching needs an entropy cache (EntropyCache::load_or_compute)"
                        .into(),
                ));
            }
            (PatchingKind::Entropy, Some(cache)) => {
                if cache.resets() != config.entropy_resets() {
                    return Err(DataError::InvalidConfig(format!(
                        "the entropy cache was computed with context resets {:?}, but the \
                         config asks for {:?} (reset_entropy_context, document_mask)",
                        cache.resets(),
                        config.entropy_resets()
                    )));
                }
                Some(cache)
            }
            (_, _) => None,
        };
        Ok(Self {
            preparer: RowPreparer::new(config)?,
            config: config.clone(),
            entropies,
        })
    }

    /// The model config it batches for.
    pub fn config(&self) -> &BltConfig {
        &self.config
    }

    /// The entropy cache in use (entropy patching only).
    pub fn entropies(&self) -> Option<&EntropyCache> {
        self.entropies.as_deref()
    }

    /// The entropies patching reads for `row` (`None` unless patching is `entropy`).
    fn row_entropies(&self, row: &Row) -> Result<Option<Cow<'_, [f32]>>> {
        let Some(cache) = &self.entropies else {
            return Ok(None);
        };
        let h = cache
            .get(row.index)
            .ok_or(DataError::MissingEntropies { row: row.index })?;
        let expected = row.num_targets();
        if h.len() != expected {
            return Err(DataError::EntropyLength {
                row: row.index,
                expected,
                found: h.len(),
            });
        }
        Ok(Some(h))
    }

    /// Checks that a row can be batched: it has a target, fits `max_position_embeddings`, and
    /// has cached entropies when patching needs them.
    pub fn check_row(&self, row: &Row) -> Result<()> {
        self.check_shape(row)?;
        self.row_entropies(row).map(|_| ())
    }

    /// The checks of [`check_row`](Self::check_row) that read no entropies.
    fn check_shape(&self, row: &Row) -> Result<()> {
        let invalid = |reason: String| DataError::InvalidRow {
            row: row.index,
            reason,
        };
        if row.num_targets() == 0 {
            return Err(invalid("a row needs BOS and at least one target".into()));
        }
        let positions = row.num_targets();
        if positions > self.config.max_position_embeddings {
            return Err(invalid(format!(
                "{positions} input positions exceed max_position_embeddings ({})",
                self.config.max_position_embeddings
            )));
        }
        Ok(())
    }

    /// Checks every row (see [`check_row`](Self::check_row)); run it on a dataset before
    /// handing it to a burn `DataLoader`, whose batcher cannot return errors.
    pub fn check_rows<'a>(&self, rows: impl IntoIterator<Item = &'a Row>) -> Result<()> {
        rows.into_iter().try_for_each(|row| self.check_row(row))
    }

    /// Hashes and patches one row's input (`ids[..n − 1]`).
    pub fn prepare(&self, row: &Row) -> Result<PreparedRow> {
        // The entropies are read once (from the cache file, for a run's cache) and checked
        // on the way.
        self.check_shape(row)?;
        let entropies = self.row_entropies(row)?;
        Ok(self.preparer.prepare(row.input(), entropies.as_deref())?)
    }

    /// Builds the batch of `rows` (right-padded to the longest).
    ///
    /// # Shapes
    /// - `input`: as [`BltInput`], with `seq = max(len(row) − 1)`
    /// - `targets`, `target_mask`: `[rows.len(), seq]`
    pub fn try_batch<B: Backend>(&self, rows: &[Row], device: &B::Device) -> Result<BltBatch<B>> {
        let prepared = rows
            .iter()
            .map(|row| self.prepare(row))
            .collect::<Result<Vec<_>>>()?;
        let input = BltInput::from_rows(&self.config, &prepared, device)?;
        let batch = rows.len();
        let seq = input.seq_len();
        let mut targets = vec![i64::from(PAD_ID); batch * seq];
        let mut mask = vec![false; batch * seq];
        let mut num_targets = 0;
        for (b, row) in rows.iter().enumerate() {
            for (t, id) in row.iter_ids().skip(1).enumerate() {
                targets[b * seq + t] = i64::from(id);
                mask[b * seq + t] = true;
            }
            num_targets += row.num_targets();
        }
        let mean_patch_len = input.mean_patch_len();
        Ok(BltBatch {
            input,
            targets: Tensor::from_data(TensorData::new(targets, [batch, seq]), device),
            target_mask: Tensor::from_data(TensorData::new(mask, [batch, seq]), device),
            num_targets,
            mean_patch_len,
        })
    }
}

/// Fixed-size batches of rows (`DataLoaderBuilder::batch_size(n)` over a row dataset).
///
/// # Panics
/// If a row cannot be batched: burn's `Batcher` cannot return errors, so validate the dataset
/// with [`BltBatcher::check_rows`] first; after that this never panics.
impl<B: Backend> Batcher<B, Row, BltBatch<B>> for BltBatcher {
    fn batch(&self, items: Vec<Row>, device: &B::Device) -> BltBatch<B> {
        self.try_batch(&items, device)
            .unwrap_or_else(|e| panic!("{e} (validate rows with BltBatcher::check_rows first)"))
    }
}
