//! Training for the Byte Latent Transformer: Burn Learner integration, metrics, schedules,
//! clipping, run directories.
//!
//! The crate is generic over `B: Backend` (training runs on `Autodiff<B>`). It must never
//! enable a Burn backend feature and never depend on `blt-cli`; the binaries choose the
//! backend.
//!
//! # Registering the metrics
//!
//! The train and inference steps return an [`LmOutput`]; every metric in [`metrics`] takes its
//! [`LmStats`]. Register them on `burn::train::SupervisedTraining` with
//! `metric_train_numeric(..)` and `metric_valid_numeric(..)` (or `metrics((..))` for both
//! splits at once), for example `.metric_train_numeric(LossMetric::new())
//! .metric_valid_numeric(LossMetric::new())`. Add Burn's
//! `burn::train::metric::LearningRateMetric` with `metric_train_numeric` only (the
//! validation split has no learning rate). On a terminal, pass `.renderer(TuiDashboard::new(..))`
//! (our dashboard: Burn 0.21's own TUI keeps a CPU core busy, see [`dashboard`]); without
//! one, `.renderer(PlainRenderer::new(..))` (see [`Dashboard::detect`]).

mod batches;
pub mod checkpoint;
pub mod clip;
pub mod config;
pub mod dashboard;
mod error;
pub mod loader;
pub mod logs;
pub mod metrics;
pub mod optim;
pub mod renderer;
pub mod resolve;
mod run;
pub mod schedule;
pub mod stage;
pub mod step;
#[cfg(test)]
mod test_events;

pub use batches::byte_lm_batch;
pub use clip::{clip_grad_norm, grad_norm};
pub use config::{DataConfig, RunConfig, TrainingConfig};
pub use dashboard::{StageInfo, TuiDashboard};
pub use error::{Result, TrainError};
pub use loader::{EpochLoader, MakeBatch};
pub use metrics::{
    AccuracyMetric, BitsPerByteMetric, BytesPerSecondMetric, ConfidenceMetric, LmOutput, LmStats,
    LossMetric, PatchLengthMetric, PerplexityMetric,
};
pub use optim::FusedAdamW;
pub use renderer::{Dashboard, PlainRenderer, stdout_is_terminal};
pub use resolve::{RESUMABLE_FIELDS, RunOverrides, resume_config};
pub use run::{
    ENTROPY_CACHE_FILE, RUN_CONFIG_FILE, RunSummary, SUMMARY_FILE, Stage, StopAfter, TrainOptions,
    stage_summaries, train,
};
pub use schedule::{ScheduleError, WarmupCosine, WarmupCosineConfig};
pub use step::{BltTrainer, ByteLmBatch, EntropyTrainer, LossGuard, StepBatch};
