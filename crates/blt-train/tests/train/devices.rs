//! Data-parallel training (`blt_train::train_on` with several devices, Burn's multi-device
//! strategy): two devices, the one NdArray device given twice, train the model one device
//! trains with the same steps, in both stages. Each round runs one micro-batch per device and
//! the gradients are summed on the first; the loader's shares interleave into the same stream
//! and each micro-batch's loss is scaled by its whole step's targets, so the sum is the
//! single-device step's gradient.

use blt_train::{RunSummary, train_on};

use crate::common::{self, B, Settings, TrainB, parameters};

fn run(devices: usize, dir: &std::path::Path) -> RunSummary {
    let config = common::config(&Settings {
        patching: "entropy",
        steps: 6,
        entropy_steps: 4,
        dropout: 0.0,
        accumulation: 2,
    });
    train_on::<TrainB>(
        config,
        vec![Default::default(); devices],
        dir,
        common::options(),
    )
    .expect("training succeeds")
}

#[test]
fn two_devices_train_the_model_of_one() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let (one_dir, two_dir) = (dir.path().join("one"), dir.path().join("two"));
    let one = run(1, &one_dir);
    let two = run(2, &two_dir);
    assert_eq!(two.blt_stage.steps, 6);
    assert_eq!(two.entropy_stage.as_ref().unwrap().steps, 4);
    assert_eq!(one.mean_patch_length, two.mean_patch_length);

    let a = blt_model::load_model::<B>(&one_dir, &Default::default()).unwrap();
    let b = blt_model::load_model::<B>(&two_dir, &Default::default()).unwrap();
    // The calibrated threshold comes from the entropy model's entropies, which agree to float
    // rounding: the devices' threads sum and reduce in their own order.
    let (ta, tb) = (a.config.entropy_threshold, b.config.entropy_threshold);
    assert!(
        (ta - tb).abs() <= 1e-5 * ta.abs(),
        "thresholds {ta} and {tb}"
    );
    let mut same = b.config.clone();
    same.entropy_threshold = ta;
    assert_eq!(a.config, same);
    let pairs = [
        (parameters(&a.model), parameters(&b.model)),
        (
            parameters(a.entropy_model.as_ref().unwrap()),
            parameters(b.entropy_model.as_ref().unwrap()),
        ),
    ];
    for (x, y) in pairs {
        assert_eq!(x.len(), y.len());
        for (p, q) in x.iter().zip(&y) {
            for (u, v) in p.iter().zip(q) {
                assert!((u - v).abs() <= 1e-5 * u.abs().max(1.0), "{u} vs {v}");
            }
        }
    }
    // Validation ran on the first device over the same rows.
    let (va, vb) = (
        one.blt_stage.epochs.last().unwrap().valid_loss.unwrap(),
        two.blt_stage.epochs.last().unwrap().valid_loss.unwrap(),
    );
    assert!((va - vb).abs() <= 1e-5 * va, "{va} vs {vb}");
}

#[test]
fn accumulation_must_divide_among_the_devices() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::config(&Settings {
        patching: "fixed",
        steps: 2,
        entropy_steps: 1,
        dropout: 0.0,
        accumulation: 1,
    });
    let err = train_on::<TrainB>(
        config,
        vec![Default::default(); 2],
        dir.path(),
        common::options(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("multiple of the number of devices"),
        "{err}"
    );
    assert!(
        !dir.path().join(blt_train::RUN_CONFIG_FILE).exists(),
        "nothing written"
    );
}
