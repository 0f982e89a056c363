//! End to end: a toy next-byte model trained by Burn's `SupervisedTraining` with the crate's
//! metrics, plain renderer, warmup-cosine schedule and global-norm clipping.

use std::io::Write;
use std::sync::{Arc, Mutex};

use blt_train::{
    AccuracyMetric, BitsPerByteMetric, BytesPerSecondMetric, ConfidenceMetric, LmOutput, LmStats,
    LossMetric, PatchLengthMetric, PerplexityMetric, PlainRenderer, WarmupCosineConfig,
    clip_grad_norm,
};
use burn::backend::{Autodiff, NdArray};
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::module::AutodiffModule;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use burn::train::metric::LearningRateMetric;
use burn::train::{
    InferenceStep, Learner, LearnerSummary, SupervisedTraining, TrainOutput, TrainStep,
};

type Train = Autodiff<NdArray>;
const VOCAB: usize = 8;

#[derive(Module, Debug)]
struct Bigram<B: Backend> {
    embed: Embedding<B>,
    out: Linear<B>,
}

#[derive(Clone, Debug)]
struct Pairs<B: Backend> {
    inputs: Tensor<B, 2, Int>,
    targets: Tensor<B, 2, Int>,
}

#[derive(Clone)]
struct PairBatcher;

impl<B: Backend> Batcher<B, Vec<i64>, Pairs<B>> for PairBatcher {
    fn batch(&self, items: Vec<Vec<i64>>, device: &B::Device) -> Pairs<B> {
        let rows = items.len();
        let cols = items[0].len() - 1;
        let flat = |skip: usize| -> Vec<i64> {
            items
                .iter()
                .flat_map(|r| r[skip..skip + cols].to_vec())
                .collect()
        };
        let tensor = |data: Vec<i64>| {
            Tensor::<B, 2, Int>::from_data(TensorData::new(data, [rows, cols]), device)
        };
        Pairs {
            inputs: tensor(flat(0)),
            targets: tensor(flat(1)),
        }
    }
}

impl<B: Backend> Bigram<B> {
    fn forward(&self, batch: &Pairs<B>) -> (Tensor<B, 1>, LmStats) {
        let [rows, cols] = batch.inputs.dims();
        let logits = self.out.forward(self.embed.forward(batch.inputs.clone()));
        let log_probs = log_softmax(logits.reshape([rows * cols, VOCAB]), 1);
        let targets = batch.targets.clone().reshape([rows * cols, 1]);
        let target_log_probs = log_probs.clone().gather(1, targets.clone());
        let loss = target_log_probs.clone().neg().mean();
        let hits = log_probs.argmax(1).equal(targets).int().sum();
        let stats = LmStats {
            loss_sum: -target_log_probs.clone().sum().into_scalar().elem::<f64>(),
            bytes: rows * cols,
            correct: hits.into_scalar().elem::<i64>() as usize,
            confidence_sum: target_log_probs.exp().sum().into_scalar().elem::<f64>(),
            patches: rows * cols / 2,
            positions: rows * cols,
        };
        (loss, stats)
    }
}

impl<B: AutodiffBackend> TrainStep for Bigram<B> {
    type Input = Pairs<B>;
    type Output = LmOutput;

    fn step(&self, batch: Pairs<B>) -> TrainOutput<LmOutput> {
        let (loss, stats) = self.forward(&batch);
        TrainOutput::new(self, loss.backward(), LmOutput::new(stats))
    }

    fn optimize<BB, O>(self, optim: &mut O, lr: f64, grads: GradientsParams) -> Self
    where
        BB: AutodiffBackend,
        O: Optimizer<Self, BB>,
        Self: AutodiffModule<BB>,
    {
        let (grads, _norm) = clip_grad_norm::<BB, Self>(&self, grads, 1.0);
        optim.step(lr, self, grads)
    }
}

impl<B: Backend> InferenceStep for Bigram<B> {
    type Input = Pairs<B>;
    type Output = LmOutput;

    fn step(&self, batch: Pairs<B>) -> LmOutput {
        LmOutput::new(self.forward(&batch).1)
    }
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Deterministic sequences where byte `b` is always followed by `(b + 3) % VOCAB`.
fn sequences(count: usize) -> Vec<Vec<i64>> {
    (0..count)
        .map(|i| (0..9).map(|j| ((i + 3 * j) % VOCAB) as i64).collect())
        .collect()
}

#[test]
fn learner_trains_with_plain_renderer_and_custom_metrics() {
    let _serial = crate::common::serial();
    let dir = tempfile::tempdir().unwrap();
    let device = Default::default();
    Train::seed(&device, 7);
    let model = Bigram::<Train> {
        embed: EmbeddingConfig::new(VOCAB, 16).init(&device),
        out: LinearConfig::new(16, VOCAB).init(&device),
    };
    let train = DataLoaderBuilder::<Train, _, _>::new(PairBatcher)
        .batch_size(4)
        .build(InMemDataset::new(sequences(32)));
    let valid = DataLoaderBuilder::<NdArray, _, _>::new(PairBatcher)
        .batch_size(4)
        .build(InMemDataset::new(sequences(8)));
    let schedule = WarmupCosineConfig::new(3e-2, 3e-3, 2, 8)
        .with_accumulation(2)
        .init()
        .unwrap();
    let out = Shared::default();

    let training = SupervisedTraining::new(dir.path(), train, valid)
        .metric_train_numeric(LossMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .metric_train_numeric(BitsPerByteMetric::new())
        .metric_valid_numeric(BitsPerByteMetric::new())
        .metric_valid_numeric(PerplexityMetric::new())
        .metric_valid_numeric(AccuracyMetric::new())
        .metric_valid_numeric(ConfidenceMetric::new())
        .metric_train_numeric(PatchLengthMetric::new())
        .metric_train_numeric(BytesPerSecondMetric::new())
        .metric_train_numeric(LearningRateMetric::new())
        .grads_accumulation(2)
        .num_epochs(3)
        .renderer(PlainRenderer::new(Box::new(out.clone()), 4))
        .with_application_logger(None)
        .summary();
    let optim = AdamWConfig::new().init();
    let _result = training.launch(Learner::new(model, optim, schedule));

    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let train_lines: Vec<_> = lines.iter().filter(|l| l.starts_with("train ")).collect();
    let valid_lines: Vec<_> = lines.iter().filter(|l| l.starts_with("valid ")).collect();
    // 8 iterations per epoch, a line every 4: two per epoch.
    assert_eq!(train_lines.len(), 6, "{text}");
    assert_eq!(valid_lines.len(), 3, "{text}");
    assert!(
        train_lines[0].starts_with("train epoch 1/3 iter 4/8 | "),
        "{text}"
    );
    for name in [
        "Loss",
        "Bits per byte",
        "Patch length 2.000 bytes",
        "Learning Rate",
    ] {
        assert!(train_lines[0].contains(name), "{name}: {text}");
    }
    for name in ["Perplexity", "Accuracy", "Confidence"] {
        assert!(valid_lines[0].contains(name), "{name}: {text}");
    }

    // Validation loss falls, and perplexity is exp(loss) of the same epoch.
    let value = |line: &str, name: &str| -> f64 {
        let field = line.split(" | ").find(|f| f.starts_with(name)).unwrap();
        field[name.len() + 1..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let first = value(valid_lines[0], "Loss");
    let last = value(valid_lines[2], "Loss");
    assert!(last < first, "{text}");
    let ppl = value(valid_lines[2], "Perplexity");
    assert!(
        (ppl - last.exp()).abs() < 2e-3 * ppl,
        "{ppl} vs exp({last})"
    );

    // Burn's summary aggregates the logs: per epoch, the telescoped perplexity entries give
    // exp(loss). The summary that `.summary()` prints is built while Burn's asynchronous
    // metric loggers may still be writing the last epoch (a race in burn-train 0.21), so
    // this reads the logs again once `launch` has returned and the loggers are joined.
    let summary = LearnerSummary::new(dir.path(), &["Loss", "Perplexity"]).unwrap();
    let valid = |metric: &str| -> Vec<f64> {
        let found = summary.metrics.valid.iter().find(|m| m.name == metric);
        let entries = &found.unwrap_or_else(|| panic!("{metric} missing")).entries;
        entries.iter().map(|e| e.value).collect()
    };
    let (losses, ppls) = (valid("Loss"), valid("Perplexity"));
    assert_eq!(losses.len(), 3, "{losses:?}");
    assert_eq!(ppls.len(), 3, "{ppls:?}");
    for (loss, ppl) in losses.iter().zip(&ppls) {
        assert!(
            (ppl - loss.exp()).abs() < 2e-3 * ppl,
            "{ppl} vs exp({loss})"
        );
    }
    assert!((losses[2] - last).abs() < 1e-3, "{losses:?} vs {last}");
    // A summary was printed (its rows can race the loggers, as above), and the summary of the
    // finished logs has a validation row for each tracked metric.
    assert!(text.contains(" Learner Summary "), "{text}");
    let table = summary.to_string();
    for metric in ["Loss", "Perplexity"] {
        let row = format!("| {metric} ");
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("| Valid") && l.contains(&row)),
            "{metric}: {table}"
        );
    }

    // Per-metric logs exist for Burn's epoch aggregates.
    assert!(dir.path().join("train/epoch-1/Bits_per_byte.log").exists());
    assert!(dir.path().join("valid/epoch-3/Perplexity.log").exists());
}
