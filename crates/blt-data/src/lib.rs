//! Corpora → model batches for the Byte Latent Transformer.
//!
//! A [`DataSource`] (the embedded `builtin:kjv`, text files, directories with a glob, JSONL, or
//! hub datasets behind the `hub` feature) yields documents as raw bytes. A [`ByteDataset`]
//! filters them and cuts them into rows without losing a byte (BOS + up to `max_length − 1` ids;
//! every byte and each document's EOS is a target exactly once), and splits them by document
//! into train and validation sets with its own seeded generator. A [`BatchPlan`] groups rows by
//! count or byte budget, and the [`BltBatcher`] turns groups into
//! [`BltBatch`]es through blt-model's own row preparation. For entropy patching,
//! [`compute_entropies`] runs the entropy model on each row separately and an [`EntropyCache`]
//! keeps the result beside the run, checked against the rows and the model identity.
//!
//! This crate depends on blt-patching, blt-core and blt-model. It must never depend on
//! blt-train or blt-cli, never turn on a Burn backend feature (tests use NdArray as a
//! dev-dependency), and never print: it logs through `tracing`.
//!
//! # Example
//!
//! Documents to rows, a seeded split by document, and a batch for a model that patches at
//! spaces:
//!
//! ```
//! use blt_data::{BltBatcher, ByteDataset, DatasetConfig};
//! use blt_model::{BltConfig, PatchingKind};
//! use burn::backend::NdArray;
//!
//! let documents = (0..20).map(|i| format!("document number {i}, in plain bytes").into_bytes());
//! let config = DatasetConfig { max_length: 16, valid_fraction: 0.1, ..Default::default() };
//! let dataset = ByteDataset::new(documents, config)?;
//! // Every byte and each document's EOS is a target of exactly one row.
//! let targets: usize = dataset.rows().iter().map(|r| r.targets().len()).sum();
//! assert_eq!(targets, dataset.stats().total_bytes + dataset.num_documents());
//!
//! let split = dataset.split();
//! assert_eq!(split.valid.documents().len(), 2);
//!
//! let model = BltConfig { patching: PatchingKind::Space, ..BltConfig::tiny() };
//! let batcher = BltBatcher::new(&model, None)?;
//! let rows: Vec<_> = split.train.rows().take(4).cloned().collect();
//! let batch = batcher.try_batch::<NdArray>(&rows, &Default::default())?;
//! assert_eq!(batch.input.batch_size(), 4);
//! # Ok::<(), blt_data::DataError>(())
//! ```

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
pub use dataset::{ByteDataset, DatasetConfig, DatasetStats, Row, Storage, document_windows};
pub use entropy::compute_entropies;
pub use error::{DataError, Result};
pub use glob::GlobPattern;
pub use hub::HubDataset;
pub use plan::{BatchPlan, BatchPlanConfig};
pub use progress::{LineProgress, LogProgress, Progress};
pub use rng::{SplitMix64, permutation};
pub use source::{DEFAULT_TEXT_FIELD, DataSource};
pub use split::{DataSplit, SplitDataset};
