//! The presets in code and the config files in `configs/` describe the same models: the files
//! are what users train with, the presets what tests, benches and examples build, and the two
//! had drifted apart before (`max_patch_size`).

use blt_model::BltConfig;

/// The `[model]` table of `configs/NAME.toml`, with every omitted key at its default.
fn model_section(name: &str) -> BltConfig {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/").to_string() + name + ".toml";
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut file: toml::Table = toml::from_str(&text).unwrap();
    let model = file.remove("model").expect("a [model] table");
    model.try_into().unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_preset_equals_its_config_file() {
    for (name, preset) in [
        ("tiny", BltConfig::tiny()),
        ("small", BltConfig::small()),
        ("bench", BltConfig::bench()),
        ("seed-basic", BltConfig::seed_basic()),
        ("seed-advanced", BltConfig::seed_advanced()),
    ] {
        let file = model_section(name);
        file.validate().unwrap();
        assert_eq!(
            file, preset,
            "configs/{name}.toml and BltConfig::{name}() differ"
        );
    }
}
