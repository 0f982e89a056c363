//! `blt-cli patch`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use blt_model::load_entropy_model;
use blt_patching::{ByteTokenizer, EncodeOptions, Patcher, PatcherConfig, Patches, PatchingScheme};
use burn::tensor::backend::Backend;

use crate::{
    args::{GlobalArgs, PatchArgs, SchemeArg},
    backend::{BackendTask, dispatch},
};

/// Renders patches as `[…]` groups of escaped text; BOS is shown as `␂`.
pub fn render_patches(text: &[u8], patches: &Patches) -> String {
    let mut out = String::new();
    for (&start, &len) in patches.starts.iter().zip(&patches.lengths) {
        let end = (start + len).min(text.len() + 1);
        if start > text.len() {
            continue;
        }
        out.push('[');
        for pos in start..end {
            if pos == 0 {
                out.push('␂');
            } else {
                out.push_str(&escape(text[pos - 1]));
            }
        }
        out.push(']');
    }
    out
}

fn escape(byte: u8) -> String {
    match byte {
        b'\n' => "\\n".into(),
        b'\t' => "\\t".into(),
        0x20..=0x7e => (byte as char).to_string(),
        other => format!("\\x{other:02x}"),
    }
}

struct EntropyPatchTask {
    model: PathBuf,
    text: Vec<u8>,
    threshold: Option<f32>,
}

impl BackendTask for EntropyPatchTask {
    type Output = ();

    fn run<B: Backend>(self, device: B::Device, _name: &'static str) -> Result<()> {
        let (config, entropy) = load_entropy_model::<B>(&self.model, &device)
            .with_context(|| format!("loading the entropy model of {}", self.model.display()))?;
        let ids = ByteTokenizer.encode(
            &self.text,
            EncodeOptions {
                add_bos: true,
                add_eos: false,
            },
        );
        let limit = entropy.max_positions();
        anyhow::ensure!(
            ids.len() <= limit,
            "the text has {} bytes; the entropy model reads at most {}",
            self.text.len(),
            limit - 1
        );
        let h = entropy
            .entropies(&[&ids], config.entropy_resets(), &device)?
            .remove(0);
        let mut patcher_config = config.patcher_config();
        let threshold = self.threshold.unwrap_or(config.entropy_threshold);
        patcher_config.scheme = PatchingScheme::Entropy {
            threshold,
            monotonic: config.monotonic_entropy,
        };
        let patches = Patcher::new(patcher_config)?.patch(&ids, Some(&h))?;
        print_patches(&self.text, &patches);
        Ok(())
    }
}

fn print_patches(text: &[u8], patches: &Patches) {
    println!("{}", render_patches(text, patches));
    println!(
        "{} bytes, {} patches, mean patch length {:.2}",
        text.len(),
        patches.num_patches(),
        (text.len() + 1) as f64 / patches.num_patches().max(1) as f64
    );
}

/// Runs the command.
pub fn run(global: &GlobalArgs, args: PatchArgs) -> Result<()> {
    let text = args.text.into_bytes();
    if text.is_empty() {
        bail!("--text is empty");
    }
    let scheme = match args.scheme {
        SchemeArg::Entropy => {
            let Some(model) = args.model else {
                bail!(
                    "the entropy scheme needs --model RUN_DIR (its entropy model scores the bytes)"
                );
            };
            return dispatch(
                &global.backend,
                EntropyPatchTask {
                    model,
                    text,
                    threshold: args.threshold,
                },
            );
        }
        SchemeArg::Fixed => PatchingScheme::Fixed {
            stride: args.stride,
        },
        SchemeArg::Space => PatchingScheme::Space,
        SchemeArg::Byte => PatchingScheme::Byte,
    };
    let patcher = Patcher::new(PatcherConfig::new(scheme))?;
    let ids = ByteTokenizer.encode(
        &text,
        EncodeOptions {
            add_bos: true,
            add_eos: false,
        },
    );
    print_patches(&text, &patcher.patch(&ids, None)?);
    Ok(())
}
