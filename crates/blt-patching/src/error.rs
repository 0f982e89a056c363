//! The one error type of this crate.
//!
//! Every fallible entry point returns [`PatchingError`]; user input never panics.

use thiserror::Error;

/// Everything that can go wrong while configuring or running a patcher, the n-gram hasher or
/// threshold calibration.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PatchingError {
    /// The entropy scheme was asked to patch without entropies.
    #[error("the entropy scheme needs one entropy per id, but no entropies were given")]
    MissingEntropies,

    /// The entropies do not line up with the ids (one entropy per input position is needed).
    #[error("entropies length ({entropies}) must equal ids length ({ids})")]
    EntropyLengthMismatch {
        /// Number of ids.
        ids: usize,
        /// Number of entropies given.
        entropies: usize,
    },

    /// Explicit patch lengths that do not describe a patching.
    #[error("invalid patch lengths: {0}")]
    InvalidPatchLengths(String),

    /// `fixed` patching with a stride of 0.
    #[error("fixed patching stride ({stride}) must be at least 1")]
    InvalidStride {
        /// The stride given.
        stride: usize,
    },

    /// An entropy threshold that is NaN or infinite.
    #[error("entropy threshold ({threshold}) must be finite")]
    InvalidThreshold {
        /// The threshold given.
        threshold: f32,
    },

    /// `min_patch_size` of 0.
    #[error("min_patch_size ({min}) must be at least 1")]
    InvalidMinPatchSize {
        /// The minimum given.
        min: usize,
    },

    /// `max_patch_size` smaller than `min_patch_size`.
    #[error("max_patch_size ({max}) must be at least min_patch_size ({min})")]
    MaxBelowMin {
        /// The minimum patch size.
        min: usize,
        /// The maximum patch size.
        max: usize,
    },

    /// An n-gram hash table size outside `1..=2^32` (ids are returned as `u32`).
    #[error("ngram table_size ({table_size}) must be in 1..=4294967296")]
    InvalidTableSize {
        /// The table size given.
        table_size: usize,
    },

    /// An n-gram size list that is empty or holds a size outside `1..=MAX_NGRAM_SIZE` (64).
    #[error("ngram sizes ({sizes:?}) must be non-empty, each size in 1..=64")]
    InvalidNgramSizes {
        /// The sizes given.
        sizes: Vec<usize>,
    },

    /// An output buffer of the wrong length was handed to a `*_into` method.
    #[error("output buffer length ({got}) must be {expected}")]
    OutputLength {
        /// The length required.
        expected: usize,
        /// The length given.
        got: usize,
    },

    /// Calibration was given no input position at all.
    #[error("calibration needs at least one row with at least one entropy")]
    EmptyCalibrationData,

    /// Calibration was given an entropy that is NaN or infinite.
    #[error("entropy at row {row}, position {position} is not finite ({value})")]
    NonFiniteEntropy {
        /// Row (document) index.
        row: usize,
        /// Position inside the row.
        position: usize,
        /// The offending value.
        value: f32,
    },

    /// A calibration target that is not a finite number.
    #[error("target mean patch length ({target}) must be a finite number")]
    InvalidTarget {
        /// The target given.
        target: f64,
    },

    /// A calibration target outside what any threshold can reach on the given data.
    #[error(
        "target mean patch length ({target}) is unreachable on this data: \
         any threshold gives a mean patch length in [{min_reachable}, {max_reachable}]"
    )]
    UnreachableTarget {
        /// The target given.
        target: f64,
        /// The mean patch length with every entropy above the threshold.
        min_reachable: f64,
        /// The mean patch length with every entropy at or below the threshold.
        max_reachable: f64,
    },
}
