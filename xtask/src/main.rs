//! Project automation, run as `cargo xtask <command>`: `ci` runs the CI steps locally, `train`
//! builds `blt-cli` with the right backend and trains, `bench` measures throughput.
//!
//! xtask never links the model crates: it drives `cargo` and `blt-cli` as processes, so it
//! compiles in seconds.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod ci;
mod cmd;
mod flags;
mod gpu_check;
mod peer;
mod train;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let flags = flags::Xtask::parse();
    match flags.command {
        flags::Command::Ci(args) => ci::run_all(&args),
        flags::Command::Train(args) => train::run_train(&args),
        flags::Command::Bench(args) => bench::run_bench(&args),
        flags::Command::GpuCheck(args) => gpu_check::run_gpu_check(&args),
    }
}
