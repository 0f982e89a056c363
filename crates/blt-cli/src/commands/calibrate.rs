//! `blt-cli calibrate`: the entropy threshold giving a target mean patch length (by bisection
//! over the corpus's entropies), optionally written into the model's config.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{Context, Result, bail};
use blt_data::{Progress, compute_entropies};
use blt_model::load_entropy_model;
use blt_patching::{CalibrationOptions, calibrate_threshold};
use burn::tensor::backend::Backend;

use crate::{
    args::{CalibrateArgs, GlobalArgs},
    backend::{BackendTask, dispatch},
    commands::eval::load_rows,
};

struct CalibrateTask {
    args: CalibrateArgs,
    progress: Arc<dyn Progress + Send>,
}

impl BackendTask for CalibrateTask {
    type Output = (f32, f64);

    fn run<B: Backend>(self, device: B::Device, _name: &'static str) -> Result<(f32, f64)> {
        let (config, entropy) =
            load_entropy_model::<B>(&self.args.model, &device).with_context(|| {
                format!("loading the entropy model of {}", self.args.model.display())
            })?;
        let rows = load_rows(&self.args.data, &config, self.args.max_rows)?;
        let resets = config.entropy_resets();
        let h = compute_entropies(&entropy, &rows, resets, 8, &device, &*self.progress)?;
        let slices: Vec<&[f32]> = h.iter().map(Vec::as_slice).collect();
        let options = CalibrationOptions {
            monotonic: config.monotonic_entropy,
            min_patch_size: config.min_patch_size,
            max_patch_size: (config.max_patch_size > 0).then_some(config.max_patch_size),
        };
        let found = calibrate_threshold(&slices, self.args.target_patch_size, &options)?;
        Ok((found.threshold, found.mean_patch_len))
    }
}

/// Sets `[model] entropy_threshold` in a TOML file, atomically.
fn write_threshold(path: &Path, threshold: f32) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut doc: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let Some(toml::Value::Table(model)) = doc.get_mut("model") else {
        bail!("{} has no [model] table", path.display());
    };
    model.insert(
        "entropy_threshold".into(),
        toml::Value::Float(threshold as f64),
    );
    blt_core::fs::write_atomically(path, toml::to_string_pretty(&doc)?.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Runs the command.
pub fn run(global: &GlobalArgs, args: CalibrateArgs) -> Result<()> {
    if !(args.target_patch_size >= 1.0 && args.target_patch_size.is_finite()) {
        bail!(
            "--target-patch-size ({}) must be at least 1",
            args.target_patch_size
        );
    }
    let model: PathBuf = args.model.clone();
    let write = args.write;
    let (threshold, mean) = dispatch(
        &global.backend,
        CalibrateTask {
            args,
            progress: crate::progress::reporter(global.quiet > 0),
        },
    )?;
    println!("entropy_threshold = {threshold} (mean patch length {mean:.3})");
    if write {
        for file in [blt_model::MANIFEST_FILE, blt_train::RUN_CONFIG_FILE] {
            let path = model.join(file);
            if path.exists() {
                write_threshold(&path, threshold)?;
                eprintln!("updated {}", path.display());
            }
        }
    }
    Ok(())
}
