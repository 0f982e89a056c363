//! Bytes → model inputs for the Byte Latent Transformer: byte ids, hash n-gram ids and patches.
//!
//! This crate turns raw bytes into everything the model consumes before any tensor exists: the
//! byte tokenizer ([`ByteTokenizer`], id = byte + 4), hashed n-gram ids ending at each position
//! ([`NgramHasher`], batch and incremental), and patch boundaries ([`Patcher`] for whole rows,
//! [`StreamingPatcher`] for generation, [`calibrate_threshold`] for the entropy threshold) under
//! the `entropy`, `fixed`, `space` and `byte` schemes. Every decision is causal: whether position
//! `t` starts a patch depends only on ids and entropies before `t`.
//!
//! It is pure Rust on slices and `Vec`s and must never depend on Burn, a tensor library or any
//! device: the entropies it reads are plain `f32`s computed elsewhere.

mod calibrate;
mod error;
mod ngram;
mod patcher;
mod rule;
mod scheme;
mod stream;
mod tokenizer;

pub use calibrate::{Calibration, CalibrationOptions, calibrate_threshold, mean_patch_len};
pub use error::PatchingError;
pub use ngram::{
    DEFAULT_NGRAM_PRIME, DEFAULT_NGRAM_SIZES, DEFAULT_NGRAM_TABLE_SIZE, MAX_NGRAM_SIZE,
    NgramHasher, NgramStream,
};
pub use patcher::{Patcher, Patches};
pub use scheme::{DEFAULT_ENTROPY_THRESHOLD, PatcherConfig, PatchingScheme};
pub use stream::{StreamStep, StreamingPatcher};
pub use tokenizer::{
    BOE_ID, BOS_ID, BYTE_OFFSET, ByteTokenizer, EOS_ID, EncodeOptions, PAD_ID, RESERVED_ID,
    VOCAB_SIZE, byte_to_id, id_to_byte,
};
