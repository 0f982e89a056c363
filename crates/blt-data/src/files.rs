//! Reading local files into documents: plain text (one document per file), JSONL (one document
//! per line) and directories walked recursively under a [`GlobPattern`].

use std::{
    fs,
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
};

use flate2::read::GzDecoder;

use crate::{
    error::{DataError, Result},
    glob::GlobPattern,
};

/// The files of a `Files` source (see [`DataSource`](crate::DataSource)), in the order their
/// documents are read: the file itself, or the matches under the directory in sorted order.
pub(crate) fn matched(path: &Path, pattern: Option<&GlobPattern>) -> Result<Vec<PathBuf>> {
    let meta = fs::metadata(path).map_err(|e| DataError::io("reading", path, e))?;
    if pattern.is_none() && !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !meta.is_dir() {
        return Err(DataError::Io {
            action: "listing directory",
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        });
    }
    let default = GlobPattern::new(GlobPattern::DEFAULT).expect("the default pattern is valid");
    let pattern = pattern.unwrap_or(&default);
    let mut matched = Vec::new();
    walk(path, path, pattern, &mut matched)?;
    if matched.is_empty() {
        return Err(DataError::NoFiles {
            root: path.to_path_buf(),
            pattern: pattern.to_string(),
        });
    }
    matched.sort();
    tracing::debug!(root = %path.display(), %pattern, files = matched.len(), "matched files");
    Ok(matched)
}

/// Collects the files under `dir` whose path relative to `root` matches. Symbolic links to
/// files are followed; links to directories are not (no cycles).
fn walk(root: &Path, dir: &Path, pattern: &GlobPattern, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| DataError::io("listing directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| DataError::io("listing directory", dir, e))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| DataError::io("reading", &path, e))?;
        if kind.is_dir() {
            walk(root, &path, pattern, out)?;
            continue;
        }
        let is_file =
            kind.is_file() || (kind.is_symlink() && fs::metadata(&path).is_ok_and(|m| m.is_file()));
        if is_file && pattern.matches(&relative_name(root, &path)) {
            out.push(path);
        }
    }
    Ok(())
}

/// `path` relative to `root`, components joined by `/` (lossy for non-UTF-8 names).
fn relative_name(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether a file is read as JSONL (`*.jsonl` or `*.jsonl.gz`).
pub(crate) fn is_jsonl(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    name.ends_with(".jsonl") || name.ends_with(".jsonl.gz")
}

/// Receives documents as they are read: [`begin`](Self::begin), any number of
/// [`append`](Self::append)s, then [`end`](Self::end).
pub(crate) trait DocumentSink {
    /// A document starts.
    fn begin(&mut self);
    /// The next bytes of the current document.
    fn append(&mut self, bytes: &[u8]) -> Result<()>;
    /// The current document is complete.
    fn end(&mut self) -> Result<()>;
}

/// Bytes read at a time from a plain file.
const CHUNK: usize = 1 << 20;

/// Streams one file's documents into `sink`: the whole file as one document, or one per
/// non-blank JSONL line (the string `text_field` of the line's object); `*.gz` files are
/// decompressed on the way. At most `*left` documents are read, and `*left` counts down. Memory
/// holds one chunk or one line at a time, so a file larger than memory streams through.
pub(crate) fn stream_file(
    path: &Path,
    text_field: &str,
    sink: &mut dyn DocumentSink,
    left: &mut usize,
) -> Result<()> {
    if *left == 0 {
        return Ok(());
    }
    let file = fs::File::open(path).map_err(|e| DataError::io("reading", path, e))?;
    let gz = path.extension().is_some_and(|e| e == "gz");
    let action = if gz { "decompressing" } else { "reading" };
    let mut reader: Box<dyn BufRead> = if gz {
        Box::new(BufReader::new(GzDecoder::new(BufReader::new(file))))
    } else {
        Box::new(BufReader::with_capacity(CHUNK, file))
    };
    if !is_jsonl(path) {
        sink.begin();
        let mut chunk = vec![0u8; CHUNK];
        loop {
            let n = reader
                .read(&mut chunk)
                .map_err(|e| DataError::io(action, path, e))?;
            if n == 0 {
                break;
            }
            sink.append(&chunk[..n])?;
        }
        *left -= 1;
        return sink.end();
    }
    let mut line = Vec::new();
    let mut line_no = 0;
    while *left > 0 {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| DataError::io(action, path, e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if let Some(text) = jsonl_text(path, line_no, &line, text_field)? {
            sink.begin();
            sink.append(text.as_bytes())?;
            sink.end()?;
            *left -= 1;
        }
    }
    Ok(())
}

/// The document of one JSONL line: the string `text_field` of the line's JSON object, or
/// `None` for a blank line; anything else is an error naming the line.
fn jsonl_text(
    path: &Path,
    line_no: usize,
    line: &[u8],
    text_field: &str,
) -> Result<Option<String>> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|source| DataError::JsonLine {
            path: path.to_path_buf(),
            line: line_no,
            source,
        })?;
    let field_error = |problem: String| DataError::JsonField {
        path: path.to_path_buf(),
        line: line_no,
        field: text_field.to_string(),
        problem,
    };
    let serde_json::Value::Object(mut object) = value else {
        return Err(field_error(format!(
            "cannot be read: the line is {}, not an object",
            json_kind(&value)
        )));
    };
    match object.remove(text_field) {
        Some(serde_json::Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(field_error(format!(
            "is {}, not a string",
            json_kind(&other)
        ))),
        None => Err(field_error("is missing".into())),
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
