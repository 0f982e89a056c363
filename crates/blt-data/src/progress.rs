//! Watching a long pass over rows: how far it has come, and whether to stop.
//!
//! The library never draws anything: a pass reports to a [`Progress`], and the binary decides
//! what that looks like (blt-cli draws a progress bar on a terminal and prints periodic lines
//! otherwise). [`LogProgress`] reports through `tracing`, and `()` watches nothing.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

/// Observes a long computation over a known number of items (rows). Every method has a default
/// that does nothing, so an implementation overrides only what it needs.
pub trait Progress: Sync {
    /// The pass `task` begins, with `total` items to do.
    fn start(&self, _task: &str, _total: usize) {}
    /// `done` items of the pass are finished (a running count, not an increment).
    fn update(&self, _done: usize) {}
    /// The pass ended: finished, failed or stopped.
    fn finish(&self) {}
    /// Asked before each unit of work; `true` stops the pass, which then returns
    /// [`DataError::Interrupted`](crate::DataError::Interrupted).
    fn should_stop(&self) -> bool {
        false
    }
}

/// Watches nothing and never stops.
impl Progress for () {}

/// Progress as `tracing` INFO lines, at most one per interval (and one when the pass ends).
#[derive(Debug)]
pub struct LogProgress {
    interval: Duration,
    state: Mutex<LogState>,
}

#[derive(Debug)]
struct LogState {
    task: String,
    total: usize,
    done: usize,
    started: Instant,
    last: Instant,
}

impl LogProgress {
    /// A line at most every `interval`.
    pub fn new(interval: Duration) -> Self {
        let now = Instant::now();
        Self {
            interval,
            state: Mutex::new(LogState {
                task: String::new(),
                total: 0,
                done: 0,
                started: now,
                last: now,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for LogProgress {
    /// A line at most every 10 seconds.
    fn default() -> Self {
        Self::new(Duration::from_secs(10))
    }
}

impl Progress for LogProgress {
    fn start(&self, task: &str, total: usize) {
        let mut s = self.state();
        let now = Instant::now();
        *s = LogState {
            task: task.to_owned(),
            total,
            done: 0,
            started: now,
            last: now,
        };
    }

    fn update(&self, done: usize) {
        let mut s = self.state();
        s.done = done;
        if s.last.elapsed() >= self.interval {
            s.last = Instant::now();
            tracing::info!(task = %s.task, done, total = s.total, "progress");
        }
    }

    fn finish(&self) {
        let s = self.state();
        tracing::info!(
            task = %s.task,
            done = s.done,
            total = s.total,
            seconds = s.started.elapsed().as_secs_f64(),
            "finished"
        );
    }
}
