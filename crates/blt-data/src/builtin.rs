//! Corpora embedded in the binary. `builtin:kjv` is the King James Bible (public domain; see
//! `datasets/README.md` for its provenance), gzipped at build time into the library and
//! checked against its recorded sha256 every time it is read.

use std::io::Read;

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};

/// The gzipped King James Bible (`datasets/kjv.txt.gz`).
static KJV_GZ: &[u8] = include_bytes!("../../../datasets/kjv.txt.gz");

/// sha256 of the uncompressed King James Bible text.
pub const KJV_SHA256: &str = "6f74f5589333c56c263963e6347dba662bae2d96861302e690aaae0b4a855eda";

/// A corpus shipped inside the library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuiltinCorpus {
    /// The King James Bible (1611): 4,298,239 bytes, one document per chapter (1,189).
    Kjv,
}

impl BuiltinCorpus {
    /// Every built-in corpus name.
    pub const NAMES: &'static [&'static str] = &["kjv"];

    /// The corpus with this name (`kjv`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "kjv" => Some(Self::Kjv),
            _ => None,
        }
    }

    /// The corpus name, as written after `builtin:`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Kjv => "kjv",
        }
    }

    /// The uncompressed text, verified against its recorded sha256.
    pub fn text(self) -> Result<Vec<u8>> {
        let (compressed, expected) = match self {
            Self::Kjv => (KJV_GZ, KJV_SHA256),
        };
        let path = format!("builtin:{}", self.name());
        let mut text = Vec::new();
        GzDecoder::new(compressed)
            .read_to_end(&mut text)
            .map_err(|e| DataError::io("decompressing", path, e))?;
        verify_sha256(self.name(), &text, expected)?;
        Ok(text)
    }

    /// The corpus split into documents (for `kjv`: one per chapter, see [`split_chapters`]).
    pub fn documents(self) -> Result<Vec<Vec<u8>>> {
        let text = self.text()?;
        Ok(match self {
            Self::Kjv => split_chapters(&text),
        })
    }
}

/// Checks that `bytes` hash to `expected` (lower-case hex sha256).
pub(crate) fn verify_sha256(name: &str, bytes: &[u8], expected: &str) -> Result<()> {
    let found = hex(&Sha256::digest(bytes));
    if found == expected {
        Ok(())
    } else {
        Err(DataError::Checksum {
            name: name.to_string(),
            expected: expected.to_string(),
            found,
        })
    }
}

/// Lower-case hex of some bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Splits a text into chapters: every line that is neither empty nor indented (a heading such as
/// `Genesis 1`) starts a new document, which holds the heading and everything up to the next
/// heading. Bytes are kept exactly, newlines included; concatenating the documents gives the
/// text back. Text before the first heading (if any) is a document of its own.
///
/// ```
/// let docs = blt_data::split_chapters(b"\nA 1\n\n  1 a\nA 2\n  1 b\n");
/// assert_eq!(docs, vec![b"\n".to_vec(), b"A 1\n\n  1 a\n".to_vec(), b"A 2\n  1 b\n".to_vec()]);
/// ```
pub fn split_chapters(text: &[u8]) -> Vec<Vec<u8>> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut line_start = 0;
    while line_start < text.len() {
        let line_end = text[line_start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |i| line_start + i + 1);
        let first = text[line_start];
        let heading = !matches!(first, b' ' | b'\t' | b'\n' | b'\r');
        if heading && line_start > start {
            documents.push(text[start..line_start].to_vec());
            start = line_start;
        }
        line_start = line_end;
    }
    if start < text.len() {
        documents.push(text[start..].to_vec());
    }
    documents
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chapters_concatenate_to_the_text() {
        let text = b"Gen 1\n  1 x\n\nGen 2\n  1 y";
        let docs = split_chapters(text);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs.concat(), text);
        assert!(split_chapters(b"").is_empty());
    }

    #[test]
    fn checksum_mismatch_is_an_error() {
        let err = verify_sha256("kjv", b"not the bible", KJV_SHA256).unwrap_err();
        assert!(matches!(err, DataError::Checksum { .. }));
        assert!(err.to_string().contains("kjv"), "{err}");
    }
}
