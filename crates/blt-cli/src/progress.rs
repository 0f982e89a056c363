//! Progress of the long commands (eval, calibrate, the entropy cache of a run, importing and
//! exporting checkpoints): a bar with rate and ETA on a terminal (indicatif), plain periodic
//! lines on stderr otherwise, nothing with `-q`.

use std::{
    io::IsTerminal,
    sync::{Arc, Mutex},
    time::Duration,
};

use blt_data::{LineProgress, Progress};
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
        Arc::new(LineProgress::new(LINE_INTERVAL, |line: &str| {
            eprintln!("{line}")
        }))
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
                "{msg} [{bar:30}] {human_pos}/{human_len}  {per_sec}  ETA {eta}",
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
            eprintln!("{}: {} in {seconds:.1}s", bar.message(), bar.position());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
