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
//!
//! # Example
//!
//! A whole run, entropy model then BLT, on a text file, into a run directory that
//! `blt-cli generate --model RUN_DIR` loads:
//!
//! ```
//! use blt_train::{Dashboard, RunConfig, TrainOptions, train};
//! use burn::backend::{Autodiff, NdArray};
//!
//! let dir = tempfile::tempdir()?;
//! let corpus = dir.path().join("corpus.txt");
//! std::fs::write(&corpus, "the quick brown fox jumps over the lazy dog. ".repeat(40))?;
//! let config = RunConfig::from_toml_str(&format!(
//!     r#"
//!     [model]
//!     hidden_size = 32
//!     intermediate_size = 64
//!     num_heads = 2
//!     global_layers = 1
//!     decoder_layers = 1
//!     global_hidden_size = 32
//!     global_intermediate_size = 64
//!     global_num_heads = 2
//!     ngram_vocab_size = 64
//!     window_size = 32
//!     max_position_embeddings = 64
//!     entropy_model_layers = 1
//!     entropy_context_size = 32
//!     entropy_hidden_size = 32
//!     entropy_num_heads = 2
//!     entropy_intermediate_size = 64
//!
//!     [training]
//!     max_sequence_length = 64
//!     batch_size = 4
//!     steps_per_epoch = 2
//!     max_steps = 2
//!     warmup_steps = 1
//!     entropy_steps = 2
//!     target_patch_size = 3.0
//!
//!     [data]
//!     source = "{}"
//!     "#,
//!     corpus.display()
//! ))?;
//! let options = TrainOptions { dashboard: Dashboard::Quiet, ..TrainOptions::default() };
//! let run = dir.path().join("run");
//! let summary = train::<Autodiff<NdArray>>(config, Default::default(), &run, options)?;
//! assert_eq!(summary.blt_stage.steps, 2);
//! assert!(blt_model::load_model::<NdArray>(&run, &Default::default())?.entropy_model.is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

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
pub use loader::{BatchPlace, EpochLoader, MakeBatch};
pub use metrics::{
    AccuracyMetric, BitsPerByteMetric, BytesPerSecondMetric, ConfidenceMetric, LmOutput, LmStats,
    LossMetric, PatchLengthMetric, PerplexityMetric,
};
pub use optim::FusedAdamW;
pub use renderer::{Dashboard, PlainRenderer, stdout_is_terminal};
pub use resolve::{RESUMABLE_FIELDS, RunOverrides, resume_config};
pub use run::{
    ENTROPY_CACHE_FILE, RUN_CONFIG_FILE, RunSummary, SUMMARY_FILE, Stage, StopAfter, TrainOptions,
    train, train_on,
};
pub use schedule::{ScheduleError, WarmupCosine, WarmupCosineConfig};
pub use step::{BltTrainStep, ByteLmBatch, EntropyTrainStep, StepBatch, StepWatch};
