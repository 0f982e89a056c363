//! Checkpoint files that a crash cannot leave half-written, and the choice of the checkpoint a
//! resumed run starts from.
//!
//! Burn's learner saves each epoch's checkpoint as three files (`model-N`, `optim-N`,
//! `scheduler-N`), each written by its own thread straight to its final name. A kill, an
//! out-of-memory stop or a full disk in the middle leaves a truncated file that Burn's loader
//! later `expect`s to read, and the newest `optim-N` alone does not say whether `model-N` and
//! `scheduler-N` were finished. [`DurableRecorder`] writes every file to a temporary name,
//! flushes it and renames it into place, so a file under its final name is complete; and
//! [`last_checkpoint`] picks the newest epoch whose three files are all there, falling back to
//! an earlier complete one.

use std::path::{Path, PathBuf};

use burn::{
    record::{FileRecorder, FullPrecisionSettings, NamedMpkFileRecorder, Recorder, RecorderError},
    tensor::backend::Backend,
};
use serde::{Serialize, de::DeserializeOwned};

/// The parts of one epoch's checkpoint, as Burn names them.
pub const CHECKPOINT_PARTS: [&str; 3] = ["model", "optim", "scheduler"];

/// Recorder of checkpoints: full precision (never `CompactRecorder`, whose f16 second moments
/// underflow), written durably.
pub type CheckpointRecorder = DurableRecorder<NamedMpkFileRecorder<FullPrecisionSettings>>;

/// A file recorder that writes through a temporary file, flushed and renamed into place
/// ([`blt_core::fs::commit`]); it reads what the wrapped recorder reads.
#[derive(Debug, Default, Clone)]
pub struct DurableRecorder<R> {
    inner: R,
}

impl<R: Default> DurableRecorder<R> {
    /// A recorder over `R`'s default.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<B: Backend, R: FileRecorder<B>> Recorder<B> for DurableRecorder<R> {
    type Settings = R::Settings;
    type RecordArgs = PathBuf;
    type RecordOutput = ();
    type LoadArgs = PathBuf;

    fn save_item<I: Serialize>(&self, item: I, path: PathBuf) -> Result<(), RecorderError> {
        let extension = <R as FileRecorder<B>>::file_extension();
        let target = path.with_extension(extension);
        let name = path
            .file_name()
            .map_or_else(|| "record".into(), |n| n.to_string_lossy().into_owned());
        // The inner recorder appends its extension to the stem it is given.
        let stem = path.with_file_name(format!(".{name}-partial"));
        self.inner.save_item(item, stem.clone())?;
        let written = stem.with_extension(extension);
        blt_core::fs::commit(&written, &target).map_err(|e| {
            let _ = std::fs::remove_file(&written);
            RecorderError::Unknown(format!("writing {}: {e}", target.display()))
        })
    }

    fn load_item<I: DeserializeOwned>(&self, path: &mut PathBuf) -> Result<I, RecorderError> {
        self.inner.load_item(path)
    }
}

impl<B: Backend, R: FileRecorder<B>> FileRecorder<B> for DurableRecorder<R> {
    fn file_extension() -> &'static str {
        <R as FileRecorder<B>>::file_extension()
    }
}

/// Removes the temporary files of checkpoint writes that were cut short (a kill in the middle
/// of a save leaves `.model-N-partial.mpk` and the like behind).
pub fn remove_partial_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir.join("checkpoint")) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains("-partial") {
            tracing::debug!(file = name, "removing an unfinished checkpoint file");
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The newest epoch in `dir/checkpoint` whose model, optimizer and scheduler files are all
/// present and non-empty; a newer, incomplete epoch (a save cut short) is skipped with a
/// warning.
pub fn last_checkpoint(dir: &Path) -> Option<usize> {
    let checkpoints = dir.join("checkpoint");
    let entries = std::fs::read_dir(&checkpoints).ok()?;
    let mut epochs: Vec<usize> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| {
            CHECKPOINT_PARTS.iter().find_map(|part| {
                name.strip_prefix(part)?
                    .strip_prefix('-')?
                    .strip_suffix(".mpk")?
                    .parse()
                    .ok()
            })
        })
        .collect();
    epochs.sort_unstable();
    epochs.dedup();
    let complete = |epoch: usize| {
        CHECKPOINT_PARTS.iter().all(|part| {
            std::fs::metadata(checkpoints.join(format!("{part}-{epoch}.mpk")))
                .is_ok_and(|m| m.is_file() && m.len() > 0)
        })
    };
    let newest = *epochs.last()?;
    let found = epochs.into_iter().rev().find(|&epoch| complete(epoch));
    if found != Some(newest) {
        tracing::warn!(
            newest,
            resuming_from = ?found,
            "the newest checkpoint is incomplete (a save was cut short); using the last complete one"
        );
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str, bytes: &[u8]) {
        std::fs::write(dir.join("checkpoint").join(name), bytes).unwrap();
    }

    #[test]
    fn an_incomplete_newest_checkpoint_falls_back_to_the_one_before() {
        let dir = std::env::temp_dir().join(format!("blt-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("checkpoint")).unwrap();
        assert_eq!(last_checkpoint(&dir), None);
        for epoch in [1, 2] {
            for part in CHECKPOINT_PARTS {
                touch(&dir, &format!("{part}-{epoch}.mpk"), b"x");
            }
        }
        assert_eq!(last_checkpoint(&dir), Some(2));
        // Epoch 3 cut short: the optimizer state is there, the model is not.
        touch(&dir, "optim-3.mpk", b"x");
        touch(&dir, "scheduler-3.mpk", b"x");
        assert_eq!(last_checkpoint(&dir), Some(2));
        // An empty file is not a checkpoint either, nor a leftover temporary file.
        touch(&dir, "model-3.mpk", b"");
        touch(&dir, ".model-3-partial.mpk", b"x");
        assert_eq!(last_checkpoint(&dir), Some(2));
        touch(&dir, "model-3.mpk", b"x");
        assert_eq!(last_checkpoint(&dir), Some(3));
        remove_partial_files(&dir);
        assert!(!dir.join("checkpoint/.model-3-partial.mpk").exists());
        assert!(dir.join("checkpoint/model-3.mpk").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
