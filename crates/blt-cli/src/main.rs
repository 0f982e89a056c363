//! `blt-cli`: train, generate, evaluate and inspect Byte Latent Transformers.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod allocator;
mod args;
mod backend;
mod commands;
mod decoder;
mod gpu_probe;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    allocator::keep_freed_memory();
    // User errors are reported as one line; a panic would be a bug, but still must not dump a
    // backtrace on the user.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: internal error{place}: {message} (please report this bug)");
    }));
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version, on stdout.
        Err(err) if !err.use_stderr() => {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("error: {}", output::usage_error_line(&err));
            return ExitCode::FAILURE;
        }
    };
    output::init_tracing(&cli.global);
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", output::one_line(&err));
            ExitCode::FAILURE
        }
    }
}
