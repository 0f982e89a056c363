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

    // A manifest written before configs were fingerprinted (no `config_sha256`): the
    // parameter shapes still catch a layer-count edit, before Burn's loader could panic.
    let dir = fresh();
    let text = std::fs::read_to_string(manifest_of(&dir)).unwrap();
    assert!(text.contains("config_sha256 = "));
    let old_style: String = text
        .lines()
        .filter(|l| !l.starts_with("config_sha256 = "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(
        manifest_of(&dir),
        old_style.replace("decoder_layers = 2", "decoder_layers = 1"),
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

/// Sets `[model] key = value` in a saved manifest.
fn edit_manifest(dir: &std::path::Path, key: &str, value: toml::Value) {
    let path = dir.join(blt_model::MANIFEST_FILE);
    let mut doc: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let model = doc.get_mut("model").unwrap().as_table_mut().unwrap();
    assert!(model.contains_key(key), "{key} is not in the manifest");
    model.insert(key.into(), value);
    std::fs::write(&path, toml::to_string(&doc).unwrap()).unwrap();
}

/// Fields the weights depend on without changing any parameter's shape (the head count at a
/// fixed width, RoPE's base, the patching scheme) cannot be edited in a saved manifest; the
/// entropy threshold and dropout can, and the loaded config carries the edit.
#[test]
fn edits_of_trained_fields_are_refused_and_editable_fields_load() {
    let m = TestModel::new(test_config(PatchingKind::Space), 9);
    let saved = || {
        let dir = tempfile::tempdir().unwrap();
        save_model(dir.path(), &m.config, &m.model, None).unwrap();
        dir
    };
    let heads = if m.config.num_heads == 2 { 4 } else { 2 };
    assert_eq!(m.config.hidden_size % heads, 0);
    for (key, value) in [
        ("num_heads", toml::Value::Integer(heads as i64)),
        ("rope_theta", toml::Value::Float(m.config.rope_theta * 2.0)),
        ("patching", toml::Value::String("byte".into())),
    ] {
        let dir = saved();
        edit_manifest(dir.path(), key, value);
        let e = load_model::<B>(dir.path(), &device()).unwrap_err();
        assert!(
            e.to_string()
                .contains("differs from the config the weights were saved with"),
            "{key}: {e}"
        );
        assert!(load_config(dir.path()).is_err(), "{key}");
    }
    let dir = saved();
    edit_manifest(dir.path(), "entropy_threshold", toml::Value::Float(0.75));
    edit_manifest(dir.path(), "resid_dropout", toml::Value::Float(0.25));
    let loaded = load_model::<B>(dir.path(), &device()).unwrap();
    assert_eq!(loaded.config.entropy_threshold, 0.75);
    assert_eq!(loaded.config.resid_dropout, 0.25);
}
