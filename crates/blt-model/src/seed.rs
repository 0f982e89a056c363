//! Seeded initialisation that holds up under concurrency.
//!
//! Burn's random generator is global to each backend. A seed set with [`Backend::seed`] only
//! determines a model's weights if nothing else draws from the generator between seeding and the
//! end of initialisation. Tests run in parallel threads and applications may build two models at
//! once, so every seeded initialisation in this workspace goes through [`seeded`], which seeds
//! and initialises under one process-wide lock.

use std::sync::Mutex;

use burn::tensor::backend::Backend;

/// Runs `init` with `B`'s generator seeded with `seed`, holding a process-wide lock so that no
/// other call of `seeded` can draw from the generator until `init` returns.
///
/// Initialisation code outside this function that draws from the same generator concurrently is
/// not excluded; route it through here.
pub fn seeded<B: Backend, T>(device: &B::Device, seed: u64, init: impl FnOnce() -> T) -> T {
    static INIT: Mutex<()> = Mutex::new(());
    // A panic inside another `init` poisons the lock but leaves nothing half-done that we rely
    // on: the next caller re-seeds before drawing.
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    B::seed(device, seed);
    init()
}
