//! Draws a [`View`]: a header with the stage and its progress (step, epoch, rate, ETA, a
//! gauge), the metric table (latest batch, training epoch mean, validation), a plot of one
//! metric chosen from tabs (training by step, validation at each epoch end), and a footer with
//! the keys.

use std::time::Duration;

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style, Stylize},
    symbols::Marker,
    text::{Line, Span},
    widgets::{Axis, Block, Chart, Dataset, Gauge, GraphType, Paragraph, Row, Table, Tabs},
};

use super::state::{Phase, View};
use crate::metrics::format_value;

/// `1h02m`, `3m07s` or `12s`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

/// The position (`step 12/60 · epoch 1/3 · iter 12/20`) and the pace
/// (`3.20 steps/s · elapsed 4s · ETA 15s`), each part shown once known.
pub fn progress_parts(view: &View) -> [String; 2] {
    let mut position = vec![format!("step {}/{}", view.step, view.stage.total_steps)];
    if view.epochs > 0 {
        position.push(format!("epoch {}/{}", view.epoch, view.epochs));
        position.push(format!("iter {}/{}", view.iteration, view.per_epoch));
    }
    let mut pace = Vec::new();
    if let Some(rate) = view.steps_per_second {
        pace.push(format!("{rate:.2} steps/s"));
    }
    if let Some(elapsed) = view.elapsed {
        pace.push(format!("elapsed {}", duration(elapsed)));
    }
    if let Some(eta) = view.eta {
        pace.push(format!("ETA {}", duration(eta)));
    }
    [position.join(" · "), pace.join(" · ")]
}

/// [`progress_parts`] on one line.
pub fn progress_line(view: &View) -> String {
    let [position, pace] = progress_parts(view);
    if pace.is_empty() {
        position
    } else {
        format!("{position} · {pace}")
    }
}

fn phase_span(view: &View) -> Span<'static> {
    match view.phase {
        Phase::Starting => "starting".yellow(),
        Phase::Training => "training".green(),
        Phase::Validating => "validating".cyan(),
        Phase::Stopping => "stopping after this batch".red().bold(),
        Phase::Done => "done".green().bold(),
    }
}

fn header(frame: &mut Frame<'_>, area: Rect, view: &View) {
    let title = format!(
        " blt-train · stage {}/{}: {} ",
        view.stage.index, view.stage.count, view.stage.name
    );
    let block = Block::bordered().title(title.bold());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [text, gauge] =
        Layout::vertical([Constraint::Length(2), Constraint::Length(1)]).areas(inner);
    let [position, pace] = progress_parts(view);
    let lines = vec![
        Line::from(vec![
            phase_span(view),
            Span::raw(" · "),
            Span::raw(position),
        ]),
        Line::from(pace),
    ];
    frame.render_widget(Paragraph::new(lines), text);
    let ratio = if view.stage.total_steps == 0 {
        0.0
    } else {
        (view.step as f64 / view.stage.total_steps as f64).clamp(0.0, 1.0)
    };
    frame.render_widget(
        Gauge::default()
            .gauge_style(Style::default().fg(Color::Green).bg(Color::DarkGray))
            .ratio(ratio)
            .label(format!("{:.0}%", 100.0 * ratio)),
        gauge,
    );
}

fn table(frame: &mut Frame<'_>, area: Rect, view: &View) {
    let cell = |v: &Option<String>| v.clone().unwrap_or_else(|| "–".to_string());
    let rows: Vec<Row<'_>> = view
        .rows
        .iter()
        .map(|r| {
            Row::new(vec![
                r.name.clone(),
                cell(&r.batch),
                cell(&r.epoch),
                cell(&r.valid),
            ])
        })
        .collect();
    let header = Row::new(vec!["metric", "batch", "train epoch", "valid"])
        .style(Style::default().add_modifier(Modifier::BOLD));
    let widths = [
        Constraint::Length(18),
        Constraint::Length(14),
        Constraint::Length(14),
        Constraint::Length(14),
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(Block::bordered().title(" metrics ")),
        area,
    );
}

/// Bounds of the plotted points, padded so that flat lines stay visible.
fn bounds(points: impl Iterator<Item = (f64, f64)>) -> Option<([f64; 2], [f64; 2])> {
    let mut bounds: Option<[[f64; 2]; 2]> = None;
    for (x, y) in points {
        let b = bounds.get_or_insert([[x, x], [y, y]]);
        b[0] = [b[0][0].min(x), b[0][1].max(x)];
        b[1] = [b[1][0].min(y), b[1][1].max(y)];
    }
    bounds.map(|[x, y]| {
        let pad = ((y[1] - y[0]) * 0.05).max(1e-3);
        ([x[0], x[1].max(x[0] + 1.0)], [y[0] - pad, y[1] + pad])
    })
}

fn plot(frame: &mut Frame<'_>, area: Rect, view: &View) {
    let Some(plot) = &view.plot else {
        frame.render_widget(
            Paragraph::new("waiting for the first batch…").block(Block::bordered()),
            area,
        );
        return;
    };
    let [tabs, chart_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(area);
    frame.render_widget(
        Tabs::new(view.plots.iter().map(String::as_str))
            .select(view.selected)
            .style(Style::default().fg(Color::Gray))
            .highlight_style(
                Style::default()
                    .fg(Color::Yellow)
                    .add_modifier(Modifier::BOLD),
            ),
        tabs,
    );
    let unit = plot
        .unit
        .as_deref()
        .map_or(String::new(), |u| format!(" ({u})"));
    let block = Block::bordered().title(format!(
        " {}{unit} by step · train · valid ",
        plot.name.to_lowercase()
    ));
    let all = plot.train.iter().chain(&plot.valid).copied();
    let Some((x, y)) = bounds(all) else {
        frame.render_widget(Paragraph::new("no finite value yet").block(block), area);
        return;
    };
    let label = |v: f64| Span::raw(format_value(v));
    let datasets = vec![
        Dataset::default()
            .name("train")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(Color::Yellow))
            .data(&plot.train),
        Dataset::default()
            .name("valid")
            .marker(Marker::Dot)
            .graph_type(GraphType::Scatter)
            .style(
                Style::default()
                    .fg(Color::Cyan)
                    .add_modifier(Modifier::BOLD),
            )
            .data(&plot.valid),
    ];
    let chart = Chart::new(datasets)
        .block(block)
        .x_axis(
            Axis::default()
                .bounds(x)
                .labels(vec![
                    Span::raw(format!("{:.0}", x[0])),
                    Span::raw(format!("{:.0}", x[1])),
                ])
                .style(Style::default().fg(Color::Gray)),
        )
        .y_axis(
            Axis::default()
                .bounds(y)
                .labels(vec![label(y[0]), label((y[0] + y[1]) / 2.0), label(y[1])])
                .style(Style::default().fg(Color::Gray)),
        );
    frame.render_widget(chart, chart_area);
}

fn footer(frame: &mut Frame<'_>, area: Rect, view: &View) {
    let text = match (&view.stop_reason, view.phase) {
        (Some(reason), _) => Line::from(vec![
            Span::raw(format!(" {reason}: ")),
            "the last checkpoint is kept; continue with --resume".bold(),
        ]),
        (None, Phase::Done) => Line::from(" stage finished"),
        (None, _) => Line::from(vec![
            " q".bold(),
            Span::raw(" stop training (keeps the last checkpoint) · "),
            "←/→".bold(),
            Span::raw(" plotted metric"),
        ]),
    };
    frame.render_widget(
        Paragraph::new(text).style(Style::default().fg(Color::Gray)),
        area,
    );
}

/// Draws `view` over the whole frame.
pub fn draw(frame: &mut Frame<'_>, view: &View) {
    let [top, middle, bottom] = Layout::vertical([
        Constraint::Length(5),
        Constraint::Min(8),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    header(frame, top, view);
    let table_height = view.rows.len() as u16 + 3;
    if middle.width >= 110 {
        let [left, right] =
            Layout::horizontal([Constraint::Length(64), Constraint::Min(30)]).areas(middle);
        table(frame, left, view);
        plot(frame, right, view);
    } else {
        let [upper, lower] =
            Layout::vertical([Constraint::Length(table_height), Constraint::Min(6)]).areas(middle);
        table(frame, upper, view);
        plot(frame, lower, view);
    }
    footer(frame, bottom, view);
}
