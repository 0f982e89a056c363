//! Watching a long computation: how far it has come, and whether to stop.
//!
//! Library code never draws anything: a long pass (an entropy pass over a corpus, reading or
//! writing a large checkpoint) reports to a [`Progress`], and the binary decides what that looks
//! like (blt-cli draws a progress bar on a terminal and prints periodic lines otherwise). `()`
//! watches nothing; blt-data's `LineProgress` writes text lines.

/// Observes a long computation over a known number of items. Every method has a default that
/// does nothing, so an implementation overrides only what it needs.
pub trait Progress: Sync {
    /// The pass `task` (which names its items, e.g. `"entropy rows"`) begins, with `total`
    /// items to do.
    fn start(&self, _task: &str, _total: usize) {}
    /// `done` items of the pass are finished (a running count, not an increment).
    fn update(&self, _done: usize) {}
    /// The pass ended: finished, failed or stopped.
    fn finish(&self) {}
    /// Asked before each unit of work by the passes that can stop early; `true` stops them.
    fn should_stop(&self) -> bool {
        false
    }
}

/// Watches nothing and never stops.
impl Progress for () {}
