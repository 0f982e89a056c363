//! `cargo xtask ci`: the steps `.ci/run` executes, with the time each one takes.

use std::time::Duration;

use crate::{cmd::run, flags::CiArgs};

/// Cargo features of the README's test command, and of every other CI build of `blt-cli` (so
/// that they reuse the test build instead of building Burn again): `blt-train/wgpu` turns on
/// `blt-model/wgpu` (Burn's wgpu backend) and blt-train's wgpu suite: the layers, the model and
/// a training step against ndarray, and the tiny run on wgpu. `blt-cli` itself is built without
/// its `wgpu` feature: compiling its backend dispatch for wgpu as well would add minutes to CI
/// and test nothing the suite does not (clippy still checks that code).
pub const TEST_FEATURES: &str = "blt-train/wgpu";

/// The README's test command: every crate's tests, and the wgpu tests on Vulkan's CPU adapter.
pub const TEST_COMMAND: [&str; 4] = ["test", "--workspace", "--features", TEST_FEATURES];

/// Runs every CI step in order and reports their wall times on stderr.
pub fn run_ci(args: &CiArgs) -> anyhow::Result<Vec<(String, Duration)>> {
    // One clippy pass over every target, with the GPU backends' code compiled in unless skipped:
    // a separate `cargo check --features wgpu,cuda` would type-check all of Burn a second time.
    // The examples are behind each crate's `examples` feature (so that `cargo test` skips them);
    // clippy turns it on to check them.
    let mut features =
        "blt-core/examples,blt-model/examples,blt-train/examples,blt-data/examples".to_string();
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
    // The API docs with every rustdoc warning an error (broken links, bad HTML), with clippy's
    // features so that the dependencies' metadata from the clippy pass is reused.
    let doc = vec![
        "doc",
        "--no-deps",
        "--workspace",
        "--features",
        &features,
        "--config",
        r#"build.rustdocflags=["-D", "warnings"]"#,
    ];
    let mut steps: Vec<(&str, Vec<&str>)> = vec![
        ("fmt", vec!["fmt", "--all", "--check"]),
        ("clippy", clippy),
        ("doc", doc),
        ("test", TEST_COMMAND.to_vec()),
    ];
    // The README's main job on the tiny preset, then the benchmark in smoke mode, both with the
    // test build's features and profile (`cargo test` builds every workspace crate with the
    // `test` profile), so that they run the `blt-cli` the tests built instead of building it
    // again. The tiny preset on wgpu, and generation
    // from it, run inside the tests (blt-train's `wgpu` test).
    let run_dir = std::env::temp_dir().join(format!("blt-ci-tiny-{}", std::process::id()));
    let run_dir_arg = run_dir.to_string_lossy().into_owned();
    let train = [
        "xtask",
        "train",
        "--config",
        "configs/tiny.toml",
        "--backend",
        "ndarray",
        "--features",
        TEST_FEATURES,
        "--profile",
        "test",
        "--plain",
        "--run-dir",
        run_dir_arg.as_str(),
    ];
    steps.push(("train-tiny", train.to_vec()));
    steps.push((
        "bench-quick",
        vec![
            "xtask",
            "bench",
            "--quick",
            "--features",
            TEST_FEATURES,
            "--profile",
            "test",
        ],
    ));
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
