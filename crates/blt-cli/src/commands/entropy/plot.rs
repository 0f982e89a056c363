//! The entropy plot (`blt-cli entropy --plot FILE`): the next-byte entropy curve, the threshold
//! line and one vertical line per patch boundary, drawn once with plotters for both SVG and PNG.
//!
//! Text needs a font. plotters' `ttf` feature asks the system (fontconfig), which CI machines may
//! lack, so plotters is built with `ab_glyph` and we register **DejaVu Sans**, embedded from the
//! `dejavu` crate on crates.io (v2.37.0, the DejaVu 2.37 release; crate code MIT/Apache-2.0,
//! the font under the Bitstream Vera licence with DejaVu's changes in the public domain — a
//! permissive licence that allows embedding and redistribution; see the crate's
//! `assets/dejavu-fonts-ttf-2.37/LICENSE`).

use std::{path::Path, sync::Once};

use anyhow::{Context, Result, bail};
use plotters::{
    coord::Shift,
    prelude::*,
    style::{FontStyle, register_font},
};

use super::EntropyView;

/// Colour of the entropy curve.
pub const CURVE: RGBColor = RGBColor(70, 130, 180);
/// Colour of the threshold line (used by nothing else, so tests can find it).
pub const THRESHOLD: RGBColor = RGBColor(220, 20, 60);
/// Colour of the patch-boundary lines (used by nothing else, so tests can count them).
pub const BOUNDARY: RGBColor = RGBColor(150, 150, 150);

/// Plot height in pixels; the width grows with the text (see [`plot_size`]).
const HEIGHT: u32 = 360;
/// Pixels per byte at or above which every byte gets its own axis label.
const LABEL_PX: u32 = 8;

/// The file formats `--plot` writes, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlotFormat {
    /// `.svg`
    Svg,
    /// `.png`
    Png,
}

impl PlotFormat {
    /// The format for `path`'s extension (case-insensitive); anything else is an error.
    pub fn from_path(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("svg") => Ok(Self::Svg),
            Some("png") => Ok(Self::Png),
            _ => bail!(
                "--plot {}: unknown plot format; use a .svg or .png file name",
                path.display()
            ),
        }
    }
}

/// Width and height of the plot of `positions` positions: 9 pixels per position, within
/// 800..=4000 pixels.
pub fn plot_size(positions: usize) -> (u32, u32) {
    let width = (120 + 9 * positions as u64).clamp(800, 4000) as u32;
    (width, HEIGHT)
}

/// Registers the embedded font as plotters' `sans-serif` (once per process).
fn register_embedded_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font shipped by the `dejavu` crate.
        if register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular()).is_err() {
            tracing::warn!("the embedded DejaVu Sans font did not load; plot text may be missing");
        }
    });
}

/// How the byte at position `pos` (BOS = 0) is labelled on the x axis.
fn byte_label(view: &EntropyView, pos: usize) -> String {
    match pos.checked_sub(1).and_then(|i| view.text.get(i)) {
        // BOS (position 0) has no glyph in the font; the axis title says where it is.
        None => String::new(),
        Some(b' ') => "␣".into(),
        Some(b'\n') => "⏎".into(),
        Some(&b) if b.is_ascii_graphic() => (b as char).to_string(),
        Some(_) => "·".into(),
    }
}

/// Draws the plot of `view` on `root` (any plotters backend). Returns the number of boundary
/// lines: one per patch start at positions ≥ 2 inside the text (position 1 always opens the
/// first text patch after BOS, so it is not a decision).
pub fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, view: &EntropyView) -> Result<usize>
where
    DB::ErrorType: 'static,
{
    register_embedded_font();
    let n = view.entropies.len().max(2);
    let y_max = view
        .entropies
        .iter()
        .copied()
        .fold(view.threshold, f32::max)
        .max(0.1) as f64
        * 1.4; // headroom for the legend in the upper right
    let (width, _) = root.dim_in_pixel();
    let per_byte = width / n as u32 >= LABEL_PX;
    // Axis labels: every position when there is room for a label each (plotters then steps
    // by 1), else about 25 round numbers.
    let x_labels = if per_byte { n } else { 25 };
    let x_range = -0.5..n as f64 - 0.5;

    root.fill(&WHITE).context("drawing the background")?;
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Next-byte entropy and patch boundaries",
            ("sans-serif", 16).into_font(),
        )
        .margin(12)
        .x_label_area_size(38)
        .y_label_area_size(52)
        .build_cartesian_2d(x_range, 0.0..y_max)
        .context("laying out the chart")?;
    let label = |x: &f64| {
        let pos = x.round().max(0.0) as usize;
        if (x - x.round()).abs() > 1e-6 {
            String::new()
        } else if per_byte {
            byte_label(view, pos)
        } else {
            pos.to_string()
        }
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(if per_byte {
            "byte (BOS at 0)"
        } else {
            "byte position (BOS at 0)"
        })
        .y_desc("entropy (nats)")
        .x_labels(x_labels)
        .x_label_formatter(&label)
        .label_style(("sans-serif", 11))
        .axis_desc_style(("sans-serif", 13))
        .draw()
        .context("drawing the axes")?;

    let boundaries: Vec<usize> = view
        .starts
        .iter()
        .copied()
        .filter(|&s| s >= 2 && s <= view.text.len())
        .collect();
    chart
        .draw_series(
            boundaries
                .iter()
                .map(|&s| PathElement::new(vec![(s as f64, 0.0), (s as f64, y_max)], BOUNDARY)),
        )
        .context("drawing the patch boundaries")?
        .label("patch boundary")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BOUNDARY));
    chart
        .draw_series(LineSeries::new(
            view.entropies
                .iter()
                .enumerate()
                .map(|(i, &h)| (i as f64, h as f64)),
            CURVE.stroke_width(2),
        ))
        .context("drawing the entropy curve")?
        .label("entropy")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], CURVE.stroke_width(2)));
    let theta = view.threshold as f64;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(-0.5, theta), (n as f64 - 0.5, theta)],
            THRESHOLD,
        )))
        .context("drawing the threshold")?
        .label(format!("threshold θ = {:.3}", view.threshold))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], THRESHOLD));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()
        .context("drawing the legend")?;
    root.present().context("finishing the plot")?;
    Ok(boundaries.len())
}

/// The plot as an SVG document, and the number of boundary lines.
pub fn svg(view: &EntropyView) -> Result<(String, usize)> {
    let mut out = String::new();
    let marks = {
        let root =
            SVGBackend::with_string(&mut out, plot_size(view.entropies.len())).into_drawing_area();
        draw(&root, view)?
    };
    Ok((out, marks))
}

/// The plot as raw RGB pixels (row-major, 3 bytes each), its size, and the number of boundary
/// lines (for tests: the pixels without a PNG decoder).
#[cfg(test)]
pub fn rgb(view: &EntropyView) -> Result<(Vec<u8>, (u32, u32), usize)> {
    let size = plot_size(view.entropies.len());
    let mut pixels = vec![0u8; size.0 as usize * size.1 as usize * 3];
    let marks = {
        let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
        draw(&root, view)?
    };
    Ok((pixels, size, marks))
}

/// Writes the plot of `view` to `path` in `format` (through a temporary file renamed into
/// place, so a failure never leaves half a plot). Returns the number of boundary lines.
pub fn write(view: &EntropyView, path: &Path, format: PlotFormat) -> Result<usize> {
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("--plot {}: not a file name", path.display()))?;
    // The bitmap encoder picks its format from the extension, so the temporary file keeps it.
    let tmp = path.with_file_name(format!(
        ".{file_name}.tmp.{}",
        match format {
            PlotFormat::Svg => "svg",
            PlotFormat::Png => "png",
        }
    ));
    let marks = match format {
        PlotFormat::Svg => {
            let (doc, marks) = svg(view)?;
            std::fs::write(&tmp, doc).with_context(|| format!("writing {}", tmp.display()))?;
            marks
        }
        PlotFormat::Png => {
            let root =
                BitMapBackend::new(&tmp, plot_size(view.entropies.len())).into_drawing_area();
            draw(&root, view).with_context(|| format!("writing {}", tmp.display()))?
        }
    };
    blt_core::fs::commit(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(marks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> EntropyView {
        let text = b"In the beginning God created".to_vec();
        let entropies: Vec<f32> = (0..=text.len())
            .map(|i| 1.0 + (i % 5) as f32 * 0.6)
            .collect();
        EntropyView {
            starts: vec![0, 1, 4, 8, 18, 22],
            text,
            entropies,
            threshold: 2.5,
        }
    }

    fn count_colour(pixels: &[u8], colour: RGBColor) -> usize {
        pixels
            .chunks_exact(3)
            .filter(|p| p == &[colour.0, colour.1, colour.2])
            .count()
    }

    #[test]
    fn formats_follow_the_extension() {
        assert_eq!(
            PlotFormat::from_path(Path::new("a.svg")).unwrap(),
            PlotFormat::Svg
        );
        assert_eq!(
            PlotFormat::from_path(Path::new("a.PNG")).unwrap(),
            PlotFormat::Png
        );
        let err = PlotFormat::from_path(Path::new("a.jpg"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("a.jpg") && err.contains(".png"), "{err}");
        assert!(PlotFormat::from_path(Path::new("plot")).is_err());
    }

    #[test]
    fn bitmap_shows_the_threshold_curve_and_every_boundary() {
        let view = view();
        let (pixels, (w, h), marks) = rgb(&view).unwrap();
        assert_eq!(pixels.len(), (w * h * 3) as usize);
        assert_eq!(marks, 4, "starts 4, 8, 18 and 22; 0 (BOS) and 1 are forced");
        // The threshold spans the plot width (plus its legend swatch).
        assert!(count_colour(&pixels, THRESHOLD) > w as usize / 2);
        assert!(count_colour(&pixels, CURVE) > w as usize / 2);
        // Each boundary is a vertical line about as tall as the plot area.
        assert!(count_colour(&pixels, BOUNDARY) > 2 * h as usize);
        // Text was drawn: dark pixels outside the lines' colours (axis labels, caption).
        assert!(
            pixels
                .chunks_exact(3)
                .filter(|p| p.iter().all(|&c| c < 80))
                .count()
                > 500
        );
    }

    #[test]
    fn svg_has_one_line_per_boundary_plus_the_legend_swatch() {
        let view = view();
        let (doc, marks) = svg(&view).unwrap();
        assert!(doc.starts_with("<svg") && doc.trim_end().ends_with("</svg>"));
        let stroke = |c: RGBColor| format!(r##"stroke="#{:02X}{:02X}{:02X}""##, c.0, c.1, c.2);
        assert_eq!(doc.matches(&stroke(BOUNDARY)).count(), marks + 1);
        assert_eq!(doc.matches(&stroke(THRESHOLD)).count(), 2);
        assert!(doc.contains("threshold θ = 2.500"));
    }

    #[test]
    fn svg_text_is_escaped() {
        let mut view = view();
        view.text = b"a<b&c>d".to_vec();
        view.entropies.truncate(view.text.len() + 1);
        view.starts = vec![0, 1, 3];
        let (doc, marks) = svg(&view).unwrap();
        assert_eq!(marks, 1);
        assert!(doc.contains("&lt;") && doc.contains("&amp;"));
        assert!(!doc.contains("<b") && !doc.contains("&c"));
    }

    #[test]
    fn plot_width_grows_with_the_text_within_bounds() {
        assert_eq!(plot_size(10), (800, HEIGHT));
        assert_eq!(plot_size(200), (1920, HEIGHT));
        assert_eq!(plot_size(100_000), (4000, HEIGHT));
    }
}
