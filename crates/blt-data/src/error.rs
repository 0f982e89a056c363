//! Errors of the data crate. Every variant that concerns a file names it (and the line, for
//! JSONL), and keeps the underlying error as its source.

use std::path::PathBuf;

/// Everything that can go wrong when reading a corpus, building a dataset, batching rows or
/// computing and caching entropies.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A data source string could not be parsed.
    #[error("invalid data source `{source_text}`: {reason}")]
    InvalidSource {
        /// The string as given.
        source_text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file or directory does not exist.
    #[error("{path}: no such file or directory")]
    NotFound {
        /// The missing path.
        path: PathBuf,
    },
    /// Reading (or writing) a file or directory failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("reading", "listing directory", "writing", …).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A directory (or glob) matched no file.
    #[error("no file under {root} matches `{pattern}`")]
    NoFiles {
        /// The directory searched.
        root: PathBuf,
        /// The glob pattern, relative to `root`.
        pattern: String,
    },
    /// A JSONL line is not valid JSON (or not valid UTF-8).
    #[error("{path}:{line}: malformed JSON line: {source}")]
    JsonLine {
        /// The JSONL file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// A JSONL line is valid JSON but has no string field of the configured name.
    #[error("{path}:{line}: field `{field}` {problem}")]
    JsonField {
        /// The JSONL file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The configured text field.
        field: String,
        /// What is wrong ("is missing", "is a number, not a string", …).
        problem: String,
    },
    /// The embedded corpus does not match its recorded checksum.
    #[error("built-in corpus `{name}` is corrupt: sha256 {found}, expected {expected}")]
    Checksum {
        /// The corpus name.
        name: String,
        /// The recorded sha256 (hex).
        expected: String,
        /// The sha256 of what was read (hex).
        found: String,
    },
    /// A `hub:` source was used in a build without the `hub` feature.
    #[error(
        "hub dataset `{name}` needs a build with the `hub` feature \
         (`cargo xtask train --features hub`, or `cargo build -p blt-cli --features hub`); \
         or use a local .txt/.jsonl file or directory instead"
    )]
    HubDisabled {
        /// The hub dataset.
        name: String,
    },
    /// A hub dataset could not be fetched or read.
    #[error("hub dataset `{name}`: {message}")]
    Hub {
        /// The hub dataset.
        name: String,
        /// One line: what is missing and how to use local files instead.
        message: String,
    },
    /// A configuration value is out of range; the message names the field and the range.
    #[error("invalid data config: {0}")]
    InvalidConfig(String),
    /// No document is left after filtering.
    #[error(
        "no document left: {initial} read, {empty} empty or whitespace-only, \
         {too_short} shorter than min_length ({min_length} bytes)"
    )]
    NoDocuments {
        /// Documents read.
        initial: usize,
        /// Empty or whitespace-only documents.
        empty: usize,
        /// Documents shorter than `min_length`.
        too_short: usize,
        /// The `min_length` in force.
        min_length: usize,
    },
    /// A row cannot be batched: it is empty, does not start with BOS, or is too long.
    #[error("row {row}: {reason}")]
    InvalidRow {
        /// The row id ([`Row::index`](crate::Row::index)).
        row: usize,
        /// What is wrong.
        reason: String,
    },
    /// Entropy patching needs entropies for a row that has none.
    #[error("no cached entropies for row {row} (entropy patching needs the entropy cache)")]
    MissingEntropies {
        /// The row id.
        row: usize,
    },
    /// Cached entropies do not fit their row.
    #[error("row {row}: {found} cached entropies, expected {expected} (one per input position)")]
    EntropyLength {
        /// The row id.
        row: usize,
        /// Input positions of the row.
        expected: usize,
        /// Entropies found.
        found: usize,
    },
    /// Computing entropies was stopped by its caller's stop check (Ctrl-C, say).
    #[error("stopped while computing entropies ({done} of {total} rows done)")]
    Interrupted {
        /// Rows finished when the stop was seen.
        done: usize,
        /// Rows asked for.
        total: usize,
    },
    /// An entropy cache file is corrupt, truncated, or of another format version.
    #[error("entropy cache {path} is unusable: {reason}")]
    CorruptCache {
        /// The cache file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An entropy cache file was written for other rows, another entropy model or other
    /// context resets.
    #[error("entropy cache {path} is stale: {reason}")]
    StaleCache {
        /// The cache file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// Reading values back from a tensor failed.
    #[error("reading tensor data: {0}")]
    TensorData(String),
    /// The model crate rejected a config or an input.
    #[error(transparent)]
    Model(#[from] blt_model::ModelError),
}

/// Result alias of this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

impl DataError {
    /// An [`DataError::Io`] error, or [`DataError::NotFound`] when the path does not exist.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            Self::NotFound { path }
        } else {
            Self::Io {
                action,
                path,
                source,
            }
        }
    }
}
