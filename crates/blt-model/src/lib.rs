//! The Byte Latent Transformer and its entropy model, generic over a Burn backend: byte and hash
//! n-gram embeddings, a local encoder that pools bytes into patches, a global transformer over
//! patches, a local decoder that predicts the next byte, generation, and save/load.
//!
//! Causal by construction: for every patching scheme, logits at position `i` depend only on
//! bytes `0..=i`. This crate enables no Burn backend and never depends on the data or training
//! crates.
//!
//! # Example
//!
//! A tiny BLT that patches at spaces (no entropy model needed): a forward pass over two texts,
//! then greedy generation through the KV caches, the global model running once per patch.
//!
//! ```
//! use blt_model::{
//!     Blt, BltConfig, BltInput, DecodeMode, GenerationConfig, Generator, PatchingKind,
//!     SamplingConfig,
//! };
//! use burn::backend::NdArray;
//!
//! let config = BltConfig { patching: PatchingKind::Space, ..BltConfig::tiny() };
//! let device = Default::default();
//! let model = Blt::<NdArray>::new(&config, &device)?;
//!
//! let input = BltInput::from_bytes(&config, &[b"in the beginning", b"and"], None, &device)?;
//! let logits = model.forward(&input).logits; // next-byte logits at every position
//! assert_eq!(logits.dims(), [2, input.seq_len(), blt_patching::VOCAB_SIZE]);
//!
//! let generator = Generator::new(&model, None, &config, device)?;
//! let generation = GenerationConfig {
//!     max_bytes: 16,
//!     sampling: SamplingConfig::greedy(),
//!     ..Default::default()
//! };
//! let mut streamed = Vec::new();
//! let summary = generator.generate(b"in the", &generation, DecodeMode::Incremental, |b| {
//!     streamed.push(b.byte);
//!     true // keep going
//! })?;
//! assert_eq!(summary.bytes, streamed);
//! assert!(summary.global_steps <= summary.positions);
//! # Ok::<(), blt_model::ModelError>(())
//! ```

mod blt;
mod config;
mod decoder;
mod embedding;
mod encoder;
mod entropy;
mod error;
pub mod generate;
mod global;
pub mod hf;
pub mod host;
mod input;
mod io;
mod layers;
mod loss;
mod seed;
mod stats;

pub use blt::{Blt, BltOutput, ForwardStage};
pub use config::{BltConfig, PatchingKind, Pooling};
pub use decoder::{LocalDecoder, LocalDecoderConfig};
pub use embedding::ByteEmbedding;
pub use encoder::{LocalEncoder, LocalEncoderConfig};
pub use entropy::{EntropyModel, EntropyModelConfig, EntropyResets, NEWLINE_ID, entropy_of_logits};
pub use error::{ModelError, Result};
pub use generate::{
    DecodeMode, GeneratedByte, GenerationConfig, GenerationSummary, Generator, Sampler,
    SamplingConfig, StopReason, WeightPrecision, host_copy_bytes,
};
pub use global::{GlobalTransformer, GlobalTransformerConfig, HierarchicalMemory};
pub use input::{BltInput, PoolingLayout, PreparedRow, RowPreparer, bucket_size};
pub use io::{
    EDITABLE_CONFIG_FIELDS, ENTROPY_WEIGHTS_FILE, FORMAT_VERSION, LoadedModel, MANIFEST_FILE,
    WEIGHTS_FILE, entropy_model_identity, initialize, load_config, load_entropy_model, load_model,
    save_entropy_model, save_model,
};
pub use loss::{LossSums, masked_cross_entropy, target_log_probs};
pub use seed::seeded;
pub use stats::{FlopsPerByte, ParameterCounts};
