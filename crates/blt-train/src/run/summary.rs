//! [`RunSummary`]: what a run reports when it ends, also written to `summary.json`.

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use blt_model::{Blt, BltConfig, ParameterCounts};
use burn::tensor::backend::Backend;
use serde::Serialize;

use super::{
    TrainOptions,
    dir::{SUMMARY_FILE, io_error},
};
use crate::{
    error::Result,
    stage::{EpochMetrics, StageOutcome},
};

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

impl StageOutcome {
    /// The stage's metrics over its epochs (every session of a resumed run) as a table in the
    /// layout of Burn's learner summary: each metric's lowest and highest epoch value and the
    /// epoch it came from. Built from the values the run recorded in-process at each epoch's
    /// end, so it never races Burn's asynchronous metric log writers (whose files can still
    /// be filling when the Learner returns). Metrics no epoch recorded are left out.
    pub fn summary_table(&self, stage: &str) -> String {
        type Field = fn(&EpochMetrics) -> Option<f64>;
        let rows: [(&str, &str, Field); 6] = [
            ("Train", "Loss", |e| e.train_loss),
            ("Train", "Bytes per second", |e| e.train_bytes_per_second),
            ("Valid", "Loss", |e| e.valid_loss),
            ("Valid", "Bits per byte", |e| e.valid_bits_per_byte),
            ("Valid", "Accuracy", |e| e.valid_accuracy),
            ("Valid", "Patch length", |e| e.valid_patch_length),
        ];
        let mut text = format!(
            "stage {stage}: {} epochs\n| Split | Metric           | Min.       | Epoch | Max.       | Epoch |\n|-------|------------------|------------|-------|------------|-------|\n",
            self.epochs.len()
        );
        for (split, name, field) in rows {
            let values = self
                .epochs
                .iter()
                .filter_map(|e| field(e).filter(|v| v.is_finite()).map(|v| (e.epoch, v)));
            let Some((low, high)) =
                values.fold(None, |acc: Option<((usize, f64), (usize, f64))>, x| {
                    Some(match acc {
                        None => (x, x),
                        Some((lo, hi)) => (
                            if x.1 < lo.1 { x } else { lo },
                            if x.1 > hi.1 { x } else { hi },
                        ),
                    })
                })
            else {
                continue;
            };
            text.push_str(&format!(
                "| {split} | {name:<16} | {:<10} | {:<5} | {:<10} | {:<5} |\n",
                crate::metrics::format_value(low.1),
                low.0,
                crate::metrics::format_value(high.1),
                high.0
            ));
        }
        text
    }
}

impl RunSummary {
    /// [`StageOutcome::summary_table`] of each stage trained (the entropy model's when this run
    /// trained one, then the BLT's), for a binary to print when the run ends.
    pub fn stage_tables(&self) -> String {
        let mut text = String::new();
        if let Some(entropy) = &self.entropy_stage {
            text.push_str(&entropy.summary_table("entropy"));
            text.push('\n');
        }
        text.push_str(&self.blt_stage.summary_table("blt"));
        text
    }
}
