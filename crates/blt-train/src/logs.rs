//! Burn's file metric logs, with the epoch numbers of a resumed run fixed.
//!
//! Burn 0.21's event store numbers the epochs of every split from 1 until the first epoch ends,
//! even when training resumes from a checkpoint: the first resumed epoch is logged into
//! `epoch-1/` (overwriting the real first epoch's logs), and the checkpointing strategy, early
//! stopping and our per-epoch summary, which read epoch `e` back from `epoch-e/`, find nothing
//! (or a stale, interrupted log) for it. Later epochs are numbered correctly, because the store
//! takes the number from each epoch's end. [`EpochLogs`] wraps Burn's `FileMetricLogger` and
//! writes the entries of each split's first epoch into the epoch the run really starts at.

use std::collections::HashSet;
use std::path::Path;

use burn::train::logger::{FileMetricLogger, MetricLogger};
use burn::train::metric::store::{EpochSummary, MetricsUpdate, Split};
use burn::train::metric::{MetricDefinition, NumericEntry};

/// The mean of metric `name` over epoch `epoch` of `split`, as Burn's event store computes it
/// (entries weighted by the items they aggregate), read from the logs; `None` when the epoch
/// logged nothing for it.
pub fn epoch_mean(
    logger: &mut impl MetricLogger,
    name: &str,
    epoch: usize,
    split: &Split,
) -> Option<f64> {
    let entries = logger.read_numeric(name, epoch, split).ok()?;
    let (sum, count) = entries
        .iter()
        .map(|entry| match entry {
            NumericEntry::Value(v) => (*v, 1),
            NumericEntry::Aggregated {
                aggregated_value,
                count,
            } => (aggregated_value * *count as f64, *count),
        })
        .fold((0.0, 0usize), |(s, n), (v, c)| (s + v, n + c));
    (count > 0).then(|| sum / count as f64)
}

/// File metric logs under a stage directory (`train/epoch-N/<Metric>.log`, `valid/…`).
pub struct EpochLogs {
    inner: FileMetricLogger,
    first_epoch: usize,
    /// Splits whose first epoch has ended (from then on, Burn's numbers are right).
    ended: HashSet<Split>,
}

impl EpochLogs {
    /// Logs into `dir`; training starts (or resumes) at epoch `first_epoch` (1-based).
    pub fn new(dir: &Path, first_epoch: usize) -> Self {
        Self {
            inner: FileMetricLogger::new(dir),
            first_epoch: first_epoch.max(1),
            ended: HashSet::new(),
        }
    }
}

impl MetricLogger for EpochLogs {
    fn log(&mut self, update: MetricsUpdate, epoch: usize, split: &Split) {
        let epoch = if self.ended.contains(split) {
            epoch
        } else {
            self.first_epoch
        };
        self.inner.log(update, epoch, split);
    }

    fn read_numeric(
        &mut self,
        name: &str,
        epoch: usize,
        split: &Split,
    ) -> Result<Vec<NumericEntry>, String> {
        self.inner.read_numeric(name, epoch, split)
    }

    fn log_metric_definition(&mut self, definition: MetricDefinition) {
        self.inner.log_metric_definition(definition);
    }

    fn log_epoch_summary(&mut self, summary: EpochSummary) {
        self.ended.insert(summary.split.clone());
        self.inner.log_epoch_summary(summary);
    }
}
