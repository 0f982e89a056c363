//! `blt-cli import-hf`: a Hugging Face BLT directory into one of our model directories.

use std::path::PathBuf;

use anyhow::{Context, Result};
use blt_model::{ParameterCounts, hf::load_hf_with, save_model};
use burn::tensor::backend::Backend;

use crate::{
    args::{GlobalArgs, ImportHfArgs},
    backend::{BackendTask, dispatch},
};

struct ImportTask {
    from: PathBuf,
    out: PathBuf,
    quiet: bool,
}

impl BackendTask for ImportTask {
    type Output = ();

    fn run<B: Backend>(self, device: B::Device, _name: &'static str) -> Result<()> {
        let progress = crate::progress::reporter(self.quiet);
        let loaded = load_hf_with::<B>(&self.from, &device, progress.as_ref())
            .with_context(|| format!("importing {}", self.from.display()))?;
        save_model(
            &self.out,
            &loaded.config,
            &loaded.model,
            loaded.entropy_model.as_ref(),
        )
        .with_context(|| format!("writing {}", self.out.display()))?;
        let counts = ParameterCounts::of(&loaded.model, loaded.entropy_model.as_ref());
        println!(
            "imported {} into {} ({:.2} M parameters{})",
            self.from.display(),
            self.out.display(),
            counts.total() as f64 / 1e6,
            if loaded.entropy_model.is_some() {
                ", entropy model included"
            } else {
                ""
            }
        );
        Ok(())
    }
}

/// Runs `import-hf`.
pub fn run(global: &GlobalArgs, args: ImportHfArgs) -> Result<()> {
    super::ensure_new_dir(&args.out)?;
    dispatch(
        &global.backend,
        ImportTask {
            from: args.from,
            out: args.out,
            quiet: global.quiet > 0,
        },
    )
}
