//! Batch planning: which rows go together, decided once, deterministically, before training.
//!
//! # Design
//!
//! Burn's `DataLoader` batches a fixed number of items, but a byte budget (the seed's "dynamic
//! batch handling") needs batches of varying row counts. So the grouping happens here, once: a
//! [`BatchPlan`] lists groups of row positions, and a loader serves whole groups, each turned
//! into one [`BltBatch`] by the [`BltBatcher`]. Training does this with blt-train's
//! `EpochLoader`, which shuffles the groups per epoch and knows each optimizer step's targets;
//! [`BatchPlan::batches`] is a plain eager iterator over the same groups (tests, evaluation):
//!
//! ```text
//! let plan = BatchPlan::new(&split.train, &BatchPlanConfig { max_batch_bytes: Some(16_384), .. })?;
//! for batch in plan.batches::<B, _>(&split.train, &batcher, &device) { let batch = batch?; … }
//! ```
//!
//! # Grouping
//!
//! The cost of a group is its padded size: `rows × longest input` positions. With only
//! `batch_size`, groups are consecutive runs of `batch_size` rows in plan order. With
//! `max_batch_bytes`, rows are taken in pools of [`BatchPlan::POOL_ROWS`], each pool sorted by
//! length (longest first, ties in plan order), and packed greedily: a group grows while its
//! padded size stays within the budget, so similar lengths share a group and little is padding.
//! Plan order is the dataset's order, or a seeded shuffle of it; with a seed the groups are
//! shuffled too. The same dataset, config and seed always give the same plan.

use burn::{data::dataset::Dataset, tensor::backend::Backend};
use serde::{Deserialize, Serialize};

use crate::{
    batch::{BltBatch, BltBatcher},
    dataset::Row,
    error::{DataError, Result},
    rng::SplitMix64,
};

/// How rows are grouped into batches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchPlanConfig {
    /// Rows per batch when `max_batch_bytes` is unset, ≥ 1. Default: 8.
    pub batch_size: usize,
    /// Byte budget per batch, counted as padded input positions (`rows × longest input`);
    /// when set, a batch holds as many rows as fit and `batch_size` is ignored. It must be at
    /// least the longest row's input. Default: unset.
    pub max_batch_bytes: Option<usize>,
    /// Shuffle seed; unset keeps the dataset's order (evaluation). Default: unset.
    pub seed: Option<u64>,
}

impl Default for BatchPlanConfig {
    fn default() -> Self {
        Self {
            batch_size: 8,
            max_batch_bytes: None,
            seed: None,
        }
    }
}

/// Groups of row positions (indices into a row dataset), built by [`BatchPlan::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    groups: Vec<Vec<usize>>,
    real_positions: usize,
    padded_positions: usize,
}

impl BatchPlan {
    /// Rows sorted together when packing by byte budget.
    pub const POOL_ROWS: usize = 2048;

    /// Plans the batches of `dataset`.
    pub fn new<D: Dataset<Row>>(dataset: &D, config: &BatchPlanConfig) -> Result<Self> {
        if config.batch_size == 0 {
            return Err(DataError::InvalidConfig(
                "batch_size (0) must be at least 1".into(),
            ));
        }
        let lengths: Vec<usize> = (0..dataset.len())
            .map(|i| dataset.get(i).map_or(0, |r| r.num_targets()))
            .collect();
        let longest = lengths.iter().copied().max().unwrap_or(0);
        let mut order: Vec<usize> = (0..lengths.len()).collect();
        let mut rng = config.seed.map(SplitMix64::new);
        if let Some(rng) = rng.as_mut() {
            rng.shuffle(&mut order);
        }
        let mut groups: Vec<Vec<usize>> = match config.max_batch_bytes {
            None => order
                .chunks(config.batch_size)
                .map(<[usize]>::to_vec)
                .collect(),
            Some(budget) => {
                if budget < longest.max(1) {
                    return Err(DataError::InvalidConfig(format!(
                        "max_batch_bytes ({budget}) must be at least the longest row input \
                         ({longest} positions)"
                    )));
                }
                pack_by_budget(&order, &lengths, budget)
            }
        };
        if let Some(rng) = rng.as_mut() {
            rng.shuffle(&mut groups);
        }
        let real_positions = lengths.iter().sum();
        let padded_positions = groups
            .iter()
            .map(|g| g.len() * g.iter().map(|&i| lengths[i]).max().unwrap_or(0))
            .sum();
        let plan = Self {
            groups,
            real_positions,
            padded_positions,
        };
        tracing::info!(
            batches = plan.len(),
            rows = lengths.len(),
            padding_efficiency = plan.efficiency(),
            "planned batches"
        );
        Ok(plan)
    }

    /// The groups of row positions.
    pub fn groups(&self) -> &[Vec<usize>] {
        &self.groups
    }

    /// Number of batches.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether there is no batch.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Real input positions over all batches.
    pub fn real_positions(&self) -> usize {
        self.real_positions
    }

    /// Padded input positions over all batches (what the model computes on).
    pub fn padded_positions(&self) -> usize {
        self.padded_positions
    }

    /// Share of computed positions that are real, in (0, 1] (1 when empty).
    pub fn efficiency(&self) -> f64 {
        if self.padded_positions == 0 {
            1.0
        } else {
            self.real_positions as f64 / self.padded_positions as f64
        }
    }

    /// The rows of group `group`.
    pub fn group<D: Dataset<Row>>(&self, dataset: &D, group: usize) -> Option<Vec<Row>> {
        self.groups
            .get(group)?
            .iter()
            .map(|&i| dataset.get(i))
            .collect()
    }

    /// The batches, built eagerly one after another (tests, evaluation).
    pub fn batches<'a, B: Backend, D: Dataset<Row>>(
        &'a self,
        dataset: &'a D,
        batcher: &'a BltBatcher,
        device: &'a B::Device,
    ) -> impl Iterator<Item = Result<BltBatch<B>>> + 'a {
        (0..self.len()).map(move |g| {
            let group = self.group(dataset, g).ok_or_else(|| {
                DataError::InvalidConfig(format!(
                    "batch {g} refers to rows outside the dataset ({} rows)",
                    dataset.len()
                ))
            })?;
            batcher.try_batch(&group, device)
        })
    }
}

/// Greedy packing within sorted pools (see the [module docs](self)).
fn pack_by_budget(order: &[usize], lengths: &[usize], budget: usize) -> Vec<Vec<usize>> {
    let mut groups = Vec::new();
    for pool in order.chunks(BatchPlan::POOL_ROWS) {
        let mut pool = pool.to_vec();
        pool.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        let mut current: Vec<usize> = Vec::new();
        for i in pool {
            // Sorted longest first: the group's first row sets its padded length.
            let longest = current.first().map_or(lengths[i], |&f| lengths[f]).max(1);
            if !current.is_empty() && (current.len() + 1) * longest > budget {
                groups.push(std::mem::take(&mut current));
            }
            current.push(i);
        }
        if !current.is_empty() {
            groups.push(current);
        }
    }
    groups
}
