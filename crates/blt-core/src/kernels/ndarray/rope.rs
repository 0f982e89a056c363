//! Rotary position encoding of flat tokens as a [`HostOp`] over `x` and the two tables: each
//! interleaved pair `(x₀, x₁)` of the first `rotated` features becomes
//! `(x₀·cos − x₁·sin, x₁·cos + x₀·sin)`, the rest passes through, in one pass each way.
//!
//! The composition of Burn ops tiles the tables over the heads, multiplies by a signed
//! permutation for the 90° turn, and broadcasts two products and a sum: at the global model's
//! bench shapes that was 37 ms per layer, three times the layer's qkv projection.

use burn_ndarray::NdArrayTensor;
use ndarray::{ArcArray, Ix3, IxDyn};
use rayon::prelude::*;

use super::{HostOp, f32_array, primitive, standard};

type Float3 = ArcArray<f32, Ix3>;

/// Tokens per parallel task.
const TOKENS: usize = 64;

/// The op: the first `rotated` features of each token are heads of the tables' width.
#[derive(Debug, Clone, Copy)]
pub(in crate::kernels) struct RopeOp {
    pub rotated: usize,
}

/// The tables, `[1 or batch, seq, head_dim]`, in standard layout.
#[derive(Debug, Clone)]
pub(in crate::kernels) struct RopeState {
    cos: Float3,
    sin: Float3,
    rotated: usize,
}

impl RopeState {
    /// The cosine and sine rows of token `token` of batch row `row`.
    fn rows(&self, row: usize, token: usize) -> (&[f32], &[f32]) {
        let r = if self.cos.shape()[0] == 1 { 0 } else { row };
        let width = self.cos.shape()[2];
        let at = (r * self.cos.shape()[1] + token) * width;
        let cos = self.cos.as_slice().expect("standard layout");
        let sin = self.sin.as_slice().expect("standard layout");
        (&cos[at..at + width], &sin[at..at + width])
    }

    /// Writes `f(x)` for every token of `x: [batch, seq, features]` into a new array, with `f`
    /// given the token's input, output and table rows.
    fn map(
        &self,
        x: &[f32],
        shape: &[usize],
        f: impl Fn(&[f32], &mut [f32], &[f32], &[f32]) + Sync,
    ) -> Vec<f32> {
        let (seq, features) = (shape[1], shape[2]);
        let mut out = super::zeros(x.len());
        out.par_chunks_mut(TOKENS * features)
            .zip(x.par_chunks(TOKENS * features))
            .enumerate()
            .for_each(|(chunk, (out, x))| {
                let first = chunk * TOKENS;
                for (i, (out, x)) in out
                    .chunks_exact_mut(features)
                    .zip(x.chunks_exact(features))
                    .enumerate()
                {
                    let token = first + i;
                    let (cos, sin) = self.rows(token / seq, token % seq);
                    f(x, out, cos, sin);
                }
            });
        out
    }
}

impl HostOp<3> for RopeOp {
    type State = RopeState;

    fn forward(&self, [x, cos, sin]: [NdArrayTensor; 3]) -> Option<(NdArrayTensor, RopeState)> {
        let x = standard(f32_array(x)?.into_dimensionality::<Ix3>().ok()?);
        let cos = standard(f32_array(cos)?.into_dimensionality::<Ix3>().ok()?);
        let sin = standard(f32_array(sin)?.into_dimensionality::<Ix3>().ok()?);
        let [batch, seq, features] = [x.shape()[0], x.shape()[1], x.shape()[2]];
        let [n, rows, width] = [cos.shape()[0], cos.shape()[1], cos.shape()[2]];
        let fits = (n == 1 || n == batch)
            && rows == seq
            && sin.shape() == cos.shape()
            && width > 0
            && width.is_multiple_of(2)
            && self.rotated.is_multiple_of(width)
            && self.rotated <= features
            && features > 0;
        if !fits {
            return None;
        }
        let state = RopeState {
            cos,
            sin,
            rotated: self.rotated,
        };
        let out = state.map(x.as_slice()?, x.shape(), |x, out, cos, sin| {
            rotate(x, out, cos, sin, state.rotated);
        });
        let out = ArcArray::from_shape_vec(IxDyn(&[batch, seq, features]), out).ok()?;
        Some((primitive(out), state))
    }

    fn backward(
        state: RopeState,
        grad: NdArrayTensor,
        [need_x, ..]: [bool; 3],
    ) -> [Option<NdArrayTensor>; 3] {
        // The tables are constants: only `x` gets a gradient.
        let dx = need_x.then(|| {
            let grad = standard(f32_array(grad).expect("the output gradient is f32"));
            let shape = grad.shape().to_vec();
            let dy = grad.as_slice().expect("standard layout");
            let dx = state.map(dy, &shape, |dy, dx, cos, sin| {
                rotate_back(dy, dx, cos, sin, state.rotated);
            });
            primitive(ArcArray::from_shape_vec(IxDyn(&shape), dx).expect("same element count"))
        });
        [dx, None, None]
    }
}

/// One token forward: each pair of the first `rotated` features turned by its angle, the rest
/// copied. This is the composition's `x·cos + rot90(x)·sin`, term for term and in the same
/// order, so both round alike.
#[inline(always)]
fn rotate(x: &[f32], out: &mut [f32], cos: &[f32], sin: &[f32], rotated: usize) {
    let width = cos.len();
    for (x, out) in x[..rotated]
        .chunks_exact(width)
        .zip(out[..rotated].chunks_exact_mut(width))
    {
        for i in (0..width).step_by(2) {
            let (x0, x1) = (x[i], x[i + 1]);
            out[i] = x0 * cos[i] + (-x1) * sin[i];
            out[i + 1] = x1 * cos[i + 1] + x0 * sin[i + 1];
        }
    }
    out[rotated..].copy_from_slice(&x[rotated..]);
}

/// One token backward: the transpose of [`rotate`]'s per-pair matrix
/// `[[cos₀, −sin₀], [sin₁, cos₁]]` applied to the output gradient.
#[inline(always)]
fn rotate_back(dy: &[f32], dx: &mut [f32], cos: &[f32], sin: &[f32], rotated: usize) {
    let width = cos.len();
    for (dy, dx) in dy[..rotated]
        .chunks_exact(width)
        .zip(dx[..rotated].chunks_exact_mut(width))
    {
        for i in (0..width).step_by(2) {
            let (d0, d1) = (dy[i], dy[i + 1]);
            dx[i] = d0 * cos[i] + d1 * sin[i + 1];
            dx[i + 1] = d1 * cos[i + 1] - d0 * sin[i];
        }
    }
    dx[rotated..].copy_from_slice(&dy[rotated..]);
}
