//! The one place that decides what config a run trains with: a config file (or, when resuming
//! without one, the run's saved `config.toml`), then the command-line overrides, then, when
//! resuming, a check against the saved config that only lets through what a resumed run can
//! change.
//!
//! What may change on resume is the run's length and bookkeeping: `training.max_steps`,
//! `training.num_epochs`, `training.patience`, `training.checkpoint_every`,
//! `training.log_every`, `training.eval_batches`, `training.eval_batch_size`, and the data
//! path `data.source` (the same text elsewhere, say). Everything else shapes the model, the
//! optimizer state or the data split that the checkpoints were made with, so a change is an
//! error that names the field. `model.entropy_threshold` is set by the run itself when it
//! calibrates, so the saved value always wins.

use toml::Value;

use crate::{
    config::RunConfig,
    error::{Result, TrainError},
};

/// Fields (dotted TOML paths) that a resumed run may change.
pub const RESUMABLE_FIELDS: &[&str] = &[
    "training.max_steps",
    "training.num_epochs",
    "training.patience",
    "training.checkpoint_every",
    "training.log_every",
    "training.eval_batches",
    "training.eval_batch_size",
    "data.source",
    "data.in_memory",
];

/// Settings given on the command line, applied over the config file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOverrides {
    /// `--data`: replaces `data.source`.
    pub data: Option<String>,
    /// `--max-steps`: replaces `training.max_steps` (and caps `training.warmup_steps`).
    pub max_steps: Option<usize>,
    /// `--seed`: replaces `training.seed`.
    pub seed: Option<u64>,
    /// `--entropy-steps`: replaces `training.entropy_steps` (the entropy model's stage).
    pub entropy_steps: Option<usize>,
    /// `--devices`: replaces `training.devices`.
    pub devices: Option<Vec<usize>>,
}

impl RunOverrides {
    /// Writes the overrides into `config`.
    pub fn apply(&self, config: &mut RunConfig) {
        if let Some(data) = &self.data {
            config.data.source = data.clone();
        }
        if let Some(steps) = self.max_steps {
            config.training.max_steps = steps;
            config.training.warmup_steps = config.training.warmup_steps.min(steps);
        }
        if let Some(seed) = self.seed {
            config.training.seed = seed;
        }
        if let Some(steps) = self.entropy_steps {
            config.training.entropy_steps = steps;
        }
        if let Some(devices) = &self.devices {
            config.training.devices = devices.clone();
        }
    }
}

/// The config a resumed run trains with: `requested` (the config file or the saved config,
/// with the overrides applied), checked against `saved`, the run's own `config.toml`.
///
/// Fails, naming the field and both values, when `requested` changes anything outside
/// [`RESUMABLE_FIELDS`]; keeps the saved `model.entropy_threshold`.
pub fn resume_config(saved: &RunConfig, requested: &RunConfig) -> Result<RunConfig> {
    let mut merged = requested.clone();
    // The run writes this one itself (calibration): the saved value is kept.
    merged.model.entropy_threshold = saved.model.entropy_threshold;
    let (old, new) = (as_value(saved), as_value(&merged));
    let mut changed = Vec::new();
    differences("", &old, &new, &mut changed);
    if let Some((field, was, now)) = changed
        .into_iter()
        .find(|(field, _, _)| !RESUMABLE_FIELDS.contains(&field.as_str()))
    {
        return Err(TrainError::InvalidConfig(format!(
            "{field} cannot change when resuming (the run has {was}, now {now}); only {} may \
             change, so start a new run directory for this",
            RESUMABLE_FIELDS.join(", ")
        )));
    }
    Ok(merged)
}

fn as_value(config: &RunConfig) -> Value {
    Value::try_from(config).expect("a run config always serialises")
}

/// Every leaf where `a` and `b` differ, as (dotted path, a's value, b's value); a key that one
/// side lacks shows as `unset`.
fn differences(path: &str, a: &Value, b: &Value, out: &mut Vec<(String, String, String)>) {
    if let (Value::Table(ta), Value::Table(tb)) = (a, b) {
        let mut keys: Vec<&String> = ta.keys().chain(tb.keys()).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            match (ta.get(key), tb.get(key)) {
                (Some(x), Some(y)) => differences(&child, x, y, out),
                (x, y) => out.push((child, shown(x), shown(y))),
            }
        }
    } else if a != b {
        out.push((path.to_string(), a.to_string(), b.to_string()));
    }
}

fn shown(value: Option<&Value>) -> String {
    value.map_or_else(|| "unset".to_string(), Value::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved() -> RunConfig {
        let mut config = RunConfig::default();
        config.training.max_steps = 60;
        config.training.warmup_steps = 10;
        config.model.entropy_threshold = 1.25;
        config
    }

    #[test]
    fn resumable_fields_and_overrides_go_through() {
        let mut requested = saved();
        requested.model.entropy_threshold = 9.0;
        RunOverrides {
            data: Some("other.txt".into()),
            max_steps: Some(100),
            seed: None,
            entropy_steps: None,
            devices: None,
        }
        .apply(&mut requested);
        requested.training.patience = 0;
        let merged = resume_config(&saved(), &requested).unwrap();
        assert_eq!(merged.training.max_steps, 100);
        assert_eq!(merged.training.patience, 0);
        assert_eq!(merged.data.source, "other.txt");
        // The calibrated threshold is the run's own.
        assert_eq!(merged.model.entropy_threshold, 1.25);
    }

    #[test]
    fn other_changes_are_refused_with_the_field_named() {
        type Change = fn(&mut RunConfig);
        let cases: [(&str, Change); 5] = [
            ("training.seed", |c| c.training.seed = 7),
            // The schedule's record counts rounds of the devices, not steps.
            ("training.devices", |c| c.training.devices = vec![0, 1]),
            ("model.hidden_size", |c| c.model.hidden_size = 64),
            ("training.learning_rate", |c| c.training.learning_rate = 0.5),
            ("data.valid_fraction", |c| c.data.valid_fraction = 0.5),
        ];
        for (field, change) in cases {
            let mut requested = saved();
            change(&mut requested);
            let err = resume_config(&saved(), &requested).unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
            assert!(err.contains("cannot change when resuming"), "{err}");
        }
        let mut requested = saved();
        RunOverrides {
            seed: Some(3),
            ..RunOverrides::default()
        }
        .apply(&mut requested);
        let err = resume_config(&saved(), &requested).unwrap_err().to_string();
        assert!(
            err.contains("training.seed cannot change when resuming (the run has 42, now 3)"),
            "{err}"
        );
    }

    #[test]
    fn optional_fields_set_on_one_side_only_are_differences() {
        let mut requested = saved();
        requested.training.max_batch_bytes = Some(4096);
        let err = resume_config(&saved(), &requested).unwrap_err().to_string();
        assert!(err.contains("training.max_batch_bytes"), "{err}");
        assert!(err.contains("unset"), "{err}");
    }
}
