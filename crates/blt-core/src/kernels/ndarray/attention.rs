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

/// Self-attention over a fused projection: the input is `[batch, seq, 3·heads·head_dim]`
/// (queries, keys, values side by side, each `heads` heads of `head_dim`), the output the heads
/// merged, `[batch, seq, heads·head_dim]`. The split into heads and the merge happen here, so
/// the backward pass returns one gradient for the projection instead of Burn's three
/// zero-filled slices summed and its axis swaps.
#[derive(Debug, Clone)]
pub(in crate::kernels) struct QkvAttentionOp {
    pub mask: Option<ArcArray<bool, Ix3>>,
    pub heads: usize,
}

/// `[b, t, 3, h, d]` part `part` as `[b·h, t, d]` in standard layout.
fn split_part(qkv: &ndarray::ArrayView5<'_, f32>, part: usize) -> Float3 {
    let (b, t, _, h, d) = qkv.dim();
    let part = qkv
        .index_axis(ndarray::Axis(2), part)
        .permuted_axes([0, 2, 1, 3]);
    part.as_standard_layout()
        .into_owned()
        .into_shape_with_order((b * h, t, d))
        .expect("the element count is unchanged")
        .into_shared()
}

/// `[b·h, t, d]` heads as `[b, t, h, d]` rows of merged heads (a view).
fn merged_view(a: &Float3, batch: usize) -> ndarray::ArrayView4<'_, f32> {
    let (n, t, d) = a.dim();
    a.view()
        .into_shape_with_order((batch, n / batch, t, d))
        .expect("the element count is unchanged")
        .permuted_axes([0, 2, 1, 3])
}

impl HostOp<1> for QkvAttentionOp {
    type State = AttentionState;

    fn forward(&self, [qkv]: [NdArrayTensor; 1]) -> Option<(NdArrayTensor, AttentionState)> {
        let qkv = standard(f32_array(qkv)?.into_dimensionality::<Ix3>().ok()?);
        let (batch, seq, features) = qkv.dim();
        let h = self.heads;
        if h == 0 || features == 0 || !features.is_multiple_of(3 * h) {
            return None;
        }
        let d = features / (3 * h);
        if let Some(m) = &self.mask {
            let (rows, mq, mk) = m.dim();
            if (rows != 1 && rows != batch) || mq != seq || mk != seq {
                return None;
            }
        }
        let parts = qkv
            .view()
            .into_shape_with_order((batch, seq, 3, h, d))
            .ok()?;
        let inputs = Folded {
            q: split_part(&parts, 0),
            k: split_part(&parts, 1),
            v: split_part(&parts, 2),
            mask: self.mask.clone(),
            batch,
            heads: h,
            scale: (1.0 / (d as f64).sqrt()) as f32,
        };
        let forward = flash::forward(&inputs.view());
        let out = forward.out.into_shared();
        let merged = merged_view(&out, batch)
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order(IxDyn(&[batch, seq, h * d]))
            .ok()?;
        let state = AttentionState {
            inputs,
            lse: forward.lse.into_shared(),
        };
        Some((primitive(merged.into_shared()), state))
    }

    fn backward(
        state: AttentionState,
        grad: NdArrayTensor,
        [need_qkv]: [bool; 1],
    ) -> [Option<NdArrayTensor>; 1] {
        if !need_qkv {
            return [None];
        }
        let inputs = &state.inputs;
        let (batch, h) = (inputs.batch, inputs.heads);
        let (_, seq, d) = inputs.q.dim();
        let grad = standard(f32_array(grad).expect("the output gradient is f32"));
        let grad = grad
            .view()
            .into_shape_with_order((batch, seq, h, d))
            .expect("the gradient has the output's shape")
            .permuted_axes([0, 2, 1, 3])
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((batch * h, seq, d))
            .expect("the element count is unchanged");
        let saved = Saved {
            lse: state.lse.view(),
            grad: grad.view(),
        };
        let g = flash::backward(&inputs.view(), &saved);
        let mut dqkv = ndarray::Array5::from_shape_vec(
            (batch, seq, 3, h, d),
            super::zeros(batch * seq * 3 * h * d),
        )
        .expect("the buffer holds the shape");
        for (part, g) in [g.dq, g.dk, g.dv].into_iter().enumerate() {
            let g = g.into_shared();
            dqkv.index_axis_mut(ndarray::Axis(2), part)
                .assign(&merged_view(&g, batch));
        }
        let dqkv = dqkv
            .into_shape_with_order(IxDyn(&[batch, seq, 3 * h * d]))
            .expect("the element count is unchanged");
        [Some(primitive(dqkv.into_shared()))]
    }
}
