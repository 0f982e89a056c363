//! Save → load gives identical logits; loading detects missing directories, corrupt or
//! truncated weights, incompatible versions and configs that do not match the weights.

use super::common;

use blt_model::{ModelError, PatchingKind, load_config, load_model, save_model};
use common::*;

#[test]
fn save_then_load_gives_identical_logits() {
    let dir = tempfile::tempdir().unwrap();
    let m = TestModel::new(test_config(PatchingKind::Entropy), 7);
    save_model(dir.path(), &m.config, &m.model, m.entropy.as_ref()).unwrap();
    let loaded = load_model::<B>(dir.path(), &device()).unwrap();
    assert_eq!(loaded.config, m.config);
    let again = TestModel {
        config: loaded.config,
        model: loaded.model,
        entropy: loaded.entropy_model,
    };
    let t = text(3, 33);
    assert_eq!(max_abs_diff(again.logits(&[&t]), m.logits(&[&t])), 0.0);
    assert_eq!(load_config(dir.path()).unwrap(), m.config);
}

#[test]
fn broken_model_directories_are_reported() {
    let m = TestModel::new(test_config(PatchingKind::Space), 8);
    let fresh = || {
        let dir = tempfile::tempdir().unwrap();
        save_model(dir.path(), &m.config, &m.model, None).unwrap();
        dir
    };
    let err = |dir: &std::path::Path| load_model::<B>(dir, &device()).unwrap_err();

    let missing = err(std::path::Path::new("/nonexistent/run"));
    assert!(missing.to_string().contains("does not exist"), "{missing}");

    let dir = fresh();
    let weights = dir.path().join(blt_model::WEIGHTS_FILE);
    let mut bytes = std::fs::read(&weights).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&weights, &bytes).unwrap();
    assert!(matches!(err(dir.path()), ModelError::Weights { .. }));

    let dir = fresh();
    let weights = dir.path().join(blt_model::WEIGHTS_FILE);
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 3]).unwrap();
    assert!(matches!(err(dir.path()), ModelError::Weights { .. }));

    let dir = fresh();
    let manifest = dir.path().join(blt_model::MANIFEST_FILE);
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("format_version = 1", "format_version = 99"),
    )
    .unwrap();
    assert!(matches!(
        err(dir.path()),
        ModelError::IncompatibleVersion { found: 99, .. }
    ));

    let dir = fresh();
    let text = std::fs::read_to_string(manifest_of(&dir)).unwrap();
    std::fs::write(
        manifest_of(&dir),
        text.replace("decoder_layers = 2", "decoder_layers = 1"),
    )
    .unwrap();
    let e = err(dir.path());
    assert!(e.to_string().contains("do not match the config"), "{e}");

    let dir = fresh();
    std::fs::write(manifest_of(&dir), "format_version = 1\nnot toml [").unwrap();
    assert!(matches!(err(dir.path()), ModelError::ParseConfig { .. }));
}

fn manifest_of(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join(blt_model::MANIFEST_FILE)
}
