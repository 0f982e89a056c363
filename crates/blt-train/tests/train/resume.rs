//! Resuming after an interruption gives the same losses as an uninterrupted run with the same
//! seed: the same data order, optimizer state, schedule position and dropout masks, in both
//! stages (with gradient accumulation and dropout on, so that each of those matters).

use blt_train::{Stage, StopAfter, TrainOptions};

use crate::common::{self, B, Settings, assert_close, logged, parameters};

const TOLERANCE: f64 = 1e-5;

fn stop_after(stage: Stage, steps: usize) -> TrainOptions {
    TrainOptions {
        stop_after: Some(StopAfter { stage, steps }),
        ..common::options()
    }
}

fn resume(stop: Option<StopAfter>) -> TrainOptions {
    TrainOptions {
        resume: true,
        stop_after: stop,
        ..common::options()
    }
}

#[test]
fn resumed_runs_repeat_the_uninterrupted_losses() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let config = common::config(&Settings {
        patching: "entropy",
        steps: 6,
        entropy_steps: 4,
        dropout: 0.1,
        accumulation: 2,
    });
    let whole = dir.path().join("whole");
    let summary = common::train(&config, &whole, common::options());
    assert!(!summary.interrupted);

    // Stopped in the middle of the entropy stage's second epoch (step 3 of 4): the first
    // epoch's checkpoint is kept, and no entropy model is saved.
    let parts = dir.path().join("parts");
    let first = common::train(&config, &parts, stop_after(Stage::Entropy, 3));
    assert!(first.interrupted);
    assert_eq!(first.entropy_stage.as_ref().unwrap().steps, 3);
    assert_eq!(first.blt_stage.steps, 0);
    assert!(!parts.join("entropy").exists());
    assert!(
        parts
            .join("entropy-training/checkpoint/model-1.mpk")
            .is_file()
    );
    assert!(!parts.join("blt-training").exists());

    // Resumed: finishes the entropy stage, then stops in the BLT's second epoch (step 3 of 6).
    let second = common::train(
        &config,
        &parts,
        resume(Some(StopAfter {
            stage: Stage::Blt,
            steps: 3,
        })),
    );
    assert!(second.interrupted);
    assert_eq!(second.entropy_stage.as_ref().unwrap().steps, 4);
    assert_eq!(second.blt_stage.steps, 3);

    // Resumed again: to the end.
    let third = common::train(&config, &parts, resume(None));
    assert!(!third.interrupted);
    assert!(third.entropy_stage.is_none(), "the entropy model is reused");
    assert_eq!(third.blt_stage.steps, 6);

    for stage in ["entropy-training", "blt-training"] {
        for (split, metric) in [
            ("train", "Loss"),
            ("train", "Learning Rate"),
            ("valid", "Loss"),
        ] {
            let expected = logged(&whole, stage, split, metric);
            let got = logged(&parts, stage, split, metric);
            assert_eq!(expected.len(), got.len(), "{stage} {split} {metric}");
            for (epoch, (e, g)) in expected.iter().zip(&got).enumerate() {
                let what = format!("{stage} {split} {metric} epoch {}", epoch + 1);
                assert_close(&what, e, g, TOLERANCE);
            }
        }
    }
    // Two micro-batches per step, two steps per epoch.
    assert_eq!(logged(&whole, "blt-training", "train", "Loss")[2].len(), 4);

    let config_of = |dir: &std::path::Path| {
        blt_train::RunConfig::load(&dir.join(blt_train::RUN_CONFIG_FILE)).unwrap()
    };
    let (mut whole_config, parts_config) = (config_of(&whole), config_of(&parts));
    let thresholds = [
        f64::from(whole_config.model.entropy_threshold),
        f64::from(parts_config.model.entropy_threshold),
    ];
    assert_close(
        "calibrated threshold",
        &thresholds[..1],
        &thresholds[1..],
        TOLERANCE,
    );
    whole_config.model.entropy_threshold = parts_config.model.entropy_threshold;
    assert_eq!(whole_config, parts_config);
    let model = |dir: &std::path::Path| {
        let loaded = blt_model::load_model::<B>(dir, &Default::default()).unwrap();
        let entropy = loaded.entropy_model.unwrap();
        (parameters(&loaded.model), parameters(&entropy))
    };
    let (whole_blt, whole_entropy) = model(&whole);
    let (parts_blt, parts_entropy) = model(&parts);
    // The weights agree too, up to AdamW turning f32 noise on (near-)zero gradients into
    // updates of a few entries (m / √v ≈ ±1 whatever the gradient's size): a handful of entries
    // may differ by ~lr·1e-2, every other one agrees to 1e-5.
    for (what, whole, parts) in [
        ("BLT", whole_blt, parts_blt),
        ("entropy model", whole_entropy, parts_entropy),
    ] {
        let total: usize = whole.iter().map(Vec::len).sum();
        let differing = whole
            .iter()
            .flatten()
            .zip(parts.iter().flatten())
            .filter(|(a, b)| (*a - *b).abs() > 1e-5)
            .count();
        assert!(
            differing * 1000 < total,
            "{what}: {differing} of {total} weights differ"
        );
        let difference = common::relative_difference(&whole, &parts);
        assert!(difference < 1e-3, "{what}: weights differ by {difference}");
    }
}
