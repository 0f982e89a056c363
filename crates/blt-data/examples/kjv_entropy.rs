//! Statistics of the built-in corpus and the time to build its entropy cache with the `tiny`
//! entropy model on NdArray.
//!
//! ```text
//! cargo run -p blt-data --example kjv_entropy --features examples [-- BATCH_ROWS [reset|no-reset [MAX_ROWS]]]
//! ```
#![allow(clippy::print_stdout)]

use std::time::Instant;

use blt_data::{
    ByteDataset, DataSource, DatasetConfig, EntropyCache, LogProgress, compute_entropies,
};
use blt_model::{BltConfig, EntropyModelConfig};
use burn::{backend::NdArray, data::dataset::Dataset};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let batch_rows: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(16);
    let reset = args.next().as_deref() == Some("reset");
    let resets = blt_model::EntropyResets {
        at_newline: reset,
        ..Default::default()
    };
    let limit: Option<usize> = args.next().map(|a| a.parse()).transpose()?;

    let started = Instant::now();
    let documents = DataSource::parse("builtin:kjv")?.load()?;
    println!(
        "loaded and verified builtin:kjv in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    let mut dataset = None;
    for max_length in [512, 1024] {
        let config = DatasetConfig {
            max_length,
            ..DatasetConfig::default()
        };
        let built = ByteDataset::new(documents.clone(), config)?;
        let s = built.stats();
        let split = built.split();
        println!(
            "max_length {max_length}: {} documents read, {} empty, {} too short, {} kept, \
             {} bytes, mean {:.1} bytes/doc, {} rows ({} train / {} valid)",
            s.initial_documents,
            s.empty_removed,
            s.too_short_removed,
            s.kept_documents,
            s.total_bytes,
            s.mean_document_bytes(),
            s.rows,
            split.train.len(),
            split.valid.len(),
        );
        if max_length == 512 {
            dataset = Some(built);
        }
    }
    let dataset = dataset.expect("built above");

    let device = Default::default();
    let model = EntropyModelConfig::from_blt(&BltConfig::tiny()).init::<NdArray>(&device);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("entropies.bin");
    let started = Instant::now();
    let all = dataset.rows();
    let rows = &all[..limit.unwrap_or(all.len()).min(all.len())];
    let cache = EntropyCache::load_or_compute(
        &path,
        "tiny-random",
        rows,
        resets,
        &LogProgress::default(),
        |rows| compute_entropies(&model, rows, resets, batch_rows, &device, &()),
    )?;
    let computed = started.elapsed().as_secs_f64();
    let started = Instant::now();
    EntropyCache::load(&path, "tiny-random", rows, resets)?;
    let reloaded = started.elapsed().as_secs_f64();
    println!(
        "entropy cache: {} rows, {} values, batch_rows {batch_rows}, reset_context {reset}: \
         computed and saved in {computed:.1}s, reloaded in {reloaded:.2}s ({} bytes)",
        cache.len(),
        cache.num_values(),
        std::fs::metadata(&path)?.len()
    );
    Ok(())
}
