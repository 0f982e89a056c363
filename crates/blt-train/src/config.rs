//! The run configuration: one TOML file with `[model]` (a [`BltConfig`]), `[training]` (the
//! seed project's training keys plus ours) and `[data]`.

use std::path::Path;

use blt_model::BltConfig;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// The `[training]` table. Steps are optimizer steps; an "epoch" is `steps_per_epoch` of them
/// (language-model pretraining does not wait for passes over the data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingConfig {
    /// Peak learning rate of AdamW. Default: 1e-3.
    pub learning_rate: f64,
    /// Final learning rate of the cosine decay, as a fraction of the peak. Default: 0.1.
    pub min_lr_ratio: f64,
    /// Decoupled AdamW weight decay. Default: 0.1.
    pub weight_decay: f64,
    /// AdamW β1. Default: 0.9.
    pub beta_1: f64,
    /// AdamW β2. Default: 0.95.
    pub beta_2: f64,
    /// AdamW ε. Default: 1e-8.
    pub epsilon: f64,
    /// Linear warmup, in optimizer steps. Default: 100.
    pub warmup_steps: usize,
    /// Clip the global gradient norm to this (0 disables clipping). Default: 1.0.
    pub max_grad_norm: f64,
    /// Micro-batches per optimizer step. Default: 1.
    pub gradient_accumulation_steps: usize,
    /// Ids per training row (BOS included), ≤ the model's max_position_embeddings. Default: 512.
    pub max_sequence_length: usize,
    /// Rows per micro-batch (unless `max_batch_bytes` is set). Default: 8.
    pub batch_size: usize,
    /// Rows per validation batch. Default: 8.
    pub eval_batch_size: usize,
    /// Padded positions per micro-batch; when set, replaces `batch_size`. Default: unset.
    pub max_batch_bytes: Option<usize>,
    /// Stop after this many validations without a better validation loss (0: never). Default: 5.
    pub patience: usize,
    /// Upper bound on epochs; it must cover `max_steps` and `entropy_steps` (checked).
    /// Default: 1000.
    pub num_epochs: usize,
    /// Documents shorter than this many bytes are dropped. Default: 16.
    pub min_text_length: usize,
    /// Seed of initialisation, data order and dropout. Default: 42.
    pub seed: u64,
    /// Optimizer steps per epoch; validation and checkpoints happen at epoch ends. Default: 100.
    pub steps_per_epoch: usize,
    /// Total optimizer steps of the BLT. Default: 2000.
    pub max_steps: usize,
    /// Optimizer steps of the entropy model (stage one, entropy patching only). Default: 500.
    pub entropy_steps: usize,
    /// After stage one, set `model.entropy_threshold` so that the training data's mean patch
    /// length is this many bytes (bisection over the cached entropies); 0 keeps the configured
    /// threshold. Default: 4.5.
    pub target_patch_size: f64,
    /// Save a resumable checkpoint every this many epochs. Default: 1.
    pub checkpoint_every: usize,
    /// Validation batches per validation (0: the whole validation split). Default: 20.
    pub eval_batches: usize,
    /// Recompute activations in the backward pass to save memory (Burn's balanced
    /// checkpointing). Default: false.
    pub activation_checkpointing: bool,
    /// Plain-log lines every this many iterations when stdout is not a terminal. Default: 10.
    pub log_every: usize,
    /// Devices to train on, data parallel, by index: CUDA ordinals with `--backend cuda`,
    /// discrete GPUs with `wgpu`; on a CPU backend every index is the one CPU device, which
    /// runs the data-parallel path but gains nothing. Each device runs its share of every
    /// step's micro-batches and the gradients are summed on the first (Burn's multi-device
    /// strategy), so `gradient_accumulation_steps` must be a multiple of the number of devices
    /// and the result is that of one device with the same steps. Empty: the backend's default
    /// device. Default: empty.
    pub devices: Vec<usize>,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            learning_rate: 1e-3,
            min_lr_ratio: 0.1,
            weight_decay: 0.1,
            beta_1: 0.9,
            beta_2: 0.95,
            epsilon: 1e-8,
            warmup_steps: 100,
            max_grad_norm: 1.0,
            gradient_accumulation_steps: 1,
            max_sequence_length: 512,
            batch_size: 8,
            eval_batch_size: 8,
            max_batch_bytes: None,
            patience: 5,
            num_epochs: 1000,
            min_text_length: 16,
            seed: 42,
            steps_per_epoch: 100,
            max_steps: 2000,
            entropy_steps: 500,
            target_patch_size: 4.5,
            checkpoint_every: 1,
            eval_batches: 20,
            activation_checkpointing: false,
            log_every: 10,
            devices: Vec::new(),
        }
    }
}

impl TrainingConfig {
    /// Checks every key; the error names it.
    pub fn validate(&self) -> Result<()> {
        let fail = |m: String| Err(TrainError::InvalidConfig(m));
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return fail(format!(
                "training.learning_rate ({}) must be positive",
                self.learning_rate
            ));
        }
        if !(0.0..=1.0).contains(&self.min_lr_ratio) {
            return fail(format!(
                "training.min_lr_ratio ({}) must be in [0, 1]",
                self.min_lr_ratio
            ));
        }
        for (name, v) in [
            ("weight_decay", self.weight_decay),
            ("max_grad_norm", self.max_grad_norm),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return fail(format!("training.{name} ({v}) must be ≥ 0"));
            }
        }
        for (name, v) in [("beta_1", self.beta_1), ("beta_2", self.beta_2)] {
            if !(0.0..1.0).contains(&v) {
                return fail(format!("training.{name} ({v}) must be in [0, 1)"));
            }
        }
        if self.epsilon.is_nan() || self.epsilon <= 0.0 {
            return fail(format!(
                "training.epsilon ({}) must be positive",
                self.epsilon
            ));
        }
        for (name, v) in [
            (
                "gradient_accumulation_steps",
                self.gradient_accumulation_steps,
            ),
            ("batch_size", self.batch_size),
            ("eval_batch_size", self.eval_batch_size),
            ("num_epochs", self.num_epochs),
            ("steps_per_epoch", self.steps_per_epoch),
            ("max_steps", self.max_steps),
            ("entropy_steps", self.entropy_steps),
            ("checkpoint_every", self.checkpoint_every),
            ("log_every", self.log_every),
        ] {
            if v == 0 {
                return fail(format!("training.{name} (0) must be at least 1"));
            }
        }
        if !self.devices.is_empty()
            && !self
                .gradient_accumulation_steps
                .is_multiple_of(self.devices.len())
        {
            return fail(format!(
                "training.gradient_accumulation_steps ({}) must be a multiple of the number of \
                 training.devices ({}): each device runs an equal share of every step",
                self.gradient_accumulation_steps,
                self.devices.len()
            ));
        }
        if !(self.target_patch_size == 0.0 || self.target_patch_size >= 1.0) {
            return fail(format!(
                "training.target_patch_size ({}) must be 0 (off) or at least 1",
                self.target_patch_size
            ));
        }
        if self.max_sequence_length < 2 {
            return fail(format!(
                "training.max_sequence_length ({}) must be at least 2",
                self.max_sequence_length
            ));
        }
        if self.warmup_steps > self.max_steps {
            return fail(format!(
                "training.warmup_steps ({}) must not exceed training.max_steps ({})",
                self.warmup_steps, self.max_steps
            ));
        }
        // Burn's learner runs whole epochs: a stage longer than num_epochs of them would stop
        // early without a word, in the middle of its learning-rate schedule.
        for (name, steps) in [
            ("max_steps", self.max_steps),
            ("entropy_steps", self.entropy_steps),
        ] {
            let needed = steps.div_ceil(self.steps_per_epoch);
            if needed > self.num_epochs {
                return fail(format!(
                    "training.{name} ({steps}) needs {needed} epochs of training.steps_per_epoch \
                     ({}), more than training.num_epochs ({}); raise one of the two",
                    self.steps_per_epoch, self.num_epochs
                ));
            }
        }
        if let Some(budget) = self.max_batch_bytes
            && budget < self.max_sequence_length
        {
            return fail(format!(
                "training.max_batch_bytes ({budget}) must hold one row of max_sequence_length ({})",
                self.max_sequence_length
            ));
        }
        Ok(())
    }

    /// Epochs a stage of `steps` optimizer steps lasts ([`validate`](Self::validate) checks
    /// that this is within `num_epochs`).
    pub fn epochs(&self, steps: usize) -> usize {
        steps.div_ceil(self.steps_per_epoch)
    }
}

/// The `[data]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Where documents come from: `builtin:kjv`, a file, a directory, a `.jsonl` file, or
    /// `hub:NAME`. Default: `builtin:kjv`.
    pub source: String,
    /// Fraction of documents held out for validation. Default: 0.05.
    pub valid_fraction: f64,
    /// Use only the first this many documents (0: all). Default: 0.
    pub max_documents: usize,
    /// Keep the corpus in memory (about one byte of RAM per corpus byte). `false` streams it
    /// into an anonymous temporary file in `TMPDIR` (the system's temporary directory by
    /// default) and reads each row when its batch is built, for corpora larger than memory.
    /// Default: true.
    pub in_memory: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            source: "builtin:kjv".into(),
            valid_fraction: 0.05,
            max_documents: 0,
            in_memory: true,
        }
    }
}

/// A whole run: model, training and data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// The model (including its patching settings and entropy model).
    pub model: BltConfig,
    /// The training recipe.
    pub training: TrainingConfig,
    /// The data.
    pub data: DataConfig,
}

impl RunConfig {
    /// Checks every table.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        self.training.validate()?;
        if self.training.max_sequence_length > self.model.max_position_embeddings {
            return Err(TrainError::InvalidConfig(format!(
                "training.max_sequence_length ({}) must not exceed model.max_position_embeddings ({})",
                self.training.max_sequence_length, self.model.max_position_embeddings
            )));
        }
        if !(0.0..1.0).contains(&self.data.valid_fraction) || self.data.valid_fraction == 0.0 {
            return Err(TrainError::InvalidConfig(format!(
                "data.valid_fraction ({}) must be in (0, 1)",
                self.data.valid_fraction
            )));
        }
        let (target, m) = (self.training.target_patch_size, &self.model);
        if m.patching == blt_model::PatchingKind::Entropy && target > 0.0 {
            // Calibration fits the mean patch length to the target; patch bounds that exclude
            // it would fail only after the whole entropy stage.
            let too_long = m.max_patch_size != 0 && target > m.max_patch_size as f64;
            if target < m.min_patch_size as f64 || too_long {
                return Err(TrainError::InvalidConfig(format!(
                    "training.target_patch_size ({target}) must lie between model.min_patch_size \
                     ({}) and model.max_patch_size ({}); set it to 0 to keep \
                     model.entropy_threshold as given",
                    m.min_patch_size,
                    if m.max_patch_size == 0 {
                        "unbounded".to_string()
                    } else {
                        m.max_patch_size.to_string()
                    }
                )));
            }
        }
        blt_data::DataSource::parse(&self.data.source)?;
        Ok(())
    }

    /// Parses and validates TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let config: Self =
            toml::from_str(text).map_err(|e| TrainError::InvalidConfig(e.message().to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io {
            action: "reading",
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text).map_err(|e| match e {
            TrainError::InvalidConfig(m) => {
                TrainError::InvalidConfig(format!("{}: {m}", path.display()))
            }
            other => other,
        })
    }

    /// Renders as TOML.
    pub fn to_toml_string(&self) -> String {
        toml::to_string_pretty(self).expect("a run config always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_config_file_validates_and_round_trips() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let config =
                RunConfig::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let back = RunConfig::from_toml_str(&config.to_toml_string()).unwrap();
            assert_eq!(back, config, "{}", path.display());
            seen += 1;
        }
        assert!(seen >= 6, "only {seen} configs found");
    }

    /// docs/training.md documents every field a run config has (optional fields included).
    #[test]
    fn the_training_guide_lists_every_config_field() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/training.md");
        let guide = std::fs::read_to_string(&path).unwrap();
        let mut config = RunConfig::default();
        config.model.decoder_intermediate_size = Some(config.model.intermediate_size);
        config.training.max_batch_bytes = Some(4096);
        let value = toml::Value::try_from(&config).unwrap();
        let mut seen = 0;
        for (table, fields) in value.as_table().unwrap() {
            let heading = format!("### `[{table}]`");
            let section = guide
                .split_once(&heading)
                .unwrap_or_else(|| panic!("docs/training.md has no {heading}"))
                .1;
            for key in fields.as_table().unwrap().keys() {
                assert!(
                    section.contains(&format!("| `{key}` |")),
                    "docs/training.md does not document [{table}] {key}"
                );
                seen += 1;
            }
        }
        assert!(seen > 60, "only {seen} fields");
    }

    #[test]
    fn invalid_training_keys_are_named() {
        let err = RunConfig::from_toml_str("[training]\nbatch_size = 0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("training.batch_size"), "{err}");
        let err = RunConfig::from_toml_str("[training]\nmax_sequence_length = 4096")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_position_embeddings"), "{err}");
        let err = RunConfig::from_toml_str("[data]\nsource = \"hub:nope\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope"), "{err}");
        let err = RunConfig::from_toml_str("[training]\nmax_steps = 200000")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("training.max_steps (200000) needs 2000 epochs"),
            "{err}"
        );
        let err = RunConfig::from_toml_str(
            "[model]\npatching = \"entropy\"\nmin_patch_size = 64\n[training]\ntarget_patch_size = 4.5",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("training.target_patch_size (4.5) must lie between"),
            "{err}"
        );
        let err = RunConfig::from_toml_str("[trainig]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("trainig"), "{err}");
    }
}
