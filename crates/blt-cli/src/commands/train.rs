//! `blt-cli train`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use blt_train::{Dashboard, RunConfig, RunOverrides, TrainOptions};
use burn::{backend::Autodiff, tensor::backend::Backend, train::Interrupter};

use crate::{
    args::{DashboardArg, GlobalArgs, TrainArgs},
    backend::{BackendTask, dispatch},
};

struct TrainTask {
    config: RunConfig,
    run_dir: PathBuf,
    options: TrainOptions,
}

impl BackendTask for TrainTask {
    type Output = blt_train::RunSummary;

    #[cfg(feature = "flex")]
    fn run_flex(self, _device: burn::backend::flex::FlexDevice) -> Result<Self::Output> {
        crate::backend::no_training_on_flex()
    }

    fn run<B: Backend>(mut self, device: B::Device, name: &'static str) -> Result<Self::Output> {
        self.options.backend = name.to_string();
        let devices =
            crate::backend::training_devices::<B>(&self.config.training.devices, device, name)?;
        let summary = if self.config.training.activation_checkpointing {
            blt_train::train_on::<
                Autodiff<B, burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing>,
            >(self.config, devices, &self.run_dir, self.options)?
        } else {
            blt_train::train_on::<Autodiff<B>>(self.config, devices, &self.run_dir, self.options)?
        };
        Ok(summary)
    }
}

/// Runs the command.
pub fn run(global: &GlobalArgs, args: TrainArgs) -> Result<()> {
    let run_dir = match (&args.run_dir, &args.config) {
        (Some(dir), _) => dir.clone(),
        (None, Some(config)) => PathBuf::from("runs").join(config.file_stem().unwrap_or_default()),
        (None, None) => anyhow::bail!("give --config FILE (or --run-dir DIR --resume)"),
    };
    // The config file, or the run's own when resuming without one; then the flags. On resume
    // `blt_train::train` checks the result against the saved config (what may change and
    // what may not: `blt_train::RESUMABLE_FIELDS`).
    let mut config = match (&args.config, args.resume) {
        // The error names the file already.
        (Some(path), _) => RunConfig::load(path)?,
        (None, true) => RunConfig::load(&run_dir.join(blt_train::RUN_CONFIG_FILE))
            .with_context(|| format!("reading the run config of {}", run_dir.display()))?,
        (None, false) => anyhow::bail!("give --config FILE"),
    };
    RunOverrides {
        data: args.data.clone(),
        max_steps: args.max_steps,
        seed: global.seed,
        entropy_steps: args.entropy_steps,
        devices: args.devices.clone(),
    }
    .apply(&mut config);
    config.validate()?;
    let interrupter = Interrupter::new();
    let terminal = blt_train::stdout_is_terminal();
    let dashboard = match (args.plain, args.dashboard) {
        (true, _) | (false, Some(DashboardArg::Plain)) => Dashboard::Plain,
        (false, None) => Dashboard::detect(),
        (false, Some(_)) if !terminal => {
            tracing::warn!("stdout is not a terminal: printing log lines instead of a dashboard");
            Dashboard::Plain
        }
        (false, Some(DashboardArg::Compact)) => Dashboard::Tui,
        (false, Some(DashboardArg::Burn)) => Dashboard::BurnTui,
    };
    // Ctrl-C stops at the next batch; the last checkpoint is kept and --resume continues. (The
    // dashboard's raw mode turns Ctrl-C into a key, which it handles the same way.)
    let stop = interrupter.clone();
    let _ = ctrlc::set_handler(move || stop.stop(Some("interrupted (Ctrl-C)")));
    // Log lines while a dashboard is up go to the run's log file instead of over the screen.
    crate::output::log_to_file_during_dashboards(run_dir.join("train.log"));
    let options = TrainOptions {
        resume: args.resume,
        entropy_model: args.entropy_model.clone(),
        dashboard,
        interrupter,
        backend: String::new(),
        stop_after: None,
        progress: crate::progress::reporter(global.quiet > 0),
    };
    let summary = dispatch(
        &global.backend,
        TrainTask {
            config,
            run_dir: run_dir.clone(),
            options,
        },
    )?;
    println!("{}", summary.stage_tables());
    let blt = summary.blt_stage.epochs.last();
    eprintln!(
        "trained in {:.0}s on {}: {} steps, valid bits/byte {}, mean patch length {:.2}; model in {}",
        summary.wall_seconds,
        summary.backend,
        summary.blt_stage.steps,
        blt.and_then(|e| e.valid_bits_per_byte)
            .map_or("n/a".into(), |v| format!("{v:.3}")),
        summary.mean_patch_length,
        run_dir.display()
    );
    if summary.interrupted {
        eprintln!(
            "stopped early; continue with: blt-cli train --run-dir {} --resume",
            run_dir.display()
        );
    }
    Ok(())
}
