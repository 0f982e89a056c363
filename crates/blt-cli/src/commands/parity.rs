//! `blt-cli parity`: a model against reference logits.

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use blt_model::{
    hf::{logit_diffs_by_position, parse_reference},
    load_model,
};
use burn::tensor::backend::Backend;
use serde_json::json;

use crate::{
    args::{GlobalArgs, ParityArgs},
    backend::{BackendTask, dispatch},
};

struct ParityTask {
    model: PathBuf,
    reference: PathBuf,
    atol: f32,
    json: bool,
}

impl BackendTask for ParityTask {
    type Output = ();

    fn run<B: Backend>(self, device: B::Device, _name: &'static str) -> Result<()> {
        let text = std::fs::read_to_string(&self.reference)
            .with_context(|| format!("reading {}", self.reference.display()))?;
        let rows = parse_reference(&text)
            .with_context(|| format!("reading {}", self.reference.display()))?;
        let loaded = load_model::<B>(&self.model, &device)
            .with_context(|| format!("loading model {}", self.model.display()))?;
        let by_position = logit_diffs_by_position(
            &loaded.model,
            &loaded.config,
            loaded.entropy_model.as_ref(),
            &rows,
            &device,
        )?;
        let diffs: Vec<f32> = by_position
            .iter()
            .map(|row| row.iter().copied().fold(0.0, f32::max))
            .collect();
        // The positions of each row whose logits differ by more than the tolerance.
        let differing: Vec<Vec<usize>> = by_position
            .iter()
            .map(|row| (0..row.len()).filter(|&t| row[t] > self.atol).collect())
            .collect();
        let worst = diffs.iter().copied().fold(0.0, f32::max);
        let pass = worst <= self.atol;
        if self.json {
            let value = json!({
                "max_abs_diff": worst,
                "rows": diffs,
                "positions_over_atol": differing,
                "atol": self.atol,
                "pass": pass,
            });
            println!("{}", serde_json::to_string_pretty(&value)?);
        } else {
            for (r, (d, positions)) in diffs.iter().zip(&differing).enumerate() {
                let over = if positions.is_empty() {
                    String::new()
                } else {
                    format!(" (over atol at positions {positions:?})")
                };
                println!("row {}: max |Δlogit| {d:.3e}{over}", r + 1);
            }
            println!("max |Δlogit| {worst:.3e} (atol {:.1e})", self.atol);
        }
        ensure!(
            pass,
            "max |Δlogit| {worst:.3e} exceeds --atol {:.1e}",
            self.atol
        );
        Ok(())
    }
}

/// Runs `parity`.
pub fn run(global: &GlobalArgs, args: ParityArgs) -> Result<()> {
    ensure!(
        args.atol.is_finite() && args.atol >= 0.0,
        "--atol must be a finite number ≥ 0, got {}",
        args.atol
    );
    dispatch(
        &global.backend,
        ParityTask {
            model: args.model,
            reference: args.reference,
            atol: args.atol,
            json: args.json,
        },
    )
}
