//! Language-model metrics for Burn's `Learner`.
//!
//! The train and inference steps reduce their tensors to a host-side [`LmStats`] (plain sums,
//! one read per batch) and return it inside an [`LmOutput`]. Every metric here takes `LmStats`
//! as input, so one `Adaptor` serves them all.
//!
//! # Exact aggregates
//!
//! Burn aggregates an epoch from the `serialized` entries in the metric logs as
//! `Σ value·count / Σ count` (used by the checkpoint strategy, early stopping and the summary).
//! Every per-byte metric therefore serializes `(batch value, bytes)`, which makes the epoch
//! aggregate the exact corpus value rather than a mean of batch means. [`PerplexityMetric`]
//! and [`BytesPerSecondMetric`] use other weights so that the same formula stays exact; see
//! their docs.
//!
//! # Learning rate
//!
//! Use Burn's own `burn::train::metric::LearningRateMetric` (name `"Learning Rate"`,
//! `Input = ()`). It reads `MetricMetadata::lr`, which the training epoch fills with
//! `learner.lr_current()` after each step; the validation split has no learning rate (it would
//! report 0), so register it with `metric_train_numeric` only.

mod perplexity;
#[cfg(test)]
mod tests;
mod throughput;
mod window;

/// The names of the metrics a stage of [`train`](crate::train) records, in the order the
/// dashboard and the end-of-run summary show them (Burn's `"Learning Rate"` included).
pub const STAGE_METRICS: [&str; 8] = [
    "Loss",
    "Bits per byte",
    "Accuracy",
    "Perplexity",
    "Confidence",
    "Patch length",
    "Learning Rate",
    "Bytes per second",
];

pub use perplexity::PerplexityMetric;
pub use throughput::BytesPerSecondMetric;
pub use window::MetricWindow;

use std::f64::consts::LN_2;
use std::sync::Arc;

use burn::train::metric::{
    Adaptor, ItemLazy, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric,
    NumericAttributes, NumericEntry, SerializedEntry,
};

/// Host-side sums for one batch of language-model predictions.
///
/// All fields are sums, so batches combine with [`LmStats::merge`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LmStats {
    /// Σ −ln p(target) over the unmasked targets, in nats.
    pub loss_sum: f64,
    /// Number of unmasked targets (bytes).
    pub bytes: usize,
    /// Number of targets where the arg-max prediction was correct.
    pub correct: usize,
    /// Σ p(target) over the unmasked targets.
    pub confidence_sum: f64,
    /// Number of real patches in the batch; 0 when not applicable (e.g. the entropy model).
    pub patches: usize,
    /// Number of real input positions; mean patch length is `positions / patches`.
    pub positions: usize,
}

impl LmStats {
    /// Adds the sums of `other` to `self`.
    pub fn merge(&mut self, other: &Self) {
        self.loss_sum += other.loss_sum;
        self.bytes += other.bytes;
        self.correct += other.correct;
        self.confidence_sum += other.confidence_sum;
        self.patches += other.patches;
        self.positions += other.positions;
    }
}

/// Output of the language-model train and inference steps.
///
/// It already holds host values, so [`ItemLazy::sync`] is the identity.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LmOutput {
    /// The batch statistics.
    pub stats: LmStats,
}

impl LmOutput {
    /// Wraps batch statistics.
    pub fn new(stats: LmStats) -> Self {
        Self { stats }
    }
}

impl ItemLazy for LmOutput {
    type ItemSync = LmOutput;

    fn sync(self) -> Self::ItemSync {
        self
    }
}

impl Adaptor<LmStats> for LmOutput {
    fn adapt(&self) -> LmStats {
        self.stats.clone()
    }
}

/// Formats a metric value with about four significant digits (scientific when tiny or huge).
pub(crate) fn format_value(value: f64) -> String {
    if !value.is_finite() {
        return format!("{value}");
    }
    let magnitude = value.abs();
    if magnitude == 0.0 {
        "0".to_string()
    } else if magnitude < 1e-2 {
        format!("{value:.3e}")
    } else if magnitude >= 1e5 {
        format!("{value:.0}")
    } else {
        // 4 significant digits: 3 decimals at 1.x, 0 at 1000.x.
        let decimals = (3 - magnitude.log10().floor() as i32).max(0) as usize;
        format!("{value:.decimals$}")
    }
}

/// The text shown by the TUI: `epoch <running> <unit> - batch <current> <unit>`.
pub(crate) fn format_entry(running: f64, current: f64, unit: Option<&str>) -> String {
    let (running, current) = (format_value(running), format_value(current));
    match unit {
        Some(unit) => format!("epoch {running} {unit} - batch {current} {unit}"),
        None => format!("epoch {running} - batch {current}"),
    }
}

/// A running mean weighted by an integer count (bytes, patches, …).
#[derive(Clone, Debug, Default)]
pub(crate) struct WeightedMean {
    /// Σ value·weight over the epoch.
    sum: f64,
    /// Σ weight over the epoch.
    weight: usize,
    /// Value of the latest batch.
    current: f64,
    /// Weight of the latest batch.
    current_weight: usize,
}

impl WeightedMean {
    /// Records one batch. A zero weight leaves the aggregate alone and repeats the running value.
    pub(crate) fn push(&mut self, value: f64, weight: usize) {
        if weight == 0 {
            self.current = self.running();
            self.current_weight = 0;
            return;
        }
        self.sum += value * weight as f64;
        self.weight += weight;
        self.current = value;
        self.current_weight = weight;
    }

    /// The weighted mean so far, or 0 when nothing has been recorded.
    pub(crate) fn running(&self) -> f64 {
        if self.weight == 0 {
            0.0
        } else {
            self.sum / self.weight as f64
        }
    }

    pub(crate) fn current_entry(&self) -> NumericEntry {
        NumericEntry::Aggregated {
            aggregated_value: self.current,
            count: self.current_weight,
        }
    }

    pub(crate) fn running_entry(&self) -> NumericEntry {
        NumericEntry::Aggregated {
            aggregated_value: self.running(),
            count: self.weight,
        }
    }

    /// The entry for the metric logs: `(batch value, batch weight)`.
    pub(crate) fn serialized(&self, unit: Option<&str>) -> SerializedEntry {
        SerializedEntry::new(
            format_entry(self.running(), self.current, unit),
            self.current_entry().serialize(),
        )
    }
}

pub(crate) fn numeric_attributes(unit: Option<&str>, higher_is_better: bool) -> MetricAttributes {
    NumericAttributes {
        unit: unit.map(str::to_string),
        higher_is_better,
    }
    .into()
}

/// Defines a metric that is a weighted mean of a per-batch value computed from [`LmStats`].
macro_rules! weighted_metric {
    (
        $(#[$doc:meta])*
        $ty:ident, name: $name:literal, unit: $unit:expr, higher_is_better: $higher:literal,
        sample: $sample:expr
    ) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default)]
        pub struct $ty {
            state: WeightedMean,
        }

        impl $ty {
            /// The metric's name, as shown on the dashboard and used for its log file.
            pub const NAME: &'static str = $name;

            /// Creates the metric.
            pub fn new() -> Self {
                Self::default()
            }

            /// `(value, weight)` for one batch; weight 0 when the batch has nothing to measure.
            fn sample(stats: &LmStats) -> (f64, usize) {
                let sample: fn(&LmStats) -> (f64, usize) = $sample;
                sample(stats)
            }
        }

        impl Metric for $ty {
            type Input = LmStats;

            fn name(&self) -> MetricName {
                Arc::new(Self::NAME.to_string())
            }

            fn attributes(&self) -> MetricAttributes {
                numeric_attributes($unit, $higher)
            }

            fn update(&mut self, stats: &LmStats, _metadata: &MetricMetadata) -> SerializedEntry {
                let (value, weight) = Self::sample(stats);
                self.state.push(value, weight);
                self.state.serialized($unit)
            }

            fn clear(&mut self) {
                self.state = WeightedMean::default();
            }
        }

        impl Numeric for $ty {
            fn value(&self) -> NumericEntry {
                self.state.current_entry()
            }

            fn running_value(&self) -> NumericEntry {
                self.state.running_entry()
            }
        }
    };
}

/// Mean per-byte ratio `numerator / bytes`, weighted by bytes.
fn per_byte(numerator: f64, stats: &LmStats) -> (f64, usize) {
    match stats.bytes {
        0 => (0.0, 0),
        bytes => (numerator / bytes as f64, bytes),
    }
}

weighted_metric!(
    /// Cross-entropy in nats per byte, `loss_sum / bytes`, weighted by bytes.
    LossMetric, name: "Loss", unit: None, higher_is_better: false,
    sample: |s| per_byte(s.loss_sum, s)
);

weighted_metric!(
    /// Bits per byte, `loss_sum / bytes / ln 2`, weighted by bytes.
    BitsPerByteMetric, name: "Bits per byte", unit: Some("bpb"), higher_is_better: false,
    sample: |s| per_byte(s.loss_sum / LN_2, s)
);

weighted_metric!(
    /// Next-byte arg-max accuracy as a **percentage** (0–100), `100 · correct / bytes`,
    /// weighted by bytes.
    AccuracyMetric, name: "Accuracy", unit: Some("%"), higher_is_better: true,
    sample: |s| per_byte(100.0 * s.correct as f64, s)
);

weighted_metric!(
    /// Mean probability given to the target byte (a fraction in 0–1), weighted by bytes.
    ConfidenceMetric, name: "Confidence", unit: None, higher_is_better: true,
    sample: |s| per_byte(s.confidence_sum, s)
);

weighted_metric!(
    /// Mean patch length in bytes, `positions / patches`, weighted by patches. Batches with no
    /// patches (e.g. the entropy model) have zero weight and do not move the aggregate.
    PatchLengthMetric, name: "Patch length", unit: Some("bytes"), higher_is_better: true,
    sample: |s| match s.patches {
        0 => (0.0, 0),
        patches => (s.positions as f64 / patches as f64, patches),
    }
);
