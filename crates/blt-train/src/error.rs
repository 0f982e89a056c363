//! Errors of the training crate.

use std::path::PathBuf;

/// Everything that can stop a run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A config key is invalid (the message names it).
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The model crate failed.
    #[error(transparent)]
    Model(#[from] blt_model::ModelError),
    /// The data crate failed.
    #[error(transparent)]
    Data(#[from] blt_data::DataError),
    /// The loss became NaN or infinite.
    #[error(
        "the {stage} loss became {value} at step {step}; the last good checkpoint is kept in {checkpoints}"
    )]
    NonFiniteLoss {
        /// Which model was training.
        stage: &'static str,
        /// The optimizer step.
        step: usize,
        /// The loss value.
        value: f64,
        /// Where the checkpoints are.
        checkpoints: PathBuf,
    },
    /// A checkpoint could not be written (a full disk, a file size limit, a permission); the
    /// stage stopped there, and the newest complete checkpoint before it is kept.
    #[error(
        "the {stage} stage could not write a checkpoint in {checkpoints} ({reason}); make room \
         and continue with --resume"
    )]
    Checkpoint {
        /// Which model was training.
        stage: &'static str,
        /// Where the checkpoints are.
        checkpoints: PathBuf,
        /// Burn's checkpointer error.
        reason: String,
    },
    /// Patching or calibration failed.
    #[error(transparent)]
    Patching(#[from] blt_patching::PatchingError),
    /// `--resume` found nothing to resume.
    #[error("nothing to resume in {0}: no checkpoint found")]
    NothingToResume(PathBuf),
    /// The run directory is unusable.
    #[error("run directory {path}: {reason}")]
    RunDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

impl From<crate::schedule::ScheduleError> for TrainError {
    fn from(e: crate::schedule::ScheduleError) -> Self {
        Self::InvalidConfig(format!("training: {e}"))
    }
}
