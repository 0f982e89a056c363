//! Progress of the long commands (eval, calibrate, the entropy cache of a run): a bar with rate
//! and ETA on a terminal (indicatif), plain periodic lines on stderr otherwise, nothing with
//! `-q`.

use std::{
    io::IsTerminal,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use blt_data::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the plain renderer prints a line.
const LINE_INTERVAL: Duration = Duration::from_secs(10);

/// The progress renderer for this process: a bar when stderr is a terminal, lines otherwise,
/// nothing when `quiet`.
pub fn reporter(quiet: bool) -> Arc<dyn Progress + Send> {
    if quiet {
        Arc::new(())
    } else if std::io::stderr().is_terminal() {
        Arc::new(Bar::default())
    } else {
        Arc::new(Lines::default())
    }
}

/// An indicatif bar on stderr, one per pass.
#[derive(Default)]
struct Bar {
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress for Bar {
    fn start(&self, task: &str, total: usize) {
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>10} [{bar:30}] {human_pos}/{human_len} rows  {per_sec}  ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(task.to_owned());
        bar.enable_steady_tick(Duration::from_millis(250));
        *lock(&self.bar) = Some(bar);
    }

    fn update(&self, done: usize) {
        if let Some(bar) = lock(&self.bar).as_ref() {
            bar.set_position(done as u64);
        }
    }

    fn finish(&self) {
        if let Some(bar) = lock(&self.bar).take() {
            bar.finish_and_clear();
            let seconds = bar.elapsed().as_secs_f64();
            eprintln!(
                "{}: {} rows in {seconds:.1}s",
                bar.message(),
                bar.position()
            );
        }
    }
}

/// A plain line on stderr every [`LINE_INTERVAL`], and one at the end.
#[derive(Default)]
struct Lines {
    state: Mutex<Option<LineState>>,
}

struct LineState {
    task: String,
    total: usize,
    done: usize,
    started: Instant,
    last: Instant,
}

impl LineState {
    fn line(&self) -> String {
        let seconds = self.started.elapsed().as_secs_f64();
        let rate = self.done as f64 / seconds.max(1e-9);
        let left = self.total.saturating_sub(self.done) as f64 / rate.max(1e-9);
        format!(
            "{}: {}/{} rows ({:.0}%), {rate:.1} rows/s, about {left:.0}s left",
            self.task,
            self.done,
            self.total,
            100.0 * self.done as f64 / self.total.max(1) as f64
        )
    }
}

impl Progress for Lines {
    fn start(&self, task: &str, total: usize) {
        let now = Instant::now();
        *lock(&self.state) = Some(LineState {
            task: task.to_owned(),
            total,
            done: 0,
            started: now,
            last: now,
        });
    }

    fn update(&self, done: usize) {
        if let Some(s) = lock(&self.state).as_mut() {
            s.done = done;
            if s.last.elapsed() >= LINE_INTERVAL {
                s.last = Instant::now();
                eprintln!("{}", s.line());
            }
        }
    }

    fn finish(&self) {
        if let Some(s) = lock(&self.state).take() {
            let seconds = s.started.elapsed().as_secs_f64();
            eprintln!("{}: {} rows in {seconds:.1}s", s.task, s.done);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
