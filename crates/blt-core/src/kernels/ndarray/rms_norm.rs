//! RMSNorm `y = x / √(mean(x²) + ε) · γ` over the last dimension as a [`HostOp`]: one pass
//! forward and two backward, where Burn's composition makes six tensors forward and more in
//! its backward pass.

use burn_ndarray::NdArrayTensor;
use ndarray::{ArcArray, Ix1, IxDyn};
use rayon::prelude::*;

use super::{HostOp, f32_array, primitive, standard};

/// Rows per parallel task.
const ROWS_PER_TASK: usize = 64;

/// The op, carrying ε.
#[derive(Debug, Clone, Copy)]
pub(in crate::kernels) struct RmsNormOp {
    pub eps: f64,
}

/// The input (standard layout), γ and each row's `1 / rms`.
#[derive(Debug, Clone)]
pub(in crate::kernels) struct RmsNormState {
    x: ArcArray<f32, IxDyn>,
    gamma: ArcArray<f32, Ix1>,
    inv_rms: ArcArray<f32, Ix1>,
}

impl HostOp<2> for RmsNormOp {
    type State = RmsNormState;

    fn forward(&self, [x, gamma]: [NdArrayTensor; 2]) -> Option<(NdArrayTensor, RmsNormState)> {
        let x = standard(f32_array(x)?);
        let gamma = standard(f32_array(gamma)?.into_dimensionality::<Ix1>().ok()?);
        let d = gamma.len();
        if x.shape().last() != Some(&d) || d == 0 {
            return None;
        }
        let xs = x.as_slice()?;
        let g = gamma.as_slice()?;
        let rows = xs.len() / d;
        let mut out = vec![0.0f32; xs.len()];
        let mut inv_rms = vec![0.0f32; rows];
        let eps = self.eps as f32;
        out.par_chunks_mut(ROWS_PER_TASK * d)
            .zip(inv_rms.par_chunks_mut(ROWS_PER_TASK))
            .zip(xs.par_chunks(ROWS_PER_TASK * d))
            .for_each(|((out, inv), xs)| {
                for ((o, r), x) in out.chunks_mut(d).zip(inv.iter_mut()).zip(xs.chunks(d)) {
                    let mean = x.iter().map(|v| v * v).sum::<f32>() / d as f32;
                    *r = 1.0 / (mean + eps).sqrt();
                    for ((o, &v), &gv) in o.iter_mut().zip(x).zip(g) {
                        *o = v * *r * gv;
                    }
                }
            });
        let out = ArcArray::from_shape_vec(IxDyn(x.shape()), out).ok()?;
        let state = RmsNormState {
            x,
            gamma,
            inv_rms: ArcArray::from_vec(inv_rms),
        };
        Some((primitive(out), state))
    }

    fn backward(
        state: RmsNormState,
        grad: NdArrayTensor,
        [need_x, need_gamma]: [bool; 2],
    ) -> [Option<NdArrayTensor>; 2] {
        let grad = standard(f32_array(grad).expect("the output gradient is f32"));
        let (xs, dy) = (
            state.x.as_slice().expect("standard layout"),
            grad.as_slice().expect("standard layout"),
        );
        let g = state.gamma.as_slice().expect("standard layout");
        let inv = state.inv_rms.as_slice().expect("standard layout");
        let d = g.len();
        let dx = need_x.then(|| {
            // dx = r · (γ∘dy − x · r² · mean(γ∘dy∘x)).
            let mut dx = vec![0.0f32; xs.len()];
            dx.par_chunks_mut(ROWS_PER_TASK * d)
                .zip(xs.par_chunks(ROWS_PER_TASK * d))
                .zip(dy.par_chunks(ROWS_PER_TASK * d))
                .zip(inv.par_chunks(ROWS_PER_TASK))
                .for_each(|(((dx, xs), dy), inv)| {
                    let rows = dx.chunks_mut(d).zip(xs.chunks(d)).zip(dy.chunks(d));
                    for (((dx, x), dy), &r) in rows.zip(inv) {
                        let dot: f32 = x.iter().zip(dy).zip(g).map(|((x, y), g)| x * y * g).sum();
                        let c = r * r * dot / d as f32;
                        for (((o, &x), &y), &gv) in dx.iter_mut().zip(x).zip(dy).zip(g) {
                            *o = r * (gv * y - x * c);
                        }
                    }
                });
            let dx = ArcArray::from_shape_vec(IxDyn(state.x.shape()), dx)
                .expect("the element count is unchanged");
            primitive(dx)
        });
        let dgamma = need_gamma.then(|| {
            // dγ = Σ_rows dy ∘ x · r.
            let sum = xs
                .par_chunks(ROWS_PER_TASK * d)
                .zip(dy.par_chunks(ROWS_PER_TASK * d))
                .zip(inv.par_chunks(ROWS_PER_TASK))
                .map(|((xs, dy), inv)| {
                    let mut acc = vec![0.0f32; d];
                    for ((x, dy), &r) in xs.chunks(d).zip(dy.chunks(d)).zip(inv) {
                        for ((a, &x), &y) in acc.iter_mut().zip(x).zip(dy) {
                            *a += x * y * r;
                        }
                    }
                    acc
                })
                .reduce(
                    || vec![0.0f32; d],
                    |mut a, b| {
                        a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                        a
                    },
                );
            primitive(ArcArray::from_vec(sum))
        });
        [dx, dgamma]
    }
}
