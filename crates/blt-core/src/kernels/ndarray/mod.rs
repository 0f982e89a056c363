//! Our host kernels wired into Burn's `NdArray` backend, with and without `Autodiff`.
//!
//! An op is a [`HostOp`]: a forward pass on NdArray's tensor primitives that also returns what
//! its backward pass needs, and that backward pass. [`run`] recognises `NdArray` and
//! `Autodiff<NdArray>` (either checkpointing strategy) by type at run time; under `Autodiff`
//! the op becomes one node of the graph with its own backward step, so none of its
//! intermediates is recorded op by op. Any other backend gets its inputs back untouched.

mod adamw;
mod attention;
mod flash;
mod linear;
mod matmul;
mod rms_norm;
mod rope;
mod skinny;
mod swiglu;

use std::{
    any::{Any, TypeId},
    marker::PhantomData,
};

use burn::{
    backend::{
        Autodiff, NdArray,
        autodiff::{
            checkpoint::{
                base::Checkpointer,
                strategy::{BalancedCheckpointing, CheckpointStrategy, NoCheckpointing},
            },
            grads::Gradients,
            ops::{Backward, Ops, OpsKind},
        },
    },
    tensor::{Tensor, TensorPrimitive, backend::Backend, ops::FloatTensor},
};
use burn_ndarray::NdArrayTensor;
use ndarray::{ArcArray, Dimension, IxDyn};

// The vector helpers live at the crate root (the host decoder uses them too).
use crate::simd;

pub(super) use attention::{AttentionOp, QkvAttentionOp};

/// `y += x·w` for row-major `x` (`rows × d_in`), `w` (`d_in × d_out`) and `y` (`rows × d_out`)
/// on `gemm`'s kernels over rayon's pool: the many-row products of the host decoder's prefill.
///
/// # Panics
/// If the lengths do not match the shapes.
pub(crate) fn gemm_rows(x: &[f32], w: &[f32], y: &mut [f32], [rows, d_in, d_out]: [usize; 3]) {
    let a = ndarray::ArrayView2::from_shape((rows, d_in), x).expect("x is rows × d_in");
    let b = ndarray::ArrayView2::from_shape((d_in, d_out), w).expect("w is d_in × d_out");
    let mut c = ndarray::ArrayViewMut2::from_shape((rows, d_out), y).expect("y is rows × d_out");
    matmul::gemm_into(1.0, &a, &b, 1.0, &mut c, matmul::Threads::Pool);
}
pub(super) use linear::LinearOp;
pub(super) use rms_norm::RmsNormOp;
pub(super) use rope::RopeOp;
pub(super) use swiglu::SwiGluOp;

type AutodiffTensor = FloatTensor<Autodiff<NdArray>>;

/// An op with a forward and a backward pass on NdArray primitives, over `N` float inputs.
pub(in crate::kernels) trait HostOp<const N: usize>: Sized {
    /// What the backward pass reads.
    type State: Clone + Send + std::fmt::Debug + 'static;

    /// The output and the backward state, or `None` when the inputs are not what the kernel
    /// handles (another dtype, an unexpected rank); the caller then composes Burn ops.
    fn forward(&self, inputs: [NdArrayTensor; N]) -> Option<(NdArrayTensor, Self::State)>;

    /// Gradients of the inputs whose `needed` flag is set, from the output's gradient.
    fn backward(
        state: Self::State,
        grad: NdArrayTensor,
        needed: [bool; N],
    ) -> [Option<NdArrayTensor>; N];
}

fn same<A: 'static, B: 'static>() -> bool {
    TypeId::of::<A>() == TypeId::of::<B>()
}

/// Moves a value to the type it is known to be (checked with [`same`] first).
fn cast<A: 'static, B: 'static>(value: A) -> B {
    *(Box::new(value) as Box<dyn Any>)
        .downcast::<B>()
        .expect("the caller checked that both types are the same")
}

/// Whether `B` is `NdArray` itself (not under `Autodiff`).
pub(super) fn is_plain<B: Backend>() -> bool {
    same::<B, NdArray>()
}

/// One AdamW step on `NdArray` primitives (see [`adamw::adamw`]); `None` for another backend
/// or inputs the kernel does not take.
pub(super) fn adamw_step<B: Backend>(
    step: &super::AdamWStep,
    param: FloatTensor<B>,
    grad: FloatTensor<B>,
    moments: Option<(FloatTensor<B>, FloatTensor<B>)>,
) -> Option<[FloatTensor<B>; 3]> {
    if !is_plain::<B>() {
        return None;
    }
    let moments = moments.map(|(m, v)| (cast(m), cast(v)));
    adamw::adamw(step, cast(param), cast(grad), moments).map(|out| out.map(cast))
}

/// Whether `B` is a backend [`run`] handles.
pub(super) fn handles<B: Backend>() -> bool {
    same::<B, NdArray>()
        || same::<B, Autodiff<NdArray, NoCheckpointing>>()
        || same::<B, Autodiff<NdArray, BalancedCheckpointing>>()
}

/// NdArray's primitive behind a bool tensor of `B` (NdArray and `Autodiff<NdArray>` share it).
pub(super) fn bool_array<B: Backend, const D: usize>(
    mask: Tensor<B, D, burn::tensor::Bool>,
) -> Option<ArcArray<bool, IxDyn>> {
    if !handles::<B>() {
        return None;
    }
    match cast::<B::BoolTensorPrimitive, NdArrayTensor>(mask.into_primitive()) {
        NdArrayTensor::Bool(storage) => Some(storage.into_shared()),
        _ => None,
    }
}

/// Runs `op` when `B` is `NdArray` or `Autodiff<NdArray>` and the kernel takes the inputs;
/// `None` otherwise (the caller then composes Burn ops).
pub(super) fn run<B: Backend, O: HostOp<N> + 'static, const N: usize>(
    op: &O,
    inputs: [FloatTensor<B>; N],
) -> Option<FloatTensor<B>> {
    if same::<B, NdArray>() {
        let (out, _) = op.forward(inputs.map(cast::<_, NdArrayTensor>))?;
        return Some(cast(out));
    }
    let tracked = if same::<B, Autodiff<NdArray, NoCheckpointing>>() {
        run_autodiff::<O, NoCheckpointing, N>
    } else if same::<B, Autodiff<NdArray, BalancedCheckpointing>>() {
        run_autodiff::<O, BalancedCheckpointing, N>
    } else {
        return None;
    };
    tracked(op, inputs.map(cast::<_, AutodiffTensor>)).map(cast)
}

/// A float tensor's primitive.
pub(super) fn float<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

/// A float primitive as a tensor.
pub(super) fn tensor<B: Backend, const D: usize>(p: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

fn run_autodiff<O: HostOp<N> + 'static, C: CheckpointStrategy, const N: usize>(
    op: &O,
    inputs: [AutodiffTensor; N],
) -> Option<AutodiffTensor> {
    let (out, state) = op.forward(inputs.each_ref().map(|t| t.primitive.clone()))?;
    let nodes = inputs.map(|t| t.node);
    Some(
        match HostBackward::<O>(PhantomData)
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(state, out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        },
    )
}

/// The autodiff node of a [`HostOp`].
struct HostBackward<O>(PhantomData<fn() -> O>);

impl<O> std::fmt::Debug for HostBackward<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HostBackward<{}>", std::any::type_name::<O>())
    }
}

impl<O: HostOp<N> + 'static, const N: usize> Backward<NdArray, N> for HostBackward<O> {
    type State = O::State;

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<NdArray>(&ops.node);
        let needed = ops.parents.each_ref().map(Option::is_some);
        let computed = O::backward(ops.state, grad, needed);
        for (parent, g) in ops.parents.into_iter().zip(computed) {
            if let (Some(node), Some(g)) = (parent, g) {
                grads.register::<NdArray>(node.id, g);
            }
        }
    }
}

/// The f32 array behind a primitive, or `None` for another dtype.
fn f32_array(t: NdArrayTensor) -> Option<ArcArray<f32, IxDyn>> {
    match t {
        NdArrayTensor::F32(storage) => Some(storage.into_shared()),
        _ => None,
    }
}

/// `a` in standard (row-major) layout, copied only when it is not.
fn standard<D: Dimension>(a: ArcArray<f32, D>) -> ArcArray<f32, D> {
    if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned().into_shared()
    }
}

/// `n` zeros, written by all of rayon's threads when `n` is large. `vec![0.0; n]` is one
/// `memset` on the calling thread once the allocator reuses memory (it always does here, see
/// `blt-cli`'s allocator settings), and a profile of the bench had every `memset` sample on
/// the main thread, 5% of the step, while the other core waited.
fn zeros(n: usize) -> Vec<f32> {
    use rayon::prelude::*;
    const SERIAL_BELOW: usize = 1 << 16;
    if n < SERIAL_BELOW {
        return vec![0.0; n];
    }
    let mut out = Vec::with_capacity(n);
    out.par_extend(rayon::iter::repeat_n(0.0f32, n));
    out
}

/// An f32 array as a primitive.
fn primitive<D: Dimension>(a: ArcArray<f32, D>) -> NdArrayTensor {
    NdArrayTensor::from(a.into_dyn())
}
