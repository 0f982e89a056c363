//! The run directory: its files, the checks made before a run writes anything, and the run
//! config written into it.
//!
//! Layout:
//! - `config.toml` — the run config (model, patching, training, data);
//! - `model.toml`, `blt.mpk`, `entropy.mpk` — the best BLT by validation loss, with its entropy
//!   model (a model directory);
//! - `entropy/` — the entropy model alone (model directory);
//! - `entropy_cache.bin` — per-byte entropies of the corpus;
//! - `entropy-training/`, `blt-training/` — each stage's checkpoints (`checkpoint/`), metric
//!   logs (`train/`, `valid/`);
//! - `summary.json` — final metrics, steps, wall time, backend.

use std::path::Path;

use blt_data::DataSource;

use super::{TrainOptions, summary::run_finished};
use crate::{
    checkpoint::last_checkpoint,
    config::RunConfig,
    error::{Result, TrainError},
    resolve::resume_config,
};

/// File name of the run config inside a run directory.
pub const RUN_CONFIG_FILE: &str = "config.toml";
/// File name of the summary.
pub const SUMMARY_FILE: &str = "summary.json";
/// File name of the entropy cache.
pub const ENTROPY_CACHE_FILE: &str = "entropy_cache.bin";
/// Directory of the entropy stage's checkpoints and metric logs.
pub(super) const ENTROPY_STAGE_DIR: &str = "entropy-training";
/// Directory of the BLT stage's checkpoints and metric logs.
pub(super) const BLT_STAGE_DIR: &str = "blt-training";

pub(super) fn io_error(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.to_path_buf();
    move |source| TrainError::Io {
        action,
        path,
        source,
    }
}

/// The config the run trains with, checked before anything is written: the config itself, its
/// data source and the run directory; on resume, merged with the saved config (only what
/// [`crate::RESUMABLE_FIELDS`] lists may change) and checked to have steps left.
pub(super) fn resolve_run_config(
    config: RunConfig,
    run_dir: &Path,
    options: &TrainOptions,
) -> Result<RunConfig> {
    config.validate()?;
    DataSource::parse(&config.data.source)?;
    prepare_run_dir(run_dir, options.resume)?;
    if !options.resume {
        return Ok(config);
    }
    let saved = RunConfig::load(&run_dir.join(RUN_CONFIG_FILE))?;
    let config = resume_config(&saved, &config)?;
    check_steps_left(run_dir, &config)?;
    Ok(config)
}

/// Checks the run directory before any training starts: creatable, writable, and not an
/// earlier run unless resuming.
fn prepare_run_dir(run_dir: &Path, resume: bool) -> Result<()> {
    let bad = |reason: String| TrainError::RunDir {
        path: run_dir.to_path_buf(),
        reason,
    };
    std::fs::create_dir_all(run_dir).map_err(|e| bad(format!("cannot create it ({e})")))?;
    let probe = run_dir.join(".write-test");
    std::fs::write(&probe, b"").map_err(|e| bad(format!("is not writable ({e})")))?;
    let _ = std::fs::remove_file(&probe);
    let existing = run_dir.join(RUN_CONFIG_FILE).exists();
    if resume && !existing {
        return Err(TrainError::NothingToResume(run_dir.to_path_buf()));
    }
    if !resume && existing {
        return Err(bad(
            "holds an earlier run; pass --resume to continue it or pick another directory".into(),
        ));
    }
    Ok(())
}

pub(super) fn write_run_config(run_dir: &Path, config: &RunConfig) -> Result<()> {
    let path = run_dir.join(RUN_CONFIG_FILE);
    blt_core::fs::write_atomically(&path, config.to_toml_string().as_bytes())
        .map_err(io_error("writing", &path))
}

/// A resumed run must have steps left: a finished BLT stage with the same `max_steps` would
/// train nothing and then rewrite the summary of the finished run.
fn check_steps_left(run_dir: &Path, config: &RunConfig) -> Result<()> {
    let t = &config.training;
    let Some(epoch) = last_checkpoint(&run_dir.join(BLT_STAGE_DIR)) else {
        return Ok(());
    };
    let done = epoch * t.steps_per_epoch;
    // A run killed after its last checkpoint but before its summary still resumes, to save
    // its model and summary; only a finished run (an uninterrupted summary) is refused.
    if done >= t.max_steps && run_finished(run_dir) {
        return Err(TrainError::RunDir {
            path: run_dir.to_path_buf(),
            reason: format!(
                "has already trained {done} of its {} steps (training.max_steps); give a larger \
                 --max-steps to train further",
                t.max_steps
            ),
        });
    }
    Ok(())
}
