//! [`ByteDataset`]: documents filtered and cut into model rows, with nothing lost.
//!
//! # Row format
//!
//! A document of `L` bytes becomes the id sequence `byte + 4 …, EOS` (`L + 1` ids). That
//! sequence is cut into consecutive chunks of at most `max_length − 1` ids, and every chunk is
//! prefixed with BOS, so a row holds at most `max_length` ids. The model reads
//! `row[..n − 1]` and predicts `row[1..]`: every byte of the document, and its EOS, is a target
//! of exactly one row. Long documents are split into windows, never truncated; a continuation
//! row begins with BOS followed by the next bytes (no overlap, so no byte is predicted twice).

use std::{
    borrow::Cow,
    fs::File,
    io::{BufWriter, Read, Seek, SeekFrom, Write},
    ops::Range,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use blt_patching::{BOS_ID, EOS_ID, byte_to_id};
use burn::data::dataset::Dataset;
use serde::{Deserialize, Serialize};

use crate::{
    error::{DataError, Result},
    files::DocumentSink,
    source::DataSource,
    split::{DataSplit, split_documents},
};

/// How documents are filtered, windowed and split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatasetConfig {
    /// Documents shorter than this many bytes are dropped (after empty and whitespace-only ones).
    /// Default: 16.
    pub min_length: usize,
    /// Most ids per row, BOS included (the model reads `max_length − 1` positions), ≥ 2.
    /// Default: 512.
    pub max_length: usize,
    /// Share of documents held out for validation, in [0, 1). Default: 0.05.
    pub valid_fraction: f64,
    /// Seed of the train/validation split. Default: 42.
    pub seed: u64,
}

impl Default for DatasetConfig {
    fn default() -> Self {
        Self {
            min_length: 16,
            max_length: 512,
            valid_fraction: 0.05,
            seed: 42,
        }
    }
}

impl DatasetConfig {
    /// Largest accepted `max_length`.
    pub const MAX_ROW_LENGTH: usize = 1 << 20;

    /// Checks every field; the error names the field and its allowed range.
    pub fn validate(&self) -> Result<()> {
        if !(2..=Self::MAX_ROW_LENGTH).contains(&self.max_length) {
            return Err(DataError::InvalidConfig(format!(
                "max_length ({}) must be in 2..={}",
                self.max_length,
                Self::MAX_ROW_LENGTH
            )));
        }
        if !(self.valid_fraction.is_finite() && (0.0..1.0).contains(&self.valid_fraction)) {
            return Err(DataError::InvalidConfig(format!(
                "valid_fraction ({}) must be in [0, 1)",
                self.valid_fraction
            )));
        }
        Ok(())
    }
}

/// What filtering and windowing did to a corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DatasetStats {
    /// Documents read from the source.
    pub initial_documents: usize,
    /// Empty or whitespace-only (ASCII whitespace) documents removed.
    pub empty_removed: usize,
    /// Documents shorter than `min_length` removed.
    pub too_short_removed: usize,
    /// Documents kept.
    pub kept_documents: usize,
    /// Rows produced from the kept documents.
    pub rows: usize,
    /// Bytes of the kept documents (each a target of exactly one row).
    pub total_bytes: usize,
}

impl DatasetStats {
    /// Mean bytes per kept document.
    pub fn mean_document_bytes(&self) -> f64 {
        self.total_bytes as f64 / self.kept_documents.max(1) as f64
    }
}

/// One model row: BOS, then up to `max_length − 1` ids of one document; every byte and each
/// document's EOS is a target of exactly one row (see [`document_windows`]).
///
/// A row is a view into its dataset's bytes (shared, never copied): cloning one costs a
/// reference count, and its ids are made on demand, so a corpus takes about one byte of memory
/// per byte. A row always starts with BOS, holds the bytes of one document as `byte + 4`, and
/// ends with EOS when it is the document's last.
#[derive(Clone)]
pub struct Row {
    /// Index of the kept document the row comes from.
    pub document: usize,
    /// Row id: its position in [`ByteDataset::rows`], stable for a given corpus and config.
    pub index: usize,
    text: Arc<Text>,
    span: Range<usize>,
    ends_document: bool,
}

/// Where a dataset's bytes live.
pub enum Storage {
    /// In memory: about one byte of RAM per corpus byte.
    Memory,
    /// In an anonymous temporary file in this directory (removed by the system when the
    /// process ends): the corpus never needs to fit in memory, and rows read their bytes when a
    /// batch is built (the page cache keeps them warm).
    TempFile(PathBuf),
}

/// The bytes of a dataset's kept documents, end to end.
enum Text {
    Memory(Vec<u8>),
    File(Mutex<File>),
}

impl Text {
    /// The bytes in `span`.
    ///
    /// # Panics
    /// When the dataset's temporary file cannot be read back (it was written by this process
    /// and is held open, so only a failing disk does that).
    fn read(&self, span: Range<usize>) -> Cow<'_, [u8]> {
        match self {
            Self::Memory(bytes) => Cow::Borrowed(&bytes[span]),
            Self::File(file) => {
                let mut out = vec![0u8; span.len()];
                let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
                file.seek(SeekFrom::Start(span.start as u64))
                    .and_then(|_| file.read_exact(&mut out))
                    .expect("the dataset's temporary file reads back");
                Cow::Owned(out)
            }
        }
    }
}

impl Row {
    /// A row of its own (not part of a dataset): BOS, `bytes`, then EOS when `ends_document`.
    pub fn new(document: usize, index: usize, bytes: &[u8], ends_document: bool) -> Self {
        Self {
            document,
            index,
            text: Arc::new(Text::Memory(bytes.to_vec())),
            span: 0..bytes.len(),
            ends_document,
        }
    }

    /// The document bytes the row holds (after BOS, before any EOS); read from the dataset's
    /// file when its bytes are stored on disk ([`Storage::TempFile`]).
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        self.text.read(self.span.clone())
    }

    /// Whether the row ends its document (its last id is EOS).
    pub fn ends_document(&self) -> bool {
        self.ends_document
    }

    /// Ids in the row: BOS, the bytes, and EOS at a document's end.
    pub fn num_ids(&self) -> usize {
        1 + self.span.len() + usize::from(self.ends_document)
    }

    /// Positions the model reads, which is also the number of targets: `num_ids() − 1`.
    pub fn num_targets(&self) -> usize {
        self.num_ids() - 1
    }

    /// The ids, one after another: BOS, `byte + 4` for each byte, EOS at a document's end.
    pub fn iter_ids(&self) -> impl Iterator<Item = u32> + '_ {
        let bytes = self.bytes();
        let n = bytes.len();
        std::iter::once(BOS_ID)
            .chain((0..n).map(move |i| byte_to_id(bytes[i])))
            .chain(self.ends_document.then_some(EOS_ID))
    }

    /// The ids (see [`iter_ids`](Self::iter_ids)).
    pub fn ids(&self) -> Vec<u32> {
        self.iter_ids().collect()
    }

    /// What the model reads: `ids[..n − 1]`.
    pub fn input(&self) -> Vec<u32> {
        self.iter_ids().take(self.num_targets()).collect()
    }

    /// What the model predicts: `ids[1..]` (aligned with [`input`](Self::input)).
    pub fn targets(&self) -> Vec<u32> {
        self.iter_ids().skip(1).collect()
    }
}

impl PartialEq for Row {
    fn eq(&self, other: &Self) -> bool {
        (self.document, self.index, self.ends_document)
            == (other.document, other.index, other.ends_document)
            && self.bytes() == other.bytes()
    }
}

impl Eq for Row {}

impl std::fmt::Debug for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Row")
            .field("document", &self.document)
            .field("index", &self.index)
            .field("bytes", &self.span.len())
            .field("ends_document", &self.ends_document)
            .finish()
    }
}

/// The rows of a document of `len` bytes as (byte range within the document, ends the
/// document): its `len + 1` ids (bytes, then EOS) in chunks of `max_length − 1`.
fn window_spans(len: usize, max_length: usize) -> impl Iterator<Item = (Range<usize>, bool)> {
    let chunk = max_length - 1;
    (0..(len + 1).div_ceil(chunk)).map(move |k| {
        let start = k * chunk;
        let end = (start + chunk).min(len + 1);
        (start..end.min(len), end == len + 1)
    })
}

/// Cuts one document into rows of at most `max_length` ids (`max_length ≥ 2`): the document's
/// `bytes + 4` followed by EOS, in chunks of `max_length − 1`, each prefixed with BOS.
///
/// ```
/// use blt_data::document_windows;
/// // "abc" -> [a b c EOS] -> chunks of 2 -> [BOS a b], [BOS c EOS]
/// assert_eq!(document_windows(b"abc", 3), vec![vec![1, 101, 102], vec![1, 103, 2]]);
/// ```
pub fn document_windows(bytes: &[u8], max_length: usize) -> Vec<Vec<u32>> {
    assert!(max_length >= 2, "max_length must be at least 2");
    let ids: Vec<u32> = bytes
        .iter()
        .map(|&b| byte_to_id(b))
        .chain(std::iter::once(EOS_ID))
        .collect();
    ids.chunks(max_length - 1)
        .map(|chunk| {
            let mut row = Vec::with_capacity(chunk.len() + 1);
            row.push(BOS_ID);
            row.extend_from_slice(chunk);
            row
        })
        .collect()
}

/// A corpus as model rows, built once from documents; implements burn's [`Dataset`] over all
/// rows, and [`split`](Self::split) gives the train and validation datasets.
///
/// The kept documents' bytes are stored once, end to end, and every [`Row`] is a view into
/// them: a dataset takes about one byte of memory per corpus byte, plus 48 bytes per row.
#[derive(Debug, Clone)]
pub struct ByteDataset {
    config: DatasetConfig,
    stats: DatasetStats,
    rows: Arc<Vec<Row>>,
    document_rows: Vec<Range<usize>>,
}

/// The bytes being written: in memory, or appended to a temporary file.
enum TextWriter {
    Memory(Vec<u8>),
    File(BufWriter<File>, usize),
}

impl TextWriter {
    fn len(&self) -> usize {
        match self {
            Self::Memory(bytes) => bytes.len(),
            Self::File(_, len) => *len,
        }
    }

    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        match self {
            Self::Memory(text) => text.extend_from_slice(bytes),
            Self::File(out, len) => {
                out.write_all(bytes).map_err(spill_error)?;
                *len += bytes.len();
            }
        }
        Ok(())
    }

    /// Drops everything from `len` on (a document the filters removed).
    fn truncate(&mut self, len: usize) -> Result<()> {
        match self {
            Self::Memory(text) => text.truncate(len),
            Self::File(out, written) => {
                out.flush().map_err(spill_error)?;
                let file = out.get_mut();
                file.set_len(len as u64)
                    .and_then(|()| file.seek(SeekFrom::Start(len as u64)).map(|_| ()))
                    .map_err(spill_error)?;
                *written = len;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Text> {
        Ok(match self {
            Self::Memory(mut text) => {
                // Give back a reservation that overshot by more than an eighth (JSONL syntax,
                // filtered documents); a small slack is not worth a reallocation.
                if text.capacity() - text.len() > text.len() / 8 {
                    text.shrink_to_fit();
                }
                Text::Memory(text)
            }
            Self::File(out, _) => Text::File(Mutex::new(
                out.into_inner().map_err(|e| spill_error(e.into_error()))?,
            )),
        })
    }
}

fn spill_error(e: std::io::Error) -> DataError {
    DataError::io(
        "writing the dataset's temporary file in",
        std::env::temp_dir(),
        e,
    )
}

/// Documents filtered and cut into row spans as they stream in.
struct Builder {
    config: DatasetConfig,
    stats: DatasetStats,
    text: TextWriter,
    /// Where the current document starts in `text`, and whether it is blank so far.
    document_start: usize,
    blank: bool,
    /// (document, byte range in `text`, ends the document)
    spans: Vec<(usize, Range<usize>, bool)>,
    document_rows: Vec<Range<usize>>,
}

impl DocumentSink for Builder {
    fn begin(&mut self) {
        self.document_start = self.text.len();
        self.blank = true;
    }

    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        self.blank &= bytes.iter().all(u8::is_ascii_whitespace);
        self.text.append(bytes)
    }

    fn end(&mut self) -> Result<()> {
        self.stats.initial_documents += 1;
        let offset = self.document_start;
        let len = self.text.len() - offset;
        if self.blank {
            self.stats.empty_removed += 1;
            return self.text.truncate(offset);
        }
        if len < self.config.min_length {
            self.stats.too_short_removed += 1;
            return self.text.truncate(offset);
        }
        let document = self.document_rows.len();
        let first = self.spans.len();
        for (span, ends) in window_spans(len, self.config.max_length) {
            let span = offset + span.start..offset + span.end;
            self.spans.push((document, span, ends));
        }
        self.document_rows.push(first..self.spans.len());
        self.stats.total_bytes += len;
        Ok(())
    }
}

impl Builder {
    fn push(&mut self, bytes: &[u8]) -> Result<()> {
        self.begin();
        self.append(bytes)?;
        self.end()
    }

    fn finish(mut self) -> Result<ByteDataset> {
        let stats = &mut self.stats;
        stats.kept_documents = self.document_rows.len();
        stats.rows = self.spans.len();
        if stats.kept_documents == 0 {
            return Err(DataError::NoDocuments {
                initial: stats.initial_documents,
                empty: stats.empty_removed,
                too_short: stats.too_short_removed,
                min_length: self.config.min_length,
            });
        }
        let on_disk = matches!(self.text, TextWriter::File(..));
        let text = Arc::new(self.text.finish()?);
        let rows = self
            .spans
            .into_iter()
            .enumerate()
            .map(|(index, (document, span, ends_document))| Row {
                document,
                index,
                text: Arc::clone(&text),
                span,
                ends_document,
            })
            .collect();
        tracing::info!(
            initial_documents = stats.initial_documents,
            empty_removed = stats.empty_removed,
            too_short_removed = stats.too_short_removed,
            kept_documents = stats.kept_documents,
            rows = stats.rows,
            total_bytes = stats.total_bytes,
            max_length = self.config.max_length,
            on_disk,
            "built byte dataset"
        );
        Ok(ByteDataset {
            config: self.config,
            stats: self.stats,
            rows: Arc::new(rows),
            document_rows: self.document_rows,
        })
    }
}

impl ByteDataset {
    /// Filters the documents (empty or whitespace-only, then shorter than `min_length`), cuts
    /// the rest into rows, and logs the [`DatasetStats`]. Fails when no document is left.
    pub fn new(
        documents: impl IntoIterator<Item = Vec<u8>>,
        config: DatasetConfig,
    ) -> Result<Self> {
        let mut builder = Self::builder(config, Storage::Memory)?;
        for bytes in documents {
            builder.push(&bytes)?;
        }
        builder.finish()
    }

    fn builder(config: DatasetConfig, storage: Storage) -> Result<Builder> {
        config.validate()?;
        let text = match storage {
            Storage::Memory => TextWriter::Memory(Vec::new()),
            Storage::TempFile(dir) => {
                let file = tempfile::tempfile_in(&dir)
                    .map_err(|e| DataError::io("creating a temporary file in", &dir, e))?;
                TextWriter::File(BufWriter::with_capacity(1 << 20, file), 0)
            }
        };
        Ok(Builder {
            config,
            stats: DatasetStats::default(),
            text,
            document_start: 0,
            blank: true,
            spans: Vec::new(),
            document_rows: Vec::new(),
        })
    }

    /// Streams `source` into a dataset in memory, from its first `max_documents` documents
    /// (all with 0): files are read a chunk or a JSONL line at a time, so memory holds the
    /// dataset and little else.
    pub fn from_source(
        source: &DataSource,
        config: DatasetConfig,
        max_documents: usize,
    ) -> Result<Self> {
        Self::from_source_stored(source, config, max_documents, Storage::Memory)
    }

    /// [`from_source`](Self::from_source) keeping the bytes where `storage` says: with
    /// [`Storage::TempFile`] a corpus larger than memory streams from its files into a
    /// temporary file, and the dataset holds 48 bytes per row in memory.
    pub fn from_source_stored(
        source: &DataSource,
        config: DatasetConfig,
        max_documents: usize,
        storage: Storage,
    ) -> Result<Self> {
        let mut builder = Self::builder(config, storage)?;
        // One allocation of the whole corpus instead of doublings, which would briefly hold
        // two copies of it.
        if let (TextWriter::Memory(text), Some(bytes)) = (&mut builder.text, source.size_hint())
            && max_documents == 0
        {
            text.reserve_exact(usize::try_from(bytes).unwrap_or(0));
        }
        source.stream(max_documents, &mut builder)?;
        builder.finish()
    }

    /// The config it was built with.
    pub fn config(&self) -> &DatasetConfig {
        &self.config
    }

    /// What filtering and windowing did.
    pub fn stats(&self) -> &DatasetStats {
        &self.stats
    }

    /// Every row, in document order; `rows()[i].index == i`.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Number of kept documents.
    pub fn num_documents(&self) -> usize {
        self.document_rows.len()
    }

    /// The rows of kept document `document`, in order.
    pub fn rows_of(&self, document: usize) -> &[Row] {
        &self.rows[self.document_rows[document].clone()]
    }

    /// The deterministic train/validation split by document (see [`DataSplit`]).
    pub fn split(&self) -> DataSplit {
        split_documents(
            &self.rows,
            &self.document_rows,
            self.config.valid_fraction,
            self.config.seed,
        )
    }
}

impl Dataset<Row> for ByteDataset {
    fn get(&self, index: usize) -> Option<Row> {
        self.rows.get(index).cloned()
    }

    fn len(&self) -> usize {
        self.rows.len()
    }
}
