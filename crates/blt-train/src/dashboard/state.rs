//! What the dashboard shows, updated by the training thread and read (as a [`View`]) by the
//! drawing thread: per-split metric values (latest batch and epoch mean), the history of every
//! numeric metric (one plotted at a time, chosen with the arrow keys), and the progress of the
//! stage (step, epoch, rate, ETA).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use burn::train::metric::{MetricAttributes, MetricDefinition, MetricId};
use burn::train::renderer::{MetricState, TrainingProgress};

use crate::metrics::{MetricWindow, format_value};

/// The stage a dashboard shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageInfo {
    /// Name of the stage, e.g. `blt`.
    pub name: String,
    /// Its position in the run (1-based).
    pub index: usize,
    /// Stages in the run.
    pub count: usize,
    /// Optimizer steps of the stage.
    pub total_steps: usize,
    /// Micro-batches per optimizer step.
    pub accumulation: usize,
}

/// What the stage is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No batch has been seen yet.
    Starting,
    /// Training batches.
    Training,
    /// Validating at the end of an epoch.
    Validating,
    /// The user asked to stop; the current batch finishes first.
    Stopping,
    /// Training has ended.
    Done,
}

/// Points `(x, y)` kept at bounded memory: once `cap` points are stored, neighbours are
/// averaged in pairs and later points average twice as many samples.
#[derive(Debug, Clone)]
pub struct History {
    points: Vec<(f64, f64)>,
    cap: usize,
    stride: usize,
    pending: (f64, f64, usize),
}

impl History {
    /// An empty history of at most `cap` (≥ 2) points.
    pub fn new(cap: usize) -> Self {
        Self {
            points: Vec::new(),
            cap: cap.max(2),
            stride: 1,
            pending: (0.0, 0.0, 0),
        }
    }

    /// Adds a sample.
    pub fn push(&mut self, x: f64, y: f64) {
        if !y.is_finite() {
            return;
        }
        let (sx, sy, n) = &mut self.pending;
        *sx += x;
        *sy += y;
        *n += 1;
        if *n < self.stride {
            return;
        }
        let point = (*sx / *n as f64, *sy / *n as f64);
        self.pending = (0.0, 0.0, 0);
        self.points.push(point);
        if self.points.len() >= self.cap {
            self.points = self
                .points
                .chunks(2)
                .map(|pair| {
                    let n = pair.len() as f64;
                    (
                        pair.iter().map(|p| p.0).sum::<f64>() / n,
                        pair.iter().map(|p| p.1).sum::<f64>() / n,
                    )
                })
                .collect();
            self.stride *= 2;
        }
    }

    /// The stored points.
    pub fn points(&self) -> &[(f64, f64)] {
        &self.points
    }
}

/// One metric of one split over the epoch.
#[derive(Debug, Clone, Default)]
struct Value {
    /// Latest value and epoch mean (numeric metrics).
    window: MetricWindow,
    /// Latest text (text metrics).
    text: Option<String>,
}

/// The metrics of one split; the epoch sums restart with the first update after an epoch's
/// last batch.
#[derive(Debug, Default)]
struct Split {
    values: HashMap<MetricId, Value>,
    epoch_complete: bool,
}

impl Split {
    fn update(&mut self, state: MetricState) {
        if std::mem::take(&mut self.epoch_complete) {
            self.values.clear();
        }
        match state {
            MetricState::Generic(entry) => {
                self.values.entry(entry.metric_id).or_default().text =
                    Some(entry.serialized_entry.formatted);
            }
            MetricState::Numeric(entry, numeric) => {
                self.values
                    .entry(entry.metric_id)
                    .or_default()
                    .window
                    .update(&numeric);
            }
        }
    }
}

/// The dashboard's state.
#[derive(Debug)]
pub struct DashboardState {
    stage: StageInfo,
    definitions: Vec<MetricDefinition>,
    train: Split,
    valid: Split,
    phase: Phase,
    /// Epoch, epochs, iteration in the epoch, iterations per epoch (micro-batches).
    epoch: (usize, usize, usize, usize),
    /// Micro-batches completed in the stage (all sessions).
    micro_batches: usize,
    /// When and at which micro-batch this session's first batch was seen.
    first: Option<(Instant, usize)>,
    /// Every numeric metric's history: training batches by step, validation epoch means.
    plots: HashMap<MetricId, Plot>,
    /// The values of the latest training batch, until its progress (its step) arrives.
    pending: Vec<(MetricId, f64)>,
    /// The plotted metric, as an index into [`View::plots`].
    selected: usize,
    stop_reason: Option<String>,
}

/// The plotted history of one numeric metric.
#[derive(Debug)]
struct Plot {
    train: History,
    valid: History,
}

impl Default for Plot {
    fn default() -> Self {
        Self {
            train: History::new(2048),
            valid: History::new(512),
        }
    }
}

/// Rows of the metric table and tabs of the plot, in this order when present.
const ORDER: [&str; 8] = crate::metrics::STAGE_METRICS;

impl DashboardState {
    /// The state of a dashboard for `stage`.
    pub fn new(stage: StageInfo) -> Self {
        Self {
            stage,
            definitions: Vec::new(),
            train: Split::default(),
            valid: Split::default(),
            phase: Phase::Starting,
            epoch: (0, 0, 0, 0),
            micro_batches: 0,
            first: None,
            plots: HashMap::new(),
            pending: Vec::new(),
            selected: 0,
            stop_reason: None,
        }
    }

    /// Registers a metric (shown in registration order).
    pub fn register(&mut self, definition: MetricDefinition) {
        if !self
            .definitions
            .iter()
            .any(|d| d.metric_id == definition.metric_id)
        {
            self.definitions.push(definition);
        }
    }

    /// A training metric value.
    pub fn update_train(&mut self, state: MetricState) {
        if let MetricState::Numeric(entry, numeric) = &state {
            self.pending
                .push((entry.metric_id.clone(), numeric.current()));
        }
        self.train.update(state);
    }

    /// Plots the next (`+1`) or previous (`-1`) metric, wrapping around.
    pub fn select_plot(&mut self, offset: isize) {
        let n = self.plotted().len().max(1) as isize;
        self.selected = (self.selected as isize + offset).rem_euclid(n) as usize;
    }

    /// Definitions in display order: known metrics in a fixed order, then the others as
    /// registered.
    fn ordered(&self) -> Vec<&MetricDefinition> {
        let rank = |d: &&MetricDefinition| {
            ORDER
                .iter()
                .position(|name| *name == d.name)
                .unwrap_or(ORDER.len())
        };
        let mut definitions: Vec<&MetricDefinition> = self.definitions.iter().collect();
        definitions.sort_by_key(rank);
        definitions
    }

    /// The metrics with a history, in display order.
    fn plotted(&self) -> Vec<&MetricDefinition> {
        self.ordered()
            .into_iter()
            .filter(|d| self.plots.contains_key(&d.metric_id))
            .collect()
    }

    /// A validation metric value.
    pub fn update_valid(&mut self, state: MetricState) {
        self.valid.update(state);
    }

    /// Progress of a training batch (after its metric values).
    pub fn progress_train(&mut self, item: &TrainingProgress, now: Instant) {
        let iteration = item.iteration.unwrap_or(0);
        let per_epoch = item.progress.as_ref().map_or(0, |p| p.items_total);
        let epoch = item.global_progress.items_processed;
        self.epoch = (
            epoch,
            item.global_progress.items_total,
            iteration,
            per_epoch,
        );
        self.micro_batches = epoch.saturating_sub(1) * per_epoch + iteration;
        if self.first.is_none() {
            self.first = Some((now, self.micro_batches.saturating_sub(1)));
        }
        let step = self.micro_batches as f64 / self.stage.accumulation as f64;
        for (id, value) in std::mem::take(&mut self.pending) {
            self.plots.entry(id).or_default().train.push(step, value);
        }
        if self.phase != Phase::Stopping {
            self.phase = Phase::Training;
        }
        if item
            .progress
            .as_ref()
            .is_some_and(|p| p.items_processed >= p.items_total)
        {
            self.train.epoch_complete = true;
        }
    }

    /// Progress of a validation batch (after its metric values).
    pub fn progress_valid(&mut self, item: &TrainingProgress) {
        if self.phase != Phase::Stopping {
            self.phase = Phase::Validating;
        }
        let complete = item
            .progress
            .as_ref()
            .is_none_or(|p| p.items_processed >= p.items_total);
        if complete {
            let step = self.micro_batches as f64 / self.stage.accumulation as f64;
            for (id, value) in &self.valid.values {
                if let Some(mean) = value.window.mean() {
                    self.plots
                        .entry(id.clone())
                        .or_default()
                        .valid
                        .push(step, mean);
                }
            }
            self.valid.epoch_complete = true;
        }
    }

    /// The user asked to stop.
    pub fn stopping(&mut self, reason: &str) {
        self.phase = Phase::Stopping;
        self.stop_reason = Some(reason.to_string());
    }

    /// Whether a stop was requested.
    pub fn is_stopping(&self) -> bool {
        self.stop_reason.is_some()
    }

    /// Training ended.
    pub fn done(&mut self) {
        if self.phase != Phase::Stopping {
            self.phase = Phase::Done;
        }
    }

    /// Optimizer steps completed.
    pub fn step(&self) -> usize {
        self.micro_batches / self.stage.accumulation.max(1)
    }

    /// Steps per second over this session, and the time left at that rate.
    fn rate(&self, now: Instant) -> Option<(f64, Duration)> {
        let (start, first_micro) = self.first?;
        let elapsed = now.duration_since(start).as_secs_f64();
        let done = self.micro_batches.saturating_sub(first_micro) as f64;
        if elapsed <= 0.0 || done <= 0.0 {
            return None;
        }
        let steps_per_second = done / self.stage.accumulation.max(1) as f64 / elapsed;
        let left = self.stage.total_steps.saturating_sub(self.step()) as f64;
        Some((
            steps_per_second,
            Duration::from_secs_f64(left / steps_per_second),
        ))
    }

    /// A snapshot for drawing.
    pub fn view(&self, now: Instant) -> View {
        let rows = self
            .ordered()
            .into_iter()
            .filter_map(|d| {
                let train = self.train.values.get(&d.metric_id);
                let valid = self.valid.values.get(&d.metric_id);
                if train.is_none() && valid.is_none() {
                    return None;
                }
                let unit = unit(d);
                let show = |v: Option<f64>| v.map(|v| with_unit(&format_value(v), unit.as_deref()));
                let text = |v: &Value, number: Option<f64>| v.text.clone().or_else(|| show(number));
                Some(MetricRow {
                    name: d.name.clone(),
                    batch: train.and_then(|v| text(v, v.window.latest())),
                    epoch: train.and_then(|v| text(v, v.window.mean())),
                    valid: valid.and_then(|v| text(v, v.window.mean())),
                })
            })
            .collect();
        let plotted = self.plotted();
        let selected = self.selected.min(plotted.len().saturating_sub(1));
        let plot = plotted.get(selected).map(|d| {
            let plot = &self.plots[&d.metric_id];
            PlotView {
                name: d.name.clone(),
                unit: unit(d),
                train: plot.train.points().to_vec(),
                valid: plot.valid.points().to_vec(),
            }
        });
        let (epoch, epochs, iteration, per_epoch) = self.epoch;
        let rate = self.rate(now);
        View {
            stage: self.stage.clone(),
            phase: self.phase,
            step: self.step(),
            epoch,
            epochs,
            iteration,
            per_epoch,
            elapsed: self.first.map(|(start, _)| now.duration_since(start)),
            steps_per_second: rate.map(|r| r.0),
            eta: rate.map(|r| r.1),
            rows,
            plots: plotted.iter().map(|d| d.name.clone()).collect(),
            selected,
            plot,
            stop_reason: self.stop_reason.clone(),
        }
    }
}

/// A numeric metric's unit.
fn unit(d: &MetricDefinition) -> Option<String> {
    match &d.attributes {
        MetricAttributes::Numeric(a) => a.unit.clone(),
        _ => None,
    }
}

fn with_unit(value: &str, unit: Option<&str>) -> String {
    match unit {
        Some("%") => format!("{value}%"),
        Some(unit) => format!("{value} {unit}"),
        None => value.to_string(),
    }
}

/// One metric row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    /// Metric name.
    pub name: String,
    /// Latest training batch.
    pub batch: Option<String>,
    /// Training epoch mean so far.
    pub epoch: Option<String>,
    /// Latest validation epoch (or the one in progress).
    pub valid: Option<String>,
}

/// A snapshot of the state, drawn without holding the state's lock.
#[derive(Debug, Clone)]
pub struct View {
    /// The stage.
    pub stage: StageInfo,
    /// What it is doing.
    pub phase: Phase,
    /// Optimizer steps completed.
    pub step: usize,
    /// Current epoch (1-based; 0 before the first batch).
    pub epoch: usize,
    /// Epochs of the stage.
    pub epochs: usize,
    /// Micro-batch in the epoch.
    pub iteration: usize,
    /// Micro-batches per epoch.
    pub per_epoch: usize,
    /// Time since this session's first batch.
    pub elapsed: Option<Duration>,
    /// Optimizer steps per second in this session.
    pub steps_per_second: Option<f64>,
    /// Time left at that rate.
    pub eta: Option<Duration>,
    /// Metric table.
    pub rows: Vec<MetricRow>,
    /// The metrics with a history (the plot's tabs), in display order.
    pub plots: Vec<String>,
    /// Which of them is plotted.
    pub selected: usize,
    /// The plotted metric's history (none before the first batch).
    pub plot: Option<PlotView>,
    /// Why the stage is stopping, once the user asked.
    pub stop_reason: Option<String>,
}

/// The history of the plotted metric.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotView {
    /// Its name.
    pub name: String,
    /// Its unit.
    pub unit: Option<String>,
    /// Training batches: (step, value).
    pub train: Vec<(f64, f64)>,
    /// Validation epoch means: (step, value).
    pub valid: Vec<(f64, f64)>,
}
