//! [`MetricWindow`]: one metric's values over a window of batches (an epoch, or the span of a
//! log line), as the dashboard and the plain renderer show them.

use burn::train::metric::NumericEntry;

/// The latest value of a numeric metric and, for count-weighted entries
/// ([`NumericEntry::Aggregated`], as every per-byte metric of [`crate::metrics`] reports), the
/// count-weighted mean over the window: the exact value over all the window's bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MetricWindow {
    latest: Option<f64>,
    sum: f64,
    count: usize,
}

impl MetricWindow {
    /// Adds one batch's entry. A non-finite or empty aggregate updates the latest value only.
    pub fn update(&mut self, entry: &NumericEntry) {
        self.latest = Some(entry.current());
        if let NumericEntry::Aggregated {
            aggregated_value,
            count,
        } = entry
            && *count > 0
            && aggregated_value.is_finite()
        {
            self.sum += aggregated_value * *count as f64;
            self.count += count;
        }
    }

    /// The latest batch's value.
    pub fn latest(&self) -> Option<f64> {
        self.latest
    }

    /// The count-weighted mean over the window; the latest value for metrics that report
    /// plain values (already a window value, like perplexity).
    pub fn mean(&self) -> Option<f64> {
        if self.count > 0 {
            Some(self.sum / self.count as f64)
        } else {
            self.latest
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregated_entries_are_weighted_by_their_counts() {
        let mut w = MetricWindow::default();
        assert_eq!((w.latest(), w.mean()), (None, None));
        // 3 bytes at 2.0 and 1 byte at 6.0: the window holds 4 bytes averaging 3.0.
        w.update(&NumericEntry::Aggregated {
            aggregated_value: 2.0,
            count: 3,
        });
        w.update(&NumericEntry::Aggregated {
            aggregated_value: 6.0,
            count: 1,
        });
        assert_eq!((w.latest(), w.mean()), (Some(6.0), Some(3.0)));
        // A non-finite batch shows as the latest value but leaves the mean alone.
        w.update(&NumericEntry::Aggregated {
            aggregated_value: f64::NAN,
            count: 2,
        });
        assert!(w.latest().unwrap().is_nan());
        assert_eq!(w.mean(), Some(3.0));
    }

    #[test]
    fn plain_values_show_the_latest() {
        let mut w = MetricWindow::default();
        w.update(&NumericEntry::Value(5.0));
        w.update(&NumericEntry::Value(4.0));
        assert_eq!((w.latest(), w.mean()), (Some(4.0), Some(4.0)));
    }
}
