//! `blt-cli entropy`: per-byte entropies as a terminal heat map with patch cuts, and an SVG plot
//! of the entropy curve with the threshold line and patch boundaries.

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

fn heat(h: f32, max: f32) -> u8 {
    // ANSI 256-colour ramp from blue (low) through yellow to red (high).
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

/// An SVG plot: the entropy curve, the threshold line, one dashed mark per patch boundary.
/// Returns the document and the number of boundary marks.
pub fn svg_plot(view: &EntropyView) -> (String, usize) {
    let (w, h, margin) = (1000.0f32, 360.0f32, 50.0f32);
    let n = view.entropies.len().max(2);
    let max = view
        .entropies
        .iter()
        .copied()
        .fold(view.threshold, f32::max)
        * 1.1;
    let x = |i: usize| margin + (w - 2.0 * margin) * i as f32 / (n - 1) as f32;
    let y = |v: f32| h - margin - (h - 2.0 * margin) * v / max.max(1e-6);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="20" text-anchor="middle" font-size="14">Next-byte entropy (nats) and patch boundaries</text>"#,
        w / 2.0
    );
    let _ = writeln!(
        svg,
        r#"<line x1="{margin}" y1="{}" x2="{}" y2="{}" stroke="black"/>"#,
        h - margin,
        w - margin,
        h - margin
    );
    let _ = writeln!(
        svg,
        r#"<line x1="{margin}" y1="{margin}" x2="{margin}" y2="{}" stroke="black"/>"#,
        h - margin
    );
    let mut marks = 0;
    for &s in &view.starts {
        if s >= 2 && s <= view.text.len() {
            marks += 1;
            let _ = writeln!(
                svg,
                r#"<line class="boundary" x1="{0}" y1="{margin}" x2="{0}" y2="{1}" stroke="gray" stroke-dasharray="3,3"/>"#,
                x(s),
                h - margin
            );
        }
    }
    let points: Vec<String> = view
        .entropies
        .iter()
        .enumerate()
        .map(|(i, &v)| format!("{:.1},{:.1}", x(i), y(v)))
        .collect();
    let _ = writeln!(
        svg,
        r#"<polyline fill="none" stroke="steelblue" stroke-width="1.5" points="{}"/>"#,
        points.join(" ")
    );
    let _ = writeln!(
        svg,
        r#"<line class="threshold" x1="{margin}" y1="{0}" x2="{1}" y2="{0}" stroke="crimson"/>"#,
        y(view.threshold),
        w - margin
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" fill="crimson">θ = {:.3}</text>"#,
        w - margin - 60.0,
        y(view.threshold) - 4.0,
        view.threshold
    );
    for (i, &byte) in view.text.iter().enumerate().take(200) {
        if n <= 201 {
            let label = match byte {
                b'<' => "&lt;".to_string(),
                b'>' => "&gt;".to_string(),
                b'&' => "&amp;".to_string(),
                0x21..=0x7e => (byte as char).to_string(),
                _ => "·".to_string(),
            };
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{}" text-anchor="middle" font-size="9">{label}</text>"#,
                x(i + 1),
                h - margin + 14.0
            );
        }
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">byte position</text>"#,
        w / 2.0,
        h - 10.0
    );
    let _ = writeln!(svg, "</svg>");
    (svg, marks)
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
        .entropies(&[&ids], config.reset_entropy_context, device)
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
    plot: Option<PathBuf>,
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
        if let Some(path) = &self.plot {
            let (svg, marks) = svg_plot(&view);
            let tmp = path.with_extension("svg.tmp");
            std::fs::write(&tmp, svg).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
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
    if let Some(plot) = &args.plot
        && plot.extension().and_then(|e| e.to_str()) != Some("svg")
    {
        bail!("--plot {} : only .svg plots are supported", plot.display());
    }
    dispatch(
        &global.backend,
        EntropyTask {
            model: args.model,
            text: args.text.into_bytes(),
            plot: args.plot,
        },
    )
}
