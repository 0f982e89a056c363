//! [`EntropyCache`]: per-row entropies computed once and stored beside the run in one binary
//! file, reloaded only when it provably belongs to the same rows, the same entropy model and the
//! same context resets ([`EntropyResets`]).
//!
//! # File format (version 1, little-endian)
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `BLTENTRC` |
//! | 4 | format version (`u32`, 1) |
//! | 32 | corpus checksum: sha256 over the rows (see [`rows_checksum`]) |
//! | 4 + n | entropy model identity: length (`u32`) and UTF-8 bytes, given by the caller |
//! | 1 | context resets: bit 0 at newlines, bit 1 *not* at EOS (so files written before documents could be merged read as they were) |
//! | 8 | number of rows `R` (`u64`) |
//! | 4 · R | entropies per row (`u32` each, = the row's input positions) |
//! | 4 · Σ | the entropies, `f32`, row after row |
//! | 32 | sha256 of everything above |
//!
//! Files are written to a temporary file in the same directory and renamed into place, so a
//! crash never leaves a half-written cache under the real name.

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
};

use blt_model::EntropyResets;
use sha2::{Digest, Sha256};

use crate::{
    builtin::hex,
    dataset::Row,
    error::{DataError, Result},
};

const MAGIC: &[u8; 8] = b"BLTENTRC";
const VERSION: u32 = 1;

/// sha256 over the rows: for each row, its id ([`Row::index`], `u64`), its length (`u64`) and
/// its ids (`u32` each), little-endian.
pub fn rows_checksum(rows: &[Row]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for row in rows {
        hasher.update((row.index as u64).to_le_bytes());
        hasher.update((row.ids.len() as u64).to_le_bytes());
        for id in &row.ids {
            hasher.update(id.to_le_bytes());
        }
    }
    hasher.finalize().into()
}

/// Entropies (nats) for the input positions of a set of rows, looked up by row id.
#[derive(Debug, Clone, PartialEq)]
pub struct EntropyCache {
    identity: String,
    resets: EntropyResets,
    checksum: [u8; 32],
    positions: HashMap<usize, usize>,
    offsets: Vec<usize>,
    data: Vec<f32>,
}

impl EntropyCache {
    /// Wraps entropies computed for `rows` (one vector per row, one value per input position).
    pub fn new(
        rows: &[Row],
        identity: &str,
        resets: EntropyResets,
        entropies: Vec<Vec<f32>>,
    ) -> Result<Self> {
        if entropies.len() != rows.len() {
            return Err(DataError::InvalidConfig(format!(
                "{} entropy vectors for {} rows",
                entropies.len(),
                rows.len()
            )));
        }
        let lengths: Vec<usize> = entropies.iter().map(Vec::len).collect();
        check_lengths(rows, &lengths)?;
        Ok(Self::assemble(
            rows,
            identity.to_string(),
            resets,
            rows_checksum(rows),
            &lengths,
            entropies.concat(),
        ))
    }

    fn assemble(
        rows: &[Row],
        identity: String,
        resets: EntropyResets,
        checksum: [u8; 32],
        lengths: &[usize],
        data: Vec<f32>,
    ) -> Self {
        let mut offsets = Vec::with_capacity(lengths.len() + 1);
        offsets.push(0);
        for &len in lengths {
            offsets.push(offsets.last().copied().unwrap_or(0) + len);
        }
        Self {
            identity,
            resets,
            checksum,
            positions: rows.iter().enumerate().map(|(k, r)| (r.index, k)).collect(),
            offsets,
            data,
        }
    }

    /// The entropies of row `row` (a [`Row::index`]), one per input position.
    pub fn get(&self, row: usize) -> Option<&[f32]> {
        let &k = self.positions.get(&row)?;
        Some(&self.data[self.offsets[k]..self.offsets[k + 1]])
    }

    /// The entropy model identity it was computed with.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Where the entropy model's context restarted.
    pub fn resets(&self) -> EntropyResets {
        self.resets
    }

    /// The corpus checksum (see [`rows_checksum`]), in hex.
    pub fn checksum(&self) -> String {
        hex(&self.checksum)
    }

    /// Number of rows covered.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Whether no row is covered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entropy value, row after row.
    pub fn values(&self) -> &[f32] {
        &self.data
    }

    /// Writes the cache to `path` atomically (temporary file + rename), creating the directory.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut bytes =
            Vec::with_capacity(96 + self.identity.len() + 4 * (self.len() + self.data.len()));
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&self.checksum);
        bytes.extend_from_slice(&(self.identity.len() as u32).to_le_bytes());
        bytes.extend_from_slice(self.identity.as_bytes());
        bytes.push(flags(self.resets));
        bytes.extend_from_slice(&(self.len() as u64).to_le_bytes());
        for w in self.offsets.windows(2) {
            bytes.extend_from_slice(&((w[1] - w[0]) as u32).to_le_bytes());
        }
        for value in &self.data {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        let digest = Sha256::digest(&bytes);
        bytes.extend_from_slice(&digest);

        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| DataError::io("creating directory", &dir, e))?;
        let mut file = tempfile::NamedTempFile::new_in(&dir)
            .map_err(|e| DataError::io("creating a temporary file in", &dir, e))?;
        file.write_all(&bytes)
            .and_then(|()| file.as_file().sync_all())
            .map_err(|e| DataError::io("writing", file.path().to_path_buf(), e))?;
        file.persist(path)
            .map_err(|e| DataError::io("renaming a temporary file to", path, e.error))?;
        tracing::info!(path = %path.display(), rows = self.len(), "saved entropy cache");
        Ok(())
    }

    /// Reads a cache for `rows`: [`DataError::CorruptCache`] when the file is damaged,
    /// truncated or of another format, [`DataError::StaleCache`] when it was written for other
    /// rows, another model identity or other context resets.
    pub fn load(path: &Path, identity: &str, rows: &[Row], resets: EntropyResets) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io("reading", path, e))?;
        let corrupt = |reason: String| DataError::CorruptCache {
            path: path.to_path_buf(),
            reason,
        };
        let stale = |reason: String| DataError::StaleCache {
            path: path.to_path_buf(),
            reason,
        };
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(corrupt("not an entropy cache (bad magic)".into()));
        }
        let Some(body_len) = bytes.len().checked_sub(32) else {
            return Err(corrupt("truncated".into()));
        };
        let (body, digest) = bytes.split_at(body_len);
        if Sha256::digest(body).as_slice() != digest {
            return Err(corrupt(
                "checksum mismatch: the file is truncated or damaged".into(),
            ));
        }
        let mut r = Cursor {
            bytes: body,
            pos: MAGIC.len(),
        };
        let version = u32::from_le_bytes(r.array().map_err(&corrupt)?);
        if version != VERSION {
            return Err(corrupt(format!(
                "format version {version}, this build reads version {VERSION}"
            )));
        }
        let checksum: [u8; 32] = r.array().map_err(&corrupt)?;
        let id_len = u32::from_le_bytes(r.array().map_err(&corrupt)?) as usize;
        let file_identity = String::from_utf8(r.take(id_len).map_err(&corrupt)?.to_vec())
            .map_err(|_| corrupt("identity is not UTF-8".into()))?;
        let [flag] = r.array().map_err(&corrupt)?;
        let num_rows = u64::from_le_bytes(r.array().map_err(&corrupt)?);
        if checksum != rows_checksum(rows) {
            return Err(stale(format!(
                "written for other rows (corpus checksum {}, {} rows; expected {}, {} rows)",
                hex(&checksum),
                num_rows,
                hex(&rows_checksum(rows)),
                rows.len()
            )));
        }
        if file_identity != identity {
            return Err(stale(format!(
                "written by entropy model `{file_identity}`, expected `{identity}`"
            )));
        }
        if flag > 3 {
            return Err(corrupt(format!("context-reset flags {flag}")));
        }
        let written = EntropyResets {
            at_newline: flag & 1 == 1,
            at_eos: flag & 2 == 0,
        };
        if written != resets {
            return Err(stale(format!(
                "written with context resets {written:?}, expected {resets:?}"
            )));
        }
        if num_rows != rows.len() as u64 {
            return Err(corrupt(format!("{num_rows} rows for {} rows", rows.len())));
        }
        let length_bytes = r.take(rows.len() * 4).map_err(&corrupt)?;
        let lengths: Vec<usize> = length_bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize)
            .collect();
        check_lengths(rows, &lengths).map_err(|e| corrupt(e.to_string()))?;
        let total: usize = lengths.iter().sum();
        let data_bytes = r.take(total * 4).map_err(&corrupt)?;
        if r.pos != body.len() {
            return Err(corrupt(format!(
                "{} unexpected trailing bytes",
                body.len() - r.pos
            )));
        }
        let data = data_bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Self::assemble(
            rows,
            file_identity,
            resets,
            checksum,
            &lengths,
            data,
        ))
    }

    /// Loads the cache at `path` if it belongs to these rows, this model identity and these
    /// context resets; otherwise computes it with `compute` (given `rows`, returning one vector
    /// per row) and saves it. A stale, corrupt or truncated file is reported with
    /// `tracing::warn!` and rebuilt, never used.
    pub fn load_or_compute(
        path: &Path,
        identity: &str,
        rows: &[Row],
        resets: EntropyResets,
        compute: impl FnOnce(&[Row]) -> Result<Vec<Vec<f32>>>,
    ) -> Result<Self> {
        match Self::load(path, identity, rows, resets) {
            Ok(cache) => {
                tracing::info!(path = %path.display(), rows = rows.len(), "reusing entropy cache");
                return Ok(cache);
            }
            Err(DataError::NotFound { .. }) => {
                tracing::info!(path = %path.display(), rows = rows.len(), "computing entropy cache");
            }
            Err(e @ (DataError::CorruptCache { .. } | DataError::StaleCache { .. })) => {
                tracing::warn!("{e}; rebuilding it");
            }
            Err(e) => return Err(e),
        }
        let cache = Self::new(rows, identity, resets, compute(rows)?)?;
        cache.save(path)?;
        Ok(cache)
    }
}

/// The file's context-reset byte (see the format table).
fn flags(resets: EntropyResets) -> u8 {
    u8::from(resets.at_newline) | (u8::from(!resets.at_eos) << 1)
}

/// Every row needs one entropy per input position.
fn check_lengths(rows: &[Row], lengths: &[usize]) -> Result<()> {
    for (row, &found) in rows.iter().zip(lengths) {
        let expected = row.input().len();
        if found != expected {
            return Err(DataError::EntropyLength {
                row: row.index,
                expected,
                found,
            });
        }
    }
    Ok(())
}

/// Reads fields from a byte slice; errors say where the data ran out.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| format!("truncated: {n} bytes expected at offset {}", self.pos))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}
