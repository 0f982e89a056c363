//! RMSNorm `y = x / √(mean(x²) + ε) · γ` over the last dimension as a [`HostOp`]: one pass
//! forward and two backward, where Burn's composition makes six tensors forward and more in
//! its backward pass.

use burn_ndarray::NdArrayTensor;
use ndarray::{ArcArray, Ix1, IxDyn};
use rayon::prelude::*;

use super::{
    HostOp, f32_array, primitive,
    simd::{self, Simd, WithSimd},
    standard,
};

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

/// The forward pass over a run of whole rows: `out = x · r · γ` with `r = 1 / rms(x)`.
struct ForwardRows<'a> {
    x: &'a [f32],
    gamma: &'a [f32],
    eps: f32,
    out: &'a mut [f32],
    inv_rms: &'a mut [f32],
}

impl WithSimd for ForwardRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let d = self.gamma.len();
        let rows = self.out.chunks_exact_mut(d).zip(self.x.chunks_exact(d));
        for ((o, x), r) in rows.zip(self.inv_rms.iter_mut()) {
            *r = 1.0 / (simd::dot(x, x) / d as f32 + self.eps).sqrt();
            for ((o, &v), &g) in o.iter_mut().zip(x).zip(self.gamma) {
                *o = v * *r * g;
            }
        }
    }
}

/// The input gradient over a run of whole rows: `dx = r · (γ∘dy − x · r² · mean(γ∘dy∘x))`.
struct InputGradientRows<'a> {
    x: &'a [f32],
    grad: &'a [f32],
    gamma: &'a [f32],
    inv_rms: &'a [f32],
    dx: &'a mut [f32],
}

impl WithSimd for InputGradientRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let d = self.gamma.len();
        let rows = self.dx.chunks_exact_mut(d).zip(self.x.chunks_exact(d));
        for (((dx, x), dy), &r) in rows.zip(self.grad.chunks_exact(d)).zip(self.inv_rms) {
            // Σ γ∘dy∘x, with γ∘dy formed in dx first.
            dx.iter_mut()
                .zip(dy)
                .zip(self.gamma)
                .for_each(|((o, &y), &g)| *o = g * y);
            let c = r * r * simd::dot(dx, x) / d as f32;
            dx.iter_mut()
                .zip(x)
                .for_each(|(o, &x)| *o = r * (*o - x * c));
        }
    }
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
        let mut out = super::zeros(xs.len());
        let mut inv_rms = vec![0.0f32; rows];
        let eps = self.eps as f32;
        out.par_chunks_mut(ROWS_PER_TASK * d)
            .zip(inv_rms.par_chunks_mut(ROWS_PER_TASK))
            .zip(xs.par_chunks(ROWS_PER_TASK * d))
            .for_each(|((out, inv_rms), x)| {
                simd::dispatch(ForwardRows {
                    x,
                    gamma: g,
                    eps,
                    out,
                    inv_rms,
                });
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
            let mut dx = super::zeros(xs.len());
            dx.par_chunks_mut(ROWS_PER_TASK * d)
                .zip(xs.par_chunks(ROWS_PER_TASK * d))
                .zip(dy.par_chunks(ROWS_PER_TASK * d))
                .zip(inv.par_chunks(ROWS_PER_TASK))
                .for_each(|(((dx, x), grad), inv_rms)| {
                    simd::dispatch(InputGradientRows {
                        x,
                        grad,
                        gamma: g,
                        inv_rms,
                        dx,
                    });
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
