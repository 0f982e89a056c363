//! The byte tokenizer: a byte `b` is the id `b + 4`; ids 0..=3 are special.
//!
//! Follows `bytelatent/tokenizers/blt_tokenizer.py` of the official BLT code (reference §1).
//! Unlike the original (which encodes text with `errors="ignore"`), this works on raw bytes, so
//! every byte sequence, valid UTF-8 or not, round-trips.

/// Padding id, also "beginning of example" ([`BOE_ID`]); zero-padding of model inputs.
pub const PAD_ID: u32 = 0;
/// "Beginning of example" id (the original's `BOE_ID`); the same id as [`PAD_ID`].
pub const BOE_ID: u32 = 0;
/// Beginning-of-sequence id.
pub const BOS_ID: u32 = 1;
/// End-of-sequence id.
pub const EOS_ID: u32 = 2;
/// Reserved id (the original's BPE delimiter; Hugging Face calls it `<pad>`). Never produced
/// by [`ByteTokenizer::encode`].
pub const RESERVED_ID: u32 = 3;
/// Offset added to a byte to get its id: the number of special ids.
pub const BYTE_OFFSET: u32 = 4;
/// Vocabulary size: 256 bytes plus the 4 special ids.
pub const VOCAB_SIZE: usize = 256 + BYTE_OFFSET as usize;

/// The id of a byte: `byte + 4`.
///
/// ```
/// assert_eq!(blt_patching::byte_to_id(b'A'), 69);
/// ```
#[inline]
pub fn byte_to_id(byte: u8) -> u32 {
    u32::from(byte) + BYTE_OFFSET
}

/// The byte an id stands for, or `None` for a special id (< 4) or an id outside the vocabulary
/// (≥ 260).
///
/// ```
/// use blt_patching::{id_to_byte, BOS_ID};
/// assert_eq!(id_to_byte(69), Some(b'A'));
/// assert_eq!(id_to_byte(BOS_ID), None);
/// assert_eq!(id_to_byte(260), None);
/// ```
#[inline]
pub fn id_to_byte(id: u32) -> Option<u8> {
    id.checked_sub(BYTE_OFFSET)
        .and_then(|b| u8::try_from(b).ok())
}

/// Options for [`ByteTokenizer::encode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EncodeOptions {
    /// Prepend [`BOS_ID`]. Default `false`; models expect it, so most callers set it.
    pub add_bos: bool,
    /// Append [`EOS_ID`]. Default `false`; training data sets it, generation prompts do not.
    pub add_eos: bool,
}

impl EncodeOptions {
    /// BOS and EOS both added: what training documents use.
    pub const DOCUMENT: Self = Self {
        add_bos: true,
        add_eos: true,
    };
    /// BOS only: what generation prompts use.
    pub const PROMPT: Self = Self {
        add_bos: true,
        add_eos: false,
    };
}

/// Maps bytes to ids and back (vocabulary [`VOCAB_SIZE`] = 260).
///
/// ```
/// use blt_patching::{ByteTokenizer, EncodeOptions, BOS_ID, EOS_ID};
/// let tok = ByteTokenizer;
/// let ids = tok.encode(b"hi", EncodeOptions::DOCUMENT);
/// assert_eq!(ids, vec![BOS_ID, 108, 109, EOS_ID]);
/// assert_eq!(tok.decode(&ids), b"hi");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ByteTokenizer;

impl ByteTokenizer {
    /// Encodes bytes as ids, optionally framed by [`BOS_ID`] / [`EOS_ID`].
    pub fn encode(&self, bytes: &[u8], opts: EncodeOptions) -> Vec<u32> {
        let mut ids =
            Vec::with_capacity(bytes.len() + usize::from(opts.add_bos) + usize::from(opts.add_eos));
        if opts.add_bos {
            ids.push(BOS_ID);
        }
        ids.extend(bytes.iter().map(|&b| byte_to_id(b)));
        if opts.add_eos {
            ids.push(EOS_ID);
        }
        ids
    }

    /// Decodes ids to bytes, dropping special ids (< 4) and ids outside the vocabulary.
    pub fn decode(&self, ids: &[u32]) -> Vec<u8> {
        ids.iter().filter_map(|&id| id_to_byte(id)).collect()
    }

    /// The vocabulary size, [`VOCAB_SIZE`].
    pub fn vocab_size(&self) -> usize {
        VOCAB_SIZE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_maps_and_back() {
        for b in 0..=255u8 {
            let id = byte_to_id(b);
            assert!((4..260).contains(&id));
            assert_eq!(id_to_byte(id), Some(b));
        }
        for id in 0..4 {
            assert_eq!(id_to_byte(id), None);
        }
        assert_eq!(id_to_byte(u32::MAX), None);
    }

    #[test]
    fn invalid_utf8_round_trips() {
        let bytes = [0xffu8, 0xc3, 0x28, 0x00, 0x80];
        let tok = ByteTokenizer;
        let ids = tok.encode(&bytes, EncodeOptions::DOCUMENT);
        assert_eq!(ids.len(), bytes.len() + 2);
        assert_eq!(tok.decode(&ids), bytes);
        assert_eq!(
            tok.encode(&bytes, EncodeOptions::default()).len(),
            bytes.len()
        );
    }
}
