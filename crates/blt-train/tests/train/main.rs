//! Integration tests of blt-train, in one binary (one link): Burn's Learner with the crate's
//! metrics, whole runs of [`blt_train::train`] (loss falls, run directory, resume), and the
//! training step (gradient accumulation, clipping).

mod common;
mod devices;
mod learner;
mod resume;
mod run;
mod step;
