//! The SwiGLU gate `silu(g) ∘ u` as a [`HostOp`] over `g` and `u`: one exponential per
//! element forward and one backward. Burn's `silu` is `x · sigmoid(x)` with the sigmoid as
//! `exp(−log1p(exp(−x)))`: two exponentials and a logarithm per element each way, over a
//! tensor of `[batch, seq, ffn width]`, the widest activation of the model.

use burn_ndarray::NdArrayTensor;
use ndarray::{ArcArray, IxDyn};
use rayon::prelude::*;

use super::{
    HostOp, f32_array, primitive,
    simd::{self, Simd, WithSimd},
    standard,
};

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

/// `out = silu(gate) · up` over one chunk.
struct Forward<'a> {
    gate: &'a [f32],
    up: &'a [f32],
    out: &'a mut [f32],
}

impl WithSimd for Forward<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        for ((o, &g), &u) in self.out.iter_mut().zip(self.gate).zip(self.up) {
            *o = g * sigmoid(g) * u;
        }
    }
}

/// Both input gradients over one chunk: d/dg [g·σ(g)] = σ(g) · (1 + g · (1 − σ(g))).
struct Backward<'a> {
    gate: &'a [f32],
    up: &'a [f32],
    grad: &'a [f32],
    dgate: &'a mut [f32],
    dup: &'a mut [f32],
}

impl WithSimd for Backward<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let n = self.gate.len();
        let (g, u, dy) = (&self.gate[..n], &self.up[..n], &self.grad[..n]);
        let (dg, du) = (&mut self.dgate[..n], &mut self.dup[..n]);
        for j in 0..n {
            let s = sigmoid(g[j]);
            du[j] = dy[j] * g[j] * s;
            dg[j] = dy[j] * u[j] * s * (1.0 + g[j] * (1.0 - s));
        }
    }
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
        let mut out = super::zeros(g.len());
        out.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK)))
            .for_each(|(out, (gate, up))| simd::dispatch(Forward { gate, up, out }));
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
        // Both gradients in one pass (the FFN always needs both).
        let mut dgate = super::zeros(g.len());
        let mut dup = super::zeros(g.len());
        dgate
            .par_chunks_mut(CHUNK)
            .zip(dup.par_chunks_mut(CHUNK))
            .zip(
                g.par_chunks(CHUNK)
                    .zip(u.par_chunks(CHUNK))
                    .zip(dy.par_chunks(CHUNK)),
            )
            .for_each(|((dgate, dup), ((gate, up), grad))| {
                simd::dispatch(Backward {
                    gate,
                    up,
                    grad,
                    dgate,
                    dup,
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
