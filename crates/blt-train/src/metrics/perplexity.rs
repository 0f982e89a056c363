//! Perplexity per byte with exact epoch aggregates.

use std::sync::Arc;

use burn::train::metric::{
    Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericEntry, SerializedEntry,
};

use super::{LmStats, format_entry, numeric_attributes};

/// Perplexity per byte, `exp(Σ loss / Σ bytes)` over the epoch so far.
///
/// Keeps its own sums, so the running value is the exponential of the byte-weighted mean loss,
/// never a mean of batch perplexities. Like Burn's built-in perplexity,
/// [`Numeric::value`] reports this epoch-so-far value (a per-batch perplexity is rarely
/// useful), as a plain [`NumericEntry::Value`].
///
/// The log entries are telescoped so that Burn's `Σ value·count / Σ count` over the epoch's
/// entries equals the exact epoch perplexity: batch *i* logs `(P_i·N_i − P_{i−1}·N_{i−1}) / n_i`
/// with count `n_i`, where `P_i` is the running perplexity, `N_i` the running byte count and
/// `n_i` the batch's bytes. The individual lines of `Perplexity.log` are therefore not batch
/// perplexities; only their aggregate is meaningful.
#[derive(Clone, Debug, Default)]
pub struct PerplexityMetric {
    loss_sum: f64,
    bytes: usize,
    /// `P·N` at the previous update (for the telescoped log entries).
    logged_mass: f64,
    /// Perplexity of the latest batch alone (shown in the TUI text).
    batch: f64,
}

impl PerplexityMetric {
    /// The metric's name, as shown on the dashboard and used for its log file.
    pub const NAME: &'static str = "Perplexity";

    /// Creates the metric.
    pub fn new() -> Self {
        Self::default()
    }

    /// `exp(Σ loss / Σ bytes)`, or 1 (no information) before any byte was seen.
    fn running(&self) -> f64 {
        if self.bytes == 0 {
            1.0
        } else {
            (self.loss_sum / self.bytes as f64).exp()
        }
    }
}

impl Metric for PerplexityMetric {
    type Input = LmStats;

    fn name(&self) -> MetricName {
        Arc::new(Self::NAME.to_string())
    }

    fn attributes(&self) -> MetricAttributes {
        numeric_attributes(None, false)
    }

    fn update(&mut self, stats: &LmStats, _metadata: &MetricMetadata) -> SerializedEntry {
        let serialized = if stats.bytes == 0 {
            NumericEntry::Aggregated {
                aggregated_value: 0.0,
                count: 0,
            }
        } else {
            self.loss_sum += stats.loss_sum;
            self.bytes += stats.bytes;
            self.batch = (stats.loss_sum / stats.bytes as f64).exp();
            let mass = self.running() * self.bytes as f64;
            let delta = mass - self.logged_mass;
            let entry = if delta.is_finite() {
                NumericEntry::Aggregated {
                    aggregated_value: delta / stats.bytes as f64,
                    count: stats.bytes,
                }
            } else {
                // Overflowed perplexity: log the plain value so the aggregate shows it.
                NumericEntry::Aggregated {
                    aggregated_value: self.running(),
                    count: stats.bytes,
                }
            };
            self.logged_mass = mass;
            entry
        };
        SerializedEntry::new(
            format_entry(self.running(), self.batch, None),
            serialized.serialize(),
        )
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

impl Numeric for PerplexityMetric {
    fn value(&self) -> NumericEntry {
        NumericEntry::Value(self.running())
    }

    fn running_value(&self) -> NumericEntry {
        NumericEntry::Aggregated {
            aggregated_value: self.running(),
            count: self.bytes,
        }
    }
}
