//! The live training dashboard: a terminal UI that replaces Burn 0.21's.
//!
//! Burn 0.21's TUI renderer runs a thread that polls its event channel with `try_recv` in a
//! loop that never sleeps, so it keeps one CPU core busy for the whole training; on a 2-core
//! machine that costs the training a large share of its throughput. [`TuiDashboard`] instead:
//! - keeps the state behind a mutex that the training thread updates in place (a few field
//!   updates per metric, no channel, no wake-up);
//! - draws from a thread that sleeps in the terminal's event poll, with a timeout, between
//!   frames: it redraws at most [`REFRESH_HZ`] times a second and otherwise only wakes for a
//!   key press;
//! - shows the training and validation metrics (latest batch, epoch mean, last validation),
//!   the loss by step, and the stage's progress (step, epoch, rate, ETA);
//! - stops training on `q` (or Ctrl-C) through the Learner's interrupter, so the stage ends
//!   after the current batch and keeps its last checkpoint, as Burn's does;
//! - restores the terminal when it closes and, through a panic hook, before a panic message.

mod state;
mod terminal;
mod view;

pub use state::{DashboardState, History, MetricRow, Phase, StageInfo, View};
pub use view::{draw, duration, progress_line, progress_parts};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use burn::train::metric::MetricDefinition;
use burn::train::renderer::{
    EvaluationName, EvaluationProgress, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining, ProgressType, TrainingProgress,
};
use burn::train::{Interrupter, LearnerSummary};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

use terminal::{DashboardTerminal, TerminalGuard};

/// Frames per second at most.
pub const REFRESH_HZ: u64 = 4;

/// Whether a full-screen dashboard owns the terminal.
static ON_SCREEN: AtomicBool = AtomicBool::new(false);

/// Whether a full-screen dashboard (ours or Burn's TUI) owns the terminal now. A binary's log
/// writer checks it and sends log lines elsewhere (blt-cli: the run's `train.log`) while it
/// does, because a line written to the terminal would land inside the dashboard.
pub fn is_on_screen() -> bool {
    ON_SCREEN.load(Ordering::SeqCst)
}

/// Marks the terminal as owned by a dashboard until dropped (see [`is_on_screen`]).
#[derive(Debug)]
pub(crate) struct OnScreen(());

impl OnScreen {
    pub(crate) fn new() -> Self {
        ON_SCREEN.store(true, Ordering::SeqCst);
        Self(())
    }
}

impl Drop for OnScreen {
    fn drop(&mut self) {
        ON_SCREEN.store(false, Ordering::SeqCst);
    }
}

/// Longest sleep of the drawing thread, so that it notices the end of training promptly.
const MAX_SLEEP: Duration = Duration::from_millis(100);

/// The dashboard, registered with `SupervisedTraining::renderer` (see the [module docs](self)).
pub struct TuiDashboard {
    state: Arc<Mutex<DashboardState>>,
    closing: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn lock(state: &Mutex<DashboardState>) -> MutexGuard<'_, DashboardState> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl TuiDashboard {
    /// Takes over the terminal and starts drawing `stage`; `q` stops `interrupter`.
    ///
    /// Fails when the terminal cannot be put in raw mode (for example, when it is not one).
    pub fn new(stage: StageInfo, interrupter: Interrupter) -> std::io::Result<Self> {
        let (terminal, guard) = TerminalGuard::enter()?;
        let state = Arc::new(Mutex::new(DashboardState::new(stage)));
        let closing = Arc::new(AtomicBool::new(false));
        let ui = Ui {
            terminal,
            guard,
            state: state.clone(),
            closing: closing.clone(),
            interrupter,
            period: Duration::from_millis(1000 / REFRESH_HZ),
        };
        let thread = std::thread::Builder::new()
            .name("blt-dashboard".into())
            .spawn(move || ui.run())?;
        Ok(Self {
            state,
            closing,
            thread: Some(thread),
        })
    }

    fn state(&self) -> MutexGuard<'_, DashboardState> {
        lock(&self.state)
    }
}

impl Drop for TuiDashboard {
    fn drop(&mut self) {
        self.closing.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The drawing thread.
struct Ui {
    terminal: DashboardTerminal,
    guard: TerminalGuard,
    state: Arc<Mutex<DashboardState>>,
    closing: Arc<AtomicBool>,
    interrupter: Interrupter,
    period: Duration,
}

impl Ui {
    fn run(mut self) {
        let mut next_frame = Instant::now();
        loop {
            let closing = self.closing.load(Ordering::SeqCst);
            if closing || Instant::now() >= next_frame {
                if !self.draw() {
                    break;
                }
                next_frame = Instant::now() + self.period;
            }
            if closing {
                break;
            }
            let timeout = next_frame
                .saturating_duration_since(Instant::now())
                .min(MAX_SLEEP);
            match event::poll(timeout) {
                Ok(true) => {
                    if self.on_event() {
                        next_frame = Instant::now();
                    }
                }
                Ok(false) => {}
                // Cannot read the terminal: keep drawing, without spinning.
                Err(_) => std::thread::sleep(timeout),
            }
        }
        self.guard.restore();
    }

    /// Draws a frame; `false` once the terminal is gone (restored by a panic, or broken).
    fn draw(&mut self) -> bool {
        if !self.guard.is_active() {
            return false;
        }
        let view = {
            let mut state = lock(&self.state);
            if self.interrupter.should_stop() && !state.is_stopping() {
                let reason = self
                    .interrupter
                    .get_message()
                    .unwrap_or_else(|| "stopping".to_string());
                state.stopping(&reason);
            }
            state.view(Instant::now())
        };
        self.terminal.draw(|frame| draw(frame, &view)).is_ok()
    }

    /// Handles one terminal event; `true` when the screen should be redrawn now.
    fn on_event(&mut self) -> bool {
        let Ok(event) = event::read() else {
            return false;
        };
        match event {
            Event::Key(key) if key.kind != KeyEventKind::Release => {
                let ctrl_c =
                    key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
                let quit = matches!(key.code, KeyCode::Char('q') | KeyCode::Char('Q'));
                if quit || ctrl_c {
                    let reason = if ctrl_c {
                        "stopped by Ctrl-C"
                    } else {
                        "stopped from the dashboard"
                    };
                    self.interrupter.stop(Some(reason));
                    lock(&self.state).stopping(reason);
                    return true;
                }
                let offset = match key.code {
                    KeyCode::Right | KeyCode::Tab | KeyCode::Char('l') => 1,
                    KeyCode::Left | KeyCode::BackTab | KeyCode::Char('h') => -1,
                    _ => return false,
                };
                lock(&self.state).select_plot(offset);
                true
            }
            Event::Resize(..) => true,
            _ => false,
        }
    }
}

impl MetricsRendererTraining for TuiDashboard {
    fn update_train(&mut self, state: MetricState) {
        self.state().update_train(state);
    }

    fn update_valid(&mut self, state: MetricState) {
        self.state().update_valid(state);
    }

    fn render_train(&mut self, item: TrainingProgress, _progress_indicators: Vec<ProgressType>) {
        self.state().progress_train(&item, Instant::now());
    }

    fn render_valid(&mut self, item: TrainingProgress, _progress_indicators: Vec<ProgressType>) {
        self.state().progress_valid(&item);
    }

    fn on_train_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        self.state().done();
        Ok(())
    }
}

impl MetricsRendererEvaluation for TuiDashboard {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}

    fn render_test(&mut self, _item: EvaluationProgress, _progress_indicators: Vec<ProgressType>) {}

    fn on_test_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        Ok(())
    }
}

impl MetricsRenderer for TuiDashboard {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        self.state().register(definition);
    }
}

#[cfg(test)]
mod tests;
