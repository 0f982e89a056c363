//! The library entry point: [`train`] runs a whole BLT training into a run directory — the
//! entropy model (stage one, for entropy patching), the entropy cache, then the BLT (stage two)
//! — and leaves a model directory that `blt-cli generate --model RUN_DIR` loads.
//!
//! Run directory layout:
//! - `config.toml` — the run config (model, patching, training, data);
//! - `model.toml`, `blt.mpk`, `entropy.mpk` — the best BLT by validation loss, with its entropy
//!   model (a model directory);
//! - `entropy/` — the entropy model alone (model directory);
//! - `entropy_cache.bin` — per-byte entropies of the corpus;
//! - `entropy-training/`, `blt-training/` — each stage's checkpoints (`checkpoint/`), metric
//!   logs (`train/`, `valid/`);
//! - `summary.json` — final metrics, steps, wall time, backend.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use blt_data::{
    BltBatcher, ByteDataset, DataSource, DatasetConfig, EntropyCache, Row, compute_entropies_until,
};
use blt_model::{
    Blt, BltConfig, EntropyModel, EntropyModelConfig, FlopsPerByte, ParameterCounts, PatchingKind,
    entropy_model_identity, load_entropy_model, save_entropy_model, save_model, seeded,
};
use blt_patching::{CalibrationOptions, calibrate_threshold};
use burn::{
    data::dataset::Dataset,
    tensor::backend::{AutodiffBackend, Backend},
    train::Interrupter,
};
use serde::Serialize;

use crate::{
    batches::{byte_lm_batch, loaders_groups, mean_patch_len, stage_loaders},
    config::{RunConfig, TrainingConfig},
    error::{Result, TrainError},
    loader::MakeBatch,
    renderer::Dashboard,
    resolve::resume_config,
    stage::{StageOutcome, StageSettings, last_checkpoint, run_stage},
    step::{BltTrainer, ByteLmBatch, EntropyTrainer, LossGuard, StepBatch},
};

/// File name of the run config inside a run directory.
pub const RUN_CONFIG_FILE: &str = "config.toml";
/// File name of the summary.
pub const SUMMARY_FILE: &str = "summary.json";
/// File name of the entropy cache.
pub const ENTROPY_CACHE_FILE: &str = "entropy_cache.bin";

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
        }
    }
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

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.to_path_buf();
    move |source| TrainError::Io {
        action,
        path,
        source,
    }
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
        guard: LossGuard::new(
            options.interrupter.clone(),
            training.gradient_accumulation_steps,
            done,
            seed,
        )
        .with_stop_after(stop_after),
    }
}

/// Stage one: trains the entropy model, saves it under `run_dir/entropy`.
fn train_entropy_model<B: AutodiffBackend>(
    config: &RunConfig,
    train_groups: &[Vec<Row>],
    valid_groups: &[Vec<Row>],
    run_dir: &Path,
    device: &B::Device,
    options: &TrainOptions,
) -> Result<(EntropyModel<B::InnerBackend>, StageOutcome)> {
    let t = &config.training;
    let m = &config.model;
    let settings = stage_settings(
        Stage::Entropy,
        2,
        run_dir.join("entropy-training"),
        t,
        t.entropy_steps,
        options,
    );
    let first_epoch = settings.resume_epoch.unwrap_or(0);
    let trainer = EntropyTrainer {
        model: seeded::<B, _>(device, t.seed, || {
            EntropyModelConfig::from_blt(m).init::<B>(device)
        }),
        max_grad_norm: t.max_grad_norm,
        guard: Some(settings.guard.clone()),
    };
    let (window, reset) = (m.entropy_context_size, m.entropy_resets());
    let make: MakeBatch<B, StepBatch<ByteLmBatch<B>>> =
        Arc::new(move |rows, step, d| StepBatch::new(byte_lm_batch(rows, window, reset, d), step));
    let make_valid: MakeBatch<B::InnerBackend, ByteLmBatch<B::InnerBackend>> =
        Arc::new(move |rows, _, d| byte_lm_batch(rows, window, reset, d));
    let (train, valid) = stage_loaders::<B, _, _>(
        train_groups.to_vec(),
        valid_groups.to_vec(),
        (make, make_valid),
        t,
        settings.steps,
        first_epoch,
        device,
    );
    let (trainer, outcome) = run_stage::<B, _, _>(settings, trainer, train, valid, device)?;
    // An interrupted stage is not saved as the entropy model: a resumed run continues it.
    if !outcome.interrupted {
        save_entropy_model(&run_dir.join("entropy"), m, &trainer.model)?;
    }
    Ok((trainer.model, outcome))
}

/// Trains a BLT as `config` describes, writing everything into `run_dir`.
pub fn train<B: AutodiffBackend>(
    config: RunConfig,
    device: B::Device,
    run_dir: &Path,
    options: TrainOptions,
) -> Result<RunSummary> {
    let started = Instant::now();
    // Fail fast, before any training: config, data source, run directory.
    config.validate()?;
    let source = DataSource::parse(&config.data.source)?;
    prepare_run_dir(run_dir, options.resume)?;
    let mut config = if options.resume {
        let saved = RunConfig::load(&run_dir.join(RUN_CONFIG_FILE))?;
        let config = resume_config(&saved, &config)?;
        check_steps_left(run_dir, &config)?;
        config
    } else {
        config
    };
    let t = &config.training.clone();
    let mut model_config: BltConfig = config.model.clone();
    let m = &model_config;

    let mut documents = source.load()?;
    if config.data.max_documents > 0 {
        documents.truncate(config.data.max_documents);
    }
    let dataset = ByteDataset::new(
        documents,
        DatasetConfig {
            min_length: t.min_text_length,
            max_length: t.max_sequence_length,
            valid_fraction: config.data.valid_fraction,
            seed: t.seed,
        },
    )
    .map_err(|e| match e {
        // Name the source: the data error alone does not know where the documents came from.
        e @ blt_data::DataError::NoDocuments { .. } => {
            TrainError::InvalidConfig(format!("data.source {:?}: {e}", config.data.source))
        }
        other => other.into(),
    })?;
    let split = dataset.split();
    tracing::info!(stats = ?dataset.stats(), train_rows = split.train.len(), valid_rows = split.valid.len(), "data");
    let (train_groups, valid_groups) = loaders_groups(&split.train, &split.valid, t)?;
    if let Some(dir) = &options.entropy_model {
        check_entropy_model(dir, m)?;
    }
    // Written once everything above has been checked; on resume, with the changes it allows.
    write_run_config(run_dir, &config)?;

    // A stop before the BLT stage: the summary of what was done (nothing of the BLT).
    let stopped_before_blt = |entropy_stage| {
        interrupted_summary::<B::InnerBackend>(
            &device,
            run_dir,
            &options,
            started,
            entropy_stage,
            &model_config,
            *dataset.stats(),
        )
    };

    // Stage one: the entropy model (entropy patching only).
    let mut entropy_stage = None;
    let entropy_model: Option<EntropyModel<B::InnerBackend>> =
        if m.patching == PatchingKind::Entropy {
            let entropy_dir = run_dir.join("entropy");
            let model = if let Some(dir) = &options.entropy_model {
                let (_, model) = load_entropy_model::<B::InnerBackend>(dir, &device)?;
                save_entropy_model(&entropy_dir, m, &model)?;
                model
            } else if options.resume && entropy_dir.join(blt_model::MANIFEST_FILE).exists() {
                load_entropy_model::<B::InnerBackend>(&entropy_dir, &device)?.1
            } else {
                let (model, outcome) = train_entropy_model::<B>(
                    &config,
                    &train_groups,
                    &valid_groups,
                    run_dir,
                    &device,
                    &options,
                )?;
                let interrupted = outcome.interrupted;
                entropy_stage = Some(outcome);
                if interrupted {
                    tracing::warn!("stopped during the entropy stage; resume with --resume");
                    return stopped_before_blt(entropy_stage);
                }
                model
            };
            Some(model)
        } else {
            None
        };

    // The entropy cache: every row of both splits, each computed separately.
    let cache = match &entropy_model {
        Some(model) => {
            let identity = entropy_model_identity(&run_dir.join("entropy"))?;
            let rows: Vec<Row> = dataset.rows().to_vec();
            let started = Instant::now();
            let computed = EntropyCache::load_or_compute(
                &run_dir.join(ENTROPY_CACHE_FILE),
                &identity,
                &rows,
                m.entropy_resets(),
                |rows| {
                    compute_entropies_until(model, rows, m.entropy_resets(), 16, &device, || {
                        options.interrupter.should_stop()
                    })
                },
            );
            let cache = match computed {
                Err(blt_data::DataError::Interrupted { done, total }) => {
                    // Nothing was written: the cache file only ever holds a finished cache,
                    // and the entropy model is saved, so a resumed run starts the cache over.
                    tracing::warn!(
                        done,
                        total,
                        "stopped while computing the entropy cache; resume with --resume"
                    );
                    return stopped_before_blt(entropy_stage);
                }
                other => other?,
            };
            tracing::info!(
                rows = rows.len(),
                seconds = started.elapsed().as_secs_f64(),
                "entropy cache ready"
            );
            Some(Arc::new(cache))
        }
        None => None,
    };

    // Fit the threshold to the target patch size (the original tunes it by hand, issue #106).
    if let Some(cache) = &cache
        && t.target_patch_size > 0.0
    {
        let rows: Vec<&[f32]> = split
            .train
            .rows()
            .filter_map(|r| cache.get(r.index))
            .collect();
        let options = CalibrationOptions {
            monotonic: m.monotonic_entropy,
            min_patch_size: m.min_patch_size,
            max_patch_size: (m.max_patch_size > 0).then_some(m.max_patch_size),
        };
        let found = calibrate_threshold(&rows, t.target_patch_size, &options)?;
        tracing::info!(
            threshold = found.threshold,
            mean_patch_length = found.mean_patch_len,
            "calibrated the entropy threshold"
        );
        model_config.entropy_threshold = found.threshold;
        config.model = model_config.clone();
        write_run_config(run_dir, &config)?;
    }
    let m = &model_config;

    // Stage two: the BLT.
    let batcher = Arc::new(BltBatcher::new(m, cache)?);
    batcher.check_rows(dataset.rows())?;
    let stages = if m.patching == PatchingKind::Entropy {
        2
    } else {
        1
    };
    let settings = stage_settings(
        Stage::Blt,
        stages,
        run_dir.join("blt-training"),
        t,
        t.max_steps,
        &options,
    );
    let first_epoch = settings.resume_epoch.unwrap_or(0);
    let trainer = BltTrainer {
        model: seeded::<B, _>(&device, t.seed.wrapping_add(1), || {
            Blt::<B>::new(m, &device)
        })?,
        max_grad_norm: t.max_grad_norm,
        guard: Some(settings.guard.clone()),
    };
    let b = batcher.clone();
    let make: MakeBatch<B, StepBatch<blt_data::BltBatch<B>>> = Arc::new(move |rows, step, d| {
        let batch = b
            .try_batch(rows, d)
            .expect("rows were checked before training");
        StepBatch::new(batch, step)
    });
    let b = batcher.clone();
    let make_valid: MakeBatch<B::InnerBackend, blt_data::BltBatch<B::InnerBackend>> =
        Arc::new(move |rows, _, d| {
            b.try_batch(rows, d)
                .expect("rows were checked before training")
        });
    let mean_patch_length = mean_patch_len(&batcher, &train_groups);
    let (train, valid) = stage_loaders::<B, _, _>(
        train_groups,
        valid_groups,
        (make, make_valid),
        t,
        settings.steps,
        first_epoch,
        &device,
    );
    let (best, blt_stage) = run_stage::<B, _, _>(settings, trainer, train, valid, &device)?;
    save_model(run_dir, m, &best.model, entropy_model.as_ref())?;

    let parameters = ParameterCounts::of(&best.model, entropy_model.as_ref());
    let summary = RunSummary {
        run_dir: run_dir.to_path_buf(),
        backend: options.backend.clone(),
        wall_seconds: started.elapsed().as_secs_f64(),
        interrupted: blt_stage.interrupted,
        entropy_stage,
        blt_stage,
        parameters,
        forward_flops_per_byte: FlopsPerByte::estimate(m, mean_patch_length, t.max_sequence_length)
            .forward(),
        mean_patch_length,
        dataset: *dataset.stats(),
    };
    write_summary(&summary)?;
    Ok(summary)
}

/// `--entropy-model DIR` must be the entropy model the run config describes: one trained with
/// other settings would fail to load later, or patch differently from what generation assumes.
fn check_entropy_model(dir: &Path, m: &BltConfig) -> Result<()> {
    let bad = |reason: String| {
        Err(TrainError::InvalidConfig(format!(
            "--entropy-model {}: {reason}",
            dir.display()
        )))
    };
    if m.patching != PatchingKind::Entropy {
        return bad(format!(
            "an entropy model is only used with model.patching = \"entropy\" (this run patches \
             with \"{}\")",
            format!("{:?}", m.patching).to_lowercase()
        ));
    }
    let theirs = blt_model::load_config(dir)?;
    let fields = |c: &BltConfig| {
        [
            ("entropy_model_layers", c.entropy_model_layers.to_string()),
            ("entropy_hidden_size", c.entropy_hidden_size.to_string()),
            ("entropy_num_heads", c.entropy_num_heads.to_string()),
            (
                "entropy_intermediate_size",
                c.entropy_intermediate_size.to_string(),
            ),
            ("entropy_context_size", c.entropy_context_size.to_string()),
            ("entropy_rope_theta", c.entropy_rope_theta.to_string()),
            ("reset_entropy_context", c.reset_entropy_context.to_string()),
            ("norm_eps", c.norm_eps.to_string()),
        ]
    };
    for ((field, there), (_, here)) in fields(&theirs).into_iter().zip(fields(m)) {
        if there != here {
            return bad(format!(
                "model.{field} is {there} there but {here} in the run config; set it to {there} \
                 or train a new entropy model"
            ));
        }
    }
    Ok(())
}

fn write_run_config(run_dir: &Path, config: &RunConfig) -> Result<()> {
    let path = run_dir.join(RUN_CONFIG_FILE);
    blt_core::fs::write_atomically(&path, config.to_toml_string().as_bytes())
        .map_err(io_error("writing", &path))
}

/// A resumed run must have steps left: a finished BLT stage with the same `max_steps` would
/// train nothing and then rewrite the summary of the finished run.
fn check_steps_left(run_dir: &Path, config: &RunConfig) -> Result<()> {
    let t = &config.training;
    let Some(epoch) = last_checkpoint(&run_dir.join("blt-training")) else {
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

/// Whether `run_dir` holds the summary of a run that ended without being interrupted.
fn run_finished(run_dir: &Path) -> bool {
    std::fs::read_to_string(run_dir.join(SUMMARY_FILE))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|summary| summary["interrupted"].as_bool())
        == Some(false)
}

fn write_summary(summary: &RunSummary) -> Result<()> {
    let path = summary.run_dir.join(SUMMARY_FILE);
    let json = serde_json::to_string_pretty(summary).expect("a summary always serialises");
    blt_core::fs::write_atomically(&path, json.as_bytes()).map_err(io_error("writing", &path))
}

/// The summary of a run stopped during the entropy stage (no BLT trained yet).
fn interrupted_summary<B: Backend>(
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
