//! Integration tests of the model, in one binary (one link of the Burn backend instead of
//! five): causality, forward properties, incremental and batched decoding, save/load, overfitting and
//! generation.
#![allow(clippy::print_stderr)]

mod common;

mod batched;
mod causality;
mod documents;
mod forward;
mod hf;
mod host;
mod incremental;
mod io;
mod last_position;
mod overfit_generate;
mod prefill;
mod presets;
mod schemes;
