//! `cargo xtask gpu-check`: prepares the GPU check here (a release `blt-cli` with CUDA, the
//! configs it needs and `scripts/gpu-check.sh`, in `target/gpu-check/`), to be carried to a
//! machine with an NVIDIA GPU and no network and run there with `bash
//! target/gpu-check/gpu-check.sh`. With `--run` it also runs the check (on a GPU machine that
//! has this workspace and its dependencies).

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::{
    cmd::{run, workspace_root},
    flags::GpuCheckArgs,
};

/// The files the check reads, relative to the workspace root, copied beside the binary.
const FILES: [&str; 4] = [
    "configs/tiny.toml",
    "configs/bench.toml",
    "configs/gpu.toml",
    "scripts/gpu-check.sh",
];

/// Entry point of the subcommand.
pub fn run_gpu_check(args: &GpuCheckArgs) -> Result<()> {
    let root = workspace_root();
    let mut build = std::process::Command::new("cargo");
    build
        .args(["build", "--release", "-p", "blt-cli", "--features", "cuda"])
        .current_dir(&root);
    if let Some(version) = &args.cuda_version {
        // cudarc binds the CUDA API of this version (e.g. 12080 for 12.8) instead of its
        // default; read by its build script.
        build.env("CUDARC_CUDA_VERSION", version);
    }
    let status = build.status().context("starting cargo")?;
    if !status.success() {
        bail!("building blt-cli with CUDA failed ({status})");
    }
    let bundle = root.join("target/gpu-check");
    std::fs::create_dir_all(bundle.join("configs"))
        .with_context(|| format!("creating {}", bundle.display()))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    copy(&target.join("release/blt-cli"), &bundle.join("blt-cli"))?;
    for file in FILES {
        let to = match file.strip_prefix("scripts/") {
            Some(name) => bundle.join(name),
            None => bundle.join(file),
        };
        copy(&root.join(file), &to)?;
    }
    eprintln!(
        "gpu-check: ready in {}; on the GPU machine run `bash {}/gpu-check.sh` (JSON on stdout, \
         logs in its out/ folder)",
        bundle.display(),
        bundle.display()
    );
    if args.run {
        let script = bundle.join("gpu-check.sh");
        run("bash", &[script.to_str().context("a UTF-8 path")?])?;
    }
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    if !from.exists() {
        bail!("{} is missing", from.display());
    }
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}
