//! [`DataSource`]: where a corpus comes from, written as one string (a command-line `--data`
//! value or a config field), and how it is read into documents.
//!
//! # Syntax
//!
//! | string | documents |
//! |---|---|
//! | `builtin:kjv` | the embedded King James Bible, one document per chapter |
//! | `hub:openwebtext`, `hub:wikitext-103` | a Hugging Face dataset (feature `hub`), one document per record, at most `max_documents` |
//! | `hub:wikitext-103:max_documents=5000` | the same with an explicit limit |
//! | `path/to/file.txt` (any name not ending in `.jsonl`) | the whole file is one document |
//! | `path/to/file.jsonl` | one document per line: the line's JSON object's `text` string |
//! | `path/to/file.jsonl:field=content` | the same, reading the `content` field |
//! | `path/to/dir` | every `*.txt` file under `dir`, at any depth (pattern `**/*.txt`) |
//! | `path/to/dir/**/*.md`, `dir/*.txt`, `dir/books/ch?.txt` | the files under the directory before the first wildcard whose relative path matches the rest (see [`GlobPattern`]) |
//!
//! Files ending in `.gz` are decompressed. Inside a directory or glob, files named `*.jsonl`
//! (or `*.jsonl.gz`) are read as JSONL and every other matched file as one text document;
//! files are read in sorted path order, so the document order is deterministic. Options follow
//! the last `:` as `key=value` pairs separated by `,`: `field` (the JSONL text field, default
//! `text`) for files, `max_documents` for hub datasets.
//!
//! Documents are raw bytes: invalid UTF-8 in a text file is kept as it is.

use std::{fmt, path::PathBuf};

use crate::{
    builtin::BuiltinCorpus,
    error::{DataError, Result},
    files::{self, DocumentSink},
    glob::GlobPattern,
    hub::{self, HubDataset},
};

/// The JSONL text field used when none is given.
pub const DEFAULT_TEXT_FIELD: &str = "text";

/// Where documents come from. Parse one with [`DataSource::parse`]; [`Display`](fmt::Display)
/// writes the same syntax back.
///
/// ```
/// use blt_data::DataSource;
/// let s = DataSource::parse("corpus/**/*.md").unwrap();
/// assert_eq!(s.to_string(), "corpus/**/*.md");
/// let j = DataSource::parse("news.jsonl:field=body").unwrap();
/// assert_eq!(j.to_string(), "news.jsonl:field=body");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// A corpus embedded in the binary.
    Builtin(BuiltinCorpus),
    /// A Hugging Face dataset, fetched through burn-dataset (feature `hub`).
    Hub {
        /// Which dataset.
        dataset: HubDataset,
        /// Keep at most this many records (in the dataset's order).
        max_documents: usize,
    },
    /// Local files: one file, a directory, or the files under a directory matching a pattern.
    Files {
        /// The file, or the directory searched.
        path: PathBuf,
        /// Files under `path` to read; `None` reads `path` itself when it is a file and
        /// [`GlobPattern::DEFAULT`] under it when it is a directory.
        pattern: Option<GlobPattern>,
        /// The string field of each JSONL object that holds the text.
        text_field: String,
    },
}

impl DataSource {
    /// Parses a data source string: `builtin:kjv`, `hub:NAME[:max_documents=N]`, a file (`.jsonl`
    /// with `:field=NAME`), a directory, or a directory with a glob; `.gz` files are
    /// decompressed. Fails with a message naming what is wrong.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |reason: String| DataError::InvalidSource {
            source_text: text.to_string(),
            reason,
        };
        if text.trim().is_empty() {
            return Err(invalid("it is empty".into()));
        }
        if let Some(name) = text.strip_prefix("builtin:") {
            return BuiltinCorpus::from_name(name)
                .map(Self::Builtin)
                .ok_or_else(|| {
                    invalid(format!(
                        "unknown built-in corpus `{name}` (known: {})",
                        BuiltinCorpus::NAMES.join(", ")
                    ))
                });
        }
        if let Some(rest) = text.strip_prefix("hub:") {
            let (name, options) = split_options(rest);
            let dataset = HubDataset::from_name(name).ok_or_else(|| {
                invalid(format!(
                    "unknown hub dataset `{name}` (known: {})",
                    HubDataset::NAMES.join(", ")
                ))
            })?;
            let mut max_documents = dataset.default_max_documents();
            for (key, value) in options.map_err(&invalid)? {
                match key {
                    "max_documents" => {
                        max_documents =
                            value
                                .parse::<usize>()
                                .ok()
                                .filter(|&n| n > 0)
                                .ok_or_else(|| {
                                    invalid(format!(
                                        "max_documents ({value}) must be a positive integer"
                                    ))
                                })?
                    }
                    _ => {
                        return Err(invalid(format!(
                            "unknown hub option `{key}` (known: max_documents)"
                        )));
                    }
                }
            }
            return Ok(Self::Hub {
                dataset,
                max_documents,
            });
        }
        let (path, options) = split_options(text);
        let mut text_field = DEFAULT_TEXT_FIELD.to_string();
        for (key, value) in options.map_err(&invalid)? {
            match key {
                "field" if !value.is_empty() => text_field = value.to_string(),
                "field" => return Err(invalid("field must not be empty".into())),
                _ => {
                    return Err(invalid(format!(
                        "unknown file option `{key}` (known: field)"
                    )));
                }
            }
        }
        let (root, pattern) = split_glob(path);
        let pattern = match pattern {
            Some(p) => Some(
                GlobPattern::new(&p)
                    .ok_or_else(|| invalid(format!("`{p}` is not a valid glob pattern")))?,
            ),
            None => None,
        };
        Ok(Self::Files {
            path: PathBuf::from(root),
            pattern,
            text_field,
        })
    }

    /// Reads every document. Errors name the file (and the line, for JSONL).
    pub fn load(&self) -> Result<Vec<Vec<u8>>> {
        let mut collected = Collect::default();
        self.stream(0, &mut collected)?;
        Ok(collected.documents)
    }

    /// The bytes the documents take, when the file sizes say it (uncompressed files; JSONL
    /// counts its syntax too); `None` for compressed files, the built-in corpus and hub
    /// datasets. A hint for reserving memory once instead of growing it.
    pub fn size_hint(&self) -> Option<u64> {
        let Self::Files { path, pattern, .. } = self else {
            return None;
        };
        let mut total = 0u64;
        for file in files::matched(path, pattern.as_ref()).ok()? {
            if file.extension().is_some_and(|e| e == "gz") {
                return None;
            }
            total += std::fs::metadata(&file).ok()?.len();
        }
        Some(total)
    }

    /// Streams the documents into `sink` in order and stops after `limit` of them (0: all;
    /// files after the limit are not opened). Files stream a chunk or a JSONL line at a time,
    /// so neither a large file nor the corpus is ever held whole. Errors name the file (and the
    /// line, for JSONL).
    pub(crate) fn stream(&self, limit: usize, sink: &mut dyn DocumentSink) -> Result<()> {
        let mut left = if limit == 0 { usize::MAX } else { limit };
        let mut whole = |documents: Vec<Vec<u8>>, sink: &mut dyn DocumentSink| {
            for document in documents.into_iter().take(left) {
                sink.begin();
                sink.append(&document)?;
                sink.end()?;
                left -= 1;
            }
            Ok::<_, DataError>(())
        };
        match self {
            Self::Builtin(corpus) => whole(corpus.documents()?, sink)?,
            Self::Hub {
                dataset,
                max_documents,
            } => whole(hub::load(*dataset, *max_documents)?, sink)?,
            Self::Files {
                path,
                pattern,
                text_field,
            } => {
                for file in files::matched(path, pattern.as_ref())? {
                    files::stream_file(&file, text_field, sink, &mut left)?;
                    if left == 0 {
                        break;
                    }
                }
            }
        }
        tracing::info!(source = %self, "read corpus");
        Ok(())
    }
}

/// Collects whole documents (for [`DataSource::load`]).
#[derive(Default)]
struct Collect {
    documents: Vec<Vec<u8>>,
}

impl DocumentSink for Collect {
    fn begin(&mut self) {
        self.documents.push(Vec::new());
    }

    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        if let Some(last) = self.documents.last_mut() {
            last.extend_from_slice(bytes);
        }
        Ok(())
    }

    fn end(&mut self) -> Result<()> {
        Ok(())
    }
}

impl fmt::Display for DataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Builtin(corpus) => write!(f, "builtin:{}", corpus.name()),
            Self::Hub {
                dataset,
                max_documents,
            } => {
                write!(f, "hub:{}", dataset.name())?;
                if *max_documents != dataset.default_max_documents() {
                    write!(f, ":max_documents={max_documents}")?;
                }
                Ok(())
            }
            Self::Files {
                path,
                pattern,
                text_field,
            } => {
                let root = path.display().to_string();
                match pattern {
                    Some(p) if root == "." => write!(f, "{p}")?,
                    Some(p) => write!(f, "{}/{p}", root.trim_end_matches('/'))?,
                    None => write!(f, "{root}")?,
                }
                if text_field != DEFAULT_TEXT_FIELD {
                    write!(f, ":field={text_field}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::str::FromStr for DataSource {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

type Options<'a> = std::result::Result<Vec<(&'a str, &'a str)>, String>;

/// Splits `base:key=value,key=value` into the base and its options; a last `:` whose tail has
/// no `=` belongs to the base.
fn split_options(text: &str) -> (&str, Options<'_>) {
    match text.rsplit_once(':') {
        Some((base, tail)) if tail.contains('=') => {
            let options = tail
                .split(',')
                .map(|pair| {
                    pair.split_once('=')
                        .map(|(k, v)| (k.trim(), v.trim()))
                        .ok_or_else(|| format!("option `{pair}` is not key=value"))
                })
                .collect();
            (base, options)
        }
        _ => (text, Ok(Vec::new())),
    }
}

/// Splits a path at its first component holding a wildcard: `a/b/**/*.md` → (`a/b`, `**/*.md`).
fn split_glob(path: &str) -> (String, Option<String>) {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.iter().position(|p| GlobPattern::has_wildcards(p)) {
        None => (path.to_string(), None),
        Some(i) => {
            let root = parts[..i].join("/");
            let root = match root.as_str() {
                "" if path.starts_with('/') => "/".to_string(),
                "" => ".".to_string(),
                _ => root,
            };
            (root, Some(parts[i..].join("/")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_every_form() {
        for text in [
            "builtin:kjv",
            "hub:openwebtext",
            "hub:wikitext-103:max_documents=5",
            "some/file.txt",
            "data.jsonl",
            "data.jsonl:field=content",
            "dir",
            "dir/**/*.md",
            "*.txt",
            "/abs/dir/*.txt",
        ] {
            let source = DataSource::parse(text).unwrap();
            assert_eq!(source.to_string(), text);
            assert_eq!(DataSource::parse(&source.to_string()).unwrap(), source);
        }
        let s = DataSource::parse("a/b/**/x*.md").unwrap();
        let DataSource::Files { path, pattern, .. } = s else {
            panic!("not files")
        };
        assert_eq!(path, PathBuf::from("a/b"));
        assert_eq!(pattern.unwrap().as_str(), "**/x*.md");
        let hub = DataSource::parse("hub:openwebtext").unwrap();
        assert_eq!(
            hub,
            DataSource::Hub {
                dataset: HubDataset::OpenWebText,
                max_documents: 110_000
            }
        );
    }

    #[test]
    fn rejects_bad_sources_with_a_reason() {
        for (text, needle) in [
            ("", "empty"),
            ("builtin:nope", "unknown built-in corpus"),
            ("hub:pile", "unknown hub dataset"),
            ("hub:openwebtext:max_documents=0", "max_documents"),
            ("hub:openwebtext:limit=3", "unknown hub option"),
            ("x.jsonl:field=", "field"),
            ("x.jsonl:colour=red", "unknown file option"),
        ] {
            let err = DataSource::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
