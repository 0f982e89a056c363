//! Masked scaled-dot-product attention as a [`HostOp`] over queries, keys and values.

use burn_ndarray::NdArrayTensor;
use ndarray::{ArcArray, Ix2, Ix3, IxDyn};

use super::{
    HostOp, f32_array,
    flash::{self, Heads, Saved},
    primitive, standard,
};

type Float3 = ArcArray<f32, Ix3>;

/// The op, carrying its mask `[batch or 1, tq, tk]` (`true` = hidden).
#[derive(Debug, Clone)]
pub(in crate::kernels) struct AttentionOp {
    pub mask: Option<ArcArray<bool, Ix3>>,
}

/// Inputs folded to `[batch · heads, t, d]` in standard layout.
#[derive(Debug, Clone)]
pub(in crate::kernels) struct Folded {
    q: Float3,
    k: Float3,
    v: Float3,
    mask: Option<ArcArray<bool, Ix3>>,
    batch: usize,
    heads: usize,
    scale: f32,
}

impl Folded {
    fn view(&self) -> Heads<'_> {
        let n = self.q.dim().0;
        let mask_rows = self.mask.as_ref().map_or(1, |m| m.dim().0);
        Heads {
            q: self.q.view(),
            k: self.k.view(),
            v: self.v.view(),
            mask: self.mask.as_ref().map(|m| m.view()),
            heads_per_mask_row: n / mask_rows,
            scale: self.scale,
        }
    }

    /// `[batch · heads, t, d]` back to `[batch, heads, t, d]`.
    fn unfold(&self, a: Float3) -> NdArrayTensor {
        let (_, t, d) = a.dim();
        primitive(
            a.into_shape_with_order(IxDyn(&[self.batch, self.heads, t, d]))
                .expect("the element count is unchanged"),
        )
    }
}

/// `[batch, heads, t, d]` to `[batch · heads, t, d]` in standard layout.
fn fold(t: NdArrayTensor) -> Option<(Float3, [usize; 2])> {
    let a = f32_array(t)?;
    let &[b, h, len, d] = a.shape() else {
        return None;
    };
    let folded = standard(a).into_shape_with_order((b * h, len, d)).ok()?;
    Some((folded, [b, h]))
}

/// What the backward pass reads: the folded inputs and each query's log-sum-exp.
#[derive(Debug, Clone)]
pub(in crate::kernels) struct AttentionState {
    inputs: Folded,
    lse: ArcArray<f32, Ix2>,
}

impl HostOp<3> for AttentionOp {
    type State = AttentionState;

    fn forward(&self, [q, k, v]: [NdArrayTensor; 3]) -> Option<(NdArrayTensor, AttentionState)> {
        let (q, [batch, heads]) = fold(q)?;
        let (k, _) = fold(k)?;
        let (v, _) = fold(v)?;
        let (n, tq, dk) = q.dim();
        if k.dim().0 != n || v.dim().0 != n || k.dim().1 != v.dim().1 || k.dim().2 != dk {
            return None;
        }
        if let Some(m) = &self.mask {
            let (rows, mq, mk) = m.dim();
            if rows == 0 || !n.is_multiple_of(rows) || mq != tq || mk != k.dim().1 {
                return None;
            }
        }
        let inputs = Folded {
            q,
            k,
            v,
            mask: self.mask.clone(),
            batch,
            heads,
            scale: (1.0 / (dk as f64).sqrt()) as f32,
        };
        let forward = flash::forward(&inputs.view());
        let output = inputs.unfold(forward.out.into_shared());
        let state = AttentionState {
            inputs,
            lse: forward.lse.into_shared(),
        };
        Some((output, state))
    }

    fn backward(
        state: AttentionState,
        grad: NdArrayTensor,
        needed: [bool; 3],
    ) -> [Option<NdArrayTensor>; 3] {
        let (grad, _) = fold(grad).expect("the output gradient is f32 [batch, heads, t, d]");
        let saved = Saved {
            lse: state.lse.view(),
            grad: grad.view(),
        };
        let g = flash::backward(&state.inputs.view(), &saved);
        let keep = |i: usize, a: ndarray::Array3<f32>| {
            needed[i].then(|| state.inputs.unfold(a.into_shared()))
        };
        [keep(0, g.dq), keep(1, g.dk), keep(2, g.dv)]
    }
}
