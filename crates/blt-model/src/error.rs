//! Errors of the model crate.

use std::path::PathBuf;

/// Everything that can go wrong when configuring, building, loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A config field has an invalid value; the message names the field and the allowed range.
    #[error("invalid model config: {0}")]
    InvalidConfig(String),
    /// The TOML text could not be parsed.
    #[error("cannot parse model config {path}: {message}")]
    ParseConfig {
        /// The file (or `<string>`).
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("reading", "writing").
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A weights file is missing, corrupt, or does not match the config.
    #[error("cannot load weights {path}: {message}")]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The model directory was written by an incompatible version.
    #[error(
        "model directory {path} has format version {found}, this build reads version {expected}"
    )]
    IncompatibleVersion {
        /// The model directory.
        path: PathBuf,
        /// The version found.
        found: u32,
        /// The version this build reads.
        expected: u32,
    },
    /// An input does not fit the model (too long, empty, wrong shape).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The model produced logits that cannot be sampled from (NaN, +inf, or all -inf).
    #[error("the model produced non-finite logits ({0}); its weights are corrupt or diverged")]
    NonFiniteLogits(String),
    /// Patching the input failed.
    #[error(transparent)]
    Patching(#[from] blt_patching::PatchingError),
}

/// Result alias of this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
