//! The GPU kernel path without a GPU: Burn's wgpu backend (CubeCL kernels compiled to SPIR-V)
//! on Vulkan's CPU adapter (Mesa's lavapipe), compared with ndarray. These are the kernels that
//! GPU users run, with our shapes, masks, gathers and bool tensors; only CUDA's code generation
//! and tensor cores are left out. The layers, the model and a training step are checked against
//! ndarray op by op (`layers`, `model`, `train`), then the tiny preset trains and generates end
//! to end (`run`).
//!
//! One test binary for all of it, in this crate because the end-to-end run needs blt-train: the
//! wgpu backend's kernels and our model compiled for it take minutes of CI, once.
//!
//! Built with the `wgpu` feature (`cargo test --workspace --features blt-train/wgpu`, which CI
//! runs). Without a Vulkan driver every test fails and says what to install.
#![allow(clippy::print_stderr)]

// blt-model's own test helpers (tiny configs, texts, patching schemes).
#[path = "../../../blt-model/tests/model/common/mod.rs"]
mod common;
#[path = "../../../blt-model/tests/model/schemes.rs"]
mod schemes;

mod backends;
mod layers;
mod model;
mod run;
mod train;
