//! One AdamW step in a single pass over parameter, gradient and both moments.
//!
//! Burn's `AdamW` builds the update from about a dozen whole-tensor ops (scale, add, square,
//! divide, sqrt, …), each of which reads and allocates a tensor the size of the parameter: at
//! 45 M parameters that is gigabytes of memory traffic per step. Here each element is read and
//! written once, the moments are updated in place when the optimizer holds their only
//! reference, and so is the parameter. The arithmetic is the same as Burn's, in the same order,
//! so both give the same numbers.

use burn_ndarray::NdArrayTensor;
use ndarray::{ArcArray, IxDyn};
use rayon::prelude::*;

use super::{f32_array, primitive, standard};
use crate::kernels::AdamWStep;

/// Elements per parallel task.
const CHUNK: usize = 32 * 1024;

/// The scalars of one step, as f32 the way Burn converts them.
#[derive(Clone, Copy)]
struct Scalars {
    beta_1: f32,
    beta_2: f32,
    factor_1: f32,
    factor_2: f32,
    correction_1: f32,
    correction_2: f32,
    epsilon: f32,
    decay: f32,
    lr: f32,
}

impl Scalars {
    fn new(step: &AdamWStep) -> Self {
        let time = step.time as i32;
        Self {
            beta_1: step.beta_1,
            beta_2: step.beta_2,
            factor_1: 1.0 - step.beta_1,
            factor_2: 1.0 - step.beta_2,
            correction_1: 1.0 - step.beta_1.powi(time),
            correction_2: 1.0 - step.beta_2.powi(time),
            epsilon: step.epsilon,
            decay: (1.0 - step.lr * step.weight_decay as f64) as f32,
            lr: step.lr as f32,
        }
    }

    /// Updates the moments of one element and returns its new value.
    #[inline(always)]
    fn apply(&self, p: f32, g: f32, m: &mut f32, v: &mut f32) -> f32 {
        *m = *m * self.beta_1 + g * self.factor_1;
        *v = *v * self.beta_2 + g * g * self.factor_2;
        let m_hat = *m / self.correction_1;
        let v_hat = *v / self.correction_2;
        let delta = m_hat / (v_hat.sqrt() + self.epsilon);
        p * self.decay - delta * self.lr
    }
}

/// Parameter, first and second moment after one step, or `None` when an input is not an f32
/// array of the parameter's shape (the caller then composes Burn ops). Absent moments start at
/// zero, which gives exactly Burn's first step (`0·β + x = x`).
pub(in crate::kernels) fn adamw(
    step: &AdamWStep,
    param: NdArrayTensor,
    grad: NdArrayTensor,
    moments: Option<(NdArrayTensor, NdArrayTensor)>,
) -> Option<[NdArrayTensor; 3]> {
    let param = standard(f32_array(param)?);
    let grad = standard(f32_array(grad)?);
    let shape = param.shape().to_vec();
    if grad.shape() != shape.as_slice() {
        return None;
    }
    let (mut m, mut v) = match moments {
        Some((m, v)) => (standard(f32_array(m)?), standard(f32_array(v)?)),
        None => (zeros(&shape), zeros(&shape)),
    };
    if m.shape() != shape.as_slice() || v.shape() != shape.as_slice() {
        return None;
    }
    let s = Scalars::new(step);
    let g = grad.as_slice()?;
    // `as_slice_mut` copies an array only when something else shares it.
    let (ms, vs) = (m.as_slice_mut()?, v.as_slice_mut()?);
    let param = if param.is_unique() {
        let mut param = param;
        let ps = param.as_slice_mut()?;
        ps.par_chunks_mut(CHUNK)
            .zip(ms.par_chunks_mut(CHUNK).zip(vs.par_chunks_mut(CHUNK)))
            .zip(g.par_chunks(CHUNK))
            .for_each(|((p, (m, v)), g)| {
                for i in 0..p.len() {
                    p[i] = s.apply(p[i], g[i], &mut m[i], &mut v[i]);
                }
            });
        param
    } else {
        // The model still holds the old parameter: write the new one beside it.
        let old = param.as_slice()?;
        let mut out = super::zeros(old.len());
        out.par_chunks_mut(CHUNK)
            .zip(ms.par_chunks_mut(CHUNK).zip(vs.par_chunks_mut(CHUNK)))
            .zip(old.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
            .for_each(|((out, (m, v)), (p, g))| {
                for i in 0..out.len() {
                    out[i] = s.apply(p[i], g[i], &mut m[i], &mut v[i]);
                }
            });
        ArcArray::from_shape_vec(IxDyn(&shape), out).ok()?
    };
    Some([primitive(param), primitive(m), primitive(v)])
}

fn zeros(shape: &[usize]) -> ArcArray<f32, IxDyn> {
    ArcArray::zeros(IxDyn(shape))
}
