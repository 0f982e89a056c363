//! More of the bad-input matrix: every case exits with 1 and one clean error line, and the
//! trained run directory is byte-identical afterwards.

use std::path::Path;

use super::{
    CONFIG, assert_one_line_error, cli, copy_model, output, run_dir, run_with_model, scratch_dir,
    snapshot,
};

#[test]
fn bad_files_configs_and_flags_are_one_line_errors() {
    let run = run_dir();
    let before = snapshot(run);
    let root = scratch_dir("bad-input");
    let file = |name: &str, bytes: &[u8]| {
        let path = root.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let train_with = |config: &Path, extra: &[&str]| {
        output(
            cli()
                .args(["train", "--plain", "--config"])
                .arg(config)
                .arg("--run-dir")
                .arg(root.join("never"))
                .args(extra),
        )
    };

    // Configs: not TOML, an unknown key, a zero size, a warmup longer than the run.
    let cases: [(&str, &str, &str); 4] = [
        ("garbage.toml", "[model\nhidden_size = ", "garbage.toml"),
        ("unknown.toml", "[model]\nhiden_size = 64\n", "hiden_size"),
        (
            "zero.toml",
            "[training]\nbatch_size = 0\n",
            "training.batch_size (0)",
        ),
        (
            "warmup.toml",
            "[training]\nwarmup_steps = 50\nmax_steps = 10\n",
            "training.warmup_steps (50)",
        ),
    ];
    for (name, text, needle) in cases {
        assert_one_line_error(train_with(&file(name, text.as_bytes()), &[]), needle);
    }
    // Data: an empty file, broken JSON lines, a missing file.
    let config = file("run.toml", CONFIG.as_bytes());
    let empty = file("empty.txt", b"");
    let jsonl = file("broken.jsonl", b"{\"text\": \"fine\"}\n{not json\n");
    for (data, needle) in [
        (empty.to_str().unwrap(), "empty.txt"),
        (jsonl.to_str().unwrap(), "broken.jsonl"),
        ("/nonexistent/corpus.txt", "/nonexistent/corpus.txt"),
    ] {
        assert_one_line_error(train_with(&config, &["--data", data]), needle);
        assert!(!root.join("never/config.toml").exists(), "{data}");
    }
    // Two devices, one micro-batch per step: the accumulation does not divide.
    assert_one_line_error(
        train_with(&config, &["--devices", "0,0"]),
        "multiple of the number of training.devices",
    );
    assert!(!root.join("never/config.toml").exists(), "--devices");
    // Resume of a directory that holds no run.
    let empty_dir = root.join("empty-run");
    std::fs::create_dir_all(&empty_dir).unwrap();
    assert_one_line_error(
        output(
            cli()
                .args(["train", "--plain", "--resume", "--run-dir"])
                .arg(&empty_dir),
        ),
        "empty-run",
    );

    // Sampling parameters out of range, NaN included.
    for (name, value, needle) in [
        ("--temperature", "NaN", "temperature"),
        ("--temperature", "-1", "temperature"),
        ("--top-p", "0", "top_p"),
        ("--top-k", "0", "top_k"),
        ("--repetition-penalty", "0.5", "repetition_penalty"),
    ] {
        let flag = format!("{name}={value}");
        assert_one_line_error(
            run_with_model(&["generate", "--prompt", "hi", &flag], run),
            needle,
        );
    }
    // A prompt file that does not exist; a model directory with truncated weights and one
    // whose manifest was edited to a shape its weights do not have.
    assert_one_line_error(
        run_with_model(&["generate", "--prompt-file", "/nonexistent/p.txt"], run),
        "/nonexistent/p.txt",
    );
    let truncated = copy_model("truncated");
    let weights = std::fs::read(truncated.join("blt.mpk")).unwrap();
    std::fs::write(truncated.join("blt.mpk"), &weights[..weights.len() / 3]).unwrap();
    assert_one_line_error(
        run_with_model(&["generate", "--prompt", "hi"], &truncated),
        "blt.mpk",
    );
    let edited = copy_model("edited");
    let manifest = std::fs::read_to_string(edited.join("model.toml")).unwrap();
    std::fs::write(
        edited.join("model.toml"),
        manifest.replace("\nhidden_size = 32", "\nhidden_size = 48"),
    )
    .unwrap();
    assert_one_line_error(
        run_with_model(&["generate", "--prompt", "hi"], &edited),
        "edited",
    );
    // Output that cannot be written: the bench JSON under a path whose parent is a file.
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let blocked = file("a-file", b"x").join("out.json");
    assert_one_line_error(
        output(
            cli()
                .args(["bench", "--quick", "--skip-generation", "--config"])
                .arg(configs.join("bench.toml"))
                .arg("--out")
                .arg(&blocked),
        ),
        "a-file",
    );

    assert_eq!(snapshot(run), before, "a failed command wrote into the run");
}
