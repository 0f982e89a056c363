//! Progress as text: [`LineProgress`] turns the reports of a long pass ([`Progress`], from
//! blt-core) into lines for a sink, and [`LogProgress`] sends them to `tracing`.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

pub use blt_core::Progress;

/// Progress as text lines handed to a sink: at most one per interval while the pass runs
/// (`entropy rows: 120/400 (30%), 5.2/s, about 53s left`), and one when it ends
/// (`entropy rows: 400 in 77.1s`). [`LogProgress`] sends them to `tracing`; a binary can
/// print them.
pub struct LineProgress<F> {
    interval: Duration,
    sink: F,
    state: Mutex<Option<LineState>>,
}

/// [`LineProgress`] into `tracing` INFO events, at most one every 10 seconds.
pub type LogProgress = LineProgress<fn(&str)>;

#[derive(Debug)]
struct LineState {
    task: String,
    total: usize,
    done: usize,
    started: Instant,
    last: Instant,
}

impl LineState {
    fn running(&self) -> String {
        let seconds = self.started.elapsed().as_secs_f64();
        let rate = self.done as f64 / seconds.max(1e-9);
        let left = self.total.saturating_sub(self.done) as f64 / rate.max(1e-9);
        format!(
            "{}: {}/{} ({:.0}%), {rate:.1}/s, about {left:.0}s left",
            self.task,
            self.done,
            self.total,
            100.0 * self.done as f64 / self.total.max(1) as f64
        )
    }

    fn ended(&self) -> String {
        let seconds = self.started.elapsed().as_secs_f64();
        format!("{}: {} in {seconds:.1}s", self.task, self.done)
    }
}

impl<F: Fn(&str) + Sync> LineProgress<F> {
    /// Lines to `sink`, at most one per `interval` while a pass runs.
    pub fn new(interval: Duration, sink: F) -> Self {
        Self {
            interval,
            sink,
            state: Mutex::new(None),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Option<LineState>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<F> std::fmt::Debug for LineProgress<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineProgress")
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl Default for LogProgress {
    fn default() -> Self {
        fn log(line: &str) {
            tracing::info!("{line}");
        }
        Self::new(Duration::from_secs(10), log)
    }
}

impl<F: Fn(&str) + Sync> Progress for LineProgress<F> {
    fn start(&self, task: &str, total: usize) {
        let now = Instant::now();
        *self.state() = Some(LineState {
            task: task.to_owned(),
            total,
            done: 0,
            started: now,
            last: now,
        });
    }

    fn update(&self, done: usize) {
        let mut state = self.state();
        if let Some(s) = state.as_mut() {
            s.done = done;
            if s.last.elapsed() >= self.interval {
                s.last = Instant::now();
                (self.sink)(&s.running());
            }
        }
    }

    fn finish(&self) {
        if let Some(s) = self.state().take() {
            (self.sink)(&s.ended());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_report_the_count_the_rate_and_the_end() {
        let lines = Mutex::new(Vec::new());
        let progress = LineProgress::new(Duration::ZERO, |line: &str| {
            lines.lock().unwrap().push(line.to_owned())
        });
        progress.update(1); // before a start: nothing to report
        progress.start("entropy rows", 4);
        progress.update(1);
        progress.update(4);
        progress.finish();
        progress.finish(); // a second end reports nothing
        let lines = lines.into_inner().unwrap();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[0].starts_with("entropy rows: 1/4 (25%), "),
            "{lines:?}"
        );
        assert!(lines[0].ends_with("s left"), "{lines:?}");
        assert!(
            lines[1].starts_with("entropy rows: 4/4 (100%)"),
            "{lines:?}"
        );
        assert!(lines[2].starts_with("entropy rows: 4 in "), "{lines:?}");
    }
}
