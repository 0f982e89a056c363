//! The terminal while the dashboard is up: raw mode and the alternate screen, restored when the
//! dashboard closes and, through a panic hook, before any panic message is printed.

use std::io::{self, Stdout};
use std::panic::{PanicHookInfo, set_hook, take_hook};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ratatui::{
    Terminal,
    backend::CrosstermBackend,
    crossterm::{
        cursor::{Hide, Show},
        execute,
        terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode},
    },
};

/// The dashboard's terminal.
pub type DashboardTerminal = Terminal<CrosstermBackend<Stdout>>;

type PanicHook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Leaves raw mode and the alternate screen once (the first caller does it).
fn restore(active: &AtomicBool) {
    if active.swap(false, Ordering::SeqCst) {
        let _ = disable_raw_mode();
        let _ = execute!(io::stdout(), LeaveAlternateScreen, Show);
    }
}

/// Restores the terminal when dropped (or on [`TerminalGuard::restore`]), and reinstates the
/// panic hook that was in place before.
pub struct TerminalGuard {
    active: Arc<AtomicBool>,
    previous_hook: Option<Arc<PanicHook>>,
}

impl TerminalGuard {
    /// Switches the terminal to raw mode and the alternate screen, and installs a panic hook
    /// that restores it before the previous hook prints the panic.
    pub fn enter() -> io::Result<(DashboardTerminal, Self)> {
        enable_raw_mode()?;
        let active = Arc::new(AtomicBool::new(true));
        let mut stdout = io::stdout();
        if let Err(e) = execute!(stdout, EnterAlternateScreen, Hide) {
            restore(&active);
            return Err(e);
        }
        let terminal = match Terminal::new(CrosstermBackend::new(stdout)) {
            Ok(terminal) => terminal,
            Err(e) => {
                restore(&active);
                return Err(e);
            }
        };
        let previous: Arc<PanicHook> = Arc::new(take_hook());
        let hook_previous = previous.clone();
        let hook_active = active.clone();
        set_hook(Box::new(move |info| {
            restore(&hook_active);
            hook_previous(info);
        }));
        Ok((
            terminal,
            Self {
                active,
                previous_hook: Some(previous),
            },
        ))
    }

    /// Whether the terminal is still in dashboard mode (a panic restores it early).
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }

    /// Restores the terminal and the previous panic hook (idempotent).
    pub fn restore(&mut self) {
        restore(&self.active);
        if let Some(previous) = self.previous_hook.take()
            && !std::thread::panicking()
        {
            // Dropping our hook releases its reference to the previous one.
            drop(take_hook());
            if let Some(previous) = Arc::into_inner(previous) {
                set_hook(previous);
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        self.restore();
    }
}
