//! The SwiGLU gate `silu(g) ∘ u` as a [`HostOp`] over `g` and `u`: one exponential per
//! element forward and one backward. Burn's `silu` is `x · sigmoid(x)` with the sigmoid as
//! `exp(−log1p(exp(−x)))`: two exponentials and a logarithm per element each way, over a
//! tensor of `[batch, seq, ffn width]`, the widest activation of the model.

use burn_ndarray::NdArrayTensor;
use ndarray::{ArcArray, IxDyn};
use rayon::prelude::*;

use super::{HostOp, f32_array, primitive, simd, standard};

/// Elements per parallel task.
const CHUNK: usize = 16 * 1024;

/// The op (no parameters).
#[derive(Debug, Clone, Copy)]
pub(in crate::kernels) struct SwiGluOp;

/// Both inputs, in standard layout.
#[derive(Debug, Clone)]
pub(in crate::kernels) struct SwiGluState {
    gate: ArcArray<f32, IxDyn>,
    up: ArcArray<f32, IxDyn>,
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + simd::exp(-x))
}

impl HostOp<2> for SwiGluOp {
    type State = SwiGluState;

    fn forward(&self, [gate, up]: [NdArrayTensor; 2]) -> Option<(NdArrayTensor, SwiGluState)> {
        let gate = standard(f32_array(gate)?);
        let up = standard(f32_array(up)?);
        if gate.shape() != up.shape() {
            return None;
        }
        let (g, u) = (gate.as_slice()?, up.as_slice()?);
        let mut out = vec![0.0f32; g.len()];
        out.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK)))
            .for_each(|(out, (g, u))| {
                simd::vectorized(|| {
                    for ((o, &g), &u) in out.iter_mut().zip(g).zip(u) {
                        *o = g * sigmoid(g) * u;
                    }
                });
            });
        let out = ArcArray::from_shape_vec(IxDyn(gate.shape()), out).ok()?;
        Some((primitive(out), SwiGluState { gate, up }))
    }

    fn backward(
        state: SwiGluState,
        grad: NdArrayTensor,
        [need_gate, need_up]: [bool; 2],
    ) -> [Option<NdArrayTensor>; 2] {
        let grad = standard(f32_array(grad).expect("the output gradient is f32"));
        let dy = grad.as_slice().expect("standard layout");
        let g = state.gate.as_slice().expect("standard layout");
        let u = state.up.as_slice().expect("standard layout");
        // d/dg [g·σ(g)] = σ(g) · (1 + g · (1 − σ(g))); both gradients in one pass (the
        // FFN always needs both).
        let mut dgate = vec![0.0f32; g.len()];
        let mut dup = vec![0.0f32; g.len()];
        dgate
            .par_chunks_mut(CHUNK)
            .zip(dup.par_chunks_mut(CHUNK))
            .zip(
                g.par_chunks(CHUNK)
                    .zip(u.par_chunks(CHUNK))
                    .zip(dy.par_chunks(CHUNK)),
            )
            .for_each(|((dg, du), ((g, u), dy))| {
                simd::vectorized(|| {
                    for j in 0..g.len() {
                        let s = sigmoid(g[j]);
                        du[j] = dy[j] * g[j] * s;
                        dg[j] = dy[j] * u[j] * s * (1.0 + g[j] * (1.0 - s));
                    }
                });
            });
        let shape = IxDyn(state.gate.shape());
        let wrap = |v: Vec<f32>| {
            primitive(
                ArcArray::from_shape_vec(shape.clone(), v).expect("the element count is unchanged"),
            )
        };
        [need_gate.then(|| wrap(dgate)), need_up.then(|| wrap(dup))]
    }
}
