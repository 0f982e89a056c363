//! `cargo xtask ci`: the steps `.ci/run` executes, with the time each one takes.

use std::time::Duration;

use crate::{cmd::run, flags::CiArgs};

/// The README's test command.
pub const TEST_COMMAND: [&str; 2] = ["test", "--workspace"];

/// Runs every CI step in order and reports their wall times on stderr.
pub fn run_ci(args: &CiArgs) -> anyhow::Result<Vec<(String, Duration)>> {
    // One clippy pass over every target, with the GPU backends' code compiled in unless skipped:
    // a separate `cargo check --features wgpu,cuda` would type-check all of Burn a second time.
    // The examples are behind each crate's `examples` feature (so that `cargo test` skips them);
    // clippy turns it on to check them.
    let mut features = "blt-model/examples,blt-train/examples,blt-data/examples".to_string();
    if !args.skip_gpu_check {
        features.push_str(",blt-cli/wgpu,blt-cli/cuda");
    }
    let mut clippy = vec![
        "clippy",
        "--workspace",
        "--all-targets",
        "--features",
        &features,
    ];
    clippy.extend(["--", "-D", "warnings"]);
    let mut steps: Vec<(&str, Vec<&str>)> = vec![
        ("fmt", vec!["fmt", "--all", "--check"]),
        ("clippy", clippy),
        ("test", TEST_COMMAND.to_vec()),
    ];
    // The README's main job, on the tiny preset, then the benchmark in smoke mode.
    let run_dir = std::env::temp_dir().join(format!("blt-ci-tiny-{}", std::process::id()));
    let run_dir_arg = run_dir.to_string_lossy().into_owned();
    steps.push((
        "train-tiny",
        vec![
            "xtask",
            "train",
            "--config",
            "configs/tiny.toml",
            "--backend",
            "ndarray",
            "--plain",
            "--run-dir",
            &run_dir_arg,
        ],
    ));
    steps.push(("bench-quick", vec!["xtask", "bench", "--quick"]));
    let mut times = Vec::new();
    for (name, cargo_args) in steps {
        eprintln!("ci: step {name}: cargo {}", cargo_args.join(" "));
        let took = run("cargo", &cargo_args)?;
        eprintln!("ci: step {name} took {:.0}s", took.as_secs_f64());
        times.push((name.to_string(), took));
    }
    let _ = std::fs::remove_dir_all(&run_dir);
    Ok(times)
}

/// Entry point of the subcommand.
pub fn run_all(args: &CiArgs) -> anyhow::Result<()> {
    let times = run_ci(args)?;
    let total: f64 = times.iter().map(|(_, t)| t.as_secs_f64()).sum();
    eprintln!("ci: all steps passed in {total:.0}s");
    Ok(())
}
