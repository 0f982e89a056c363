//! Inference one position at a time on the host CPU, outside Burn: each layer's weights copied
//! once into plain `f32` buffers, and its step for one new position written as direct loops.
//!
//! Incremental decoding at batch 1 is a chain of about a hundred small ops per byte: products of
//! one row with a weight, norms, a rotation, attention over a cache. Through a Burn backend each
//! op pays its dispatch, allocations, and on NdArray a thread wake-up, which together cost more
//! than the arithmetic while the weights sit in the CPU's cache. Here the same layers, built from
//! the Burn modules (so the values are the trained ones), read each weight once per step, split
//! the larger products over rayon's threads, and keep their caches as rings that never move.
//!
//! The layers mirror [`crate::TransformerBlock`] (standard attention only),
//! [`crate::CrossAttention`] and their parts; `blt-model` assembles them into its host decoder.
//! Each is tested against the Burn layer it copies. Weight matrices can be kept in `bf16`
//! ([`WeightPrecision`]) to halve the bytes a step reads.

mod attention;
mod block;
mod cache;
mod copier;
mod cross;
mod linear;
mod norm;
mod rope;
#[cfg(test)]
mod tests;

use burn::tensor::{Tensor, backend::Backend};

pub use attention::HostSelfAttention;
pub use block::{HostBlock, HostSwiGlu};
pub use cache::HostKvCache;
pub use copier::HostCopier;
pub use cross::{HostContext, HostCrossAttention};
pub use linear::{HostLinear, WeightPrecision, to_bf16};
pub use norm::HostRmsNorm;
pub use rope::HostRope;

/// `x += y` elementwise.
pub fn add_assign(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(x, &y)| *x += y);
}

/// A tensor's values as `f32`, row-major, read back from its device.
pub fn values<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("values converted to f32 read back as f32")
}
