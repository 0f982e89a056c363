//! Corpora → model batches for the Byte Latent Transformer.
//!
//! A [`DataSource`] (the embedded `builtin:kjv`, text files, directories with a glob, JSONL, or
//! hub datasets behind the `hub` feature) yields documents as raw bytes. A [`ByteDataset`]
//! filters them and cuts them into rows without losing a byte (BOS + up to `max_length − 1` ids;
//! every byte and each document's EOS is a target exactly once), and splits them by document
//! into train and validation sets with its own seeded generator. A [`BatchPlan`] groups rows by
//! count or byte budget for burn's `DataLoader`, and the [`BltBatcher`] turns groups into
//! [`BltBatch`]es through blt-model's own row preparation. For entropy patching,
//! [`compute_entropies`] runs the entropy model on each row separately and an [`EntropyCache`]
//! keeps the result beside the run, checked against the rows and the model identity.
//!
//! This crate depends on blt-patching, blt-core and blt-model. It must never depend on
//! blt-train or blt-cli, never turn on a Burn backend feature (tests use NdArray as a
//! dev-dependency), and never print: it logs through `tracing`.

mod batch;
mod builtin;
mod cache;
mod dataset;
mod entropy;
mod error;
mod files;
mod glob;
mod hub;
mod plan;
mod progress;
mod rng;
mod source;
mod split;

pub use batch::{BltBatch, BltBatcher};
pub use builtin::{BuiltinCorpus, KJV_SHA256, split_chapters};
pub use cache::{EntropyCache, rows_checksum};
pub use dataset::{ByteDataset, DatasetConfig, DatasetStats, Row, document_windows};
pub use entropy::{compute_entropies, compute_entropies_with};
pub use error::{DataError, Result};
pub use glob::GlobPattern;
pub use hub::HubDataset;
pub use plan::{BatchPlan, BatchPlanConfig, PlannedDataset, RowGroup};
pub use progress::{LogProgress, Progress};
pub use rng::{SplitMix64, permutation};
pub use source::{DEFAULT_TEXT_FIELD, DataSource};
pub use split::{DataSplit, SplitDataset};
