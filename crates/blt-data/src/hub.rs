//! Hugging Face hub datasets (`hub:openwebtext`, `hub:wikitext-103`), read through burn-dataset's
//! `HuggingfaceDatasetLoader` when the `hub` feature is on.
//!
//! The loader shells out to `python3`, builds a virtual environment, pip-installs the `datasets`
//! library and downloads the whole dataset into an SQLite file under the user's cache directory
//! (`~/.cache/burn-dataset`), so it needs python3 and network access the first time. Every
//! failure is reported as one line that says what is missing and how to use local files instead.
//! Without the feature, a `hub:` source fails with a one-line error asking for a rebuild.

use crate::error::{DataError, Result};

/// A dataset preset on the Hugging Face hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HubDataset {
    /// OpenWebText (`Skylion007/openwebtext`, split `train`); default limit 110,000 documents.
    OpenWebText,
    /// WikiText-103 (`wikitext`, subset `wikitext-103-raw-v1`, split `train`, one record per
    /// paragraph or heading line); default limit 100,000 documents.
    WikiText103,
}

impl HubDataset {
    /// Every preset name.
    pub const NAMES: &'static [&'static str] = &["openwebtext", "wikitext-103"];

    /// The preset with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "openwebtext" => Some(Self::OpenWebText),
            "wikitext-103" => Some(Self::WikiText103),
            _ => None,
        }
    }

    /// The preset name, as written after `hub:`.
    pub fn name(self) -> &'static str {
        match self {
            Self::OpenWebText => "openwebtext",
            Self::WikiText103 => "wikitext-103",
        }
    }

    /// The hub repository, its subset and the split read.
    pub fn repository(self) -> (&'static str, Option<&'static str>, &'static str) {
        match self {
            Self::OpenWebText => ("Skylion007/openwebtext", None, "train"),
            Self::WikiText103 => ("wikitext", Some("wikitext-103-raw-v1"), "train"),
        }
    }

    /// The SQLite file burn-dataset's loader keeps the dataset in (under its cache directory):
    /// the repository and subset names with `/` removed, joined by `-`.
    pub fn db_file_name(self) -> &'static str {
        match self {
            Self::OpenWebText => "Skylion007openwebtext.db",
            Self::WikiText103 => "wikitext-wikitext-103-raw-v1.db",
        }
    }

    /// Documents kept when no `max_documents` is given.
    pub fn default_max_documents(self) -> usize {
        match self {
            Self::OpenWebText => 110_000,
            Self::WikiText103 => 100_000,
        }
    }
}

/// Whether any of these `host:port` addresses accepts a TCP connection within 5 seconds.
#[cfg(feature = "hub")]
fn reachable(addresses: &[&str]) -> bool {
    use std::net::{TcpStream, ToSocketAddrs};
    addresses.iter().any(|address| {
        address.to_socket_addrs().is_ok_and(|mut addrs| {
            addrs.any(|a| TcpStream::connect_timeout(&a, std::time::Duration::from_secs(5)).is_ok())
        })
    })
}

/// Reads at most `max_documents` records of a hub dataset.
#[cfg(not(feature = "hub"))]
pub(crate) fn load(dataset: HubDataset, _max_documents: usize) -> Result<Vec<Vec<u8>>> {
    Err(DataError::HubDisabled {
        name: dataset.name().to_string(),
    })
}

/// Reads at most `max_documents` records of a hub dataset.
#[cfg(feature = "hub")]
pub(crate) fn load(dataset: HubDataset, max_documents: usize) -> Result<Vec<Vec<u8>>> {
    use burn::data::dataset::Dataset;
    use burn_dataset::{HuggingfaceDatasetLoader, SqliteDataset};

    /// One record: only the text column is read.
    #[derive(Debug, Clone, serde::Deserialize)]
    struct Record {
        text: String,
    }

    const LOCAL: &str = "or use local files instead (a .txt/.jsonl file or a directory)";
    let fail = |message: String| DataError::Hub {
        name: dataset.name().to_string(),
        message,
    };
    let python = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !python {
        return Err(fail(format!(
            "python3 was not found; the hub loader needs python3 (with venv and pip) and \
             network access to PyPI and huggingface.co; {LOCAL}"
        )));
    }
    let (repo, subset, split) = dataset.repository();
    let cached = burn_dataset::SqliteDatasetStorage::base_dir(None).join(dataset.db_file_name());
    if !cached.exists() && !reachable(&["pypi.org:443", "huggingface.co:443"]) {
        return Err(fail(format!(
            "no network: the first download needs access to PyPI and huggingface.co (nothing \
             cached at {}); {LOCAL}",
            cached.display()
        )));
    }
    let mut loader = HuggingfaceDatasetLoader::new(repo);
    if let Some(subset) = subset {
        loader = loader.with_subset(subset);
    }
    tracing::info!(
        dataset = dataset.name(),
        repo,
        split,
        "loading hub dataset (python3 + network)"
    );
    // The loader panics on some failures (a directory it cannot create, a process it cannot
    // start): report those like its errors.
    let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        loader.dataset::<Record>(split).map_err(|e| e.to_string())
    }))
    .unwrap_or_else(|panic| {
        Err(panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the loader panicked".into()))
    });
    let records: SqliteDataset<Record> = loaded.map_err(|e| {
        fail(format!(
            "download or import failed ({}); it needs python3 with venv and pip and network \
             access to PyPI and huggingface.co; {LOCAL}",
            e.replace('\n', " ")
        ))
    })?;
    let n = records.len().min(max_documents);
    let mut documents = Vec::with_capacity(n);
    for i in 0..n {
        let record = records
            .get(i)
            .ok_or_else(|| fail(format!("record {i} could not be read from the local cache")))?;
        documents.push(record.text.into_bytes());
    }
    Ok(documents)
}
