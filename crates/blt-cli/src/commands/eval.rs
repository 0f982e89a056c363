//! `blt-cli eval`: bits per byte and friends on a data source.

use std::{path::PathBuf, sync::Arc};

use anyhow::{Context, Result};
use blt_data::{
    BltBatcher, ByteDataset, DataSource, DatasetConfig, EntropyCache, Progress, Row,
    compute_entropies,
};
use blt_model::{Blt, BltConfig, EntropyModel, Generator, load_model, target_log_probs};
use burn::tensor::backend::Backend;
use serde::Serialize;

use crate::{
    args::{EvalArgs, GlobalArgs},
    backend::{BackendTask, dispatch},
};

/// Evaluation results.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Bits per byte.
    pub bits_per_byte: f64,
    /// Mean loss, nats per byte.
    pub loss: f64,
    /// Arg-max accuracy, %.
    pub accuracy: f64,
    /// exp(loss).
    pub perplexity: f64,
    /// Mean probability of the target byte.
    pub mean_confidence: f64,
    /// Lowest probability of a target byte.
    pub min_confidence: f64,
    /// Highest probability of a target byte.
    pub max_confidence: f64,
    /// Mean patch length.
    pub mean_patch_length: f64,
    /// Bytes (targets) evaluated.
    pub bytes: usize,
}

/// Rows of a data source, cut to the model's length.
pub fn load_rows(source: &str, config: &BltConfig, max_rows: usize) -> Result<Vec<Row>> {
    let source = DataSource::parse(source)?;
    let dataset = ByteDataset::from_source(
        &source,
        DatasetConfig {
            min_length: 1,
            max_length: config.max_position_embeddings.min(1024),
            valid_fraction: 0.0,
            seed: 0,
        },
        0,
    )
    .with_context(|| format!("loading {source}"))?;
    let mut rows = dataset.rows().to_vec();
    if max_rows > 0 {
        rows.truncate(max_rows);
    }
    anyhow::ensure!(
        !rows.is_empty(),
        "the data source holds no text to evaluate"
    );
    Ok(rows)
}

/// Evaluates `model` on `rows`, `batch_size` rows at a time, reporting the rows done to
/// `progress`. For entropy patching, each batch's entropies are computed just before it (one
/// batch of them in memory at a time).
pub fn evaluate<B: Backend>(
    model: &Blt<B>,
    entropy_model: Option<&EntropyModel<B>>,
    config: &BltConfig,
    rows: &[Row],
    batch_size: usize,
    device: &B::Device,
    progress: &dyn Progress,
) -> Result<EvalReport> {
    let resets = config.entropy_resets();
    let batcher_for = |chunk: &[Row]| -> Result<BltBatcher> {
        let cache = match entropy_model {
            Some(e) => {
                let h = compute_entropies(e, chunk, resets, chunk.len(), device, &())?;
                Some(Arc::new(EntropyCache::new(chunk, "eval", resets, h)?))
            }
            None => None,
        };
        let batcher = BltBatcher::new(config, cache)?;
        batcher.check_rows(chunk)?;
        Ok(batcher)
    };
    let mut tally = Tally::default();
    progress.start("eval rows", rows.len());
    let mut done = 0;
    for chunk in rows.chunks(batch_size.max(1)) {
        let batch = batcher_for(chunk)?.try_batch::<B>(chunk, device)?;
        tally.positions += batch.input.lengths.iter().sum::<usize>();
        tally.patches += batch.input.patch_counts.iter().sum::<usize>();
        let logits = model.forward(&batch.input).logits;
        // The training loss's own per-target terms (`masked_cross_entropy` sums these), kept
        // per byte here for the confidence range.
        let (target_log_p, hit) = target_log_probs(logits, batch.targets);
        let mask: Vec<bool> = batch.target_mask.into_data().to_vec().context("mask")?;
        let lp: Vec<f32> = target_log_p
            .into_data()
            .convert::<f32>()
            .to_vec()
            .context("log p")?;
        let hits: Vec<bool> = hit.into_data().to_vec().context("hits")?;
        for ((&keep, &l), &hit) in mask.iter().zip(&lp).zip(&hits) {
            if keep {
                tally.add(l, hit);
            }
        }
        done += chunk.len();
        progress.update(done);
    }
    progress.finish();
    Ok(tally.report())
}

/// Scores `rows` through `generator`'s decoding path `mode`, one row and one byte at a time
/// (teacher forcing; see [`Generator::score`]).
pub fn evaluate_decoder<B: Backend>(
    generator: &Generator<'_, B>,
    mode: blt_model::DecodeMode,
    rows: &[Row],
    progress: &dyn Progress,
) -> Result<EvalReport> {
    let mut tally = Tally::default();
    progress.start("eval rows", rows.len());
    for (done, row) in rows.iter().enumerate() {
        let input = row.input();
        let scored = generator.score(&input, &row.targets(), mode)?;
        tally.positions += input.len();
        tally.patches += scored.patches;
        for (&l, &hit) in scored.log_probs.iter().zip(&scored.hits) {
            tally.add(l, hit);
        }
        progress.update(done + 1);
    }
    progress.finish();
    Ok(tally.report())
}

/// Sums over the scored bytes.
struct Tally {
    loss: f64,
    correct: f64,
    confidence: f64,
    min_confidence: f64,
    max_confidence: f64,
    bytes: usize,
    positions: usize,
    patches: usize,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            loss: 0.0,
            correct: 0.0,
            confidence: 0.0,
            min_confidence: f64::INFINITY,
            max_confidence: f64::NEG_INFINITY,
            bytes: 0,
            positions: 0,
            patches: 0,
        }
    }
}

impl Tally {
    /// One target byte with `ln p` and whether it was the arg-max.
    fn add(&mut self, log_p: f32, hit: bool) {
        let p = f64::from(log_p).exp();
        self.loss -= f64::from(log_p);
        self.confidence += p;
        self.correct += f64::from(u8::from(hit));
        self.min_confidence = self.min_confidence.min(p);
        self.max_confidence = self.max_confidence.max(p);
        self.bytes += 1;
    }

    fn report(&self) -> EvalReport {
        let n = self.bytes.max(1) as f64;
        EvalReport {
            bits_per_byte: self.loss / n / std::f64::consts::LN_2,
            loss: self.loss / n,
            accuracy: 100.0 * self.correct / n,
            perplexity: (self.loss / n).exp(),
            mean_confidence: self.confidence / n,
            min_confidence: self.min_confidence,
            max_confidence: self.max_confidence,
            mean_patch_length: self.positions as f64 / self.patches.max(1) as f64,
            bytes: self.bytes,
        }
    }
}

struct EvalTask {
    args: EvalArgs,
    progress: Arc<dyn Progress + Send>,
}

impl BackendTask for EvalTask {
    type Output = EvalReport;

    fn run<B: Backend>(self, device: B::Device, name: &'static str) -> Result<EvalReport> {
        let model_dir: PathBuf = self.args.model.clone();
        let loaded = load_model::<B>(&model_dir, &device)
            .with_context(|| format!("loading model {}", model_dir.display()))?;
        let rows = load_rows(&self.args.data, &loaded.config, self.args.max_rows)?;
        if let Some(choice) = self.args.decoder {
            let generator = Generator::new(
                &loaded.model,
                loaded.entropy_model.as_ref(),
                &loaded.config,
                device,
            )?;
            let mode = crate::decoder::mode_for(
                choice,
                &loaded.model,
                loaded.entropy_model.as_ref(),
                name,
            );
            tracing::info!(?mode, "scoring through the decoder");
            return evaluate_decoder(&generator, mode, &rows, self.progress.as_ref());
        }
        evaluate(
            &loaded.model,
            loaded.entropy_model.as_ref(),
            &loaded.config,
            &rows,
            self.args.batch_size,
            &device,
            self.progress.as_ref(),
        )
    }
}

/// Runs the command.
pub fn run(global: &GlobalArgs, args: EvalArgs) -> Result<()> {
    let json = args.json;
    let progress = crate::progress::reporter(json || global.quiet > 0);
    let report = dispatch(&global.backend, EvalTask { args, progress })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let rows = [
        ("bits per byte", format!("{:.4}", report.bits_per_byte)),
        ("loss (nats/byte)", format!("{:.4}", report.loss)),
        ("accuracy", format!("{:.2} %", report.accuracy)),
        ("perplexity", format!("{:.3}", report.perplexity)),
        ("confidence mean", format!("{:.4}", report.mean_confidence)),
        ("confidence min", format!("{:.2e}", report.min_confidence)),
        ("confidence max", format!("{:.4}", report.max_confidence)),
        (
            "mean patch length",
            format!("{:.2}", report.mean_patch_length),
        ),
        ("bytes evaluated", report.bytes.to_string()),
    ];
    println!("┌────────────────────┬────────────┐");
    for (name, value) in rows {
        println!("│ {name:<18} │ {value:>10} │");
    }
    println!("└────────────────────┴────────────┘");
    Ok(())
}
