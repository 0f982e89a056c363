//! Model directories: a `model.toml` (format version, config, weight checksums) beside the
//! weights as full-precision Burn records (`NamedMpkFileRecorder<FullPrecisionSettings>`; never
//! the half-precision `CompactRecorder`). Loading checks the version, the checksums, that the
//! weights parse, and that every tensor's shape matches the config.

use std::path::{Path, PathBuf};

use burn::{
    module::{Module, ModuleVisitor, Param},
    record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder},
    tensor::{Tensor, backend::Backend},
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    blt::Blt,
    config::BltConfig,
    entropy::{EntropyModel, EntropyModelConfig},
    error::{ModelError, Result},
};

/// Version of the model-directory layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Manifest file name.
pub const MANIFEST_FILE: &str = "model.toml";
/// BLT weights file name.
pub const WEIGHTS_FILE: &str = "blt.mpk";
/// Entropy-model weights file name.
pub const ENTROPY_WEIGHTS_FILE: &str = "entropy.mpk";

type WeightsRecorder = NamedMpkFileRecorder<FullPrecisionSettings>;

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format_version: u32,
    weights_sha256: String,
    /// Fingerprint of the BLT's parameter shapes, checked before any record is loaded.
    weights_layout: String,
    entropy_weights_sha256: Option<String>,
    entropy_weights_layout: Option<String>,
    /// [`config_fingerprint`] of the config the weights were saved with: an edit of a field
    /// the weights depend on is refused even when the parameter shapes stay the same
    /// (`num_heads`, `rope_theta`, the patching scheme…). Absent in directories written before
    /// it existed, which are loaded without this check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    config_sha256: Option<String>,
    model: BltConfig,
}

/// Config fields that may be edited in a saved `model.toml`: the entropy threshold (what
/// `blt-cli calibrate --write` changes), calibration's starting point, and dropout, which only
/// training reads. Every other field is part of what the weights were trained with.
pub const EDITABLE_CONFIG_FIELDS: [&str; 4] = [
    "entropy_threshold",
    "initial_entropy_threshold",
    "attention_dropout",
    "resid_dropout",
];

/// sha256 of `config` with the [`EDITABLE_CONFIG_FIELDS`] at their defaults.
fn config_fingerprint(config: &BltConfig) -> String {
    let defaults = BltConfig::default();
    let fixed = BltConfig {
        entropy_threshold: defaults.entropy_threshold,
        initial_entropy_threshold: defaults.initial_entropy_threshold,
        attention_dropout: defaults.attention_dropout,
        resid_dropout: defaults.resid_dropout,
        ..config.clone()
    };
    let text = toml::to_string(&fixed).expect("a config always serialises");
    format!("{:x}", Sha256::digest(text))
}

#[derive(Debug, Deserialize)]
struct VersionOnly {
    format_version: u32,
}

/// A model loaded from a directory.
#[derive(Debug)]
pub struct LoadedModel<B: Backend> {
    /// Its config.
    pub config: BltConfig,
    /// The BLT.
    pub model: Blt<B>,
    /// The entropy model, when the directory holds one.
    pub entropy_model: Option<EntropyModel<B>>,
}

/// Wraps an I/O error with what was being done and to which file.
pub(crate) fn io_err(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> ModelError {
    let path = path.to_path_buf();
    move |source| ModelError::Io {
        action,
        path,
        source,
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(io_err("reading", path))?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

/// Forces lazily initialised parameters to take their values in place. A clone of an
/// uninitialised parameter would otherwise draw its own, different, values.
struct Initialize;

impl<B: Backend> ModuleVisitor<B> for Initialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let _ = param.val();
    }
}

/// Gives every lazily initialised parameter of `module` its values in place, so that clones
/// share them (and so that the first forward pass does not pay for drawing them).
pub fn initialize<B: Backend, M: Module<B>>(module: &M) {
    module.visit(&mut Initialize);
}

/// Serialises a record to the temporary sibling of `dir/name` and returns that file with its
/// sha256; nothing is replaced yet (see [`commit_set`]).
fn stage_record<B: Backend, M: Module<B>>(
    module: &M,
    dir: &Path,
    name: &str,
) -> Result<(Staged, String)> {
    let target = dir.join(name);
    let tmp = blt_core::fs::temp_path(&target);
    // The recorder appends its extension; give it the stem and move the result.
    let stem = tmp.with_extension("");
    module.visit(&mut Initialize);
    WeightsRecorder::new()
        .record(module.clone().into_record(), stem.clone())
        .map_err(|e| ModelError::Weights {
            path: target.clone(),
            message: e.to_string(),
        })?;
    let written = stem.with_extension("mpk");
    let digest = sha256_file(&written)?;
    Ok((Staged { written, target }, digest))
}

/// A finished temporary file and the file it replaces.
struct Staged {
    written: PathBuf,
    target: PathBuf,
}

/// Writes `text` to the temporary sibling of `dir/name` (flushed), without replacing anything.
fn stage_text(dir: &Path, name: &str, text: &str) -> Result<Staged> {
    let target = dir.join(name);
    let written = blt_core::fs::temp_path(&target);
    std::fs::write(&written, text).map_err(io_err("writing", &written))?;
    Ok(Staged { written, target })
}

/// Moves a set of staged files into place in order (each flushed, then renamed, then the
/// directory flushed): the manifest goes last, so until it lands the old manifest is the one
/// read, and after it every file it names is already in place.
fn commit_set(files: Vec<Staged>) -> Result<()> {
    for file in files {
        blt_core::fs::commit(&file.written, &file.target)
            .map_err(io_err("writing", &file.target))?;
    }
    Ok(())
}

/// Writes `dir/model.toml` and the weights; creates `dir` if needed. Every file is written in
/// full and flushed before any is replaced, and the manifest is replaced last, so an
/// interrupted save never leaves a half-written model.
pub fn save_model<B: Backend>(
    dir: &Path,
    config: &BltConfig,
    model: &Blt<B>,
    entropy_model: Option<&EntropyModel<B>>,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
    let (weights, weights_sha256) = stage_record(model, dir, WEIGHTS_FILE)?;
    let mut files = vec![weights];
    let entropy_weights_sha256 = match entropy_model {
        Some(e) => {
            let (file, digest) = stage_record(e, dir, ENTROPY_WEIGHTS_FILE)?;
            files.push(file);
            Some(digest)
        }
        None => None,
    };
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        weights_sha256,
        weights_layout: layout::<B, _>(model),
        entropy_weights_sha256,
        entropy_weights_layout: entropy_model.map(layout::<B, _>),
        config_sha256: Some(config_fingerprint(config)),
        model: config.clone(),
    };
    let text = toml::to_string_pretty(&manifest).expect("a manifest always serialises");
    files.push(stage_text(dir, MANIFEST_FILE, &text)?);
    commit_set(files)
}

/// Saves an entropy model alone (stage one of training) with its own manifest, written as a
/// set like [`save_model`].
pub fn save_entropy_model<B: Backend>(
    dir: &Path,
    config: &BltConfig,
    model: &EntropyModel<B>,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
    let (weights, digest) = stage_record(model, dir, ENTROPY_WEIGHTS_FILE)?;
    let text = toml::to_string_pretty(&Manifest {
        format_version: FORMAT_VERSION,
        weights_sha256: String::new(),
        weights_layout: String::new(),
        entropy_weights_sha256: Some(digest),
        entropy_weights_layout: Some(layout::<B, _>(model)),
        config_sha256: Some(config_fingerprint(config)),
        model: config.clone(),
    })
    .expect("a manifest always serialises");
    let manifest = stage_text(dir, MANIFEST_FILE, &text)?;
    commit_set(vec![weights, manifest])
}

/// Reads and checks a directory's manifest.
fn read_manifest(dir: &Path) -> Result<Manifest> {
    if !dir.is_dir() {
        return Err(ModelError::InvalidInput(format!(
            "model directory {} does not exist",
            dir.display()
        )));
    }
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path).map_err(io_err("reading", &path))?;
    let parse_err = |message: String| ModelError::ParseConfig {
        path: path.clone(),
        message,
    };
    let version: VersionOnly =
        toml::from_str(&text).map_err(|e| parse_err(e.message().to_string()))?;
    if version.format_version != FORMAT_VERSION {
        return Err(ModelError::IncompatibleVersion {
            path: dir.to_path_buf(),
            found: version.format_version,
            expected: FORMAT_VERSION,
        });
    }
    let manifest: Manifest =
        toml::from_str(&text).map_err(|e| parse_err(e.message().to_string()))?;
    manifest.model.validate()?;
    if let Some(saved) = &manifest.config_sha256
        && *saved != config_fingerprint(&manifest.model)
    {
        return Err(parse_err(format!(
            "[model] differs from the config the weights were saved with; only {} may be \
             edited",
            EDITABLE_CONFIG_FIELDS.join(", ")
        )));
    }
    Ok(manifest)
}

/// Reads only the config of a model directory (cheap; no weights).
pub fn load_config(dir: &Path) -> Result<BltConfig> {
    Ok(read_manifest(dir)?.model)
}

/// Shapes of every parameter in visiting order.
struct ShapeCollector(Vec<Vec<usize>>);

impl<B: Backend> ModuleVisitor<B> for ShapeCollector {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.0.push(param.lazy_shape().dims::<D>().to_vec());
    }
}

fn shapes<B: Backend, M: Module<B>>(module: &M) -> Vec<Vec<usize>> {
    let mut collector = ShapeCollector(Vec::new());
    module.visit(&mut collector);
    collector.0
}

/// A fingerprint of a module's parameter shapes (sha256 of their list).
fn layout<B: Backend, M: Module<B>>(module: &M) -> String {
    format!(
        "{:x}",
        Sha256::digest(format!("{:?}", shapes::<B, M>(module)))
    )
}

/// Loads `fresh`'s record from `path`, checking the checksum and every shape.
fn load_checked<B: Backend, M: Module<B>>(
    fresh: M,
    path: PathBuf,
    sha256: &str,
    expected_layout: &str,
    device: &B::Device,
) -> Result<M> {
    let weights_err = |message: String| ModelError::Weights {
        path: path.clone(),
        message,
    };
    if !path.is_file() {
        return Err(weights_err("file is missing".into()));
    }
    // Burn panics when a record's layer count differs from the module's: compare the shape
    // fingerprint the weights were saved with before loading anything.
    if layout::<B, M>(&fresh) != expected_layout {
        return Err(weights_err(
            "weights do not match the config (the parameter shapes differ; was model.toml edited?)"
                .into(),
        ));
    }
    if sha256_file(&path)? != sha256 {
        return Err(weights_err(
            "checksum mismatch: the file is corrupt or was replaced".into(),
        ));
    }
    let expected = shapes::<B, M>(&fresh);
    let record = WeightsRecorder::new()
        .load(path.clone(), device)
        .map_err(|e| weights_err(format!("unreadable record ({e})")))?;
    let loaded = fresh.load_record(record);
    let found = shapes::<B, M>(&loaded);
    if found != expected {
        return Err(weights_err(format!(
            "weights do not match the config ({} tensors found, {} expected, first mismatch {:?})",
            found.len(),
            expected.len(),
            found.iter().zip(&expected).find(|(a, b)| a != b)
        )));
    }
    Ok(loaded)
}

/// Loads a model directory written by [`save_model`].
pub fn load_model<B: Backend>(dir: &Path, device: &B::Device) -> Result<LoadedModel<B>> {
    let manifest = read_manifest(dir)?;
    let config = manifest.model;
    let model = load_checked(
        Blt::new(&config, device)?,
        dir.join(WEIGHTS_FILE),
        &manifest.weights_sha256,
        &manifest.weights_layout,
        device,
    )?;
    let entropy_model = match (
        &manifest.entropy_weights_sha256,
        &manifest.entropy_weights_layout,
    ) {
        (Some(sha), Some(layout)) => Some(load_entropy_weights(&config, dir, sha, layout, device)?),
        _ => None,
    };
    Ok(LoadedModel {
        config,
        model,
        entropy_model,
    })
}

fn load_entropy_weights<B: Backend>(
    config: &BltConfig,
    dir: &Path,
    sha: &str,
    layout: &str,
    device: &B::Device,
) -> Result<EntropyModel<B>> {
    let fresh = EntropyModelConfig::from_blt(config).init(device);
    load_checked(fresh, dir.join(ENTROPY_WEIGHTS_FILE), sha, layout, device)
}

/// Loads only the entropy model of a directory (a run's or one saved by
/// [`save_entropy_model`]).
pub fn load_entropy_model<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(BltConfig, EntropyModel<B>)> {
    let manifest = read_manifest(dir)?;
    let (Some(sha), Some(layout)) = (
        &manifest.entropy_weights_sha256,
        &manifest.entropy_weights_layout,
    ) else {
        return Err(ModelError::Weights {
            path: dir.join(ENTROPY_WEIGHTS_FILE),
            message: "the directory holds no entropy model".into(),
        });
    };
    let model = load_entropy_weights(&manifest.model, dir, sha, layout, device)?;
    Ok((manifest.model, model))
}

/// The sha256 of a directory's entropy weights, an identity for caches derived from it.
pub fn entropy_model_identity(dir: &Path) -> Result<String> {
    let manifest = read_manifest(dir)?;
    manifest
        .entropy_weights_sha256
        .ok_or_else(|| ModelError::Weights {
            path: dir.join(ENTROPY_WEIGHTS_FILE),
            message: "the directory holds no entropy model".into(),
        })
}
