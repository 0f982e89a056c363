//! Fused ops with a fast path per backend and a generic fallback built from Burn ops:
//! masked attention, linear layers, RMSNorm and the SwiGLU gate.
//!
//! With the `ndarray` feature, `NdArray` and `Autodiff<NdArray>` run our CPU kernels, forward
//! and backward (attention without materialising `[batch, heads, tq, tk]` scores); every other
//! backend (flex, wgpu, CUDA, and Burn's `Autodiff` over them) runs the composition of Burn ops,
//! which for attention is Burn's own op (flash attention on CubeCL backends in inference).
//! `docs/performance.md` has the measurements.
//!
//! The fast path is picked by type at run time rather than through a backend-extension trait,
//! so that every public API stays generic over a plain `B: Backend` and downstream backends
//! need no implementation of ours.

#[cfg(feature = "ndarray")]
mod ndarray;

use burn::{
    nn::Linear,
    tensor::{Bool, Tensor, backend::Backend, module, ops::AttentionModuleOptions},
};

/// Queries `[batch, heads, tq, dk]`, keys `[batch, heads, tk, dk]`, values `[batch, heads, tk,
/// dv]` and an optional mask `[batch or 1, tq, tk]` shared by the heads (`true` = hidden).
#[derive(Debug, Clone)]
pub(crate) struct AttentionInputs<B: Backend> {
    pub q: Tensor<B, 4>,
    pub k: Tensor<B, 4>,
    pub v: Tensor<B, 4>,
    pub mask: Option<Tensor<B, 3, Bool>>,
}

/// One of our fused ops, for [`enabled`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Masked scaled-dot-product attention.
    Attention,
    /// `x·W` over all leading dimensions.
    Linear,
    /// RMSNorm over the last dimension.
    RmsNorm,
    /// The SwiGLU gate `silu(g) ∘ u`.
    SwiGlu,
    /// The `gemm` crate's products inside the kernels above (off: `ndarray`'s
    /// `matrixmultiply`).
    Gemm,
}

impl Kernel {
    const ALL: [Kernel; 5] = [
        Kernel::Attention,
        Kernel::Linear,
        Kernel::RmsNorm,
        Kernel::SwiGlu,
        Kernel::Gemm,
    ];

    fn name(self) -> &'static str {
        match self {
            Kernel::Attention => "attention",
            Kernel::Linear => "linear",
            Kernel::RmsNorm => "rms_norm",
            Kernel::SwiGlu => "swiglu",
            Kernel::Gemm => "gemm",
        }
    }
}

/// Whether a kernel may run. The environment variable `BLT_KERNELS` lists the enabled ones
/// (`attention,linear,rms_norm,swiglu,gemm`; other names are ignored), or says `off` (none) or `all`
/// (the default); the rest take the generic path. It exists for A/B measurements and for ruling
/// a kernel out when results look wrong, and is read once per process.
pub fn enabled(kernel: Kernel) -> bool {
    static ENABLED: std::sync::OnceLock<Vec<Kernel>> = std::sync::OnceLock::new();
    ENABLED
        .get_or_init(|| match std::env::var("BLT_KERNELS") {
            Err(_) => Kernel::ALL.to_vec(),
            Ok(list) if list.trim() == "all" => Kernel::ALL.to_vec(),
            Ok(list) => Kernel::ALL
                .into_iter()
                .filter(|k| list.split(',').any(|item| item.trim() == k.name()))
                .collect(),
        })
        .contains(&kernel)
}

/// Runs `op` on the inputs when `kernel` is enabled and the backend and inputs are ones our
/// kernels take; `None` sends the caller to the generic composition.
#[cfg(feature = "ndarray")]
fn fast<B: Backend, O: ndarray::HostOp<N> + 'static, const N: usize, const D: usize>(
    kernel: Kernel,
    op: &O,
    inputs: [burn::tensor::ops::FloatTensor<B>; N],
) -> Option<Tensor<B, D>> {
    if !enabled(kernel) {
        return None;
    }
    ndarray::run::<B, O, N>(op, inputs).map(ndarray::tensor)
}

/// `softmax(q·kᵀ/√dk, hidden keys excluded)·v`, `[batch, heads, tq, dv]`. A query that sees no
/// key gets zeros (and zero gradients), never NaN.
pub(crate) fn attention<B: Backend>(inputs: AttentionInputs<B>) -> Tensor<B, 4> {
    #[cfg(feature = "ndarray")]
    if ndarray::handles::<B>() {
        let mask = match &inputs.mask {
            None => Some(None),
            Some(m) => ndarray::bool_array(m.clone())
                .and_then(|a| a.into_dimensionality::<::ndarray::Ix3>().ok())
                .map(Some),
        };
        if let Some(mask) = mask {
            let AttentionInputs { q, k, v, .. } = inputs.clone();
            let op = ndarray::AttentionOp { mask };
            if let Some(out) = fast(Kernel::Attention, &op, [q, k, v].map(ndarray::float)) {
                return out;
            }
        }
    }
    composed_attention(inputs)
}

/// `x·W (+ b)` for `x: [..., d_in]`: the same as [`Linear::forward`], as one 2-D product with
/// its own backward pass on NdArray.
pub fn linear<B: Backend, const D: usize>(layer: &Linear<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    #[cfg(feature = "ndarray")]
    if layer.bias.is_none() {
        let inputs = [
            ndarray::float(x.clone()),
            ndarray::float(layer.weight.val()),
        ];
        if let Some(out) = fast(Kernel::Linear, &ndarray::LinearOp, inputs) {
            return out;
        }
    }
    layer.forward(x)
}

/// The generic form: Burn's attention op, mask broadcast over the heads.
pub(crate) fn composed_attention<B: Backend>(inputs: AttentionInputs<B>) -> Tensor<B, 4> {
    let AttentionInputs { q, k, v, mask } = inputs;
    let [batch, heads, tq, _] = q.dims();
    let tk = k.dims()[2];
    let mask = mask.map(|m| m.unsqueeze_dim::<4>(1).expand([batch, heads, tq, tk]));
    module::attention(q, k, v, mask, None, AttentionModuleOptions::default())
}

/// RMSNorm over the last dimension: `x / √(mean(x²) + eps) · gamma`.
pub fn rms_norm<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    gamma: Tensor<B, 1>,
    eps: f64,
) -> Tensor<B, D> {
    #[cfg(feature = "ndarray")]
    {
        let inputs = [ndarray::float(x.clone()), ndarray::float(gamma.clone())];
        if let Some(out) = fast(Kernel::RmsNorm, &ndarray::RmsNormOp { eps }, inputs) {
            return out;
        }
    }
    composed_rms_norm(x, gamma, eps)
}

/// The generic form of [`rms_norm`], from Burn ops.
pub(crate) fn composed_rms_norm<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    gamma: Tensor<B, 1>,
    eps: f64,
) -> Tensor<B, D> {
    // A division, not `recip()`: burn-ndarray 0.21's SIMD `recip` is the approximate x86 `rcp`
    // instruction (12 bits) on aligned chunks only, so results would shift by ~1e-4 relative
    // and depend on where the allocator put the buffer.
    let rms = (x.clone().square().mean_dim(D - 1) + eps).sqrt();
    x / rms * gamma.unsqueeze()
}

/// The SwiGLU gate `silu(gate) ∘ up`, elementwise over tensors of one shape.
pub fn swiglu<B: Backend, const D: usize>(gate: Tensor<B, D>, up: Tensor<B, D>) -> Tensor<B, D> {
    #[cfg(feature = "ndarray")]
    {
        let inputs = [ndarray::float(gate.clone()), ndarray::float(up.clone())];
        if let Some(out) = fast(Kernel::SwiGlu, &ndarray::SwiGluOp, inputs) {
            return out;
        }
    }
    composed_swiglu(gate, up)
}

/// The generic form of [`swiglu`], from Burn ops.
pub(crate) fn composed_swiglu<B: Backend, const D: usize>(
    gate: Tensor<B, D>,
    up: Tensor<B, D>,
) -> Tensor<B, D> {
    burn::tensor::activation::silu(gate) * up
}

#[cfg(all(test, feature = "ndarray"))]
mod tests;
