//! The train/validation split: by document, seeded, deterministic across platforms and crate
//! versions (it uses this crate's own [`SplitMix64`](crate::SplitMix64)).

use std::{ops::Range, sync::Arc};

use burn::data::dataset::Dataset;

use crate::{dataset::Row, rng::permutation};

/// The rows of some documents of a [`ByteDataset`](crate::ByteDataset), in document order;
/// implements burn's [`Dataset`].
#[derive(Debug, Clone)]
pub struct SplitDataset {
    rows: Arc<Vec<Row>>,
    documents: Vec<usize>,
    indices: Vec<usize>,
}

impl SplitDataset {
    /// The documents in this split, ascending.
    pub fn documents(&self) -> &[usize] {
        &self.documents
    }

    /// Row ids ([`Row::index`]) in this split, ascending.
    pub fn row_indices(&self) -> &[usize] {
        &self.indices
    }

    /// The rows, in order, without cloning.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &Row> + '_ {
        self.indices.iter().map(|&i| &self.rows[i])
    }

    /// Bytes the model predicts in this split (targets, EOS included).
    pub fn num_targets(&self) -> usize {
        self.rows().map(|r| r.targets().len()).sum()
    }
}

impl Dataset<Row> for SplitDataset {
    fn get(&self, index: usize) -> Option<Row> {
        self.indices.get(index).map(|&i| self.rows[i].clone())
    }

    fn len(&self) -> usize {
        self.indices.len()
    }
}

/// A train and a validation dataset with no row in common, and no document in common when
/// there are two documents or more.
#[derive(Debug, Clone)]
pub struct DataSplit {
    /// Training rows.
    pub train: SplitDataset,
    /// Validation rows.
    pub valid: SplitDataset,
}

/// Documents drawn for validation: `round(fraction · n)` of them (at least 1 when the fraction
/// is positive and there are 2 documents or more, and never all of them), chosen by the seeded
/// permutation.
///
/// A corpus of one document (a single text file, say) is split by rows instead: its last
/// `round(fraction · rows)` rows (at least 1, never all) are held out, so that validation reads
/// text the model never trains on. A one-row document cannot be split; both splits then hold
/// what they can and the caller reports the empty one.
pub(crate) fn split_documents(
    rows: &Arc<Vec<Row>>,
    document_rows: &[Range<usize>],
    valid_fraction: f64,
    seed: u64,
) -> DataSplit {
    let n = document_rows.len();
    if n == 1 && valid_fraction > 0.0 {
        return split_rows(rows, document_rows[0].clone(), valid_fraction);
    }
    let mut n_valid = (valid_fraction * n as f64).round() as usize;
    if valid_fraction > 0.0 && n >= 2 {
        n_valid = n_valid.max(1);
    }
    n_valid = n_valid.min(n.saturating_sub(1));
    let mut is_valid = vec![false; n];
    for &d in &permutation(n, seed)[..n_valid] {
        is_valid[d] = true;
    }
    let build = |valid: bool| {
        let documents: Vec<usize> = (0..n).filter(|&d| is_valid[d] == valid).collect();
        let indices = documents
            .iter()
            .flat_map(|&d| document_rows[d].clone())
            .collect();
        SplitDataset {
            rows: Arc::clone(rows),
            documents,
            indices,
        }
    };
    let split = DataSplit {
        train: build(false),
        valid: build(true),
    };
    tracing::info!(
        seed,
        train_documents = split.train.documents.len(),
        train_rows = split.train.len(),
        valid_documents = split.valid.documents.len(),
        valid_rows = split.valid.len(),
        "split documents"
    );
    split
}

/// The row-level hold-out of a one-document corpus (see [`split_documents`]).
fn split_rows(rows: &Arc<Vec<Row>>, range: Range<usize>, valid_fraction: f64) -> DataSplit {
    let total = range.len();
    let n_valid = ((valid_fraction * total as f64).round() as usize)
        .max(1)
        .min(total.saturating_sub(1));
    let cut = range.end - n_valid;
    let part = |indices: Range<usize>| SplitDataset {
        rows: Arc::clone(rows),
        documents: if indices.is_empty() { vec![] } else { vec![0] },
        indices: indices.collect(),
    };
    let split = DataSplit {
        train: part(range.start..cut),
        valid: part(cut..range.end),
    };
    tracing::info!(
        train_rows = split.train.len(),
        valid_rows = split.valid.len(),
        "one document: holding out its last rows for validation"
    );
    split
}
