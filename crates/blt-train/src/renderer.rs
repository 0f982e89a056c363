//! A plain, line-based metrics renderer for runs whose stdout is not a terminal.
//!
//! Burn 0.21's fallback renderer (`CliMetricsRenderer`) prints a `TrainingProgress` Debug line
//! for every batch and no metric values. [`PlainRenderer`] instead writes one line every
//! `every` training iterations and one at the end of each validation epoch, to a writer it is
//! given (a library never prints):
//!
//! ```text
//! train epoch 2/10 iter 150/400 | Loss 1.234 | Bits per byte 1.780 | Learning Rate 3.000e-4
//! valid epoch 2/10 iter 50/50 | Loss 1.301 | Bits per byte 1.877
//! ```
//!
//! Train lines show each metric's latest value (for the per-byte metrics of
//! [`crate::metrics`], the latest batch). Valid lines show the count-weighted mean of each
//! metric over the validation epoch (for the per-byte metrics, the exact epoch value), as
//! [`MetricWindow`] keeps it; metrics that report a plain value, such as
//! [`crate::metrics::PerplexityMetric`] (already an epoch value), show their latest value.
//!
//! Register it with `SupervisedTraining::renderer(PlainRenderer::new(..))`.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};

use burn::data::dataloader::Progress;
use burn::train::LearnerSummary;
use burn::train::metric::{MetricAttributes, MetricDefinition, MetricId};
use burn::train::renderer::{
    EvaluationName, EvaluationProgress, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining, ProgressType, TrainingProgress,
};

use crate::metrics::{MetricWindow, format_value};

/// Whether this process's stdout is a terminal.
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// Which training dashboard to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dashboard {
    /// Our terminal UI, [`crate::TuiDashboard`]; needs a terminal (falls back to
    /// [`Dashboard::Plain`] when it cannot take it over).
    Tui,
    /// Burn 0.21's terminal UI (`TuiMetricsRendererWrapper`), whose thread keeps a CPU core
    /// busy; kept to measure what that costs. Needs a terminal (else Burn prints progress
    /// lines without values).
    BurnTui,
    /// [`PlainRenderer`] lines, for logs, pipes and CI.
    Plain,
    /// No output at all (tests, embedding).
    Quiet,
}

impl Dashboard {
    /// [`Dashboard::Tui`] when stdout is a terminal, else [`Dashboard::Plain`].
    pub fn detect() -> Self {
        if stdout_is_terminal() {
            Self::Tui
        } else {
            Self::Plain
        }
    }
}

/// One metric over the current window: its values (numeric metrics) or its latest text.
#[derive(Debug)]
struct Slot {
    id: MetricId,
    /// The metric's own text (non-numeric metrics).
    text: String,
    /// Latest value and window mean (numeric metrics).
    window: Option<MetricWindow>,
}

/// The metrics of one split, in the order they first arrived.
#[derive(Debug, Default)]
struct SplitValues {
    slots: Vec<Slot>,
}

impl SplitValues {
    fn update(&mut self, state: MetricState) {
        let (entry, numeric) = match state {
            MetricState::Generic(entry) => (entry, None),
            MetricState::Numeric(entry, numeric) => (entry, Some(numeric)),
        };
        let position = match self.slots.iter().position(|s| s.id == entry.metric_id) {
            Some(position) => position,
            None => {
                self.slots.push(Slot {
                    id: entry.metric_id.clone(),
                    text: String::new(),
                    window: None,
                });
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[position];
        match numeric {
            None => slot.text = entry.serialized_entry.formatted,
            Some(numeric) => slot.window.get_or_insert_default().update(&numeric),
        }
    }

    /// Whether any value arrived since the last [`SplitValues::reset_window`].
    fn has_window(&self) -> bool {
        !self.slots.is_empty()
    }

    fn reset_window(&mut self) {
        self.slots.clear();
    }
}

/// How a line shows each metric.
#[derive(Clone, Copy)]
enum Show {
    /// The latest value.
    Latest,
    /// The count-weighted mean over the window (latest for plain values).
    WindowMean,
}

/// Writes one metrics line every `every` training iterations and at the end of each
/// validation epoch (see the [module docs](self)). Write errors are ignored.
pub struct PlainRenderer {
    out: Box<dyn Write + Send + Sync>,
    every: usize,
    definitions: HashMap<MetricId, MetricDefinition>,
    train: SplitValues,
    valid: SplitValues,
    /// Progress of the latest validation item, while its line is not yet written.
    valid_pending: Option<TrainingProgress>,
    test: SplitValues,
    test_name: Option<EvaluationName>,
}

impl PlainRenderer {
    /// A renderer writing to `out`, with a train line every `every` iterations (0 acts as 1).
    pub fn new(out: Box<dyn Write + Send + Sync>, every: usize) -> Self {
        Self {
            out,
            every: every.max(1),
            definitions: HashMap::new(),
            train: SplitValues::default(),
            valid: SplitValues::default(),
            valid_pending: None,
            test: SplitValues::default(),
            test_name: None,
        }
    }

    /// `Name value[ unit]` for every metric of `values`, joined by ` | `.
    fn metrics_text(&self, values: &SplitValues, show: Show) -> String {
        let mut text = String::new();
        for slot in &values.slots {
            let definition = self.definitions.get(&slot.id);
            let name = definition.map_or_else(|| format!("{:?}", slot.id), |d| d.name.clone());
            let value = match (show, &slot.window) {
                (Show::Latest, Some(w)) => w.latest().map_or_else(String::new, format_value),
                (Show::WindowMean, Some(w)) => w.mean().map_or_else(String::new, format_value),
                (_, None) => slot.text.clone(),
            };
            let unit = match definition.map(|d| &d.attributes) {
                Some(MetricAttributes::Numeric(attributes)) => attributes.unit.as_deref(),
                _ => None,
            };
            text.push_str(" | ");
            text.push_str(&name);
            text.push(' ');
            text.push_str(&value);
            match unit {
                Some("%") => text.push('%'),
                Some(unit) => {
                    text.push(' ');
                    text.push_str(unit);
                }
                None => {}
            }
        }
        text
    }

    fn write_line(&mut self, line: &str) {
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
    }

    fn write_valid_line(&mut self) {
        if let Some(progress) = self.valid_pending.take()
            && self.valid.has_window()
        {
            let line = format!(
                "valid {}{}",
                position(&progress, false),
                self.metrics_text(&self.valid, Show::WindowMean)
            );
            self.write_line(&line);
        }
        self.valid.reset_window();
    }

    fn write_test_line(&mut self, progress: &EvaluationProgress) {
        let name = self
            .test_name
            .as_ref()
            .map_or_else(String::new, |name| format!(" {name}"));
        let line = format!(
            "test{name} iter {} items {}/{}{}",
            progress.iteration.unwrap_or(0),
            progress.progress.items_processed,
            progress.progress.items_total,
            self.metrics_text(&self.test, Show::WindowMean)
        );
        self.write_line(&line);
        self.test.reset_window();
    }

    fn write_summary(&mut self, summary: Option<LearnerSummary>) {
        if let Some(summary) = summary {
            let text = summary.to_string();
            self.write_line(&text);
        }
    }
}

/// `epoch e/E iter i/n`, where `n` is estimated from the items per iteration so far (exact
/// for a constant batch size); `estimate_total` off prints `iter i/i` at a complete epoch.
fn position(progress: &TrainingProgress, estimate_total: bool) -> String {
    let epoch = &progress.global_progress;
    let iteration = progress.iteration.unwrap_or(0);
    let total = match &progress.progress {
        Some(items) if estimate_total => estimated_iterations(items, iteration),
        Some(items) if is_complete(items) => Some(iteration),
        _ => None,
    };
    let total = total.map_or_else(String::new, |total| format!("/{total}"));
    format!(
        "epoch {}/{} iter {iteration}{total}",
        epoch.items_processed, epoch.items_total
    )
}

fn estimated_iterations(items: &Progress, iteration: usize) -> Option<usize> {
    if items.items_processed == 0 || iteration == 0 {
        return None;
    }
    Some((items.items_total * iteration).div_ceil(items.items_processed))
}

fn is_complete(items: &Progress) -> bool {
    items.items_processed >= items.items_total
}

impl MetricsRendererTraining for PlainRenderer {
    fn update_train(&mut self, state: MetricState) {
        self.train.update(state);
    }

    fn update_valid(&mut self, state: MetricState) {
        self.valid.update(state);
    }

    fn render_train(&mut self, item: TrainingProgress, _progress_indicators: Vec<ProgressType>) {
        // A validation epoch that ended early (interrupted) still gets its line.
        if self.valid_pending.is_some() {
            self.write_valid_line();
        }
        let iteration = item.iteration.unwrap_or(0);
        let last = item.progress.as_ref().is_some_and(is_complete);
        if iteration.is_multiple_of(self.every) || last {
            let line = format!(
                "train {}{}",
                position(&item, true),
                self.metrics_text(&self.train, Show::Latest)
            );
            self.write_line(&line);
        }
        if last {
            // Drop metrics that are no longer reported at the next epoch's lines.
            self.train.reset_window();
        }
    }

    fn render_valid(&mut self, item: TrainingProgress, _progress_indicators: Vec<ProgressType>) {
        let complete = item.progress.as_ref().is_none_or(is_complete);
        self.valid_pending = Some(item);
        if complete {
            self.write_valid_line();
        }
    }

    fn on_train_end(
        &mut self,
        summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        self.write_valid_line();
        self.write_summary(summary);
        Ok(())
    }
}

impl MetricsRendererEvaluation for PlainRenderer {
    fn update_test(&mut self, name: EvaluationName, state: MetricState) {
        if self.test_name.as_ref().map(EvaluationName::as_str) != Some(name.as_str()) {
            self.test.reset_window();
            self.test_name = Some(name);
        }
        self.test.update(state);
    }

    fn render_test(&mut self, item: EvaluationProgress, _progress_indicators: Vec<ProgressType>) {
        if is_complete(&item.progress) {
            self.write_test_line(&item);
        }
    }

    fn on_test_end(
        &mut self,
        summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        self.write_summary(summary);
        Ok(())
    }
}

impl MetricsRenderer for PlainRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        self.definitions
            .insert(definition.metric_id.clone(), definition);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_events::{definition, id, numeric};
    use burn::train::metric::{MetricEntry, NumericEntry, SerializedEntry};
    use std::sync::{Arc, Mutex};

    /// A writer whose bytes the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    struct Failing;

    impl Write for Failing {
        fn write(&mut self, _buf: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }

    fn define(renderer: &mut PlainRenderer, name: &str, unit: Option<&str>) {
        renderer.register_metric(definition(name, unit));
    }

    fn progress(epoch: usize, iteration: usize, done: usize, total: usize) -> TrainingProgress {
        TrainingProgress {
            progress: Some(Progress {
                items_processed: done,
                items_total: total,
            }),
            global_progress: Progress {
                items_processed: epoch,
                items_total: 10,
            },
            iteration: Some(iteration),
        }
    }

    fn renderer(every: usize) -> (PlainRenderer, Shared) {
        let out = Shared::default();
        let mut renderer = PlainRenderer::new(Box::new(out.clone()), every);
        define(&mut renderer, "Loss", None);
        define(&mut renderer, "Bits per byte", Some("bpb"));
        define(&mut renderer, "Accuracy", Some("%"));
        (renderer, out)
    }

    #[test]
    fn train_lines_every_n_iterations_with_latest_values() {
        let (mut r, out) = renderer(2);
        for iteration in 1..=4 {
            let loss = iteration as f64;
            r.update_train(numeric("Loss", loss, 8));
            r.update_train(numeric("Bits per byte", loss / 2.0, 8));
            r.update_train(numeric("Accuracy", 12.5, 8));
            r.render_train(progress(2, iteration, 8 * iteration, 80), vec![]);
        }
        let text = out.text();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "train epoch 2/10 iter 2/10 | Loss 2.000 | Bits per byte 1.000 bpb \
                 | Accuracy 12.50%",
                "train epoch 2/10 iter 4/10 | Loss 4.000 | Bits per byte 2.000 bpb \
                 | Accuracy 12.50%",
            ]
        );
    }

    #[test]
    fn valid_line_at_epoch_end_shows_weighted_epoch_mean() {
        let (mut r, out) = renderer(100);
        r.update_valid(numeric("Loss", 3.0, 4));
        r.render_valid(progress(1, 1, 4, 20), vec![]);
        assert_eq!(out.text(), "");
        r.update_valid(numeric("Loss", 1.0, 16));
        r.render_valid(progress(1, 2, 20, 20), vec![]);
        // (3·4 + 1·16) / 20 = 1.4
        assert_eq!(out.text(), "valid epoch 1/10 iter 2/2 | Loss 1.400\n");
    }

    #[test]
    fn interrupted_validation_is_flushed_by_the_next_train_line() {
        let (mut r, out) = renderer(1);
        r.update_valid(numeric("Loss", 2.0, 4));
        r.render_valid(progress(1, 1, 4, 20), vec![]);
        r.update_train(numeric("Loss", 5.0, 4));
        r.render_train(progress(2, 1, 4, 40), vec![]);
        let text = out.text();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines[0], "valid epoch 1/10 iter 1 | Loss 2.000");
        assert_eq!(lines[1], "train epoch 2/10 iter 1/10 | Loss 5.000");
    }

    #[test]
    fn plain_values_and_text_metrics_show_latest() {
        let (mut r, out) = renderer(1);
        define(&mut r, "Perplexity", None);
        define(&mut r, "Iteration Speed", None);
        let entry = MetricEntry::new(
            id("Perplexity"),
            SerializedEntry::new(String::new(), String::new()),
        );
        r.update_valid(MetricState::Numeric(entry, NumericEntry::Value(7.25)));
        let text = MetricEntry::new(
            id("Iteration Speed"),
            SerializedEntry::new("3.5 iter/s".to_string(), String::new()),
        );
        r.update_valid(MetricState::Generic(text));
        r.render_valid(progress(3, 5, 20, 20), vec![]);
        assert!(
            out.text()
                .ends_with("| Perplexity 7.250 | Iteration Speed 3.5 iter/s\n"),
            "{}",
            out.text()
        );
    }

    #[test]
    fn write_errors_are_ignored() {
        let mut r = PlainRenderer::new(Box::new(Failing), 0);
        r.update_train(numeric("Loss", 1.0, 1));
        r.render_train(progress(1, 1, 1, 1), vec![]);
        r.render_valid(progress(1, 1, 1, 1), vec![]);
        assert!(r.on_train_end(None).is_ok());
    }

    #[test]
    fn test_split_writes_one_line_when_complete() {
        let (mut r, out) = renderer(1);
        r.update_test(EvaluationName::new("held-out"), numeric("Loss", 2.5, 10));
        let done = |n| EvaluationProgress {
            progress: Progress {
                items_processed: n,
                items_total: 10,
            },
            iteration: Some(1),
        };
        r.render_test(done(5), vec![]);
        assert_eq!(out.text(), "");
        r.render_test(done(10), vec![]);
        assert_eq!(
            out.text(),
            "test held-out iter 1 items 10/10 | Loss 2.500\n"
        );
    }

    #[test]
    fn dashboard_matches_terminal_detection() {
        let expected = if stdout_is_terminal() {
            Dashboard::Tui
        } else {
            Dashboard::Plain
        };
        assert_eq!(Dashboard::detect(), expected);
    }
}
