//! `y = x·W` for `x: [..., in]` and `W: [in, out]` as a [`HostOp`]: one 2-D product over all
//! leading dimensions, forward and backward, with no copies of `x`, `W` or the gradients.
//!
//! Burn's NdArray backend (0.21) runs `Linear` as a batched matmul against a broadcast weight:
//! it copies both inputs on reshape, zero-fills and copies the output, and its backward pass
//! forms one `[in, out]` weight gradient per batch row before summing them.

use burn_ndarray::NdArrayTensor;
use ndarray::{ArcArray, Ix2, IxDyn};

use super::{
    HostOp, f32_array,
    matmul::{Threads, matmul},
    primitive, standard,
};

type Float2 = ArcArray<f32, Ix2>;

/// The op (no parameters: the weight is its second input).
#[derive(Debug, Clone, Copy)]
pub(in crate::kernels) struct LinearOp;

/// The inputs as matrices, and the input's shape to restore.
#[derive(Debug, Clone)]
pub(in crate::kernels) struct LinearState {
    x: Float2,
    w: Float2,
    shape: Vec<usize>,
}

impl HostOp<2> for LinearOp {
    type State = LinearState;

    fn forward(&self, [x, w]: [NdArrayTensor; 2]) -> Option<(NdArrayTensor, LinearState)> {
        let x = standard(f32_array(x)?);
        let w = f32_array(w)?.into_dimensionality::<Ix2>().ok()?;
        let shape = x.shape().to_vec();
        let (&features, leading) = shape.split_last()?;
        if features != w.nrows() || leading.is_empty() {
            return None;
        }
        let rows = leading.iter().product();
        let x = x.into_shape_with_order((rows, features)).ok()?;
        let y = matmul(&x.view(), &w.view(), Threads::Pool);
        let mut out_shape = leading.to_vec();
        out_shape.push(w.ncols());
        let y = y
            .into_shape_with_order(IxDyn(&out_shape))
            .expect("the element count is unchanged");
        Some((primitive(y.into_shared()), LinearState { x, w, shape }))
    }

    fn backward(
        state: LinearState,
        grad: NdArrayTensor,
        [need_x, need_w]: [bool; 2],
    ) -> [Option<NdArrayTensor>; 2] {
        let grad = standard(f32_array(grad).expect("the output gradient is f32"));
        let rows = state.x.nrows();
        let grad = grad
            .into_shape_with_order((rows, state.w.ncols()))
            .expect("the output gradient has the output's shape");
        let dx = need_x.then(|| {
            let dx = matmul(&grad.view(), &state.w.t(), Threads::Pool);
            primitive(
                dx.into_shape_with_order(IxDyn(&state.shape))
                    .expect("the element count is unchanged")
                    .into_shared(),
            )
        });
        let dw = need_w
            .then(|| primitive(matmul(&state.x.t(), &grad.view(), Threads::Pool).into_shared()));
        [dx, dw]
    }
}
