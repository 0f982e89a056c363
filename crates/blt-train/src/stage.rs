//! One training stage on Burn's Learner (`SupervisedTraining`): AdamW, warmup + cosine,
//! gradient accumulation, global-norm clipping (in the step), step-based epochs with
//! validation, checkpoints (full precision: model, optimizer, scheduler), early stopping on the
//! validation loss, and the TUI dashboard or plain log lines.

use std::{
    fmt::Display,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use burn::{
    data::dataloader::DataLoader,
    module::AutodiffModule,
    record::Recorder,
    tensor::backend::AutodiffBackend,
    train::{
        ExecutionStrategy, InferenceStep, Interrupter, Learner, LearningComponentsTypes,
        MetricEarlyStoppingStrategy, MultiDeviceOptim, StoppingCondition, SupervisedTraining,
        TrainStep, TrainingStrategy,
        checkpoint::{
            CheckpointingAction, CheckpointingStrategy, ComposedCheckpointingStrategy,
            KeepLastNCheckpoints, MetricCheckpointingStrategy,
        },
        metric::{
            LearningRateMetric,
            store::{Aggregate, Direction, EventStoreClient, Split},
        },
    },
};
use serde::Serialize;

use crate::{
    config::TrainingConfig,
    dashboard::{StageInfo, TuiDashboard},
    error::{Result, TrainError},
    logs::{self, EpochLogs},
    metrics::{
        AccuracyMetric, BitsPerByteMetric, BytesPerSecondMetric, ConfidenceMetric, LmOutput,
        LossMetric, PatchLengthMetric, PerplexityMetric,
    },
    optim::FusedAdamW,
    renderer::{Dashboard, PlainRenderer},
    schedule::WarmupCosineConfig,
    step::StepWatch,
};

pub use crate::checkpoint::{CheckpointRecorder, last_checkpoint};

/// Metrics of one epoch, read back from Burn's event store.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct EpochMetrics {
    /// Epoch number (1-based).
    pub epoch: usize,
    /// Training loss, nats per byte.
    pub train_loss: Option<f64>,
    /// Validation loss, nats per byte.
    pub valid_loss: Option<f64>,
    /// Validation bits per byte.
    pub valid_bits_per_byte: Option<f64>,
    /// Validation accuracy, %.
    pub valid_accuracy: Option<f64>,
    /// Validation mean patch length.
    pub valid_patch_length: Option<f64>,
    /// Training throughput, bytes per second.
    pub train_bytes_per_second: Option<f64>,
}

/// Saves checkpoints every `every` epochs and at every new best validation loss (delegating
/// which to keep to Burn's strategies: the last two and the best by validation loss), and
/// records every epoch's metrics — on a resumed run, those of the earlier sessions too (read
/// back from the metric logs).
struct RecordingStrategy {
    inner: ComposedCheckpointingStrategy,
    every: usize,
    epochs: Arc<Mutex<Vec<EpochMetrics>>>,
}

impl RecordingStrategy {
    /// Keeps the last two checkpoints and the best one by validation loss, saves every
    /// `every` epochs, and records each epoch's metrics into `epochs`.
    fn new(every: usize, epochs: Arc<Mutex<Vec<EpochMetrics>>>) -> Self {
        let inner = ComposedCheckpointingStrategy::builder()
            .add(KeepLastNCheckpoints::new(2))
            .add(MetricCheckpointingStrategy::new(
                &LossMetric::new(),
                Aggregate::Mean,
                Direction::Lowest,
                Split::Valid,
            ))
            .build();
        Self {
            inner,
            every,
            epochs,
        }
    }
}

impl EpochMetrics {
    /// Epoch `epoch`'s metrics, each read through `get(metric name, split)` (a mean over the
    /// epoch).
    fn read(epoch: usize, mut get: impl FnMut(&str, Split) -> Option<f64>) -> Self {
        Self {
            epoch,
            train_loss: get(LossMetric::NAME, Split::Train),
            valid_loss: get(LossMetric::NAME, Split::Valid),
            valid_bits_per_byte: get(BitsPerByteMetric::NAME, Split::Valid),
            valid_accuracy: get(AccuracyMetric::NAME, Split::Valid),
            valid_patch_length: get(PatchLengthMetric::NAME, Split::Valid),
            train_bytes_per_second: get(BytesPerSecondMetric::NAME, Split::Train),
        }
    }
}

impl RecordingStrategy {
    fn record(epoch: usize, store: &EventStoreClient) -> EpochMetrics {
        EpochMetrics::read(epoch, |name, split| {
            store.find_metric(name, epoch, Aggregate::Mean, &split)
        })
    }
}

/// The metrics of epochs `1..=last` of an earlier session, read back from the stage's metric
/// logs (a resumed run that has nothing left to train still reports its history).
fn earlier_epochs(dir: &std::path::Path, last: usize) -> Vec<EpochMetrics> {
    let mut logger = burn::train::logger::FileMetricLogger::new(dir);
    (1..=last)
        .map(|epoch| {
            EpochMetrics::read(epoch, |name, split| {
                logs::epoch_mean(&mut logger, name, epoch, &split)
            })
        })
        .collect()
}

/// The epoch with the lowest validation loss (the earliest of equals).
fn best_epoch<'a>(epochs: impl IntoIterator<Item = &'a EpochMetrics>) -> Option<usize> {
    epochs
        .into_iter()
        .filter_map(|e| Some((e.epoch, e.valid_loss?)))
        .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
        .map(|(epoch, _)| epoch)
}

impl CheckpointingStrategy for RecordingStrategy {
    fn checkpointing(
        &mut self,
        epoch: usize,
        store: &EventStoreClient,
    ) -> Vec<CheckpointingAction> {
        let best = {
            let mut epochs = self.epochs.lock().expect("epoch log lock");
            let recorded = epochs.last().map_or(0, |e| e.epoch);
            epochs.extend((recorded + 1..=epoch).map(|e| Self::record(e, store)));
            best_epoch(epochs.iter())
        };
        let actions = self.inner.checkpointing(epoch, store);
        if epoch.is_multiple_of(self.every) || best == Some(epoch) {
            actions
        } else {
            actions
                .into_iter()
                .filter(|a| !matches!(a, CheckpointingAction::Save))
                .collect()
        }
    }
}

/// Settings of one stage.
pub struct StageSettings<'a> {
    /// `entropy` or `blt`.
    pub name: &'static str,
    /// The stage's position in the run and the run's number of stages (for the dashboard).
    pub position: (usize, usize),
    /// Directory of its checkpoints and metric logs.
    pub dir: PathBuf,
    /// The recipe.
    pub training: &'a TrainingConfig,
    /// Optimizer steps of this stage.
    pub steps: usize,
    /// Resume from this completed epoch.
    pub resume_epoch: Option<usize>,
    /// Dashboard kind.
    pub dashboard: Dashboard,
    /// Stops the stage (Ctrl-C, `q`, or a non-finite loss).
    pub interrupter: Interrupter,
    /// The stage's step watch (shares `interrupter`).
    pub watch: StepWatch,
}

/// What a stage produced.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageOutcome {
    /// Per-epoch metrics.
    pub epochs: Vec<EpochMetrics>,
    /// Epoch with the lowest validation loss.
    pub best_epoch: Option<usize>,
    /// Optimizer steps completed.
    pub steps: usize,
    /// Whether it was stopped early by the user.
    pub interrupted: bool,
}

/// Runs one stage and returns the model of its best validation epoch.
#[allow(clippy::too_many_arguments)]
pub fn run_stage<B, M, IV>(
    settings: StageSettings<'_>,
    model: M,
    train: Arc<dyn DataLoader<B, <M as TrainStep>::Input>>,
    valid: Arc<dyn DataLoader<B::InnerBackend, IV>>,
    devices: &[B::Device],
) -> Result<(M::InnerModule, StageOutcome)>
where
    B: AutodiffBackend,
    M: TrainStep<Output = LmOutput> + AutodiffModule<B> + Display + 'static,
    M::InnerModule: InferenceStep<Input = IV, Output = LmOutput>,
    IV: Send + 'static,
{
    let t = settings.training;
    let epochs = t.epochs(settings.steps);
    // With several devices each round runs one micro-batch per device, so Burn accumulates
    // (and steps the schedule) once per round: `G / N` rounds make a step.
    let rounds = t.gradient_accumulation_steps / devices.len();
    let template = model.clone();
    let optim = FusedAdamW::new(
        t.beta_1 as f32,
        t.beta_2 as f32,
        t.epsilon as f32,
        t.weight_decay as f32,
    )
    .init::<B, M>();
    let schedule = WarmupCosineConfig::new(
        t.learning_rate,
        t.learning_rate * t.min_lr_ratio,
        t.warmup_steps.min(settings.steps),
        settings.steps,
    )
    .with_accumulation(rounds)
    .init()?;

    let epoch_log = Arc::new(Mutex::new(earlier_epochs(
        &settings.dir,
        settings.resume_epoch.unwrap_or(0),
    )));
    let strategy = RecordingStrategy::new(t.checkpoint_every, epoch_log.clone());
    let mut training = SupervisedTraining::new(&settings.dir, train, valid)
        // Both splits (Burn's tuples stop at six metrics); the learning rate only in training.
        .metrics((
            LossMetric::new(),
            BitsPerByteMetric::new(),
            AccuracyMetric::new(),
            PerplexityMetric::new(),
            ConfidenceMetric::new(),
            PatchLengthMetric::new(),
        ))
        .metrics((BytesPerSecondMetric::new(),))
        .metric_train_numeric(LearningRateMetric::new())
        .with_metric_logger(EpochLogs::new(
            &settings.dir,
            settings.resume_epoch.unwrap_or(0) + 1,
        ))
        .with_file_checkpointer(CheckpointRecorder::new())
        .with_checkpointing_strategy(strategy)
        .with_interrupter(settings.interrupter.clone())
        .with_application_logger(None)
        .num_epochs(epochs);
    if rounds > 1 {
        training = training.grads_accumulation(rounds);
    }
    if devices.len() > 1 {
        // The optimizer on the first device, through our `optimize` (clipping and the
        // non-finite guard); Burn's sharded variant bypasses it.
        training = training.with_training_strategy(TrainingStrategy::Default(
            ExecutionStrategy::multi(devices.to_vec(), MultiDeviceOptim::OptimMainDevice),
        ));
    }
    if t.patience > 0 {
        training = training.early_stopping(MetricEarlyStoppingStrategy::new(
            &LossMetric::new(),
            Aggregate::Mean,
            Direction::Lowest,
            Split::Valid,
            StoppingCondition::NoImprovementSince {
                n_epochs: t.patience,
            },
        ));
    }
    if let Some(epoch) = settings.resume_epoch {
        crate::checkpoint::remove_partial_files(&settings.dir);
        training = training.checkpoint(epoch);
    }
    tracing::info!(
        stage = settings.name,
        epochs,
        steps = settings.steps,
        "training"
    );
    let on_screen = matches!(settings.dashboard, Dashboard::Tui | Dashboard::BurnTui)
        .then(crate::dashboard::OnScreen::new);
    let training = with_renderer(training, &settings);
    let result = training.launch(Learner::new(model, optim, schedule));
    drop(result.renderer);
    drop(on_screen);
    let epochs = epoch_log.lock().expect("epoch log lock").clone();
    finish_stage(&settings, template, result.model, epochs, &devices[0])
}

/// Puts the stage's dashboard on `training`: ours, plain log lines, nothing, or Burn's own.
fn with_renderer<LC: LearningComponentsTypes>(
    training: SupervisedTraining<LC>,
    settings: &StageSettings<'_>,
) -> SupervisedTraining<LC> {
    let log_every = settings.training.log_every;
    let plain = |out: Box<dyn std::io::Write + Send + Sync>| PlainRenderer::new(out, log_every);
    match settings.dashboard {
        Dashboard::Plain => training.renderer(plain(Box::new(std::io::stdout()))),
        Dashboard::Quiet => training.renderer(plain(Box::new(std::io::sink()))),
        Dashboard::Tui => {
            let stage = StageInfo {
                name: settings.name.to_string(),
                index: settings.position.0,
                count: settings.position.1,
                total_steps: settings.steps,
                accumulation: settings.training.gradient_accumulation_steps,
            };
            match TuiDashboard::new(stage, settings.interrupter.clone()) {
                Ok(dashboard) => training.renderer(dashboard),
                Err(e) => {
                    tracing::warn!("cannot start the dashboard ({e}); printing log lines");
                    training.renderer(plain(Box::new(std::io::stdout())))
                }
            }
        }
        // Burn's default renderer: its TUI on a terminal.
        Dashboard::BurnTui => training,
    }
}

/// Whether an interrupter message is one of Burn's checkpointer errors (`CheckpointerError`'s
/// messages), which its asynchronous checkpointer reports by stopping the Learner.
fn is_checkpointer_error(message: &str) -> bool {
    ["I/O Error: ", "Recorder error: ", "Unknown error: "]
        .iter()
        .any(|prefix| message.starts_with(prefix))
}

/// After a stage's Learner returns: fails on a non-finite loss, else picks the best validation
/// epoch among those with a checkpoint and loads its model into `template` (the last model
/// when no epoch was validated).
fn finish_stage<B, M>(
    settings: &StageSettings<'_>,
    template: M,
    last: M::InnerModule,
    epochs_log: Vec<EpochMetrics>,
    device: &B::Device,
) -> Result<(M::InnerModule, StageOutcome)>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
{
    if let Some((step, value)) = settings.watch.failure() {
        return Err(TrainError::NonFiniteLoss {
            stage: settings.name,
            step,
            value,
            checkpoints: settings.dir.join("checkpoint"),
        });
    }
    // Burn's checkpointer stops the Learner through the interrupter when a save fails, with
    // its error as the message: that is a failure, not a user's stop.
    if let Some(reason) = settings
        .interrupter
        .get_message()
        .filter(|m| is_checkpointer_error(m))
    {
        return Err(TrainError::Checkpoint {
            stage: settings.name,
            checkpoints: settings.dir.join("checkpoint"),
            reason,
        });
    }
    let checkpoints = settings.dir.join("checkpoint");
    let best_epoch = best_epoch(
        epochs_log
            .iter()
            .filter(|e| checkpoints.join(format!("model-{}.mpk", e.epoch)).is_file()),
    );
    let interrupted = settings.interrupter.should_stop();
    let best = match best_epoch {
        Some(epoch) => {
            let path = settings
                .dir
                .join("checkpoint")
                .join(format!("model-{epoch}"));
            let record = CheckpointRecorder::new()
                .load(path.clone(), device)
                .map_err(|e| TrainError::RunDir {
                    path: path.clone(),
                    reason: format!("cannot read the best checkpoint: {e}"),
                })?;
            template.load_record(record).valid()
        }
        None => last,
    };
    Ok((
        best,
        StageOutcome {
            epochs: epochs_log,
            best_epoch,
            steps: settings.watch.steps(),
            interrupted,
        },
    ))
}
