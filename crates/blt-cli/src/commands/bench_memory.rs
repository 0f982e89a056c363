//! `blt-cli bench --corpus-mb N`: memory per corpus byte of the data pipeline on a synthetic
//! corpus, in a process of its own (peak resident memory is per process). It writes `N` MB of
//! text files (King James chapters in a seeded order), builds the dataset and its split as a
//! run does, then builds the entropy cache over every row with stand-in values (a real entropy
//! model would take hours on a corpus this size; the cache's memory does not depend on its
//! values) and reads every row's ids and entropies back once, as an epoch does; with the
//! corpus on disk (`data.in_memory = false`), then in memory.

use std::{io::Write, path::Path, time::Instant};

use anyhow::{Context, Result};
use blt_data::{BuiltinCorpus, ByteDataset, DataSource, DatasetConfig, EntropyCache, Row, Storage};
use blt_model::EntropyResets;
use serde_json::{Value, json};

/// Bytes per synthetic file (each file is one document).
const FILE_BYTES: usize = 16 << 20;

/// Resident memory now and at its peak (`VmRSS`, `VmHWM`), bytes.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Writes `bytes` of text into files of [`FILE_BYTES`] under `dir`.
fn write_corpus(dir: &Path, bytes: usize) -> Result<()> {
    let chapters = blt_data::split_chapters(&BuiltinCorpus::Kjv.text()?);
    let order = blt_data::permutation(chapters.len(), 7);
    let (mut written, mut next, mut file_index) = (0usize, 0usize, 0usize);
    while written < bytes {
        let path = dir.join(format!("part-{file_index:05}.txt"));
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        );
        let mut in_file = 0;
        while in_file < FILE_BYTES.min(bytes - written) {
            let chapter = &chapters[order[next % order.len()]];
            next += 1;
            let take = chapter.len().min(FILE_BYTES.min(bytes - written) - in_file);
            file.write_all(&chapter[..take])?;
            in_file += take;
        }
        file.flush()?;
        written += in_file;
        file_index += 1;
    }
    Ok(())
}

/// Builds the dataset from `corpus` with `storage` as a run does (rows, split, every row in a
/// batch group), then its entropy cache with stand-in values, and reads every row's entropies
/// once; returns the timings and the peak resident memory above `baseline` per corpus byte.
fn pipeline(corpus: &Path, scratch: &Path, storage: Storage, baseline: u64) -> Result<Value> {
    let started = Instant::now();
    let source = DataSource::parse(&corpus.to_string_lossy())?;
    let config = DatasetConfig {
        max_length: 512,
        ..DatasetConfig::default()
    };
    let dataset = ByteDataset::from_source_stored(&source, config, 0, storage)?;
    let split = dataset.split();
    let groups: Vec<Vec<Row>> = split
        .train
        .rows()
        .chain(split.valid.rows())
        .cloned()
        .collect::<Vec<_>>()
        .chunks(16)
        .map(<[Row]>::to_vec)
        .collect();
    let dataset_seconds = started.elapsed().as_secs_f64();
    let (_, dataset_peak) = rss();

    let started = Instant::now();
    let resets = EntropyResets {
        at_newline: false,
        at_eos: true,
    };
    let cache_path = scratch.join("entropy_cache.bin");
    let cache = EntropyCache::load_or_compute(
        &cache_path,
        "synthetic",
        dataset.rows(),
        resets,
        &(),
        |block| Ok(block.iter().map(|r| vec![1.0; r.num_targets()]).collect()),
    )?;
    let cache_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let (mut values, mut ids) = (0usize, 0usize);
    for row in groups.iter().flatten() {
        values += cache.get(row.index).map_or(0, |h| h.len());
        ids += row.input().len();
    }
    let read_seconds = started.elapsed().as_secs_f64();
    let (_, peak) = rss();
    let cache_file_bytes = std::fs::metadata(&cache_path)?.len();
    std::fs::remove_file(&cache_path)?;

    let corpus_bytes = dataset.stats().total_bytes as f64;
    let per_byte = |peak: u64| peak.saturating_sub(baseline) as f64 / corpus_bytes;
    Ok(json!({
        "corpus_bytes": dataset.stats().total_bytes,
        "documents": dataset.num_documents(),
        "rows": dataset.rows().len(),
        "dataset_seconds": dataset_seconds,
        "dataset_peak_bytes_per_corpus_byte": per_byte(dataset_peak),
        "entropy_cache_seconds": cache_seconds,
        "entropy_cache_file_bytes": cache_file_bytes,
        "epoch_read_seconds": read_seconds,
        "epoch_read_values": values,
        "epoch_read_ids": ids,
        "peak_bytes_per_corpus_byte": per_byte(peak),
    }))
}

/// Runs the measurement on `megabytes` MB and returns its JSON: the dataset on disk first
/// (`data.in_memory = false`), then in memory (peak resident memory only grows, so the
/// smaller footprint is measured first).
pub fn corpus_memory(megabytes: usize) -> Result<Value> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let corpus = dir.path().join("corpus");
    std::fs::create_dir_all(&corpus)?;
    write_corpus(&corpus, megabytes << 20)?;
    let (baseline, _) = rss();
    let on_disk = pipeline(
        &corpus,
        dir.path(),
        Storage::TempFile(dir.path().to_path_buf()),
        baseline,
    )?;
    let in_memory = pipeline(&corpus, dir.path(), Storage::Memory, baseline)?;
    Ok(json!({
        "baseline_rss_bytes": baseline,
        "in_memory": in_memory,
        "on_disk": on_disk,
        "peak_bytes_per_corpus_byte": in_memory["peak_bytes_per_corpus_byte"],
    }))
}
