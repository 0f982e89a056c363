//! Masked scaled-dot-product attention as a [`HostOp`], over separate queries, keys and values
//! ([`AttentionOp`]) or over a fused projection ([`QkvAttentionOp`]). The flash kernel reads the
//! heads through strided views and writes its outputs and gradients straight into their final
//! layout, so neither op copies a head in or out.

use burn_ndarray::NdArrayTensor;
use ndarray::{ArcArray, Array4, ArrayView4, ArrayViewMut4, Axis, Ix3, Ix4, IxDyn};

use super::{
    HostOp, f32_array,
    flash::{self, Heads, Saved},
    primitive, standard, zeros,
};

/// The op, carrying its mask `[mask_rows, tq, tk]` (`true` = hidden); `batch · heads` must be a
/// multiple of `mask_rows`.
#[derive(Debug, Clone)]
pub(in crate::kernels) struct AttentionOp {
    pub mask: Option<ArcArray<bool, Ix3>>,
}

/// Where the inputs live.
#[derive(Debug, Clone)]
enum Inputs {
    /// Queries, keys and values, `[batch, heads, t, d]` each, in whatever layout they came.
    Separate([ArcArray<f32, Ix4>; 3]),
    /// The fused projection `[batch, seq, 3 · heads · d]` (standard layout).
    Fused {
        qkv: ArcArray<f32, Ix3>,
        heads: usize,
    },
}

impl Inputs {
    /// Queries, keys and values as `[batch, heads, t, d]` views.
    fn views(&self) -> [ArrayView4<'_, f32>; 3] {
        match self {
            Inputs::Separate([q, k, v]) => [q.view(), k.view(), v.view()],
            Inputs::Fused { qkv, heads } => {
                let (b, t, features) = qkv.dim();
                let d = features / (3 * heads);
                let parts = qkv
                    .view()
                    .into_shape_with_order((b, t, 3, *heads, d))
                    .expect("the fused projection splits into 3 · heads · d");
                [0, 1, 2].map(|part| {
                    parts
                        .index_axis_move(Axis(2), part)
                        .permuted_axes([0, 2, 1, 3])
                })
            }
        }
    }
}

/// What both passes read.
#[derive(Debug, Clone)]
pub(in crate::kernels) struct AttentionState {
    inputs: Inputs,
    mask: Option<ArcArray<bool, Ix3>>,
    /// Each query's log-sum-exp, `[batch · heads, tq]`.
    lse: ArcArray<f32, ndarray::Ix2>,
}

impl AttentionState {
    fn heads(&self) -> Heads<'_> {
        heads_of(self.inputs.views(), self.mask.as_ref())
    }
}

fn heads_of<'a>(
    [q, k, v]: [ArrayView4<'a, f32>; 3],
    mask: Option<&'a ArcArray<bool, Ix3>>,
) -> Heads<'a> {
    let (b, h, _, d) = q.dim();
    let rows = mask.map_or(1, |m| m.dim().0);
    Heads {
        q,
        k,
        v,
        mask: mask.map(|m| m.view()),
        heads_per_mask_row: (b * h) / rows.max(1),
        scale: (1.0 / (d as f64).sqrt()) as f32,
    }
}

/// Whether `mask` (`[rows, tq, tk]`) fits `n` heads of `tq` queries over `tk` keys.
fn mask_fits(mask: Option<&ArcArray<bool, Ix3>>, n: usize, tq: usize, tk: usize) -> bool {
    mask.is_none_or(|m| {
        let (rows, mq, mk) = m.dim();
        rows != 0 && n.is_multiple_of(rows) && mq == tq && mk == tk
    })
}

/// A zero-filled `[d0, d1, d2, d3]` array.
fn zeros4(shape: (usize, usize, usize, usize)) -> Array4<f32> {
    let (a, b, c, d) = shape;
    Array4::from_shape_vec(shape, zeros(a * b * c * d)).expect("the buffer holds the shape")
}

fn array4(t: NdArrayTensor) -> Option<ArcArray<f32, Ix4>> {
    f32_array(t)?.into_dimensionality::<Ix4>().ok()
}

impl HostOp<3> for AttentionOp {
    type State = AttentionState;

    fn forward(&self, [q, k, v]: [NdArrayTensor; 3]) -> Option<(NdArrayTensor, AttentionState)> {
        let (q, k, v) = (array4(q)?, array4(k)?, array4(v)?);
        let (b, h, tq, dk) = q.dim();
        let (kb, kh, tk, kd) = k.dim();
        let (vb, vh, vt, dv) = v.dim();
        if (kb, kh, kd) != (b, h, dk) || (vb, vh, vt) != (b, h, tk) {
            return None;
        }
        if !mask_fits(self.mask.as_ref(), b * h, tq, tk) {
            return None;
        }
        let inputs = Inputs::Separate([q, k, v]);
        let mut out = zeros4((b, h, tq, dv));
        let lse = flash::forward(
            &heads_of(inputs.views(), self.mask.as_ref()),
            out.view_mut(),
        );
        let state = AttentionState {
            inputs,
            mask: self.mask.clone(),
            lse: lse.into_shared(),
        };
        Some((primitive(out.into_shared()), state))
    }

    fn backward(
        state: AttentionState,
        grad: NdArrayTensor,
        needed: [bool; 3],
    ) -> [Option<NdArrayTensor>; 3] {
        let grad = array4(grad).expect("the output gradient is f32 [batch, heads, t, d]");
        let heads = state.heads();
        let mut grads = [heads.q.dim(), heads.k.dim(), heads.v.dim()].map(zeros4);
        let saved = Saved {
            lse: state.lse.view(),
            grad: grad.view(),
        };
        let [dq, dk, dv] = &mut grads;
        flash::backward(
            &heads,
            &saved,
            [dq.view_mut(), dk.view_mut(), dv.view_mut()],
        );
        let [dq, dk, dv] = grads;
        let keep = |g: Array4<f32>, needed: bool| needed.then(|| primitive(g.into_shared()));
        [
            keep(dq, needed[0]),
            keep(dk, needed[1]),
            keep(dv, needed[2]),
        ]
    }
}

/// Self-attention over a fused projection: the input is `[batch, seq, 3·heads·head_dim]`
/// (queries, keys, values side by side, each `heads` heads of `head_dim`), the output the heads
/// merged, `[batch, seq, heads·head_dim]`. The heads are read from the projection and written
/// into the merged output in place, and the backward pass returns one gradient for the
/// projection instead of Burn's three zero-filled slices summed and its axis swaps.
#[derive(Debug, Clone)]
pub(in crate::kernels) struct QkvAttentionOp {
    pub mask: Option<ArcArray<bool, Ix3>>,
    pub heads: usize,
}

/// `[batch, seq, heads, d]` (a standard buffer) as the `[batch, heads, seq, d]` the kernel
/// reads and writes.
fn by_head(a: ArrayViewMut4<'_, f32>) -> ArrayViewMut4<'_, f32> {
    a.permuted_axes([0, 2, 1, 3])
}

/// One part (`[batch, seq, 1, heads, d]`) of the fused projection's gradient, by head.
fn part(a: ndarray::ArrayViewMut5<'_, f32>) -> ArrayViewMut4<'_, f32> {
    by_head(a.index_axis_move(Axis(2), 0))
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
        let inputs = Inputs::Fused { qkv, heads: h };
        let mut merged = zeros4((batch, seq, h, d));
        let lse = flash::forward(
            &heads_of(inputs.views(), self.mask.as_ref()),
            by_head(merged.view_mut()),
        );
        let merged = merged
            .into_shape_with_order(IxDyn(&[batch, seq, h * d]))
            .ok()?;
        let state = AttentionState {
            inputs,
            mask: self.mask.clone(),
            lse: lse.into_shared(),
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
        let heads = state.heads();
        let (batch, h, seq, d) = heads.q.dim();
        let grad = standard(f32_array(grad).expect("the output gradient is f32"));
        let grad = grad
            .view()
            .into_shape_with_order((batch, seq, h, d))
            .expect("the gradient has the output's shape")
            .permuted_axes([0, 2, 1, 3]);
        let saved = Saved {
            lse: state.lse.view(),
            grad,
        };
        let mut dqkv =
            ndarray::Array5::from_shape_vec((batch, seq, 3, h, d), zeros(batch * seq * 3 * h * d))
                .expect("the buffer holds the shape");
        {
            let (dq, rest) = dqkv.view_mut().split_at(Axis(2), 1);
            let (dk, dv) = rest.split_at(Axis(2), 1);
            flash::backward(&heads, &saved, [part(dq), part(dk), part(dv)]);
        }
        let dqkv = dqkv
            .into_shape_with_order(IxDyn(&[batch, seq, 3 * h * d]))
            .expect("the element count is unchanged");
        [Some(primitive(dqkv.into_shared()))]
    }
}
