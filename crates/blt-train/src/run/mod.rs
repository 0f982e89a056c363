//! The library entry point: [`train`] runs a whole BLT training into a run directory — the
//! entropy model (stage one, for entropy patching), the entropy cache, then the BLT (stage two)
//! — and leaves a model directory that `blt-cli generate --model RUN_DIR` loads. The run
//! directory's layout is described in `dir.rs`.

mod blt;
mod dir;
mod entropy;
mod summary;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use blt_data::{ByteDataset, DataSource, DatasetConfig, LogProgress, Progress, Storage};
use blt_model::{FlopsPerByte, ParameterCounts, PatchingKind, save_model};
use burn::{data::dataset::Dataset, tensor::backend::AutodiffBackend, train::Interrupter};

pub use dir::{ENTROPY_CACHE_FILE, RUN_CONFIG_FILE, SUMMARY_FILE};
pub use summary::RunSummary;

use crate::{
    batches::loaders_groups,
    checkpoint::last_checkpoint,
    config::{RunConfig, TrainingConfig},
    error::{Result, TrainError},
    renderer::Dashboard,
    stage::StageSettings,
    step::StepWatch,
};

/// A training stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Stage one: the entropy model.
    Entropy,
    /// Stage two: the BLT.
    Blt,
}

/// Where [`train`] stops as if interrupted: after `steps` optimizer steps of `stage`
/// (counting the steps of earlier sessions of a resumed run). The run keeps its last
/// checkpoint and continues with [`TrainOptions::resume`], like after Ctrl-C.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StopAfter {
    /// The stage.
    pub stage: Stage,
    /// Optimizer steps of that stage.
    pub steps: usize,
}

/// How to run [`train`].
#[derive(Clone)]
pub struct TrainOptions {
    /// Continue from the last checkpoint of the run directory.
    pub resume: bool,
    /// Reuse this entropy model (a model directory) instead of training one.
    pub entropy_model: Option<PathBuf>,
    /// TUI or plain log lines.
    pub dashboard: Dashboard,
    /// Stops training (wire Ctrl-C to it); `q` in the TUI also stops.
    pub interrupter: Interrupter,
    /// The backend's name, for the summary.
    pub backend: String,
    /// Stop early, as an interruption would (none: train to the end).
    pub stop_after: Option<StopAfter>,
    /// Where the long passes between the stages (the entropy cache) report their progress:
    /// a progress bar in a binary; by default `tracing` lines every 10 seconds. The
    /// [`interrupter`](Self::interrupter) stops them too.
    pub progress: Arc<dyn Progress + Send>,
}

impl std::fmt::Debug for TrainOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainOptions")
            .field("resume", &self.resume)
            .field("entropy_model", &self.entropy_model)
            .field("dashboard", &self.dashboard)
            .field("backend", &self.backend)
            .field("stop_after", &self.stop_after)
            .finish_non_exhaustive()
    }
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            resume: false,
            entropy_model: None,
            dashboard: Dashboard::detect(),
            interrupter: Interrupter::new(),
            backend: String::from("unknown"),
            stop_after: None,
            progress: Arc::new(LogProgress::default()),
        }
    }
}

/// Trains a BLT as `config` describes, writing everything into `run_dir`.
///
/// Everything that can be checked is checked before anything is written: the config, the data
/// source, the run directory, the corpus and its split, the batches, and `--entropy-model`.
/// A run stopped by the user (Ctrl-C, `q`) returns a summary with `interrupted` set and
/// continues with [`TrainOptions::resume`].
pub fn train<B: AutodiffBackend>(
    config: RunConfig,
    device: B::Device,
    run_dir: &Path,
    options: TrainOptions,
) -> Result<RunSummary> {
    train_on::<B>(config, vec![device], run_dir, options)
}

/// [`train`] on several devices, data parallel through Burn's multi-device strategy: every
/// optimizer step's micro-batches are shared out between `devices` (the first holds the
/// optimizer) and their gradients summed, so the result is that of one device running the
/// same steps. `training.gradient_accumulation_steps` must be a multiple of the number of
/// devices; one device is [`train`]. The same device may be given more than once (the path
/// then runs, but gains nothing).
pub fn train_on<B: AutodiffBackend>(
    config: RunConfig,
    devices: Vec<B::Device>,
    run_dir: &Path,
    options: TrainOptions,
) -> Result<RunSummary> {
    let Some(device) = devices.first().cloned() else {
        return Err(TrainError::InvalidConfig(
            "training needs at least one device".into(),
        ));
    };
    let accumulation = config.training.gradient_accumulation_steps;
    if !accumulation.is_multiple_of(devices.len()) {
        return Err(TrainError::InvalidConfig(format!(
            "training.gradient_accumulation_steps ({accumulation}) must be a multiple of the \
             number of devices ({}): each device runs an equal share of every step",
            devices.len()
        )));
    }
    let started = Instant::now();
    let mut config = dir::resolve_run_config(config, run_dir, &options)?;
    let dataset = load_dataset(&config)?;
    let split = dataset.split();
    tracing::info!(stats = ?dataset.stats(), train_rows = split.train.len(), valid_rows = split.valid.len(), "data");
    let groups = loaders_groups(&split.train, &split.valid, &config.training)?;
    if let Some(dir) = &options.entropy_model {
        entropy::check_entropy_model(dir, &config.model)?;
    }
    // Written once everything above has been checked; on resume, with the changes it allows.
    dir::write_run_config(run_dir, &config)?;

    // A stop before the BLT stage: the summary of what was done (nothing of the BLT).
    let stopped = |entropy_stage, config: &RunConfig| {
        summary::interrupted_summary::<B::InnerBackend>(
            &device,
            run_dir,
            &options,
            started,
            entropy_stage,
            &config.model,
            *dataset.stats(),
        )
    };
    let (mut entropy_model, mut entropy_stage) = (None, None);
    if config.model.patching == PatchingKind::Entropy {
        let stage = entropy::entropy_model_stage::<B>(
            &config, &groups.0, &groups.1, run_dir, &devices, &options,
        )?;
        entropy_stage = stage.outcome;
        let Some(model) = stage.model else {
            return stopped(entropy_stage, &config);
        };
        entropy_model = Some(model);
    }
    let cache = match &entropy_model {
        Some(model) => {
            let cache =
                entropy::entropy_cache(model, &dataset, &config.model, run_dir, &device, &options)?;
            let Some(cache) = cache else {
                return stopped(entropy_stage, &config);
            };
            if config.training.target_patch_size > 0.0 {
                config.model.entropy_threshold = entropy::calibrate(
                    &cache,
                    &split.train,
                    &config.model,
                    config.training.target_patch_size,
                )?;
                dir::write_run_config(run_dir, &config)?;
            }
            Some(cache)
        }
        None => None,
    };

    let stage = blt::train_blt::<B>(
        &config, cache, &dataset, groups, run_dir, &devices, &options,
    )?;
    let m = &config.model;
    save_model(run_dir, m, &stage.best, entropy_model.as_ref())?;
    let t = &config.training;
    let summary = RunSummary {
        run_dir: run_dir.to_path_buf(),
        backend: options.backend.clone(),
        wall_seconds: started.elapsed().as_secs_f64(),
        interrupted: stage.outcome.interrupted,
        entropy_stage,
        blt_stage: stage.outcome,
        parameters: ParameterCounts::of(&stage.best, entropy_model.as_ref()),
        forward_flops_per_byte: FlopsPerByte::estimate(
            m,
            stage.mean_patch_length,
            t.max_sequence_length,
        )
        .forward(),
        mean_patch_length: stage.mean_patch_length,
        dataset: *dataset.stats(),
    };
    summary::write_summary(&summary)?;
    Ok(summary)
}

/// The corpus of `config.data`, filtered and cut into rows of `training.max_sequence_length`.
fn load_dataset(config: &RunConfig) -> Result<ByteDataset> {
    let t = &config.training;
    let storage = if config.data.in_memory {
        Storage::Memory
    } else {
        Storage::TempFile(std::env::temp_dir())
    };
    ByteDataset::from_source_stored(
        &DataSource::parse(&config.data.source)?,
        DatasetConfig {
            min_length: t.min_text_length,
            max_length: t.max_sequence_length,
            valid_fraction: config.data.valid_fraction,
            seed: t.seed,
        },
        config.data.max_documents,
        storage,
    )
    .map_err(|e| match e {
        // Name the source: the data error alone does not know where the documents came from.
        e @ blt_data::DataError::NoDocuments { .. } => {
            TrainError::InvalidConfig(format!("data.source {:?}: {e}", config.data.source))
        }
        other => other.into(),
    })
}

fn stage_settings<'a>(
    stage: Stage,
    stages: usize,
    dir: PathBuf,
    training: &'a TrainingConfig,
    steps: usize,
    options: &TrainOptions,
) -> StageSettings<'a> {
    let resume_epoch = if options.resume {
        last_checkpoint(&dir)
    } else {
        None
    };
    let done = resume_epoch.unwrap_or(0) * training.steps_per_epoch;
    let (name, seed, position) = match stage {
        Stage::Entropy => ("entropy", training.seed, (1, stages)),
        Stage::Blt => ("blt", training.seed.wrapping_add(1), (stages, stages)),
    };
    let stop_after = options
        .stop_after
        .filter(|s| s.stage == stage)
        .map(|s| s.steps);
    StageSettings {
        name,
        position,
        dir,
        training,
        steps,
        resume_epoch,
        dashboard: options.dashboard,
        interrupter: options.interrupter.clone(),
        watch: StepWatch::new(
            options.interrupter.clone(),
            training.gradient_accumulation_steps,
            done,
            seed,
        )
        .with_stop_after(stop_after),
    }
}
