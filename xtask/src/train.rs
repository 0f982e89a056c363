//! `cargo xtask train`: picks the backend (CUDA when a GPU and driver are present, else the CPU
//! backend), builds `blt-cli` with that feature and runs `blt-cli train`.

use anyhow::{Result, bail};

use crate::{
    cmd::{blt_cli_features, run},
    flags::TrainArgs,
};

// The probe `blt-cli --backend auto` uses, from its one home.
#[path = "../../crates/blt-cli/src/gpu_probe.rs"]
mod gpu_probe;

/// Chooses the backend feature and says why.
pub fn choose_backend(requested: Option<&str>) -> Result<(&'static str, String)> {
    Ok(match requested {
        Some("cuda") => ("cuda", "requested with --backend cuda".into()),
        Some("wgpu") => ("wgpu", "requested with --backend wgpu".into()),
        Some("ndarray") => ("ndarray", "requested with --backend ndarray".into()),
        Some("flex") => bail!("blt trains on ndarray, not flex, on CPU (ndarray is faster)"),
        Some(other) => bail!("unknown backend `{other}`; expected cuda, wgpu or ndarray"),
        None if gpu_probe::nvidia_gpu_present() => {
            ("cuda", "an NVIDIA GPU and driver are present".into())
        }
        None => (
            "ndarray",
            "no GPU found; ndarray trains faster than flex on CPU (see README)".into(),
        ),
    })
}

/// Entry point of the subcommand.
pub fn run_train(args: &TrainArgs) -> Result<()> {
    let (backend, why) = choose_backend(args.backend.as_deref())?;
    eprintln!("xtask train: backend {backend} ({why})");
    // Only what the user gave is forwarded: the config file's own data source stands unless
    // --data replaces it, and a resumed run reads its saved config unless --config is given.
    let config = match (&args.config, args.resume) {
        (Some(config), _) => Some(config.clone()),
        (None, true) => None,
        (None, false) => Some("configs/small.toml".to_string()),
    };
    let mut cargo: Vec<String> = vec!["run".into()];
    if args.release {
        cargo.push("--release".into());
    }
    if let Some(profile) = &args.profile {
        cargo.extend(["--profile".into(), profile.clone()]);
    }
    cargo.extend(["-p".into(), "blt-cli".into()]);
    // The CPU backends are default features. `--features wgpu` gives the feature set of the
    // README's test command, so that CI reuses the tests' `blt-cli` instead of building another.
    if let Some(features) = blt_cli_features(args.features.as_deref(), backend) {
        cargo.extend(["--features".into(), features]);
    }
    cargo.extend([
        "--".into(),
        "--backend".into(),
        backend.into(),
        "train".into(),
    ]);
    if let Some(config) = config {
        cargo.extend(["--config".into(), config]);
    }
    if let Some(data) = &args.data {
        cargo.extend(["--data".into(), data.clone()]);
    }
    if let Some(dir) = &args.run_dir {
        cargo.extend(["--run-dir".into(), dir.clone()]);
    }
    if args.resume {
        cargo.push("--resume".into());
    }
    if let Some(steps) = args.max_steps {
        cargo.extend(["--max-steps".into(), steps.to_string()]);
    }
    if let Some(steps) = args.entropy_steps {
        cargo.extend(["--entropy-steps".into(), steps.to_string()]);
    }
    if args.plain {
        cargo.push("--plain".into());
    }
    if let Some(dashboard) = &args.dashboard {
        cargo.extend(["--dashboard".into(), dashboard.clone()]);
    }
    let refs: Vec<&str> = cargo.iter().map(String::as_str).collect();
    run("cargo", &refs)?;
    Ok(())
}
