//! One module per subcommand.

mod generate;
mod info;
mod patch;
mod train;

use anyhow::Result;

use crate::args::{Cli, Command};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let global = cli.global;
    match cli.command {
        Command::Train(args) => train::run(&global, args),
        Command::Generate(args) => generate::run(&global, args),
        Command::Info(args) => info::run(&global, args),
        Command::Patch(args) => patch::run(&global, args),
        Command::Eval(_) | Command::Entropy(_) | Command::Calibrate(_) => {
            anyhow::bail!("this command is not available in this build yet")
        }
    }
}
