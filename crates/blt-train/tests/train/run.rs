//! Whole runs of `blt_train::train`: the loss falls in both stages, and the run directory
//! holds what issue 6 (5) lists.

use blt_train::{BltTrainStep, RunConfig, metrics::STAGE_METRICS, stage::CheckpointRecorder};
use burn::module::Module;
use burn::record::Recorder;

use crate::common::{self, B, Settings, TrainB, logged, parameters};

/// Mean of the last epoch's values over the first value.
fn fall(epochs: &[Vec<f64>]) -> (f64, f64) {
    let first = epochs[0][0];
    let last = epochs.last().unwrap();
    (first, last.iter().sum::<f64>() / last.len() as f64)
}

#[test]
fn loss_falls_and_the_run_directory_is_complete() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let config = common::config(&Settings {
        patching: "entropy",
        steps: 16,
        // Not a multiple of the 2-step epoch: the fifth epoch is cut to one step.
        entropy_steps: 9,
        dropout: 0.0,
        accumulation: 1,
    });
    let summary = common::train(&config, &run, common::options());
    assert!(!summary.interrupted);
    assert_eq!(summary.blt_stage.steps, 16);
    assert_eq!(summary.entropy_stage.as_ref().unwrap().steps, 9);

    // The loss falls: the last epoch's mean is clearly below the first step's loss, in both
    // stages, and so does the validation loss.
    for stage in ["entropy-training", "blt-training"] {
        let train = logged(&run, stage, "train", "Loss");
        let (first, last) = fall(&train);
        assert!(last < 0.85 * first, "{stage}: {first} → {last}: {train:?}");
        let valid = logged(&run, stage, "valid", "Loss");
        let (first_valid, last_valid) = (valid[0][0], valid.last().unwrap()[0]);
        assert!(last_valid < first_valid, "{stage}: {valid:?}");
    }
    let epochs = &summary.blt_stage.epochs;
    assert_eq!(epochs.len(), 8);
    assert!(epochs.last().unwrap().valid_loss < epochs[0].valid_loss);

    // config.toml: the run config, with the calibrated threshold.
    let saved = RunConfig::load(&run.join(blt_train::RUN_CONFIG_FILE)).unwrap();
    assert_eq!(saved.training, config.training);
    assert_eq!(saved.data, config.data);
    assert_ne!(
        saved.model.entropy_threshold,
        config.model.entropy_threshold
    );

    // The entropy model, the entropy cache, the best model (a model directory).
    for file in [
        "entropy/model.toml",
        "entropy/entropy.mpk",
        blt_train::ENTROPY_CACHE_FILE,
        "model.toml",
        "blt.mpk",
        "entropy.mpk",
    ] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
    let loaded = blt_model::load_model::<B>(&run, &Default::default()).unwrap();
    assert_eq!(loaded.config, saved.model);
    assert!(loaded.entropy_model.is_some());

    // Checkpoints (model, optimizer, scheduler) and metric logs of both stages.
    for (stage, epochs) in [("entropy-training", 5), ("blt-training", 8)] {
        let checkpoints = run.join(stage).join("checkpoint");
        for kind in ["model", "optim", "scheduler"] {
            let file = checkpoints.join(format!("{kind}-{epochs}.mpk"));
            assert!(file.is_file(), "{} missing", file.display());
        }
        // Every metric the dashboard and the summary show, in both splits (the learning rate
        // only in training, once per step).
        for name in STAGE_METRICS.into_iter().filter(|n| *n != "Learning Rate") {
            for split in ["train", "valid"] {
                let values = logged(&run, stage, split, name);
                assert_eq!(values.len(), epochs, "{stage} {split} {name}");
            }
        }
        assert_eq!(
            logged(&run, stage, "train", "Learning Rate")[0].len(),
            2,
            "{stage}: one learning rate per step"
        );
    }

    // The best model is the checkpoint of the epoch with the lowest validation loss.
    let best = summary.blt_stage.best_epoch.unwrap();
    let lowest = epochs
        .iter()
        .min_by(|a, b| a.valid_loss.unwrap().total_cmp(&b.valid_loss.unwrap()))
        .unwrap();
    assert_eq!(best, lowest.epoch);
    let template = BltTrainStep::<TrainB> {
        model: blt_model::Blt::new(&saved.model, &Default::default()).unwrap(),
        max_grad_norm: 0.0,
        watch: None,
    };
    let record = CheckpointRecorder::new()
        .load(
            run.join("blt-training/checkpoint")
                .join(format!("model-{best}")),
            &Default::default(),
        )
        .unwrap();
    let checkpoint = template.load_record(record);
    assert_eq!(parameters(&checkpoint.model), parameters(&loaded.model));

    // summary.json: final metrics, steps, wall time, backend.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join(blt_train::SUMMARY_FILE)).unwrap())
            .unwrap();
    assert_eq!(json["blt_stage"]["steps"], 16);
    assert_eq!(json["entropy_stage"]["steps"], 9);
    assert_eq!(json["backend"], "ndarray");
    assert!(json["wall_seconds"].as_f64().unwrap() > 0.0);
    assert!(
        json["blt_stage"]["epochs"][7]["valid_bits_per_byte"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(json["mean_patch_length"].as_f64().unwrap() > 1.0);

    // The end-of-run tables: both stages, every epoch, the lowest validation loss at the best
    // epoch; the entropy model's patch length (it has no patches) is left out.
    let tables = summary.stage_tables();
    assert!(tables.starts_with("stage entropy: 5 epochs\n"), "{tables}");
    assert!(tables.contains("stage blt: 8 epochs\n"), "{tables}");
    let blt = &tables[tables.find("stage blt").unwrap()..];
    assert!(
        !tables[..tables.find("stage blt").unwrap()].contains("Patch length"),
        "{tables}"
    );
    let row = blt
        .lines()
        .find(|l| l.starts_with("| Valid | Loss "))
        .expect("a validation loss row");
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    let (low, low_epoch): (f64, usize) = (cells[3].parse().unwrap(), cells[4].parse().unwrap());
    assert_eq!(low_epoch, best, "{row}");
    let expected = lowest.valid_loss.unwrap();
    assert!(
        (low - expected).abs() < 1e-3 * expected,
        "{low} vs {expected}"
    );
    assert!(blt.contains("| Valid | Bits per byte"), "{blt}");
}
