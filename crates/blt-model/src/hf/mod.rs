//! Hugging Face BLT checkpoints (transformers 5.x `BltForCausalLM`: `config.json` beside
//! `model.safetensors` or shards) read into our [`Blt`] and [`EntropyModel`].
//!
//! The architecture is the same computation; what differs is naming and layout, which
//! the `weights` module maps, and the config, which [`HfBltConfig`] translates (refusing what blt does
//! not implement). Nothing is loaded silently: a missing tensor, a shape that disagrees with
//! the config, or a tensor that nothing reads is an error that names it.

mod config;
mod export;
mod names;
mod reference;
mod safetensors;
mod weights;

use std::path::Path;

use burn::tensor::backend::Backend;

pub use config::HfBltConfig;

/// transformers' default `BltConfig` as `config.json` (BLT-1B's shapes), as
/// `transformers.BltConfig().to_json_string()` writes it (transformers 5.24).
pub const DEFAULT_CONFIG_JSON: &str = include_str!("../../tests/fixtures/hf-default-config.json");
pub use export::{export_hf, export_hf_with, hf_config_json};
pub use reference::{ReferenceRow, logit_diffs_by_position, max_logit_diffs, parse_reference};
pub use safetensors::{Checkpoint, HostTensor, INDEX_FILE, SINGLE_FILE, write_f32, write_f32_with};

use crate::{
    blt::Blt,
    entropy::{EntropyModel, EntropyModelConfig},
    error::{ModelError, Result},
    io::{LoadedModel, io_err},
};

/// transformers' config file name.
pub const CONFIG_FILE: &str = "config.json";

/// Reads and translates `dir/config.json`.
pub fn read_hf_config(dir: &Path) -> Result<(HfBltConfig, crate::BltConfig)> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(io_err("reading", &path))?;
    let hf = HfBltConfig::parse(&text)?;
    let config = hf.to_blt()?;
    Ok((hf, config))
}

/// Loads a Hugging Face BLT directory: the model, and the entropy model when the checkpoint
/// has a patcher (`model.patcher.*`).
pub fn load_hf<B: Backend>(dir: &Path, device: &B::Device) -> Result<LoadedModel<B>> {
    load_hf_with(dir, device, &())
}

/// [`load_hf`] reporting the tensors read to `progress` (task `"tensors read"`; BLT-1B has
/// hundreds, gigabytes in all).
pub fn load_hf_with<B: Backend>(
    dir: &Path,
    device: &B::Device,
    progress: &dyn blt_core::Progress,
) -> Result<LoadedModel<B>> {
    let (hf, config) = read_hf_config(dir)?;
    let mut ckpt = Checkpoint::open(dir)?;
    progress.start("tensors read", ckpt.names().count());
    let loaded = load_checkpoint(&hf, config, &mut ckpt, device, progress);
    progress.finish();
    let loaded = loaded?;
    tracing::info!(
        dir = %dir.display(),
        patcher = loaded.entropy_model.is_some(),
        "imported a Hugging Face BLT"
    );
    Ok(loaded)
}

/// The model (and patcher) of an opened checkpoint; every tensor must be read.
fn load_checkpoint<B: Backend>(
    hf: &HfBltConfig,
    config: crate::BltConfig,
    ckpt: &mut Checkpoint,
    device: &B::Device,
    progress: &dyn blt_core::Progress,
) -> Result<LoadedModel<B>> {
    let mut model = Blt::new(&config, device)?;
    let mut loader = weights::Loader::<B> {
        ckpt,
        device,
        progress,
        read: 0,
    };
    loader.blt(&mut model, hf.tie_word_embeddings())?;
    let has_patcher = hf.has_patcher() && loader.ckpt.contains("model.patcher.embed_tokens.weight");
    let entropy_model = if has_patcher {
        let mut entropy: EntropyModel<B> = EntropyModelConfig::from_blt(&config).init(device);
        loader.entropy(&mut entropy)?;
        Some(entropy)
    } else {
        None
    };
    let unused = ckpt.unused();
    if !unused.is_empty() {
        let shown: Vec<&str> = unused.iter().take(5).copied().collect();
        return Err(ModelError::Weights {
            path: ckpt.path().to_path_buf(),
            message: format!(
                "{} tensor(s) that blt does not read, starting with {}",
                unused.len(),
                shown.join(", ")
            ),
        });
    }
    Ok(LoadedModel {
        config,
        model,
        entropy_model,
    })
}
