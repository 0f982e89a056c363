//! Running child processes with timing and clear failures.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

/// Runs `program args…` from the workspace root, inheriting stdio; fails if it fails.
pub fn run(program: &str, args: &[&str]) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let status = Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("starting `{program}`"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(started.elapsed())
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> std::path::PathBuf {
    let manifest_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// The `--features` value for building blt-cli: the `extra` features given (comma-separated)
/// and the GPU backend's own feature when `backend` is one; `None` when there are none.
pub fn blt_cli_features(extra: Option<&str>, backend: &str) -> Option<String> {
    let mut features: Vec<&str> = extra
        .into_iter()
        .flat_map(|f| f.split(','))
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    if matches!(backend, "wgpu" | "cuda") && !features.contains(&backend) {
        features.push(backend);
    }
    (!features.is_empty()).then(|| features.join(","))
}
