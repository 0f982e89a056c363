//! One module per subcommand.

mod bench;
mod bench_1b;
mod bench_memory;
mod calibrate;
mod entropy;
mod eval;
mod export_hf;
mod generate;
mod import_hf;
mod info;
mod interactive;
mod parity;
mod patch;
mod train;

use anyhow::Result;

use crate::args::{Cli, Command};

/// Refuses an output directory that already holds files, so nothing there is overwritten.
fn ensure_new_dir(dir: &std::path::Path) -> Result<()> {
    let occupied = dir.exists()
        && dir
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(true);
    anyhow::ensure!(
        !occupied,
        "{} exists and is not empty; choose a new directory",
        dir.display()
    );
    Ok(())
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let global = cli.global;
    match cli.command {
        Command::Train(args) => train::run(&global, args),
        Command::Generate(args) => generate::run(&global, args),
        Command::Info(args) => info::run(&global, args),
        Command::Bench(args) => bench::run(&global, args),
        Command::Patch(args) => patch::run(&global, args),
        Command::Eval(args) => eval::run(&global, args),
        Command::Entropy(args) => entropy::run(&global, args),
        Command::Calibrate(args) => calibrate::run(&global, args),
        Command::ImportHf(args) => import_hf::run(&global, args),
        Command::ExportHf(args) => export_hf::run(&global, args),
        Command::Parity(args) => parity::run(&global, args),
    }
}
