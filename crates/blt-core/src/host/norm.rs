//! RMSNorm of rows.

use burn::tensor::backend::Backend;

use super::values;
use crate::{
    norm::RmsNorm,
    simd::{self, Simd, WithSimd},
};

/// An [`RmsNorm`]'s scale and epsilon on the host.
#[derive(Clone)]
pub struct HostRmsNorm {
    gamma: Vec<f32>,
    eps: f32,
}

impl std::fmt::Debug for HostRmsNorm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostRmsNorm")
            .field("d_model", &self.gamma.len())
            .field("eps", &self.eps)
            .finish()
    }
}

impl HostRmsNorm {
    /// Copies `norm`'s scale to the host.
    pub fn from_norm<B: Backend>(norm: &RmsNorm<B>) -> Self {
        Self {
            gamma: values(norm.gamma.val()),
            eps: norm.eps as f32,
        }
    }

    /// `x / sqrt(mean(x²) + eps) · γ`.
    ///
    /// # Panics
    /// If `x` does not have `d_model` values.
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        assert_eq!(x.len(), self.gamma.len(), "norm width");
        let mut out = vec![0.0; x.len()];
        simd::dispatch(Normalise {
            x,
            gamma: &self.gamma,
            eps: self.eps,
            out: &mut out,
        });
        out
    }

    /// Width of a row.
    pub fn width(&self) -> usize {
        self.gamma.len()
    }

    /// [`apply`](Self::apply) to each row of `x` (row-major, `d_model` values each).
    pub fn apply_rows(&self, x: &[f32]) -> Vec<f32> {
        x.chunks_exact(self.gamma.len())
            .flat_map(|row| self.apply(row))
            .collect()
    }
}

struct Normalise<'a> {
    x: &'a [f32],
    gamma: &'a [f32],
    eps: f32,
    out: &'a mut [f32],
}

impl WithSimd for Normalise<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let d = self.x.len() as f32;
        let inv_rms = 1.0 / (simd::dot(self.x, self.x) / d + self.eps).sqrt();
        for ((o, &v), &g) in self.out.iter_mut().zip(self.x).zip(self.gamma) {
            *o = v * inv_rms * g;
        }
    }
}
