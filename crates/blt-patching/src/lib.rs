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
//!
//! # Example
//!
//! Bytes to ids, n-gram hashes and SpaceByte patches:
//!
//! ```
//! use blt_patching::{
//!     ByteTokenizer, EncodeOptions, NgramHasher, Patcher, PatcherConfig, PatchingScheme,
//! };
//!
//! let ids = ByteTokenizer.encode(b"to be or", EncodeOptions { add_bos: true, add_eos: false });
//! assert_eq!(ids[..3], [1, b't' as u32 + 4, b'o' as u32 + 4]); // BOS, then byte + 4
//!
//! let patcher = Patcher::new(PatcherConfig {
//!     scheme: PatchingScheme::Space,
//!     min_patch_size: 1,
//!     max_patch_size: None,
//! })?;
//! let patches = patcher.patch(&ids, None)?;
//! // [BOS] [to ] [be ] [or]: a space closes each word's patch.
//! assert_eq!(patches.lengths_without_next(), [1, 3, 3, 2]);
//!
//! // One hashed id per n-gram size, for every position.
//! let hasher = NgramHasher::new(vec![3, 4], 4096)?;
//! let hashed = hasher.hash_ids(&ids);
//! assert_eq!((hashed.len(), hashed[0].len()), (2, ids.len()));
//! # Ok::<(), blt_patching::PatchingError>(())
//! ```

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
pub use scheme::{DEFAULT_ENTROPY_THRESHOLD, PatcherConfig, PatchingKind, PatchingScheme};
pub use stream::{StreamStep, StreamingPatcher};
pub use tokenizer::{
    BOE_ID, BOS_ID, BYTE_OFFSET, ByteTokenizer, EOS_ID, EncodeOptions, PAD_ID, RESERVED_ID,
    VOCAB_SIZE, byte_to_id, id_to_byte,
};
