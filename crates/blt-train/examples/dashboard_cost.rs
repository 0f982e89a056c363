//! Trains a run config with a chosen dashboard, to measure what the dashboard costs.
//!
//! ```sh
//! cargo build -p blt-train --example dashboard_cost --features examples
//! # A terminal is needed for the TUIs; `script` provides one:
//! script -qc "target/debug/examples/dashboard_cost burn configs/tiny.toml /tmp/burn" /dev/null
//! script -qc "target/debug/examples/dashboard_cost tui configs/tiny.toml /tmp/tui" /dev/null
//! target/debug/examples/dashboard_cost plain configs/tiny.toml /tmp/plain
//! ```
//!
//! Each run leaves `summary.json` (per-epoch training bytes/s, wall time) in its directory.

use std::path::PathBuf;

use blt_train::{Dashboard, RunConfig, TrainOptions};
use burn::backend::{Autodiff, NdArray};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dashboard, config, run_dir] = args.as_slice() else {
        return Err("usage: dashboard_cost <tui|burn|plain> CONFIG RUN_DIR".into());
    };
    let dashboard = match dashboard.as_str() {
        "tui" => Dashboard::Tui,
        "burn" => Dashboard::BurnTui,
        "plain" => Dashboard::Plain,
        other => return Err(format!("unknown dashboard {other}").into()),
    };
    let config = RunConfig::load(&PathBuf::from(config))?;
    let options = TrainOptions {
        dashboard,
        backend: "ndarray".into(),
        ..TrainOptions::default()
    };
    blt_train::train::<Autodiff<NdArray>>(config, Default::default(), run_dir.as_ref(), options)?;
    Ok(())
}
