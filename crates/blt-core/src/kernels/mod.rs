//! Fused ops with a fast path per backend and a generic fallback built from Burn ops:
//! masked attention (also straight from a fused qkv projection), linear layers, RMSNorm, the
//! SwiGLU gate, rotary encoding and the AdamW update.
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
#[cfg(feature = "ndarray")]
pub(crate) use ndarray::gemm_rows;

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
    /// Products with at most four rows on the left (a linear layer in incremental decoding)
    /// split by output columns over rayon's threads (off: `gemm`'s one-thread path).
    Gemv,
    /// AdamW's parameter and moment update.
    AdamW,
    /// Rotary position encoding of flat tokens.
    Rope,
}

impl Kernel {
    const ALL: [Kernel; 8] = [
        Kernel::Attention,
        Kernel::Linear,
        Kernel::RmsNorm,
        Kernel::SwiGlu,
        Kernel::Gemm,
        Kernel::Gemv,
        Kernel::AdamW,
        Kernel::Rope,
    ];

    fn name(self) -> &'static str {
        match self {
            Kernel::Attention => "attention",
            Kernel::Linear => "linear",
            Kernel::RmsNorm => "rms_norm",
            Kernel::SwiGlu => "swiglu",
            Kernel::Gemm => "gemm",
            Kernel::Gemv => "gemv",
            Kernel::AdamW => "adamw",
            Kernel::Rope => "rope",
        }
    }
}

/// Whether a kernel may run. The environment variable `BLT_KERNELS` lists the enabled ones
/// (`attention,linear,rms_norm,swiglu,gemm,gemv,adamw,rope`; other names are ignored), or says
/// `off` (none) or `all` (the default); the rest take the generic path. It exists for A/B measurements and for ruling
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

/// Self-attention over a fused projection `qkv: [batch, seq, 3·heads·head_dim]` (queries, keys
/// and values side by side, each `heads` heads) with an optional mask `[batch or 1, seq, seq]`:
/// the heads' outputs merged, `[batch, seq, heads·head_dim]`, the same as splitting the heads,
/// calling [`attention`] and merging them. `None` when no kernel takes the inputs; the caller
/// then splits the heads itself.
pub(crate) fn qkv_attention<B: Backend>(
    qkv: Tensor<B, 3>,
    mask: Option<Tensor<B, 3, Bool>>,
    heads: usize,
) -> Option<Tensor<B, 3>> {
    #[cfg(feature = "ndarray")]
    if enabled(Kernel::Attention) && ndarray::handles::<B>() {
        let mask = match mask {
            None => None,
            Some(m) => Some(
                ndarray::bool_array(m)?
                    .into_dimensionality::<::ndarray::Ix3>()
                    .ok()?,
            ),
        };
        let op = ndarray::QkvAttentionOp { mask, heads };
        return fast(Kernel::Attention, &op, [ndarray::float(qkv)]);
    }
    let _ = (qkv, mask, heads);
    None
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

/// Rotary encoding of flat tokens `x: [batch, seq, features]` with the tables' rows for them,
/// `cos`, `sin: [1 or batch, seq, head_dim]`: the first `rotated` features are heads turned
/// pair by pair, the rest pass through (see `Rope::apply_flat`). `None` when no kernel takes
/// the inputs; the caller then composes Burn ops.
pub(crate) fn rope_flat<B: Backend>(
    x: Tensor<B, 3>,
    cos: Tensor<B, 3>,
    sin: Tensor<B, 3>,
    rotated: usize,
) -> Option<Tensor<B, 3>> {
    #[cfg(feature = "ndarray")]
    {
        let inputs = [x, cos, sin].map(ndarray::float);
        fast(Kernel::Rope, &ndarray::RopeOp { rotated }, inputs)
    }
    #[cfg(not(feature = "ndarray"))]
    {
        let _ = (x, cos, sin, rotated);
        None
    }
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

/// One AdamW update: the hyper-parameters, the learning rate and the step number `time`
/// (1 for the first update, which is what the bias corrections divide by).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWStep {
    /// Learning rate of this step.
    pub lr: f64,
    /// Decay of the first moment.
    pub beta_1: f32,
    /// Decay of the second moment.
    pub beta_2: f32,
    /// Added to the root of the second moment.
    pub epsilon: f32,
    /// Decoupled weight decay (the parameter is scaled by `1 − lr·weight_decay`).
    pub weight_decay: f32,
    /// Steps taken, this one included (≥ 1).
    pub time: usize,
}

/// AdamW's two moment estimates of one parameter.
#[derive(Debug, Clone)]
pub struct Moments<B: Backend, const D: usize> {
    /// The first moment (mean of the gradients).
    pub first: Tensor<B, D>,
    /// The second moment (mean of the squared gradients).
    pub second: Tensor<B, D>,
}

/// One AdamW step: the new parameter and moments from the parameter, its gradient and the
/// moments before the step (`None` before the first). The arithmetic is Burn's `AdamW`
/// (without AMSGrad or cautious decay), in its order: `m ← β₁m + (1−β₁)g`,
/// `v ← β₂v + (1−β₂)g²`, `p ← p(1 − lr·λ) − lr·m̂/(√v̂ + ε)` with the bias-corrected `m̂`,
/// `v̂`. On `NdArray` it is one pass that updates the moments (and the parameter, when nothing
/// else holds it) in place; elsewhere it is composed from Burn ops.
pub fn adamw<B: Backend, const D: usize>(
    step: &AdamWStep,
    param: Tensor<B, D>,
    grad: Tensor<B, D>,
    moments: Option<Moments<B, D>>,
) -> (Tensor<B, D>, Moments<B, D>) {
    #[cfg(feature = "ndarray")]
    if enabled(Kernel::AdamW) && ndarray::is_plain::<B>() {
        // The inputs move into the kernel (a clone would share their buffers and rule out the
        // in-place update), so everything it checks is checked here first.
        let f32_of_shape =
            |t: &Tensor<B, D>| t.dtype() == burn::tensor::DType::F32 && t.shape() == param.shape();
        let takes = f32_of_shape(&param)
            && f32_of_shape(&grad)
            && moments
                .as_ref()
                .is_none_or(|m| f32_of_shape(&m.first) && f32_of_shape(&m.second));
        if takes {
            let prims = moments.map(|m| (ndarray::float(m.first), ndarray::float(m.second)));
            let [p, first, second] =
                ndarray::adamw_step::<B>(step, ndarray::float(param), ndarray::float(grad), prims)
                    .expect("f32 NdArray inputs of one shape, checked above");
            let moments = Moments {
                first: ndarray::tensor(first),
                second: ndarray::tensor(second),
            };
            return (ndarray::tensor(p), moments);
        }
    }
    composed_adamw(step, param, grad, moments)
}

/// The generic form of [`adamw`], from Burn ops.
pub(crate) fn composed_adamw<B: Backend, const D: usize>(
    step: &AdamWStep,
    param: Tensor<B, D>,
    grad: Tensor<B, D>,
    moments: Option<Moments<B, D>>,
) -> (Tensor<B, D>, Moments<B, D>) {
    let (factor_1, factor_2) = (1.0 - step.beta_1, 1.0 - step.beta_2);
    let moments = match moments {
        Some(Moments { first, second }) => Moments {
            first: first.mul_scalar(step.beta_1) + grad.clone().mul_scalar(factor_1),
            second: second.mul_scalar(step.beta_2) + grad.square().mul_scalar(factor_2),
        },
        None => Moments {
            first: grad.clone().mul_scalar(factor_1),
            second: grad.square().mul_scalar(factor_2),
        },
    };
    let time = step.time as i32;
    let m_hat = moments
        .first
        .clone()
        .div_scalar(1.0 - step.beta_1.powi(time));
    let v_hat = moments
        .second
        .clone()
        .div_scalar(1.0 - step.beta_2.powi(time));
    let delta = m_hat / (v_hat.sqrt() + step.epsilon);
    let decay = 1.0 - step.lr * step.weight_decay as f64;
    let param = param.mul_scalar(decay) - delta.mul_scalar(step.lr);
    (param, moments)
}

#[cfg(all(test, feature = "ndarray"))]
mod tests;
