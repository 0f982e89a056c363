//! Throughput in bytes per second.

use std::sync::Arc;
use std::time::Instant;

use burn::train::metric::{
    Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericEntry, SerializedEntry,
};

use super::{LmStats, WeightedMean, numeric_attributes};

/// Throughput in bytes (targets) per wall-clock second.
///
/// A batch's rate is its bytes divided by the time since the previous update; the running
/// value is total bytes / total elapsed time over the epoch. The first update of an epoch has
/// no reference time and only starts the clock (zero weight). The weights logged are elapsed
/// microseconds, which keeps Burn's epoch aggregate exact.
///
/// Burn updates metrics on its event-processing thread as items arrive, so this measures the
/// rate at which batches complete as seen from there.
#[derive(Clone, Debug, Default)]
pub struct BytesPerSecondMetric {
    last: Option<Instant>,
    pub(super) state: WeightedMean,
}

impl BytesPerSecondMetric {
    /// The metric's name, as shown on the dashboard and used for its log file.
    pub const NAME: &'static str = "Bytes per second";

    /// Creates the metric.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `bytes` completed at `now`.
    pub(super) fn record(&mut self, bytes: usize, now: Instant) {
        match self.last.replace(now) {
            None => self.state.push(0.0, 0),
            Some(previous) => {
                let micros = now.saturating_duration_since(previous).as_micros().max(1);
                let micros = usize::try_from(micros).unwrap_or(usize::MAX);
                self.state.push(bytes as f64 * 1e6 / micros as f64, micros);
            }
        }
    }
}

impl Metric for BytesPerSecondMetric {
    type Input = LmStats;

    fn name(&self) -> MetricName {
        Arc::new(Self::NAME.to_string())
    }

    fn attributes(&self) -> MetricAttributes {
        numeric_attributes(Some("B/s"), true)
    }

    fn update(&mut self, stats: &LmStats, _metadata: &MetricMetadata) -> SerializedEntry {
        self.record(stats.bytes, Instant::now());
        self.state.serialized(Some("B/s"))
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

impl Numeric for BytesPerSecondMetric {
    fn value(&self) -> NumericEntry {
        self.state.current_entry()
    }

    fn running_value(&self) -> NumericEntry {
        self.state.running_entry()
    }
}
