//! Command-line flags of every xtask subcommand.

use clap::{Args, Parser, Subcommand};

/// Project automation for the blt workspace.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
pub struct Xtask {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the CI steps: fmt, clippy, tests, GPU backends check, tiny training run, quick bench.
    Ci(CiArgs),
    /// Train on the built-in corpus (or --data) with the live dashboard.
    Train(TrainArgs),
    /// Measure training, forward and generation throughput; JSON out.
    Bench(BenchArgs),
    /// Prepare the CUDA check for a GPU machine (release blt-cli with CUDA, configs, script in
    /// target/gpu-check/); --run also runs it.
    GpuCheck(GpuCheckArgs),
}

/// Flags of `cargo xtask gpu-check`.
#[derive(Debug, Args)]
pub struct GpuCheckArgs {
    /// Run the check after preparing it (on a machine with an NVIDIA GPU).
    #[arg(long)]
    pub run: bool,
    /// The GPU machine's CUDA version for cudarc's bindings, as {major}0{minor}0 (12080 for
    /// 12.8); default: cudarc's own default.
    #[arg(long)]
    pub cuda_version: Option<String>,
}

/// Flags of `cargo xtask ci`.
#[derive(Debug, Args)]
pub struct CiArgs {
    /// Lint without the wgpu and cuda backends compiled in (they add Burn's GPU stack to clippy).
    #[arg(long)]
    pub skip_gpu_check: bool,
}

/// Flags of `cargo xtask train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Run config (default: configs/small.toml).
    #[arg(long)]
    pub config: Option<String>,
    /// cuda, wgpu or ndarray (default: cuda when a GPU is present, else ndarray).
    #[arg(long)]
    pub backend: Option<String>,
    /// Data source (default: builtin:kjv).
    #[arg(long)]
    pub data: Option<String>,
    /// Run directory (default: `runs/<config name>`).
    #[arg(long)]
    pub run_dir: Option<String>,
    /// Continue the run from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Override training.max_steps.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Override training.entropy_steps.
    #[arg(long)]
    pub entropy_steps: Option<usize>,
    /// Extra Cargo features of blt-cli, comma-separated (CI passes `wgpu` so that every run
    /// reuses the test build's binary).
    #[arg(long)]
    pub features: Option<String>,
    /// Plain log lines instead of the dashboard.
    #[arg(long, conflicts_with = "dashboard")]
    pub plain: bool,
    /// compact, burn or plain (blt-cli's `--dashboard`).
    #[arg(long)]
    pub dashboard: Option<String>,
    /// Build blt-cli in release mode (slower to build, a little faster to run).
    #[arg(long, conflicts_with = "profile")]
    pub release: bool,
    /// Build blt-cli with this Cargo profile (default: dev). CI passes `test`, the profile of
    /// its test build, so that the run reuses the binary the tests built.
    #[arg(long)]
    pub profile: Option<String>,
}

/// Flags of `cargo xtask bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Smoke mode for CI: a few steps, dev build.
    #[arg(long)]
    pub quick: bool,
    /// cuda, wgpu, ndarray or auto (default: auto: on CPU, ndarray for training and forward,
    /// flex for generation).
    #[arg(long)]
    pub backend: Option<String>,
    /// Output file (default: target/bench.json).
    #[arg(long)]
    pub out: Option<String>,
    /// Training and forward only.
    #[arg(long)]
    pub skip_generation: bool,
    /// Extra Cargo features of blt-cli, comma-separated.
    #[arg(long)]
    pub features: Option<String>,
    /// Build blt-cli with this Cargo profile (default: release, or dev with --quick).
    #[arg(long)]
    pub profile: Option<String>,
    /// Python interpreter with torch and transformers>=5: also time the Hugging Face BLT at the
    /// same shapes, right after our bench, and add its figures and `vs_peer` ratios to the JSON.
    #[arg(long, value_name = "PYTHON")]
    pub peer: Option<String>,
    /// The peer benchmark script.
    #[arg(long, default_value = "../shared/peers/bench_torch.py")]
    pub peer_script: String,
    /// Also measure the data pipeline's memory per corpus byte on a synthetic corpus of this
    /// many MB, in a process of its own (`corpus_memory` in the JSON; 0 skips it). Default:
    /// 1024, or 16 with `--quick`.
    #[arg(long, value_name = "MB")]
    pub corpus_mb: Option<usize>,
    /// `blt-1b`: generation at BLT-1B's shapes instead (every decoder, prefill, peak memory and
    /// the bandwidth bound); `--peer` then times transformers at the same shapes
    /// (`scripts/hf_decode_1b.py`).
    #[arg(long, value_name = "SHAPES")]
    pub shapes: Option<String>,
    /// With `--shapes blt-1b`: rows per hash n-gram table (default 50000; 500002 is full size).
    #[arg(long)]
    pub ngram_rows: Option<usize>,
}
