//! The global allocator: mimalloc, told to keep the memory it frees.
//!
//! Tensor buffers of tens of megabytes are allocated and freed on every op. glibc's malloc maps
//! and unmaps each one, and the kernel zeroes every page again on first touch; mimalloc keeps
//! them, but by default still hands freed memory back to the OS after a second ("purging"), and
//! a training step takes longer than that, so every step faulted its buffers in afresh. With
//! purging off and arenas committed eagerly, freed buffers are reused as they are
//! (docs/performance.md has the measurement). The process's peak memory is unchanged; memory
//! freed after the peak is simply not returned before exit.

#![allow(unsafe_code)]

use libmimalloc_sys::{mi_option_set, mi_option_t};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` in mimalloc v3's `mi_option_e` (libmimalloc-sys 0.1.49).
const ARENA_EAGER_COMMIT: mi_option_t = 4;
/// `mi_option_purge_delay` in the same enum: milliseconds before freed memory is returned, -1
/// for never.
const PURGE_DELAY: mi_option_t = 15;

/// Turns purging off and arena eager commit on, unless the user set either through mimalloc's
/// own environment variables (`MIMALLOC_PURGE_DELAY`, `MIMALLOC_ARENA_EAGER_COMMIT`), which
/// then win.
pub fn keep_freed_memory() {
    for (option, var, value) in [
        (PURGE_DELAY, "MIMALLOC_PURGE_DELAY", -1),
        (ARENA_EAGER_COMMIT, "MIMALLOC_ARENA_EAGER_COMMIT", 1),
    ] {
        if std::env::var_os(var).is_none() {
            // SAFETY: `mi_option_set` stores an integer in mimalloc's option table; any value
            // is valid for these two options, and mimalloc reads options atomically.
            unsafe { mi_option_set(option, value) };
        }
    }
}

#[cfg(test)]
mod tests {
    use libmimalloc_sys::mi_option_get;

    use super::*;

    /// The current value of a mimalloc option.
    fn option(option: mi_option_t) -> std::ffi::c_long {
        // SAFETY: reads an integer from mimalloc's option table; any option number in range is
        // valid.
        unsafe { mi_option_get(option) }
    }

    /// The option numbers are mimalloc's enum positions: if a libmimalloc-sys upgrade moves
    /// them, this test sees other options' defaults and fails before a release sets the wrong
    /// option.
    #[test]
    fn option_numbers_name_the_options_we_mean() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(option(PURGE_DELAY), 1000, "v3's default purge delay (ms)");
        }
        if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_none() {
            assert_eq!(
                option(ARENA_EAGER_COMMIT),
                2,
                "v3's default: eager on overcommit OSes"
            );
        }
        keep_freed_memory();
        assert_eq!(option(PURGE_DELAY), -1);
        assert_eq!(option(ARENA_EAGER_COMMIT), 1);
    }
}
