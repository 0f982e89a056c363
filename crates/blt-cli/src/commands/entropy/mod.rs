//! `blt-cli entropy`: per-byte entropies as a terminal heat map with patch cuts, and a plot
//! (SVG or PNG, see [`plot`]) of the entropy curve with the threshold line and patch boundaries.

pub mod plot;

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use blt_model::{BltConfig, load_entropy_model};
use blt_patching::{ByteTokenizer, EncodeOptions, Patcher};
use burn::tensor::backend::Backend;

use crate::{
    args::{EntropyArgs, GlobalArgs},
    backend::{BackendTask, dispatch},
};

/// Per-position entropies and patch starts of a text (BOS at position 0).
pub struct EntropyView {
    /// The text.
    pub text: Vec<u8>,
    /// Entropy (nats) at each position 0..=len.
    pub entropies: Vec<f32>,
    /// Positions that start a patch.
    pub starts: Vec<usize>,
    /// The threshold.
    pub threshold: f32,
}

/// The colour of entropy `h` on a scale from 0 to `max`: an ANSI 256-colour index on a ramp
/// from blue (low) through yellow to red (high). Shared with the interactive screen.
pub fn heat(h: f32, max: f32) -> u8 {
    const RAMP: [u8; 8] = [21, 27, 33, 39, 226, 220, 208, 196];
    let x = (h / max.max(1e-6)).clamp(0.0, 0.999);
    RAMP[(x * RAMP.len() as f32) as usize]
}

/// The heat map: each byte on a background coloured by the entropy that predicted it, a `│`
/// before each byte that opens a patch.
pub fn heat_map(view: &EntropyView, color: bool) -> String {
    let max = view.entropies.iter().copied().fold(0.0f32, f32::max);
    let mut out = String::new();
    for (i, &byte) in view.text.iter().enumerate() {
        let pos = i + 1;
        if view.starts.contains(&pos) {
            out.push('│');
        }
        let shown = match byte {
            b'\n' => "⏎".to_string(),
            0x20..=0x7e => (byte as char).to_string(),
            other => format!("\\x{other:02x}"),
        };
        if color {
            // The entropy that decided this byte's patch is the previous position's.
            let _ = write!(
                out,
                "\x1b[48;5;{}m\x1b[30m{shown}\x1b[0m",
                heat(view.entropies[pos - 1], max)
            );
        } else {
            out.push_str(&shown);
        }
    }
    out
}

/// Computes the view of `text` with a model directory's entropy model.
pub fn entropy_view<B: Backend>(
    model: &Path,
    text: &[u8],
    device: &B::Device,
) -> Result<(BltConfig, EntropyView)> {
    let (config, entropy) = load_entropy_model::<B>(model, device)
        .with_context(|| format!("loading the entropy model of {}", model.display()))?;
    let ids = ByteTokenizer.encode(
        text,
        EncodeOptions {
            add_bos: true,
            add_eos: false,
        },
    );
    anyhow::ensure!(
        ids.len() <= config.max_position_embeddings,
        "the text has {} bytes; this model allows at most {}",
        text.len(),
        config.max_position_embeddings - 1
    );
    let entropies = entropy
        .entropies(&[&ids], config.entropy_resets(), device)?
        .remove(0);
    let mut patcher_config = config.patcher_config();
    patcher_config.scheme = blt_patching::PatchingScheme::Entropy {
        threshold: config.entropy_threshold,
        monotonic: config.monotonic_entropy,
    };
    let patches = Patcher::new(patcher_config)?.patch(&ids, Some(&entropies))?;
    let threshold = config.entropy_threshold;
    Ok((
        config,
        EntropyView {
            text: text.to_vec(),
            entropies,
            starts: patches.starts,
            threshold,
        },
    ))
}

struct EntropyTask {
    model: PathBuf,
    text: Vec<u8>,
    plot: Option<(PathBuf, plot::PlotFormat)>,
}

impl BackendTask for EntropyTask {
    type Output = ();

    fn run<B: Backend>(self, device: B::Device, _name: &'static str) -> Result<()> {
        let (_, view) = entropy_view::<B>(&self.model, &self.text, &device)?;
        use std::io::IsTerminal;
        println!("{}", heat_map(&view, std::io::stdout().is_terminal()));
        let patches = view
            .starts
            .iter()
            .filter(|&&s| s <= view.text.len())
            .count();
        println!(
            "{} bytes, {} patches (mean {:.2} bytes), threshold {:.3} nats, mean entropy {:.3}",
            view.text.len(),
            patches,
            (view.text.len() + 1) as f64 / patches.max(1) as f64,
            view.threshold,
            view.entropies.iter().sum::<f32>() / view.entropies.len().max(1) as f32
        );
        if let Some((path, format)) = &self.plot {
            let marks = plot::write(&view, path, *format)?;
            eprintln!("wrote {} ({marks} patch boundaries)", path.display());
        }
        Ok(())
    }
}

/// Runs the command.
pub fn run(global: &GlobalArgs, args: EntropyArgs) -> Result<()> {
    if args.text.is_empty() {
        bail!("--text is empty");
    }
    // Checked before the model loads, so a bad name fails at once.
    let plot = args
        .plot
        .map(|path| plot::PlotFormat::from_path(&path).map(|format| (path, format)))
        .transpose()?;
    dispatch(
        &global.backend,
        EntropyTask {
            model: args.model,
            text: args.text.into_bytes(),
            plot,
        },
    )
}
