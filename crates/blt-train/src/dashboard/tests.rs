use std::time::{Duration, Instant};

use burn::data::dataloader::Progress;
use burn::train::renderer::TrainingProgress;
use ratatui::{Terminal, backend::TestBackend};

use super::*;
use crate::test_events::{definition, numeric};

fn progress(epoch: usize, iteration: usize, per_epoch: usize) -> TrainingProgress {
    TrainingProgress {
        progress: Some(Progress {
            items_processed: iteration,
            items_total: per_epoch,
        }),
        global_progress: Progress {
            items_processed: epoch,
            items_total: 3,
        },
        iteration: Some(iteration),
    }
}

fn stage() -> StageInfo {
    StageInfo {
        name: "blt".into(),
        index: 2,
        count: 2,
        total_steps: 12,
        accumulation: 2,
    }
}

/// A state after two training batches, a validation epoch and two more batches.
fn state(start: Instant) -> DashboardState {
    let mut s = DashboardState::new(stage());
    // Registered out of order: shown as Loss, Bits per byte, Accuracy.
    s.register(definition("Accuracy", Some("%")));
    s.register(definition("Loss", None));
    s.register(definition("Bits per byte", Some("bpb")));
    for (i, (loss, bytes)) in [(4.0, 100), (2.0, 300)].into_iter().enumerate() {
        s.update_train(numeric("Loss", loss, bytes));
        s.update_train(numeric("Bits per byte", loss / 2.0, bytes));
        s.progress_train(
            &progress(1, i + 1, 2),
            start + Duration::from_secs(i as u64),
        );
    }
    s.update_valid(numeric("Loss", 3.0, 10));
    s.update_valid(numeric("Accuracy", 40.0, 10));
    s.progress_valid(&progress(1, 1, 2));
    s.update_valid(numeric("Loss", 1.0, 30));
    s.progress_valid(&progress(1, 2, 2));
    for i in 0..2 {
        s.update_train(numeric("Loss", 1.0 + i as f64, 50));
        s.update_train(numeric("Bits per byte", (1.0 + i as f64) / 2.0, 50));
        s.progress_train(
            &progress(2, i + 1, 2),
            start + Duration::from_secs(2 + i as u64),
        );
    }
    s
}

#[test]
fn history_stays_bounded_and_averages() {
    let mut h = History::new(4);
    for i in 0..16 {
        h.push(i as f64, i as f64);
    }
    assert!(h.points().len() < 4, "{:?}", h.points());
    // Means of consecutive samples: increasing, spanning the data.
    let xs: Vec<f64> = h.points().iter().map(|p| p.0).collect();
    assert!(xs.windows(2).all(|w| w[0] < w[1]), "{xs:?}");
    assert!(xs[0] < 4.0 && *xs.last().unwrap() > 8.0, "{xs:?}");
    h.push(20.0, f64::NAN);
    assert!(h.points().iter().all(|p| p.1.is_finite()));
}

#[test]
fn metrics_show_batch_epoch_and_validation_values() {
    let start = Instant::now();
    let view = state(start).view(start + Duration::from_secs(3));
    let loss = &view.rows[0];
    assert_eq!(loss.name, "Loss");
    // Epoch 2 so far: (1·50 + 2·50) / 100; the first epoch's sums were dropped.
    assert_eq!(loss.batch.as_deref(), Some("2.000"));
    assert_eq!(loss.epoch.as_deref(), Some("1.500"));
    // Validation: (3·10 + 1·30) / 40.
    assert_eq!(loss.valid.as_deref(), Some("1.500"));
    let bpb = &view.rows[1];
    assert_eq!(bpb.batch.as_deref(), Some("1.000 bpb"));
    assert_eq!(bpb.epoch.as_deref(), Some("0.7500 bpb"));
    assert_eq!(bpb.valid, None);
    // Accuracy: only validated; no training value.
    let accuracy = &view.rows[2];
    assert_eq!(
        (accuracy.batch.as_deref(), accuracy.valid.as_deref()),
        (None, Some("40.00%"))
    );
    // Every numeric metric has a history; the loss is plotted first.
    assert_eq!(view.plots, ["Loss", "Bits per byte", "Accuracy"]);
    let plot = view.plot.as_ref().unwrap();
    assert_eq!(plot.name, "Loss");
    // Four micro-batches, two per optimizer step: steps 0.5, 1, 1.5, 2.
    assert_eq!(plot.train, [(0.5, 4.0), (1.0, 2.0), (1.5, 1.0), (2.0, 2.0)]);
    assert_eq!(plot.valid, [(1.0, 1.5)]);
}

#[test]
fn the_arrow_keys_choose_the_plotted_metric() {
    let start = Instant::now();
    let mut s = state(start);
    s.select_plot(1);
    let view = s.view(start);
    let plot = view.plot.unwrap();
    assert_eq!((view.selected, plot.name.as_str()), (1, "Bits per byte"));
    assert_eq!(plot.unit.as_deref(), Some("bpb"));
    assert_eq!(plot.train.len(), 4);
    assert!(plot.valid.is_empty());
    s.select_plot(1);
    let accuracy = s.view(start).plot.unwrap();
    assert_eq!(accuracy.name, "Accuracy");
    // Validated only: a point at the epoch's end, none from training.
    assert_eq!(
        (accuracy.train.len(), accuracy.valid),
        (0, vec![(1.0, 40.0)])
    );
    // Wraps around both ways.
    s.select_plot(1);
    assert_eq!(s.view(start).plot.unwrap().name, "Loss");
    s.select_plot(-1);
    assert_eq!(s.view(start).plot.unwrap().name, "Accuracy");
    let text = screen(&s.view(start), 140, 30);
    assert!(text.contains("accuracy (%) by step"), "{text}");
}

#[test]
fn progress_counts_optimizer_steps_and_estimates_the_time_left() {
    let start = Instant::now();
    let s = state(start);
    // 4 micro-batches of 2 per step.
    assert_eq!(s.step(), 2);
    let view = s.view(start + Duration::from_secs(3));
    assert_eq!(
        (view.epoch, view.epochs, view.iteration, view.per_epoch),
        (1 + 1, 3, 2, 2)
    );
    // This session saw micro-batches 1..=4 in 3 s: 2 steps / 3 s, 10 steps left.
    let rate = view.steps_per_second.unwrap();
    assert!((rate - 2.0 / 3.0).abs() < 1e-9, "{rate}");
    assert_eq!(view.eta.unwrap().as_secs(), 15);
    assert_eq!(
        progress_line(&view),
        "step 2/12 · epoch 2/3 · iter 2/2 · 0.67 steps/s · elapsed 3s · ETA 15s"
    );
    assert_eq!(duration(Duration::from_secs(3725)), "1h02m");
    assert_eq!(duration(Duration::from_secs(187)), "3m07s");
}

fn screen(view: &View, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| draw(frame, view)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    (0..height)
        .map(|y| {
            (0..width)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_screen_shows_stage_progress_metrics_plot_and_keys() {
    let start = Instant::now();
    let mut s = state(start);
    for (width, height) in [(140, 30), (80, 30)] {
        let text = screen(&s.view(start + Duration::from_secs(3)), width, height);
        for needle in [
            "stage 2/2: blt",
            "training",
            "step 2/12",
            "ETA 15s",
            "Loss",
            "Bits per byte",
            "40.00%",
            "loss by step",
            "Bits per byte",
            "q stop training",
            "plotted metric",
        ] {
            assert!(
                text.contains(needle),
                "{needle} missing at {width}x{height}:\n{text}"
            );
        }
    }
    s.stopping("stopped from the dashboard");
    let text = screen(&s.view(start), 140, 30);
    assert!(text.contains("stopping after this batch"), "{text}");
    assert!(text.contains("continue with --resume"), "{text}");
    let mut finished = state(start);
    finished.done();
    assert!(screen(&finished.view(start), 140, 30).contains("stage finished"));
    // An empty dashboard draws too.
    let empty = DashboardState::new(stage()).view(start);
    assert!(screen(&empty, 60, 12).contains("waiting for the first batch"));
}
