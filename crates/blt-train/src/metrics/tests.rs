//! Unit tests of the language-model metrics.

use super::*;
use burn::data::dataloader::Progress;
use burn::train::metric::ItemLazy;
use std::f64::consts::LN_2;
use std::time::Duration;
use std::time::Instant;

fn metadata() -> MetricMetadata {
    let progress = Progress {
        items_processed: 1,
        items_total: 1,
    };
    MetricMetadata {
        progress: progress.clone(),
        global_progress: progress,
        iteration: Some(1),
        lr: None,
    }
}

fn stats(loss_sum: f64, bytes: usize, correct: usize, confidence_sum: f64) -> LmStats {
    LmStats {
        loss_sum,
        bytes,
        correct,
        confidence_sum,
        patches: 0,
        positions: 0,
    }
}

/// Burn's epoch aggregate: `Σ value·count / Σ count` over the serialized entries.
fn burn_aggregate(entries: &[SerializedEntry]) -> f64 {
    let (sum, count) = entries
        .iter()
        .map(
            |e| match NumericEntry::deserialize(&e.serialized).unwrap() {
                NumericEntry::Value(v) => (v, 1),
                NumericEntry::Aggregated {
                    aggregated_value,
                    count,
                } => (aggregated_value * count as f64, count),
            },
        )
        .fold((0.0, 0), |(s, n), (v, c)| (s + v, n + c));
    sum / count as f64
}

fn feed<M: Metric<Input = LmStats>>(metric: &mut M, batches: &[LmStats]) -> Vec<SerializedEntry> {
    batches
        .iter()
        .map(|b| metric.update(b, &metadata()))
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn two_batches() -> [LmStats; 2] {
    [stats(10.0, 4, 1, 2.0), stats(30.0, 16, 12, 10.0)]
}

#[test]
fn merge_adds_every_field() {
    let mut a = LmStats {
        loss_sum: 1.0,
        bytes: 2,
        correct: 1,
        confidence_sum: 0.5,
        patches: 1,
        positions: 3,
    };
    a.merge(&a.clone());
    assert_eq!(a.bytes, 4);
    assert_eq!(a.patches, 2);
    assert_eq!(a.positions, 6);
    assert_eq!(a.correct, 2);
    assert!(close(a.loss_sum, 2.0) && close(a.confidence_sum, 1.0));
}

#[test]
fn output_syncs_and_adapts() {
    let out = LmOutput::new(stats(1.0, 2, 1, 0.5));
    let synced = out.clone().sync();
    assert_eq!(synced, out);
    assert_eq!(Adaptor::<LmStats>::adapt(&synced), out.stats);
}

#[test]
fn loss_and_bpb_are_byte_weighted() {
    let mut loss = LossMetric::new();
    let mut bpb = BitsPerByteMetric::new();
    let loss_entries = feed(&mut loss, &two_batches());
    let bpb_entries = feed(&mut bpb, &two_batches());
    // Batch 2 alone: 30 / 16 nats per byte.
    assert!(close(loss.value().current(), 30.0 / 16.0));
    // Running: 40 nats over 20 bytes (not the mean of 2.5 and 1.875).
    assert!(close(loss.running_value().current(), 2.0));
    assert!(close(bpb.running_value().current(), 2.0 / LN_2));
    assert!(close(burn_aggregate(&loss_entries), 2.0));
    assert!(close(burn_aggregate(&bpb_entries), 40.0 / 20.0 / LN_2));
    assert_eq!(loss.name().as_str(), "Loss");
}

#[test]
fn accuracy_is_percent_and_confidence_is_fraction() {
    let mut acc = AccuracyMetric::new();
    let mut conf = ConfidenceMetric::new();
    let acc_entries = feed(&mut acc, &two_batches());
    feed(&mut conf, &two_batches());
    assert!(close(acc.value().current(), 75.0));
    assert!(close(acc.running_value().current(), 65.0)); // 13 / 20
    assert!(close(burn_aggregate(&acc_entries), 65.0));
    assert!(close(conf.running_value().current(), 0.6)); // 12 / 20
}

#[test]
fn perplexity_is_exp_of_mean_loss() {
    let mut ppl = PerplexityMetric::new();
    let entries = feed(&mut ppl, &two_batches());
    let exact = (40.0f64 / 20.0).exp();
    assert!(close(ppl.running_value().current(), exact));
    assert!(close(ppl.value().current(), exact));
    // The mean of batch perplexities would be larger (Jensen).
    let naive = (4.0 * 2.5f64.exp() + 16.0 * 1.875f64.exp()) / 20.0;
    assert!(naive > exact + 0.1);
    // Burn's aggregate of the telescoped log entries is exact too.
    assert!(close(burn_aggregate(&entries), exact));
    ppl.clear();
    assert!(close(ppl.running_value().current(), 1.0));
}

#[test]
fn empty_batches_do_not_move_aggregates() {
    let batches = [
        stats(6.0, 3, 3, 1.5),
        LmStats::default(),
        stats(2.0, 1, 0, 0.5),
    ];
    let mut loss = LossMetric::new();
    let mut ppl = PerplexityMetric::new();
    let loss_entries = feed(&mut loss, &batches);
    let ppl_entries = feed(&mut ppl, &batches);
    assert!(close(loss.running_value().current(), 2.0));
    assert!(close(burn_aggregate(&loss_entries), 2.0));
    assert!(close(burn_aggregate(&ppl_entries), 2.0f64.exp()));
    for entry in loss_entries.iter().chain(&ppl_entries) {
        assert!(!entry.serialized.contains("NaN"), "{}", entry.serialized);
    }
}

#[test]
fn patch_length_skips_batches_without_patches() {
    let mut metric = PatchLengthMetric::new();
    let with = |patches, positions| LmStats {
        patches,
        positions,
        ..LmStats::default()
    };
    let entries = feed(&mut metric, &[with(4, 16), with(0, 100), with(12, 24)]);
    assert!(close(metric.running_value().current(), 40.0 / 16.0));
    assert!(close(burn_aggregate(&entries), 40.0 / 16.0));
    let mut entropy_model = PatchLengthMetric::new();
    let entries = feed(&mut entropy_model, &[with(0, 100)]);
    assert!(close(entropy_model.running_value().current(), 0.0));
    assert_eq!(entries[0].serialized, "0,0");
}

#[test]
fn throughput_is_total_bytes_over_total_time() {
    let mut metric = BytesPerSecondMetric::new();
    let start = Instant::now();
    metric.record(999, start); // starts the clock only
    metric.record(1000, start + Duration::from_millis(500));
    assert!(close(metric.value().current(), 2000.0));
    metric.record(3000, start + Duration::from_millis(2000));
    assert!(close(metric.value().current(), 2000.0));
    assert!(close(metric.running_value().current(), 4000.0 / 2.0));
    let entries = [metric.state.serialized(None)];
    assert!(NumericEntry::deserialize(&entries[0].serialized).is_ok());
    assert!(matches!(metric.attributes(), MetricAttributes::Numeric(a) if a.higher_is_better));
}

#[test]
fn names_are_unique() {
    let names = [
        LossMetric::NAME,
        BitsPerByteMetric::NAME,
        AccuracyMetric::NAME,
        PerplexityMetric::NAME,
        ConfidenceMetric::NAME,
        PatchLengthMetric::NAME,
        BytesPerSecondMetric::NAME,
        "Learning Rate",
    ];
    let unique: std::collections::HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len());
}

#[test]
fn values_format_compactly() {
    assert_eq!(format_value(1.23456), "1.235");
    assert_eq!(format_value(45.678), "45.68");
    assert_eq!(format_value(3e-4), "3.000e-4");
    assert_eq!(format_value(123456.7), "123457");
    assert_eq!(format_value(0.0), "0");
}
