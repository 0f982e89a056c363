//! `blt-cli export-hf`: one of our model directories as a Hugging Face BLT directory.

use std::path::PathBuf;

use anyhow::{Context, Result};
use blt_model::{hf::export_hf_with, load_model};
use burn::tensor::backend::Backend;

use crate::{
    args::{ExportHfArgs, GlobalArgs},
    backend::{BackendTask, dispatch},
};

struct ExportTask {
    model: PathBuf,
    out: PathBuf,
    quiet: bool,
}

impl BackendTask for ExportTask {
    type Output = ();

    fn run<B: Backend>(self, device: B::Device, _name: &'static str) -> Result<()> {
        let loaded = load_model::<B>(&self.model, &device)
            .with_context(|| format!("loading model {}", self.model.display()))?;
        let progress = crate::progress::reporter(self.quiet);
        export_hf_with(
            &self.out,
            &loaded.config,
            &loaded.model,
            loaded.entropy_model.as_ref(),
            progress.as_ref(),
        )
        .with_context(|| format!("exporting to {}", self.out.display()))?;
        println!(
            "exported {} to {} (load it with transformers' BltForCausalLM.from_pretrained)",
            self.model.display(),
            self.out.display()
        );
        Ok(())
    }
}

/// Runs `export-hf`.
pub fn run(global: &GlobalArgs, args: ExportHfArgs) -> Result<()> {
    super::ensure_new_dir(&args.out)?;
    dispatch(
        &global.backend,
        ExportTask {
            model: args.model,
            out: args.out,
            quiet: global.quiet > 0,
        },
    )
}
