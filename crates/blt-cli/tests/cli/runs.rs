//! Runs that must survive: resume that obeys its flags, one-file corpora, entropy models that
//! do not match, and training killed at random moments.

use std::{
    path::{Path, PathBuf},
    process::{Output, Stdio},
    time::Duration,
};

use super::{
    CONFIG, assert_ok, assert_one_line_error, cli, output, run_dir, scratch_dir, snapshot,
};

/// A copy of the shared run directory, for tests that write into one.
fn copy_of_run(name: &str) -> PathBuf {
    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.metadata().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let dir = scratch_dir(name);
    copy_dir(run_dir(), &dir);
    dir
}

/// A run's `summary.json` and the numbers of the BLT epochs it lists.
fn summary_epochs(run: &Path) -> (serde_json::Value, Vec<u64>) {
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let epochs = summary["blt_stage"]["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["epoch"].as_u64().unwrap())
        .collect();
    (summary, epochs)
}

fn train_resume(run: &Path, extra: &[&str]) -> Output {
    output(
        cli()
            .args(["train", "--plain", "--resume", "--run-dir"])
            .arg(run)
            .args(extra),
    )
}

/// Resume obeys its flags: a finished run with no more steps, or a change the checkpoints
/// cannot follow, is refused before anything is written; a larger --max-steps trains on and
/// keeps the finished epochs' history.
#[test]
fn resume_obeys_overrides_and_keeps_history() {
    let run = copy_of_run("resumed");
    let before = snapshot(&run);
    assert_one_line_error(
        train_resume(&run, &[]),
        "has already trained 8 of its 8 steps",
    );
    assert_one_line_error(
        train_resume(&run, &["--max-steps", "8"]),
        "give a larger --max-steps",
    );
    assert_one_line_error(
        train_resume(&run, &["--seed", "7", "--max-steps", "12"]),
        "training.seed cannot change when resuming (the run has 42, now 7)",
    );
    let other = run.parent().unwrap().join("resume-other.toml");
    std::fs::write(
        &other,
        CONFIG.replace("\nhidden_size = 32", "\nhidden_size = 48"),
    )
    .unwrap();
    let mut with_config = vec!["--max-steps", "12", "--config"];
    with_config.push(other.to_str().unwrap());
    assert_one_line_error(train_resume(&run, &with_config), "model.hidden_size");
    assert_eq!(
        snapshot(&run),
        before,
        "a refused resume wrote into the run"
    );

    assert_ok(train_resume(&run, &["--max-steps", "12"]));
    let (_, epochs) = summary_epochs(&run);
    assert_eq!(epochs, [1, 2, 3], "the earlier epochs stay in the summary");
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("max_steps = 12"), "{config}");
}

/// A corpus that is one text file trains: its last rows are held out for validation.
#[test]
fn a_one_file_corpus_trains() {
    let root = scratch_dir("one-file");
    let book = root.join("book.txt");
    let text: String = (0..400)
        .map(|i| format!("Verse {i}: and the words went on. "))
        .collect();
    std::fs::write(&book, text).unwrap();
    let config = root.join("space.toml");
    std::fs::write(
        &config,
        CONFIG.replace("patching = \"entropy\"", "patching = \"space\""),
    )
    .unwrap();
    let out = assert_ok(output(
        cli()
            .args(["train", "--plain", "--config"])
            .arg(&config)
            .arg("--data")
            .arg(&book)
            .arg("--run-dir")
            .arg(root.join("run")),
    ));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("run/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["dataset"]["kept_documents"], 1);
    let last = &summary["blt_stage"]["epochs"][1];
    assert!(
        last["valid_loss"].as_f64().is_some_and(f64::is_finite),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A full disk, simulated by a file size limit (`ulimit -f`, with SIGXFSZ ignored so that the
/// write fails with EFBIG instead of killing the process): the first checkpoint that does not
/// fit ends the run with one clean error, exit 1. A plain `--resume` once there is room
/// finishes the run, and the model generates.
#[cfg(unix)]
#[test]
fn a_full_disk_is_one_clean_error_and_the_run_resumes() {
    let root = scratch_dir("disk-full");
    let config = root.join("test.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let run = root.join("run");
    // 1000 blocks: 512 KB under dash, 1 MB under bash. Everything of the entropy stage fits
    // (its largest file is about 220 KB); the BLT stage's checkpoints (a 570 KB model and a
    // 1.1 MB optimizer state) do not.
    let out = output(
        std::process::Command::new("sh")
            .arg("-c")
            .arg("trap '' XFSZ; ulimit -f 1000; exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_blt-cli"))
            .args(["train", "--plain", "--config"])
            .arg(&config)
            .arg("--run-dir")
            .arg(&run),
    );
    assert_one_line_error(out, "could not write a checkpoint");
    assert!(
        run.join("entropy/model.toml").is_file(),
        "the entropy model is kept"
    );
    assert_ok(output(
        cli()
            .args(["train", "--plain", "--resume", "--run-dir"])
            .arg(&run),
    ));
    let out = assert_ok(output(
        cli()
            .args(["generate", "--prompt", "And", "--max-bytes", "8", "--model"])
            .arg(&run),
    ));
    assert!(!out.stdout.is_empty());
}

/// `--entropy-model` with settings other than the run's is refused before the run directory
/// gets a config, and so is an entropy model for a run that does not patch by entropy.
#[test]
fn an_entropy_model_with_other_settings_is_refused() {
    let root = scratch_dir("entropy-mismatch");
    let entropy = run_dir().join("entropy");
    let cases = [
        (
            CONFIG.replace("entropy_hidden_size = 32", "entropy_hidden_size = 48"),
            "model.entropy_hidden_size is 32 there but 48 in the run config",
        ),
        (
            CONFIG.replace("patching = \"entropy\"", "patching = \"space\""),
            "only used with model.patching = \"entropy\"",
        ),
    ];
    for (i, (text, needle)) in cases.into_iter().enumerate() {
        let config = root.join(format!("case-{i}.toml"));
        std::fs::write(&config, text).unwrap();
        let run = root.join(format!("run-{i}"));
        let out = output(
            cli()
                .args(["train", "--plain", "--config"])
                .arg(&config)
                .arg("--entropy-model")
                .arg(&entropy)
                .arg("--run-dir")
                .arg(&run),
        );
        assert_one_line_error(out, needle);
        assert!(!run.join("config.toml").exists(), "case {i} wrote a config");
    }
}

/// Training killed with SIGKILL at pseudo-random moments, over and over (a checkpoint every
/// step, so that some kills land in the middle of one), always continues: each attempt resumes
/// when a config was written and starts afresh when not, and the last one finishes with every
/// step, the whole history and a model that loads.
#[test]
fn training_survives_kills_at_random_moments() {
    let root = scratch_dir("killed");
    let config = root.join("every-step.toml");
    std::fs::write(
        &config,
        CONFIG
            .replace("steps_per_epoch = 4", "steps_per_epoch = 1")
            .replace("max_steps = 8", "max_steps = 24"),
    )
    .unwrap();
    let run = root.join("run");
    let attempt = |run: &Path| {
        let mut cmd = cli();
        cmd.args(["train", "--plain", "--config"])
            .arg(&config)
            .arg("--run-dir")
            .arg(run);
        if run.join("config.toml").exists() {
            cmd.arg("--resume");
        }
        cmd
    };
    // How long a whole run takes here; kills land between 5% and 50% of that after a start.
    let started = std::time::Instant::now();
    assert_ok(output(&mut attempt(&root.join("reference"))));
    let whole = started.elapsed();
    let (mut state, mut kills) = (0x2545_f491_4f6c_dd1du64, 0);
    let mut finished = false;
    for round in 0..10 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let fraction = 0.05 + 0.45 * ((state >> 40) as f64 / (1u64 << 24) as f64);
        let delay = whole.mul_f64(fraction);
        let log = root.join(format!("attempt-{round}.log"));
        let mut child = attempt(&run)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if started.elapsed() >= delay {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if let Some(status) = status {
            let stderr = std::fs::read_to_string(&log).unwrap();
            assert!(status.success(), "attempt {round} failed: {stderr}");
            finished = true;
            break;
        }
    }
    assert!(kills >= 3, "only {kills} attempts were killed");
    if !finished {
        assert_ok(output(&mut attempt(&run)));
    }
    let (summary, epochs) = summary_epochs(&run);
    assert_eq!(summary["interrupted"], false);
    assert_eq!(epochs, (1..=24).collect::<Vec<_>>());
    assert_ok(output(cli().args(["info", "--model"]).arg(&run)));
    assert!(
        !std::fs::read_dir(run.join("blt-training/checkpoint"))
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().contains("partial")),
        "a temporary checkpoint file was left in place of a real one"
    );
}
