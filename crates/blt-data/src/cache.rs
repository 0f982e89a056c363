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
//! Files are written to a temporary file in the same directory, fsynced and renamed into place,
//! so a crash never leaves a half-written cache under the real name.
//!
//! # Memory
//!
//! A cache computed for a run ([`EntropyCache::load_or_compute`]) or read back
//! ([`EntropyCache::load`]) keeps its values in the file and reads a row's entropies when a
//! batch needs them: it holds 8 bytes per row in memory, not 4 bytes per corpus byte, and the
//! operating system's page cache serves repeated reads. [`EntropyCache::new`] wraps values
//! already in memory (evaluation, tests).

use std::{
    borrow::Cow,
    collections::HashMap,
    fs::File,
    io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    sync::Mutex,
};

use blt_model::EntropyResets;
use sha2::{Digest, Sha256};

use crate::{
    builtin::hex,
    dataset::Row,
    error::{DataError, Result},
    progress::Progress,
};

const MAGIC: &[u8; 8] = b"BLTENTRC";
const VERSION: u32 = 1;

/// sha256 over the rows: for each row, its id ([`Row::index`], `u64`), its length (`u64`) and
/// its ids (`u32` each), little-endian.
pub fn rows_checksum(rows: &[Row]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for row in rows {
        hasher.update((row.index as u64).to_le_bytes());
        hasher.update((row.num_ids() as u64).to_le_bytes());
        for id in row.iter_ids() {
            hasher.update(id.to_le_bytes());
        }
    }
    hasher.finalize().into()
}

/// Rows per block when a cache is computed and written: the entropies of one block are in
/// memory at a time.
const BLOCK_ROWS: usize = 256;

/// Where the values live.
#[derive(Debug)]
enum Store {
    /// In memory, row after row.
    Memory(Vec<f32>),
    /// In a cache file, from byte `start` on.
    File { file: Mutex<File>, start: u64 },
}

impl Store {
    fn file(file: File, start: u64) -> Self {
        Self::File {
            file: Mutex::new(file),
            start,
        }
    }
}

/// Entropies (nats) for the input positions of a set of rows, looked up by row id.
#[derive(Debug)]
pub struct EntropyCache {
    identity: String,
    resets: EntropyResets,
    checksum: [u8; 32],
    /// Row id → position in the cache; `None` when row `k` has id `k` (a whole dataset).
    positions: Option<HashMap<usize, usize>>,
    offsets: Vec<usize>,
    store: Store,
}

/// The header fields of a cache file, up to and including the row lengths.
fn header(
    checksum: &[u8; 32],
    identity: &str,
    resets: EntropyResets,
    lengths: impl ExactSizeIterator<Item = usize>,
) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(64 + identity.len() + 4 * lengths.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(checksum);
    bytes.extend_from_slice(&(identity.len() as u32).to_le_bytes());
    bytes.extend_from_slice(identity.as_bytes());
    bytes.push(flags(resets));
    bytes.extend_from_slice(&(lengths.len() as u64).to_le_bytes());
    for len in lengths {
        bytes.extend_from_slice(&(len as u32).to_le_bytes());
    }
    bytes
}

/// Writes a cache file: the header, the values as they come, then the digest; fsynced and
/// renamed into place by [`finish`](Self::finish).
struct CacheWriter {
    out: BufWriter<tempfile::NamedTempFile>,
    hasher: Sha256,
    data_start: u64,
}

impl CacheWriter {
    fn create(path: &Path, header: &[u8]) -> Result<Self> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| DataError::io("creating directory", &dir, e))?;
        let file = tempfile::NamedTempFile::new_in(&dir)
            .map_err(|e| DataError::io("creating a temporary file in", &dir, e))?;
        let mut writer = Self {
            out: BufWriter::new(file),
            hasher: Sha256::new(),
            data_start: header.len() as u64,
        };
        writer.write(header)?;
        Ok(writer)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.hasher.update(bytes);
        self.out
            .write_all(bytes)
            .map_err(|e| DataError::io("writing", self.out.get_ref().path().to_path_buf(), e))
    }

    fn values(&mut self, values: &[f32]) -> Result<()> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.write(&bytes)
    }

    /// Appends the digest, syncs and renames the file to `path`; returns it open for reading
    /// and where its values start.
    fn finish(mut self, path: &Path) -> Result<(File, u64)> {
        let digest = std::mem::take(&mut self.hasher).finalize();
        self.out
            .write_all(&digest)
            .map_err(|e| DataError::io("writing", path, e))?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| DataError::io("writing", path, e.into_error()))?;
        file.as_file()
            .sync_all()
            .map_err(|e| DataError::io("writing", file.path().to_path_buf(), e))?;
        let file = file
            .persist(path)
            .map_err(|e| DataError::io("renaming a temporary file to", path, e.error))?;
        blt_core::fs::sync_dir(path)
            .map_err(|e| DataError::io("syncing the directory of", path, e))?;
        Ok((file, self.data_start))
    }
}

impl EntropyCache {
    /// Wraps entropies computed for `rows` (one vector per row, one value per input position),
    /// kept in memory.
    pub fn new(
        rows: &[Row],
        identity: &str,
        resets: EntropyResets,
        entropies: Vec<Vec<f32>>,
    ) -> Result<Self> {
        let lengths = check_entropies(rows, &entropies)?;
        Ok(Self::assemble(
            rows,
            identity.to_string(),
            resets,
            rows_checksum(rows),
            &lengths,
            Store::Memory(entropies.concat()),
        ))
    }

    fn assemble(
        rows: &[Row],
        identity: String,
        resets: EntropyResets,
        checksum: [u8; 32],
        lengths: &[usize],
        store: Store,
    ) -> Self {
        let mut offsets = Vec::with_capacity(lengths.len() + 1);
        offsets.push(0);
        for &len in lengths {
            offsets.push(offsets.last().copied().unwrap_or(0) + len);
        }
        let in_order = rows.iter().enumerate().all(|(k, r)| r.index == k);
        Self {
            identity,
            resets,
            checksum,
            positions: (!in_order)
                .then(|| rows.iter().enumerate().map(|(k, r)| (r.index, k)).collect()),
            offsets,
            store,
        }
    }

    /// The entropies of row `row` (a [`Row::index`]), one per input position; read from the
    /// cache file when the values live there.
    ///
    /// # Panics
    /// When the cache file cannot be read any more (removed or damaged after it was checked).
    pub fn get(&self, row: usize) -> Option<Cow<'_, [f32]>> {
        let k = match &self.positions {
            Some(positions) => *positions.get(&row)?,
            None if row < self.len() => row,
            None => return None,
        };
        Some(self.values_at(k))
    }

    /// The entropies of the `k`-th row covered.
    fn values_at(&self, k: usize) -> Cow<'_, [f32]> {
        let range = self.offsets[k]..self.offsets[k + 1];
        match &self.store {
            Store::Memory(data) => Cow::Borrowed(&data[range]),
            Store::File { file, start } => {
                let mut bytes = vec![0u8; 4 * range.len()];
                let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
                file.seek(SeekFrom::Start(start + 4 * range.start as u64))
                    .and_then(|_| file.read_exact(&mut bytes))
                    .expect("the entropy cache file was checked when it was opened");
                Cow::Owned(
                    bytes
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                )
            }
        }
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

    /// Entropy values over all rows.
    pub fn num_values(&self) -> usize {
        self.offsets.last().copied().unwrap_or(0)
    }

    /// Whether the values are read from the cache file (not held in memory).
    pub fn is_on_disk(&self) -> bool {
        matches!(self.store, Store::File { .. })
    }

    /// Writes the cache to `path` atomically (temporary file, fsync, rename), creating the
    /// directory.
    pub fn save(&self, path: &Path) -> Result<()> {
        let lengths = self.offsets.windows(2).map(|w| w[1] - w[0]);
        let mut writer = CacheWriter::create(
            path,
            &header(&self.checksum, &self.identity, self.resets, lengths),
        )?;
        for k in 0..self.len() {
            writer.values(&self.values_at(k))?;
        }
        writer.finish(path)?;
        tracing::info!(path = %path.display(), rows = self.len(), "saved entropy cache");
        Ok(())
    }

    /// Opens a cache file for `rows` and checks all of it (reading it once, a block at a time):
    /// [`DataError::CorruptCache`] when the file is damaged, truncated or of another format,
    /// [`DataError::StaleCache`] when it was written for other rows, another model identity or
    /// other context resets. The values stay in the file.
    pub fn load(path: &Path, identity: &str, rows: &[Row], resets: EntropyResets) -> Result<Self> {
        let file = File::open(path).map_err(|e| DataError::io("reading", path, e))?;
        let size = file
            .metadata()
            .map_err(|e| DataError::io("reading", path, e))?
            .len();
        let corrupt = |reason: String| DataError::CorruptCache {
            path: path.to_path_buf(),
            reason,
        };
        let stale = |reason: String| DataError::StaleCache {
            path: path.to_path_buf(),
            reason,
        };
        let mut r = HashingReader {
            inner: BufReader::new(&file),
            hasher: Sha256::new(),
            pos: 0,
            size,
        };
        let magic: [u8; 8] = r.array().map_err(&corrupt)?;
        if &magic != MAGIC {
            return Err(corrupt("not an entropy cache (bad magic)".into()));
        }
        if size < 32 {
            return Err(corrupt("truncated".into()));
        }
        r.size = size - 32;
        let version = u32::from_le_bytes(r.array().map_err(&corrupt)?);
        if version != VERSION {
            return Err(corrupt(format!(
                "format version {version}, this build reads version {VERSION}"
            )));
        }
        let checksum: [u8; 32] = r.array().map_err(&corrupt)?;
        let id_len = u32::from_le_bytes(r.array().map_err(&corrupt)?) as usize;
        let file_identity = String::from_utf8(r.take(id_len).map_err(&corrupt)?)
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
        let start = r.pos;
        let total: u64 = lengths.iter().map(|&n| 4 * n as u64).sum();
        if start + total != r.size {
            return Err(corrupt(format!(
                "{} bytes of values for {total} expected: the file is truncated or damaged",
                r.size.saturating_sub(start)
            )));
        }
        r.skip_hashing(total).map_err(&corrupt)?;
        let digest = std::mem::take(&mut r.hasher).finalize();
        r.size = size;
        let stored: [u8; 32] = r.array().map_err(&corrupt)?;
        if digest.as_slice() != stored {
            return Err(corrupt(
                "checksum mismatch: the file is truncated or damaged".into(),
            ));
        }
        drop(r);
        Ok(Self::assemble(
            rows,
            file_identity,
            resets,
            checksum,
            &lengths,
            Store::file(file, start),
        ))
    }

    /// Opens the cache at `path` if it belongs to these rows, this model identity and these
    /// context resets; otherwise computes it with `compute` (given a block of rows, returning
    /// one vector per row), writing each block to the file as it comes, and opens the result.
    /// A stale, corrupt or truncated file is reported with `tracing::warn!` and rebuilt, never
    /// used. `progress` sees the rows done (task `"entropy rows"`), and its stop request ends the
    /// computation between blocks with [`DataError::Interrupted`], leaving no file behind.
    pub fn load_or_compute(
        path: &Path,
        identity: &str,
        rows: &[Row],
        resets: EntropyResets,
        progress: &dyn Progress,
        mut compute: impl FnMut(&[Row]) -> Result<Vec<Vec<f32>>>,
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
        let checksum = rows_checksum(rows);
        let lengths: Vec<usize> = rows.iter().map(Row::num_targets).collect();
        let mut writer = CacheWriter::create(
            path,
            &header(&checksum, identity, resets, lengths.iter().copied()),
        )?;
        progress.start("entropy rows", rows.len());
        let written = (|| {
            for (b, block) in rows.chunks(BLOCK_ROWS).enumerate() {
                if progress.should_stop() {
                    return Err(DataError::Interrupted {
                        done: b * BLOCK_ROWS,
                        total: rows.len(),
                    });
                }
                let values = compute(block)?;
                check_entropies(block, &values)?;
                for row in &values {
                    writer.values(row)?;
                }
                progress.update(b * BLOCK_ROWS + block.len());
            }
            Ok(())
        })();
        progress.finish();
        written?;
        let (file, start) = writer.finish(path)?;
        tracing::info!(path = %path.display(), rows = rows.len(), "saved entropy cache");
        Ok(Self::assemble(
            rows,
            identity.to_string(),
            resets,
            checksum,
            &lengths,
            Store::file(file, start),
        ))
    }
}

/// The file's context-reset byte (see the format table).
fn flags(resets: EntropyResets) -> u8 {
    u8::from(resets.at_newline) | (u8::from(!resets.at_eos) << 1)
}

/// One vector of entropies per row, each with one value per input position; returns their
/// lengths.
fn check_entropies(rows: &[Row], entropies: &[Vec<f32>]) -> Result<Vec<usize>> {
    if entropies.len() != rows.len() {
        return Err(DataError::InvalidConfig(format!(
            "{} entropy vectors for {} rows",
            entropies.len(),
            rows.len()
        )));
    }
    let lengths: Vec<usize> = entropies.iter().map(Vec::len).collect();
    check_lengths(rows, &lengths)?;
    Ok(lengths)
}

/// Every row needs one entropy per input position.
fn check_lengths(rows: &[Row], lengths: &[usize]) -> Result<()> {
    for (row, &found) in rows.iter().zip(lengths) {
        let expected = row.num_targets();
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

/// Reads fields from a cache file, hashing what it reads, up to `size` bytes; errors say where
/// the data ran out.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    pos: u64,
    size: u64,
}

impl<R: Read> HashingReader<R> {
    fn take(&mut self, n: usize) -> std::result::Result<Vec<u8>, String> {
        let truncated = || format!("truncated: {n} bytes expected at offset {}", self.pos);
        if self.pos.saturating_add(n as u64) > self.size {
            return Err(truncated());
        }
        let mut bytes = vec![0u8; n];
        self.inner.read_exact(&mut bytes).map_err(|_| truncated())?;
        self.hasher.update(&bytes);
        self.pos += n as u64;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.take(N)?);
        Ok(out)
    }

    /// Hashes the next `n` bytes without keeping them.
    fn skip_hashing(&mut self, mut n: u64) -> std::result::Result<(), String> {
        let mut buffer = vec![0u8; 1 << 16];
        while n > 0 {
            let chunk = n.min(buffer.len() as u64) as usize;
            self.inner
                .read_exact(&mut buffer[..chunk])
                .map_err(|e| format!("reading at offset {}: {e}", self.pos))?;
            self.hasher.update(&buffer[..chunk]);
            self.pos += chunk as u64;
            n -= chunk as u64;
        }
        Ok(())
    }
}
