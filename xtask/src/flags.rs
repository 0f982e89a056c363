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
}

/// Flags of `cargo xtask ci`.
#[derive(Debug, Args)]
pub struct CiArgs {
    /// Skip `cargo check` of the wgpu and cuda backends (the slowest cold step).
    #[arg(long)]
    pub skip_gpu_check: bool,
}
