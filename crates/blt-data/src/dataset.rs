//! [`ByteDataset`]: documents filtered and cut into model rows, with nothing lost.
//!
//! # Row format
//!
//! A document of `L` bytes becomes the id sequence `byte + 4 …, EOS` (`L + 1` ids). That
//! sequence is cut into consecutive chunks of at most `max_length − 1` ids, and every chunk is
//! prefixed with BOS, so a row holds at most `max_length` ids. The model reads
//! `row[..n − 1]` and predicts `row[1..]`: every byte of the document, and its EOS, is a target
//! of exactly one row. Long documents are split into windows, never truncated; a continuation
//! row begins with BOS followed by the next bytes (no overlap, so no byte is predicted twice).

use std::{ops::Range, sync::Arc};

use blt_patching::{BOS_ID, EOS_ID, byte_to_id};
use burn::data::dataset::Dataset;
use serde::{Deserialize, Serialize};

use crate::{
    error::{DataError, Result},
    source::DataSource,
    split::{DataSplit, split_documents},
};

/// How documents are filtered, windowed and split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatasetConfig {
    /// Documents shorter than this many bytes are dropped (after empty and whitespace-only ones).
    /// Default: 16.
    pub min_length: usize,
    /// Most ids per row, BOS included (the model reads `max_length − 1` positions), ≥ 2.
    /// Default: 512.
    pub max_length: usize,
    /// Share of documents held out for validation, in [0, 1). Default: 0.05.
    pub valid_fraction: f64,
    /// Seed of the train/validation split. Default: 42.
    pub seed: u64,
}

impl Default for DatasetConfig {
    fn default() -> Self {
        Self {
            min_length: 16,
            max_length: 512,
            valid_fraction: 0.05,
            seed: 42,
        }
    }
}

impl DatasetConfig {
    /// Largest accepted `max_length`.
    pub const MAX_ROW_LENGTH: usize = 1 << 20;

    /// Checks every field; the error names the field and its allowed range.
    pub fn validate(&self) -> Result<()> {
        if !(2..=Self::MAX_ROW_LENGTH).contains(&self.max_length) {
            return Err(DataError::InvalidConfig(format!(
                "max_length ({}) must be in 2..={}",
                self.max_length,
                Self::MAX_ROW_LENGTH
            )));
        }
        if !(self.valid_fraction.is_finite() && (0.0..1.0).contains(&self.valid_fraction)) {
            return Err(DataError::InvalidConfig(format!(
                "valid_fraction ({}) must be in [0, 1)",
                self.valid_fraction
            )));
        }
        Ok(())
    }
}

/// What filtering and windowing did to a corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DatasetStats {
    /// Documents read from the source.
    pub initial_documents: usize,
    /// Empty or whitespace-only (ASCII whitespace) documents removed.
    pub empty_removed: usize,
    /// Documents shorter than `min_length` removed.
    pub too_short_removed: usize,
    /// Documents kept.
    pub kept_documents: usize,
    /// Rows produced from the kept documents.
    pub rows: usize,
    /// Bytes of the kept documents (each a target of exactly one row).
    pub total_bytes: usize,
}

impl DatasetStats {
    /// Mean bytes per kept document.
    pub fn mean_document_bytes(&self) -> f64 {
        self.total_bytes as f64 / self.kept_documents.max(1) as f64
    }
}

/// One model row: BOS, then up to `max_length − 1` ids of one document; every byte and each
/// document's EOS is a target of exactly one row (see [`document_windows`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// Index of the kept document the row comes from.
    pub document: usize,
    /// Row id: its position in [`ByteDataset::rows`], stable for a given corpus and config.
    pub index: usize,
    /// Ids: BOS, then bytes + 4 (and EOS at the end of the document's last row).
    pub ids: Vec<u32>,
}

impl Row {
    /// What the model reads: `ids[..n − 1]`.
    pub fn input(&self) -> &[u32] {
        &self.ids[..self.ids.len().saturating_sub(1)]
    }

    /// What the model predicts: `ids[1..]` (aligned with [`input`](Self::input)).
    pub fn targets(&self) -> &[u32] {
        self.ids.get(1..).unwrap_or(&[])
    }
}

/// Cuts one document into rows of at most `max_length` ids (`max_length ≥ 2`): the document's
/// `bytes + 4` followed by EOS, in chunks of `max_length − 1`, each prefixed with BOS.
///
/// ```
/// use blt_data::document_windows;
/// // "abc" -> [a b c EOS] -> chunks of 2 -> [BOS a b], [BOS c EOS]
/// assert_eq!(document_windows(b"abc", 3), vec![vec![1, 101, 102], vec![1, 103, 2]]);
/// ```
pub fn document_windows(bytes: &[u8], max_length: usize) -> Vec<Vec<u32>> {
    assert!(max_length >= 2, "max_length must be at least 2");
    let ids: Vec<u32> = bytes
        .iter()
        .map(|&b| byte_to_id(b))
        .chain(std::iter::once(EOS_ID))
        .collect();
    ids.chunks(max_length - 1)
        .map(|chunk| {
            let mut row = Vec::with_capacity(chunk.len() + 1);
            row.push(BOS_ID);
            row.extend_from_slice(chunk);
            row
        })
        .collect()
}

/// A corpus as model rows, built once from documents; implements burn's [`Dataset`] over all
/// rows, and [`split`](Self::split) gives the train and validation datasets.
#[derive(Debug, Clone)]
pub struct ByteDataset {
    config: DatasetConfig,
    stats: DatasetStats,
    rows: Arc<Vec<Row>>,
    document_rows: Vec<Range<usize>>,
}

impl ByteDataset {
    /// Filters the documents (empty or whitespace-only, then shorter than `min_length`), cuts
    /// the rest into rows, and logs the [`DatasetStats`]. Fails when no document is left.
    pub fn new(
        documents: impl IntoIterator<Item = Vec<u8>>,
        config: DatasetConfig,
    ) -> Result<Self> {
        config.validate()?;
        let mut stats = DatasetStats::default();
        let mut rows = Vec::new();
        let mut document_rows = Vec::new();
        for bytes in documents {
            stats.initial_documents += 1;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                stats.empty_removed += 1;
                continue;
            }
            if bytes.len() < config.min_length {
                stats.too_short_removed += 1;
                continue;
            }
            let document = document_rows.len();
            let first = rows.len();
            for ids in document_windows(&bytes, config.max_length) {
                let index = rows.len();
                rows.push(Row {
                    document,
                    index,
                    ids,
                });
            }
            document_rows.push(first..rows.len());
            stats.total_bytes += bytes.len();
        }
        stats.kept_documents = document_rows.len();
        stats.rows = rows.len();
        if stats.kept_documents == 0 {
            return Err(DataError::NoDocuments {
                initial: stats.initial_documents,
                empty: stats.empty_removed,
                too_short: stats.too_short_removed,
                min_length: config.min_length,
            });
        }
        tracing::info!(
            initial_documents = stats.initial_documents,
            empty_removed = stats.empty_removed,
            too_short_removed = stats.too_short_removed,
            kept_documents = stats.kept_documents,
            rows = stats.rows,
            total_bytes = stats.total_bytes,
            max_length = config.max_length,
            "built byte dataset"
        );
        Ok(Self {
            config,
            stats,
            rows: Arc::new(rows),
            document_rows,
        })
    }

    /// Reads `source` and builds the dataset.
    pub fn from_source(source: &DataSource, config: DatasetConfig) -> Result<Self> {
        Self::new(source.load()?, config)
    }

    /// The config it was built with.
    pub fn config(&self) -> &DatasetConfig {
        &self.config
    }

    /// What filtering and windowing did.
    pub fn stats(&self) -> &DatasetStats {
        &self.stats
    }

    /// Every row, in document order; `rows()[i].index == i`.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Number of kept documents.
    pub fn num_documents(&self) -> usize {
        self.document_rows.len()
    }

    /// The rows of kept document `document`, in order.
    pub fn rows_of(&self, document: usize) -> &[Row] {
        &self.rows[self.document_rows[document].clone()]
    }

    /// The deterministic train/validation split by document (see [`DataSplit`]).
    pub fn split(&self) -> DataSplit {
        split_documents(
            &self.rows,
            &self.document_rows,
            self.config.valid_fraction,
            self.config.seed,
        )
    }
}

impl Dataset<Row> for ByteDataset {
    fn get(&self, index: usize) -> Option<Row> {
        self.rows.get(index).cloned()
    }

    fn len(&self) -> usize {
        self.rows.len()
    }
}
