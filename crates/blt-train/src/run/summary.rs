//! [`RunSummary`]: what a run reports when it ends, also written to `summary.json`.

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use blt_model::{Blt, BltConfig, ParameterCounts};
use burn::{tensor::backend::Backend, train::LearnerSummary};
use serde::Serialize;

use super::{
    TrainOptions,
    dir::{BLT_STAGE_DIR, ENTROPY_STAGE_DIR, SUMMARY_FILE, io_error},
};
use crate::{error::Result, metrics::STAGE_METRICS, stage::StageOutcome};

/// Burn's learner summary of each stage trained in `run_dir` (the entropy model, then the
/// BLT), read from the stages' metric logs: every epoch of every session, with each metric's
/// minimum and maximum and their epochs. A binary prints them when the run ends, whatever
/// the dashboard. Stages without logs (an entropy model reused from elsewhere) are left out,
/// and so are metrics without a finite value (the entropy model has no patches).
pub fn stage_summaries(run_dir: &Path) -> Vec<(&'static str, LearnerSummary)> {
    [("entropy", ENTROPY_STAGE_DIR), ("blt", BLT_STAGE_DIR)]
        .into_iter()
        .filter_map(|(stage, dir)| {
            let mut summary = LearnerSummary::new(run_dir.join(dir), &STAGE_METRICS).ok()?;
            for split in [&mut summary.metrics.train, &mut summary.metrics.valid] {
                split.retain(|m| m.entries.iter().any(|e| e.value.is_finite()));
            }
            Some((stage, summary))
        })
        .collect()
}

/// The final report of a run (also written to `summary.json`).
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Backend name.
    pub backend: String,
    /// Wall time of the whole run, seconds.
    pub wall_seconds: f64,
    /// The entropy model's stage, when one was trained.
    pub entropy_stage: Option<StageOutcome>,
    /// The BLT's stage.
    pub blt_stage: StageOutcome,
    /// Parameter counts.
    pub parameters: ParameterCounts,
    /// Estimated forward FLOPs per byte at the measured mean patch length.
    pub forward_flops_per_byte: f64,
    /// Mean patch length of the training data.
    pub mean_patch_length: f64,
    /// Corpus statistics.
    pub dataset: blt_data::DatasetStats,
    /// Whether the user stopped the run early.
    pub interrupted: bool,
}

/// Whether `run_dir` holds the summary of a run that ended without being interrupted.
pub(super) fn run_finished(run_dir: &Path) -> bool {
    std::fs::read_to_string(run_dir.join(SUMMARY_FILE))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|summary| summary["interrupted"].as_bool())
        == Some(false)
}

pub(super) fn write_summary(summary: &RunSummary) -> Result<()> {
    let path = summary.run_dir.join(SUMMARY_FILE);
    let json = serde_json::to_string_pretty(summary).expect("a summary always serialises");
    blt_core::fs::write_atomically(&path, json.as_bytes()).map_err(io_error("writing", &path))
}

/// The summary of a run stopped during the entropy stage (no BLT trained yet).
pub(super) fn interrupted_summary<B: Backend>(
    device: &B::Device,
    run_dir: &Path,
    options: &TrainOptions,
    started: Instant,
    entropy_stage: Option<StageOutcome>,
    model_config: &BltConfig,
    dataset: blt_data::DatasetStats,
) -> Result<RunSummary> {
    // Parameters are counted from their shapes: the model is never initialised.
    let model = Blt::<B>::new(model_config, device)?;
    let summary = RunSummary {
        run_dir: run_dir.to_path_buf(),
        backend: options.backend.clone(),
        wall_seconds: started.elapsed().as_secs_f64(),
        entropy_stage,
        blt_stage: StageOutcome {
            interrupted: true,
            ..StageOutcome::default()
        },
        parameters: ParameterCounts::of(&model, None),
        forward_flops_per_byte: 0.0,
        mean_patch_length: 0.0,
        dataset,
        interrupted: true,
    };
    write_summary(&summary)?;
    Ok(summary)
}
