//! Shared helpers: the tiny run config, training into a temporary directory, reading the
//! per-step losses back from the metric logs, and flattening parameters or gradients.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use blt_train::{Dashboard, RunConfig, RunSummary, TrainOptions};
use burn::backend::{Autodiff, NdArray};
use burn::module::{ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::train::Interrupter;
use burn::train::metric::NumericEntry;

/// The backend of the tests.
pub type B = NdArray;
/// Its autodiff backend.
pub type TrainB = Autodiff<NdArray>;

/// A run small enough for a test: tiny shapes, a few chapters of the built-in corpus, short
/// epochs. `{patching}`, `{steps}`, `{entropy_steps}`, `{dropout}` and `{accumulation}` are
/// filled in by [`config`].
const CONFIG: &str = r#"
[model]
hidden_size = 32
intermediate_size = 64
num_heads = 2
encoder_layers = 1
global_layers = 1
decoder_layers = 1
global_hidden_size = 64
global_intermediate_size = 128
global_num_heads = 2
ngram_vocab_size = 256
window_size = 32
max_position_embeddings = 128
patching = "{patching}"
attention_dropout = {dropout}
resid_dropout = {dropout}
entropy_model_layers = 1
entropy_context_size = 32
entropy_hidden_size = 32
entropy_num_heads = 2
entropy_intermediate_size = 64

[training]
learning_rate = 3e-3
warmup_steps = 2
max_sequence_length = 64
batch_size = 4
eval_batch_size = 4
gradient_accumulation_steps = {accumulation}
steps_per_epoch = 2
max_steps = {steps}
entropy_steps = {entropy_steps}
eval_batches = 2
patience = 0
target_patch_size = 3.0
seed = 5

[data]
source = "builtin:kjv"
max_documents = 6
valid_fraction = 0.2
"#;

/// Settings of [`config`].
pub struct Settings {
    pub patching: &'static str,
    pub steps: usize,
    pub entropy_steps: usize,
    pub dropout: f64,
    pub accumulation: usize,
}

/// Serialises the tests that seed or draw from the backend's generator, which is global:
/// concurrent tests would interleave their draws (initialisation, dropout).
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The test run config.
pub fn config(s: &Settings) -> RunConfig {
    let text = CONFIG
        .replace("{patching}", s.patching)
        .replace("{steps}", &s.steps.to_string())
        .replace("{entropy_steps}", &s.entropy_steps.to_string())
        .replace("{dropout}", &format!("{:?}", s.dropout))
        .replace("{accumulation}", &s.accumulation.to_string());
    RunConfig::from_toml_str(&text).expect("the test config is valid")
}

/// Options for a quiet run (no dashboard output).
pub fn options() -> TrainOptions {
    TrainOptions {
        dashboard: Dashboard::Quiet,
        interrupter: Interrupter::new(),
        backend: "ndarray".into(),
        ..TrainOptions::default()
    }
}

/// Trains `config` into `dir` on ndarray.
pub fn train(config: &RunConfig, dir: &Path, options: TrainOptions) -> RunSummary {
    blt_train::train::<TrainB>(config.clone(), Default::default(), dir, options)
        .expect("training succeeds")
}

/// The per-micro-batch values of metric `name` (e.g. `Loss`) of one split of a stage
/// (`entropy-training` or `blt-training`), read from Burn's metric logs, epoch by epoch.
pub fn logged(run_dir: &Path, stage: &str, split: &str, name: &str) -> Vec<Vec<f64>> {
    let mut epochs = Vec::new();
    for epoch in 1.. {
        let path = run_dir
            .join(stage)
            .join(split)
            .join(format!("epoch-{epoch}"))
            .join(format!("{}.log", name.replace(' ', "_")));
        let Ok(text) = std::fs::read_to_string(&path) else {
            break;
        };
        let values = text
            .lines()
            .filter(|l| !l.is_empty())
            .map(
                |l| match NumericEntry::deserialize(l).expect("a numeric entry") {
                    NumericEntry::Value(v) => v,
                    NumericEntry::Aggregated {
                        aggregated_value, ..
                    } => aggregated_value,
                },
            )
            .collect();
        epochs.push(values);
    }
    epochs
}

/// Asserts that two value lists agree to a relative tolerance.
pub fn assert_close(what: &str, a: &[f64], b: &[f64], tolerance: f64) {
    assert_eq!(a.len(), b.len(), "{what}: {a:?} vs {b:?}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tolerance * x.abs().max(y.abs()).max(1e-12),
            "{what}[{i}]: {x} vs {y} ({a:?} vs {b:?})"
        );
    }
}

/// Collects every float parameter of a module, flattened, in visiting order.
pub struct Values {
    seen: HashSet<ParamId>,
    pub values: Vec<Vec<f32>>,
}

impl<BB: Backend> ModuleVisitor<BB> for Values {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<BB, D>>) {
        if self.seen.insert(param.id) {
            self.values
                .push(param.val().into_data().convert::<f32>().to_vec().unwrap());
        }
    }
}

/// The float parameters of `module`, flattened.
pub fn parameters<BB: Backend, M: Module<BB>>(module: &M) -> Vec<Vec<f32>> {
    let mut visitor = Values {
        seen: HashSet::new(),
        values: Vec::new(),
    };
    module.visit(&mut visitor);
    visitor.values
}

/// Collects the gradient of every float parameter (empty when it has none).
struct Grads<'a> {
    grads: &'a GradientsParams,
    seen: HashSet<ParamId>,
    values: Vec<Vec<f32>>,
}

impl<BB: AutodiffBackend> ModuleVisitor<BB> for Grads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<BB, D>>) {
        if self.seen.insert(param.id) {
            let grad = self.grads.get::<BB::InnerBackend, D>(param.id);
            self.values.push(grad.map_or_else(Vec::new, |g| {
                g.into_data().convert::<f32>().to_vec().unwrap()
            }));
        }
    }
}

/// The gradients in `grads` of the float parameters of `module`, flattened.
pub fn gradients<BB: AutodiffBackend, M: Module<BB>>(
    module: &M,
    grads: &GradientsParams,
) -> Vec<Vec<f32>> {
    let mut visitor = Grads {
        grads,
        seen: HashSet::new(),
        values: Vec::new(),
    };
    module.visit(&mut visitor);
    visitor.values
}

/// max |a − b| / max |a| over all tensors.
pub fn relative_difference(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    assert_eq!(a.len(), b.len());
    let (mut diff, mut scale) = (0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.len(), y.len());
        for (p, q) in x.iter().zip(y) {
            diff = diff.max(f64::from((p - q).abs()));
            scale = scale.max(f64::from(p.abs()));
        }
    }
    diff / scale.max(1e-30)
}

/// Global L2 norm of the flattened tensors.
pub fn norm(values: &[Vec<f32>]) -> f64 {
    values
        .iter()
        .flatten()
        .map(|v| f64::from(*v).powi(2))
        .sum::<f64>()
        .sqrt()
}
