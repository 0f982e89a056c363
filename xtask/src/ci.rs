//! `cargo xtask ci`: the steps `.ci/run` executes, with the time each one takes.

use std::time::Duration;

use crate::{cmd::run, flags::CiArgs};

/// The README's test command: every crate's tests, and the wgpu suite on Vulkan's CPU adapter
/// (`blt-cli/wgpu` turns on `blt-model/wgpu`).
pub const TEST_COMMAND: [&str; 4] = ["test", "--workspace", "--features", "blt-cli/wgpu"];

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
    // The README's main job, on the tiny preset; then the same preset on wgpu (shortened: each
    // new shape compiles its kernels on the CPU adapter, and a step runs ~5x slower than on
    // ndarray) and generation from it on wgpu; then the benchmark in smoke mode. Every run
    // builds blt-cli with the test build's features (`wgpu`), so it reuses that binary.
    let tmp = std::env::temp_dir();
    let run_dir = tmp.join(format!("blt-ci-tiny-{}", std::process::id()));
    let run_dir_arg = run_dir.to_string_lossy().into_owned();
    let wgpu_dir = tmp.join(format!("blt-ci-tiny-wgpu-{}", std::process::id()));
    let wgpu_dir_arg = wgpu_dir.to_string_lossy().into_owned();
    let train = |backend: &'static str, dir: &str| -> Vec<String> {
        let mut args = [
            "xtask",
            "train",
            "--config",
            "configs/tiny.toml",
            "--backend",
            backend,
            "--features",
            "wgpu",
            "--plain",
            "--run-dir",
            dir,
        ]
        .map(String::from)
        .to_vec();
        if backend == "wgpu" {
            args.extend(["--entropy-steps", "10", "--max-steps", "10"].map(String::from));
        }
        args
    };
    let owned: Vec<(&str, Vec<String>)> = vec![
        ("train-tiny", train("ndarray", &run_dir_arg)),
        ("train-tiny-wgpu", train("wgpu", &wgpu_dir_arg)),
        (
            "generate-wgpu",
            [
                "run",
                "-q",
                "-p",
                "blt-cli",
                "--features",
                "wgpu",
                "--",
                "--backend",
                "wgpu",
                "--seed",
                "1",
                "generate",
                "--model",
                &wgpu_dir_arg,
                "--prompt",
                "In the beginning",
                "--max-bytes",
                "48",
            ]
            .map(String::from)
            .to_vec(),
        ),
        (
            "bench-quick",
            ["xtask", "bench", "--quick", "--features", "wgpu"]
                .map(String::from)
                .to_vec(),
        ),
    ];
    for (name, args) in &owned {
        steps.push((name, args.iter().map(String::as_str).collect()));
    }
    let mut times = Vec::new();
    for (name, cargo_args) in steps {
        eprintln!("ci: step {name}: cargo {}", cargo_args.join(" "));
        let took = run("cargo", &cargo_args)?;
        eprintln!("ci: step {name} took {:.0}s", took.as_secs_f64());
        times.push((name.to_string(), took));
    }
    let _ = std::fs::remove_dir_all(&run_dir);
    let _ = std::fs::remove_dir_all(&wgpu_dir);
    Ok(times)
}

/// Entry point of the subcommand.
pub fn run_all(args: &CiArgs) -> anyhow::Result<()> {
    let times = run_ci(args)?;
    let total: f64 = times.iter().map(|(_, t)| t.as_secs_f64()).sum();
    eprintln!("ci: all steps passed in {total:.0}s");
    Ok(())
}
