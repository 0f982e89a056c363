//! `cargo xtask bench`: builds `blt-cli` (release unless `--quick`) and runs its benchmark on
//! `configs/bench.toml`, printing JSON and writing it to a file.

use anyhow::{Context, Result};

use crate::{cmd::run, flags::BenchArgs};

/// Entry point of the subcommand.
pub fn run_bench(args: &BenchArgs) -> Result<()> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| "target/bench.json".into());
    // `target/` may not exist when CARGO_TARGET_DIR points elsewhere (as in CI).
    if let Some(parent) = crate::cmd::workspace_root().join(&out).parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    // `auto`: on CPU, ndarray for training and forward, flex for generation (blt-cli picks per
    // workload); both CPU backends are default features of blt-cli.
    let backend = args.backend.clone().unwrap_or_else(|| "auto".into());
    let mut cargo: Vec<String> = vec!["run".into(), "-q".into()];
    match (&args.profile, args.quick) {
        (Some(profile), _) => cargo.extend(["--profile".into(), profile.clone()]),
        (None, false) => cargo.push("--release".into()),
        (None, true) => {}
    }
    cargo.extend(["-p".into(), "blt-cli".into()]);
    if let Some(features) = crate::cmd::blt_cli_features(args.features.as_deref(), &backend) {
        cargo.extend(["--features".into(), features]);
    }
    cargo.extend([
        "--".into(),
        "--backend".into(),
        backend,
        "-q".into(),
        "bench".into(),
    ]);
    if let Some(shapes) = &args.shapes {
        return run_shapes(args, cargo, shapes, &out);
    }
    let mut models = cargo.clone();
    models.extend([
        "--config".into(),
        "configs/bench.toml".into(),
        "--out".into(),
        out.clone(),
    ]);
    if args.quick {
        models.push("--quick".into());
    }
    if args.skip_generation {
        models.push("--skip-generation".into());
    }
    let mut report = run_json(&models, &out)?;
    // The memory bench in a process of its own: peak resident memory is per process.
    let corpus_mb = args.corpus_mb.unwrap_or(if args.quick { 16 } else { 1024 });
    if corpus_mb > 0 {
        let memory_out = format!("{out}.memory.json");
        let mut memory = cargo;
        memory.extend([
            "--corpus-mb".into(),
            corpus_mb.to_string(),
            "--out".into(),
            memory_out.clone(),
        ]);
        report["corpus_memory"] = run_json(&memory, &memory_out)?;
        let _ = std::fs::remove_file(crate::cmd::workspace_root().join(&memory_out));
        eprintln!(
            "xtask bench: {corpus_mb} MB corpus, peak {:.2} bytes of RAM per corpus byte",
            report["corpus_memory"]["peak_bytes_per_corpus_byte"]
                .as_f64()
                .unwrap_or(f64::NAN)
        );
    }
    if let Some(python) = &args.peer {
        let peer = crate::peer::run_peer(python, &args.peer_script, !args.skip_generation)?;
        report["vs_peer"] = crate::peer::ratios(&report, &peer);
        report["peer"] = peer;
        eprintln!("xtask bench: ours / peer = {}", report["vs_peer"]);
    }
    std::fs::write(
        crate::cmd::workspace_root().join(&out),
        serde_json::to_string_pretty(&report)?,
    )
    .with_context(|| format!("writing {out}"))?;
    eprintln!("xtask bench: JSON written to {out}");
    Ok(())
}

/// `--shapes blt-1b`: the BLT-1B generation bench, and with `--peer` transformers' cached
/// `generate` at the same shapes, run right after it.
fn run_shapes(args: &BenchArgs, mut cargo: Vec<String>, shapes: &str, out: &str) -> Result<()> {
    anyhow::ensure!(
        shapes == "blt-1b",
        "--shapes: `blt-1b` is the one other shape set"
    );
    let rows = args.ngram_rows.unwrap_or(50_000);
    cargo.extend([
        "--shapes".into(),
        "blt-1b".into(),
        "--ngram-rows".into(),
        rows.to_string(),
        "--out".into(),
        out.into(),
    ]);
    if args.quick {
        cargo.extend(["--quick".into(), "--new-bytes".into(), "4".into()]);
    }
    let mut report = run_json(&cargo, out)?;
    if let Some(python) = &args.peer {
        let peer = crate::peer::run_peer_1b(python, rows, if args.quick { 4 } else { 32 })?;
        let ours = report["decode"]["host_bf16"]["decode_bytes_per_s"].as_f64();
        let ours_int8 = report["decode"]["host_int8"]["decode_bytes_per_s"].as_f64();
        let theirs = peer["decode_bytes_per_s"].as_f64();
        report["vs_peer"] = serde_json::json!({
            "decode_host_bf16": ours.zip(theirs).map(|(a, b)| a / b),
            "decode_host_int8": ours_int8.zip(theirs).map(|(a, b)| a / b),
        });
        report["peer"] = peer;
        eprintln!("xtask bench: ours / peer = {}", report["vs_peer"]);
    }
    std::fs::write(
        crate::cmd::workspace_root().join(out),
        serde_json::to_string_pretty(&report)?,
    )
    .with_context(|| format!("writing {out}"))?;
    eprintln!("xtask bench: JSON written to {out}");
    Ok(())
}

/// Runs `cargo ARGS` (a `blt-cli bench` that writes JSON to `out`) and reads the JSON.
fn run_json(cargo: &[String], out: &str) -> Result<serde_json::Value> {
    let refs: Vec<&str> = cargo.iter().map(String::as_str).collect();
    run("cargo", &refs)?;
    let text = std::fs::read_to_string(crate::cmd::workspace_root().join(out))
        .with_context(|| format!("reading {out}"))?;
    serde_json::from_str(&text).context("the bench wrote invalid JSON")
}
