//! The GPU kernel path without a GPU: Burn's wgpu backend (CubeCL kernels compiled to SPIR-V)
//! on Vulkan's CPU adapter (Mesa's lavapipe), compared with ndarray. These are the kernels that
//! GPU users run, with our shapes, masks, gathers and bool tensors; only CUDA's code generation
//! and tensor cores are left out.
//!
//! Built with the `wgpu` feature (`cargo test --workspace --features blt-train/wgpu`, which CI
//! runs). Without a Vulkan driver every test fails and says what to install.
#![allow(clippy::print_stderr)]

#[path = "../model/common/mod.rs"]
mod common;
#[path = "../model/schemes.rs"]
mod schemes;

mod backends;
mod layers;
mod model;
mod train;
