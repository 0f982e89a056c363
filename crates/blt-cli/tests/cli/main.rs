//! End-to-end tests of `blt-cli` against a tiny model trained inside the test.

use std::{
    collections::BTreeMap,
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::OnceLock,
    time::Duration,
};

use blt_data::{
    BltBatcher, ByteDataset, DataSource, DatasetConfig, EntropyCache, compute_entropies,
};
use blt_model::{load_model, masked_cross_entropy};
use burn::backend::NdArray;

/// The config of the test model: a few steps of each stage on a few chapters.
const CONFIG: &str = r#"
[model]
hidden_size = 32
intermediate_size = 64
num_heads = 2
encoder_layers = 1
global_layers = 1
decoder_layers = 1
global_hidden_size = 64
global_intermediate_size = 128
global_num_heads = 2
ngram_vocab_size = 256
window_size = 32
max_position_embeddings = 256
patching = "entropy"
entropy_model_layers = 1
entropy_context_size = 32
entropy_hidden_size = 32
entropy_num_heads = 2
entropy_intermediate_size = 64

[training]
learning_rate = 3e-3
warmup_steps = 2
max_sequence_length = 64
batch_size = 4
eval_batch_size = 4
steps_per_epoch = 4
max_steps = 8
entropy_steps = 4
eval_batches = 2
target_patch_size = 3.0

[data]
source = "builtin:kjv"
max_documents = 6
valid_fraction = 0.2
"#;

fn cli() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_blt-cli"));
    cmd.env("RUST_BACKTRACE", "1").env_remove("RUST_LOG");
    cmd
}

/// Runs `cmd` to completion with no stdin and captured output. Nothing here should wait for
/// input or run long: a run past five minutes is killed and fails the test instead of
/// blocking CI.
fn output(cmd: &mut Command) -> Output {
    const LIMIT: Duration = Duration::from_secs(300);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the blt-cli binary starts");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).unwrap();
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("blt-cli ran past {LIMIT:?}: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Runs `blt-cli ARGS`.
fn run_cli(args: &[&str]) -> Output {
    output(cli().args(args))
}

/// Runs `blt-cli ARGS --model MODEL`.
fn run_with_model(args: &[&str], model: &Path) -> Output {
    output(cli().args(args).arg("--model").arg(model))
}

/// Asserts that a run succeeded (showing its stderr if not) and returns it.
fn assert_ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "blt-cli failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The trained run directory, shared by all tests (trained once).
fn run_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Under the target directory's scratch folder, one per test binary, replaced by the next
        // run (a static is never dropped, so a temporary directory would outlive the tests).
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("blt-cli-tests");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let config = root.join("test.toml");
        std::fs::write(&config, CONFIG).unwrap();
        let run = root.join("run");
        assert_ok(output(
            cli()
                .args(["train", "--plain", "--config"])
                .arg(&config)
                .arg("--run-dir")
                .arg(&run),
        ));
        run
    })
}

/// An empty directory `name` beside the shared run, for a test's own files.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = run_dir().parent().unwrap().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A copy of the shared run's model directory files (manifest and both weights) in
/// `scratch_dir(name)`, for tests that damage one.
fn copy_model(name: &str) -> PathBuf {
    let dir = scratch_dir(name);
    for file in ["model.toml", "blt.mpk", "entropy.mpk"] {
        std::fs::copy(run_dir().join(file), dir.join(file)).unwrap();
    }
    dir
}

/// Asserts a clean one-line failure that mentions `needle`.
fn assert_one_line_error(out: Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 1 is a reported error; 101 would be a panic caught by the hook.
    assert_eq!(out.status.code(), Some(1), "expected exit code 1: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let errors: Vec<&&str> = lines.iter().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "want one error line, got: {stderr}");
    assert!(
        errors[0].contains(needle),
        "`{}` does not mention `{needle}`",
        errors[0]
    );
    assert!(
        !stderr.contains("panicked")
            && !stderr.contains("backtrace")
            && !stderr.contains("internal error"),
        "{stderr}"
    );
}

/// Hashes of every file under `dir` (to show read-only commands leave it alone).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                out.insert(entry.path(), (meta.len(), meta.modified().unwrap()));
            }
        }
    }
    out
}

#[test]
fn training_fills_the_run_directory() {
    let run = run_dir();
    for file in [
        "config.toml",
        "model.toml",
        "blt.mpk",
        "entropy.mpk",
        "entropy/model.toml",
        "entropy_cache.bin",
        "summary.json",
        "blt-training/checkpoint",
        "entropy-training/checkpoint",
        "blt-training/train",
        "blt-training/valid",
    ] {
        assert!(run.join(file).exists(), "{file} missing");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["blt_stage"]["steps"], 8);
    assert!(summary["wall_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(summary["backend"], "ndarray");
}

#[test]
fn generate_streams_reproducibly_and_both_paths_agree() {
    let run = run_dir();
    let before = snapshot(run);
    let generate = |extra: &[&str]| {
        let mut args = vec![
            "generate",
            "--prompt",
            "In the beginning",
            "--max-bytes",
            "24",
            "--seed",
            "7",
        ];
        args.extend(extra);
        let out = assert_ok(run_with_model(&args, run));
        assert!(String::from_utf8_lossy(&out.stderr).contains("bytes/s"));
        out.stdout
    };
    assert_eq!(generate(&[]), generate(&[]), "same seed, same output");
    // Every f32 path gives the same greedy text: the host decoder, Burn's cached path and the
    // full recompute. The default (host decoding with bf16 weights) is checked for wiring by
    // blt-model's host tests; its greedy text may part from f32's at a near tie.
    let greedy = generate(&["--temperature", "0", "--decoder", "host"]);
    assert_eq!(
        greedy,
        generate(&["--temperature", "0", "--decoder", "cached"])
    );
    assert_eq!(greedy, generate(&["--temperature", "0", "--no-cache"]));
    assert_eq!(
        generate(&["--decoder", "host-bf16"]),
        generate(&[]),
        "auto decodes with bf16 weights on a CPU"
    );
    assert_eq!(snapshot(run), before, "generate modified the run directory");
}

#[test]
fn a_prompts_file_generates_each_prompt_as_it_would_alone() {
    let run = run_dir();
    let dir = tempfile::tempdir().unwrap();
    let prompts = ["In the beginning", "And God said", "Let there be light"];
    let file = dir.path().join("prompts.txt");
    // A blank line and a CRLF line ending are skipped and stripped.
    let text = format!("{}\n\n{}\r\n{}\n", prompts[0], prompts[1], prompts[2]);
    std::fs::write(&file, text).unwrap();
    let greedy = ["--max-bytes", "20", "--temperature", "0"];
    let mut args = vec!["generate", "--prompts-file", file.to_str().unwrap()];
    args.extend(greedy);
    let batch = assert_ok(run_with_model(&args, run)).stdout;
    let mut expected = Vec::new();
    for (i, prompt) in prompts.iter().enumerate() {
        // The batch runs Burn's cached path in f32; alone, the host decoder in f32 gives the
        // same text.
        let mut args = vec!["generate", "--prompt", prompt, "--decoder", "host"];
        args.extend(greedy);
        let alone = assert_ok(run_with_model(&args, run)).stdout;
        expected.extend(format!("== {} ==\n{prompt}", i + 1).bytes());
        expected.extend(alone);
        expected.push(b'\n');
    }
    assert_eq!(
        String::from_utf8_lossy(&batch),
        String::from_utf8_lossy(&expected)
    );
    std::fs::write(&file, "\n  \n").unwrap();
    assert_one_line_error(
        run_with_model(&["generate", "--prompts-file", file.to_str().unwrap()], run),
        "holds no prompts",
    );
}

#[test]
fn eval_bits_per_byte_match_the_model_api() {
    let run = run_dir();
    let before = snapshot(run);
    let out = assert_ok(run_with_model(
        &[
            "eval",
            "--data",
            "builtin:kjv",
            "--max-rows",
            "6",
            "--json",
            "--batch-size",
            "3",
        ],
        run,
    ));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(snapshot(run), before, "eval modified the run directory");

    // The same number straight from the library.
    let device = Default::default();
    let loaded = load_model::<NdArray>(run, &device).unwrap();
    let config = &loaded.config;
    let dataset = ByteDataset::from_source(
        &DataSource::parse("builtin:kjv").unwrap(),
        DatasetConfig {
            min_length: 1,
            max_length: config.max_position_embeddings.min(1024),
            valid_fraction: 0.0,
            seed: 0,
        },
        0,
    )
    .unwrap();
    let rows = &dataset.rows()[..6];
    let h = compute_entropies(
        loaded.entropy_model.as_ref().unwrap(),
        rows,
        config.entropy_resets(),
        6,
        &device,
        &(),
    )
    .unwrap();
    let cache = EntropyCache::new(rows, "test", config.entropy_resets(), h).unwrap();
    let batcher = BltBatcher::new(config, Some(std::sync::Arc::new(cache))).unwrap();
    let batch = batcher.try_batch::<NdArray>(rows, &device).unwrap();
    let logits = loaded.model.forward(&batch.input).logits;
    let sums = masked_cross_entropy(logits, batch.targets, batch.target_mask, batch.num_targets);
    let loss: f32 = sums.loss_sum.into_scalar();
    let bpb = loss as f64 / batch.num_targets as f64 / std::f64::consts::LN_2;
    let cli_bpb = report["bits_per_byte"].as_f64().unwrap();
    assert!((cli_bpb - bpb).abs() < 1e-4, "cli {cli_bpb} vs api {bpb}");
    assert_eq!(
        report["bytes"].as_u64().unwrap() as usize,
        batch.num_targets
    );
}

/// The text the plot tests draw.
const PLOT_TEXT: &str = "And God said, Let there be light: and there was light.";
/// `stroke="#RRGGBB"` of the plot's patch-boundary lines and of its threshold line.
const BOUNDARY_STROKE: &str = r##"stroke="#969696""##;
const THRESHOLD_STROKE: &str = r##"stroke="#DC143C""##;
/// The threshold line's colour in the PNG.
const THRESHOLD_RGB: [u8; 3] = [220, 20, 60];

/// Runs `blt-cli entropy --plot FILE` on [`PLOT_TEXT`] and returns the file's bytes.
fn entropy_plot(file_name: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join(file_name);
    let out = assert_ok(output(
        cli()
            .args(["entropy", "--text", PLOT_TEXT, "--plot"])
            .arg(&plot)
            .arg("--model")
            .arg(run_dir()),
    ));
    assert!(String::from_utf8_lossy(&out.stderr).contains("patch boundaries"));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "a temporary file was left behind");
    std::fs::read(&plot).unwrap()
}

#[test]
fn entropy_plot_is_svg_with_one_mark_per_boundary() {
    let svg = String::from_utf8(entropy_plot("h.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<svg").count(), 1);
    // The threshold line and its legend swatch.
    assert_eq!(svg.matches(THRESHOLD_STROKE).count(), 2);
    // The patch command with the same model cuts the same text into N patches; the plot marks
    // every boundary after the forced ones (positions ≥ 2 inside the text).
    let out = run_with_model(
        &["patch", "--scheme", "entropy", "--text", PLOT_TEXT],
        run_dir(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let shown = stdout.lines().next().unwrap();
    let groups = shown.matches('[').count();
    // Groups: [BOS], then one per patch holding text bytes; boundaries ≥ 2 = groups − 2; plus
    // one line of the boundary colour in the legend.
    assert_eq!(
        svg.matches(BOUNDARY_STROKE).count(),
        groups - 2 + 1,
        "{shown}"
    );
}

#[test]
fn entropy_plot_is_a_non_blank_png() {
    let png_bytes = entropy_plot("h.png");
    assert_eq!(&png_bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&png_bytes[12..16], b"IHDR", "IHDR comes first");
    let width = u32::from_be_bytes(png_bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png_bytes[20..24].try_into().unwrap());
    assert!(
        (800..=4000).contains(&width) && height == 360,
        "{width}x{height}"
    );

    let mut reader = png::Decoder::new(std::io::Cursor::new(&png_bytes))
        .read_info()
        .unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((frame.width, frame.height), (width, height));
    assert_eq!(frame.color_type, png::ColorType::Rgb);
    let pixels = &pixels[..frame.buffer_size()];
    let count = |rgb: [u8; 3]| pixels.chunks_exact(3).filter(|p| *p == rgb).count();
    // Not blank: mostly white, with the threshold line across the plot.
    assert!(count([255, 255, 255]) > pixels.len() / 3 / 2);
    assert!(count(THRESHOLD_RGB) > width as usize / 2);
}

#[test]
fn info_patch_and_calibrate_work() {
    let run = run_dir();
    let out = assert_ok(run_with_model(&["info", "--json"], run));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(info["parameters"]["global"].as_u64().unwrap() > 0);
    assert!(info["flops_per_byte"]["forward"].as_f64().unwrap() > 0.0);

    let out = run_cli(&["patch", "--scheme", "space", "--text", "In the beginning"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().next().unwrap(),
        "[␂][In ][the ][beginning]"
    );

    let out = assert_ok(run_with_model(
        &[
            "calibrate",
            "--data",
            "builtin:kjv",
            "--max-rows",
            "8",
            "--target-patch-size",
            "3",
        ],
        run,
    ));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("entropy_threshold = "));
}

/// `calibrate --write` puts the threshold it prints into the model's manifest and the run's
/// config, changes nothing else there, and the model it leaves loads and patches with it.
#[test]
fn calibrate_write_updates_the_threshold_and_nothing_else() {
    let dir = copy_model("calibrate-write");
    std::fs::copy(run_dir().join("config.toml"), dir.join("config.toml")).unwrap();
    let table = |file: &str| -> toml::Table {
        toml::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap()
    };
    let (manifest_before, config_before) = (table("model.toml"), table("config.toml"));
    let calibrate = |extra: &[&str]| {
        let mut args = vec![
            "calibrate",
            "--data",
            "builtin:kjv",
            "--max-rows",
            "8",
            "--target-patch-size",
            "2.5",
        ];
        args.extend_from_slice(extra);
        let out = assert_ok(run_with_model(&args, &dir));
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let value = stdout
            .strip_prefix("entropy_threshold = ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected output: {stdout}"));
        value.parse::<f64>().unwrap()
    };
    let threshold = calibrate(&["--write"]);
    for (file, before) in [
        ("model.toml", manifest_before),
        ("config.toml", config_before),
    ] {
        let mut after = table(file);
        let written = after["model"]["entropy_threshold"].as_float().unwrap();
        assert!(
            (written - threshold).abs() <= 1e-6 * threshold.abs(),
            "{file}: wrote {written}, printed {threshold}"
        );
        // Everything else is as it was.
        let mut expected = before;
        for doc in [&mut after, &mut expected] {
            doc["model"]
                .as_table_mut()
                .unwrap()
                .remove("entropy_threshold");
        }
        assert_eq!(after, expected, "{file} changed beyond the threshold");
    }
    // The written model loads, and calibrating it again finds the same threshold.
    assert_ok(run_with_model(&["info"], &dir));
    let again = calibrate(&[]);
    assert!((again - threshold).abs() <= 1e-6 * threshold.abs());
}

/// A run exported to transformers' format and imported back generates the same bytes.
#[test]
fn hugging_face_export_and_import_round_trip() {
    let run = run_dir();
    let root = run.parent().unwrap();
    let (exported, imported) = (root.join("hf-out"), root.join("hf-back"));
    for dir in [&exported, &imported] {
        let _ = std::fs::remove_dir_all(dir);
    }
    assert_ok(output(
        cli()
            .args(["export-hf"])
            .arg(run)
            .arg("--out")
            .arg(&exported),
    ));
    assert!(exported.join("config.json").is_file() && exported.join("model.safetensors").is_file());
    // Writing into a directory that is not empty is refused.
    assert_one_line_error(
        output(
            cli()
                .args(["export-hf"])
                .arg(run)
                .arg("--out")
                .arg(&exported),
        ),
        "not empty",
    );
    assert_ok(output(
        cli()
            .args(["import-hf"])
            .arg(&exported)
            .arg("--out")
            .arg(&imported),
    ));
    let greedy = [
        "generate",
        "--prompt",
        "In the",
        "--temperature",
        "0",
        "--max-bytes",
        "24",
    ];
    let a = assert_ok(run_with_model(&greedy, run));
    let b = assert_ok(run_with_model(&greedy, &imported));
    assert_eq!(a.stdout, b.stdout);
    assert!(!a.stdout.is_empty());
}

/// `parity` on transformers' own checkpoint (the model crate's fixture) imported through the
/// CLI: it passes on transformers' logits and fails, with one line and exit code 1, on logits
/// that are off by more than `--atol`.
#[test]
fn parity_checks_an_imported_checkpoint_against_reference_logits() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../blt-model/tests/fixtures/hf-tiny");
    let root = run_dir().parent().unwrap();
    let model = root.join("hf-tiny");
    let _ = std::fs::remove_dir_all(&model);
    assert_ok(output(
        cli()
            .arg("import-hf")
            .arg(&fixture)
            .arg("--out")
            .arg(&model),
    ));
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("expected.json")).unwrap())
            .unwrap();
    let case = expected["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "irregular")
        .unwrap();
    let mut reference = serde_json::json!({
        "input_ids": expected["input_ids"][0],
        "patch_lengths": case["patch_lengths"][0],
        "logits": case["logits"],
    });
    let path = root.join("REF.json");
    std::fs::write(&path, reference.to_string()).unwrap();
    let parity = |path: &Path| {
        output(
            cli()
                .args(["parity", "--json", "--model"])
                .arg(&model)
                .arg("--reference")
                .arg(path),
        )
    };
    let out = assert_ok(parity(&path));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["pass"], true);
    assert!(report["max_abs_diff"].as_f64().unwrap() < 1e-4, "{report}");

    let logit = &mut reference["logits"][3][100];
    *logit = serde_json::json!(logit.as_f64().unwrap() + 0.5);
    std::fs::write(&path, reference.to_string()).unwrap();
    assert_one_line_error(parity(&path), "exceeds --atol");
}

#[test]
fn bad_input_gives_one_line_errors() {
    let run = run_dir();
    let generate =
        |model: &Path, prompt: &str| run_with_model(&["generate", "--prompt", prompt], model);
    assert_one_line_error(
        generate(Path::new("/nonexistent/run"), "hi"),
        "does not exist",
    );
    assert_one_line_error(generate(run, ""), "prompt is empty");
    assert_one_line_error(generate(run, &"a".repeat(400)), "at most");
    // Longer than the entropy model's positions: an error, not RoPE's bounds assert.
    assert_one_line_error(
        run_with_model(
            &["patch", "--scheme", "entropy", "--text", &"a".repeat(700)],
            run,
        ),
        "the entropy model reads at most",
    );
    assert_one_line_error(
        run_cli(&[
            "import-hf",
            "/nonexistent/hf",
            "--out",
            "/tmp/never-written",
        ]),
        "config.json",
    );

    // Command-line mistakes too: clap's message and its hints on one line, exit code 1.
    assert_one_line_error(
        run_with_model(&["--backend", "tpu", "info"], run),
        "possible values: auto, ndarray, flex, wgpu, cuda",
    );
    assert_one_line_error(
        run_cli(&["patch", "--scheme", "bpe", "--text", "hi"]),
        "invalid value 'bpe' for '--scheme",
    );
    assert_one_line_error(
        run_with_model(&["generate", "--prompt", "hi", "--max-bytes", "many"], run),
        "invalid value 'many' for '--max-bytes",
    );
    // The CI build has no CUDA.
    if !cfg!(feature = "cuda") {
        assert_one_line_error(
            run_with_model(&["--backend", "cuda", "info"], run),
            "not compiled",
        );
    }
    assert_one_line_error(
        run_with_model(&["entropy", "--text", "hi", "--plot", "h.jpg"], run),
        "unknown plot format",
    );
    // Without a terminal (the test's stdin and stdout are not TTYs) the screen refuses to start
    // instead of hanging.
    assert_one_line_error(
        run_with_model(&["generate", "--interactive"], run),
        "needs a terminal",
    );

    // A copy of the run with a future format version, and one with corrupt weights.
    let old = copy_model("future");
    let manifest = std::fs::read_to_string(old.join("model.toml")).unwrap();
    std::fs::write(
        old.join("model.toml"),
        manifest.replace("format_version = 1", "format_version = 7"),
    )
    .unwrap();
    assert_one_line_error(generate(&old, "hi"), "format version 7");
    let bad = copy_model("corrupt");
    let mut weights = std::fs::read(bad.join("blt.mpk")).unwrap();
    let n = weights.len();
    weights[n / 2] ^= 0xff;
    std::fs::write(bad.join("blt.mpk"), weights).unwrap();
    assert_one_line_error(generate(&bad, "hi"), "corrupt");

    let cfg = run.parent().unwrap().join("bad.toml");
    std::fs::write(&cfg, "[model]\nnum_heads = 3\n").unwrap();
    assert_one_line_error(
        output(cli().args(["train", "--plain", "--config"]).arg(&cfg)),
        "num_heads (3) must divide hidden_size",
    );
    assert_one_line_error(
        run_cli(&["train", "--plain", "--config", "/nonexistent.toml"]),
        "/nonexistent.toml",
    );
    // Training and the bench are not compiled for flex; asking for it is an error, not a panic,
    // and nothing is written.
    let flex_run = run.parent().unwrap().join("flex-run");
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    for (args, config) in [
        (
            &["--backend", "flex", "train", "--plain", "--run-dir"][..],
            "tiny.toml",
        ),
        (
            &["--backend", "flex", "bench", "--quick", "--out"][..],
            "bench.toml",
        ),
    ] {
        let mut cmd = cli();
        cmd.args(args)
            .arg(&flex_run)
            .arg("--config")
            .arg(configs.join(config));
        assert_one_line_error(output(&mut cmd), "not flex");
        assert!(!flex_run.exists(), "{args:?} wrote {}", flex_run.display());
    }
}

mod bad_input;
mod runs;
