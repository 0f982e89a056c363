//! Masked scaled-dot-product attention on host arrays, forward and backward, that never holds
//! more than one block of query rows' scores per head (the flash-attention recipe of Dao et al.,
//! 2022, in plain Rust).
//!
//! For every `(batch, head)` pair, queries are taken in blocks of [`BLOCK`] rows. A block only
//! multiplies against the span of keys that some row of it can see (read off the mask), so a
//! causal mask costs about half the products of a dense one and a 512-key window over 1,024
//! positions about three eighths. The forward pass keeps each row's log-sum-exp; the backward
//! pass recomputes the probabilities from it instead of storing `[batch, heads, tq, tk]`.
//!
//! Semantics match [`burn::tensor::module::attention`]'s NaN-safe fallback: `true` in the mask
//! hides a key, and a query that sees no key gets a zero output and zero gradients.

use ndarray::{
    Array2, ArrayView2, ArrayView3, ArrayView4, ArrayViewMut2, ArrayViewMut4, Axis, Slice,
};
use rayon::prelude::*;

use super::{
    matmul::{Threads, gemm_into},
    simd::{self, Simd, WithSimd},
};

/// Query rows per block: 64 rows × 1,024 keys of f32 scores is 256 KiB, which stays in L2.
const BLOCK: usize = 64;

/// Below this many multiply-adds a product is done by plain loops: packing for the blocked
/// matmul costs more than it saves on the tiny per-patch attentions of the pooling layers.
const SMALL_PRODUCT: usize = 16 * 1024;

/// Attention inputs for `n = batch · heads` independent heads, as `[batch, heads, t, d]` views
/// of any strides: the heads of a fused projection are read where they lie, without a copy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Heads<'a> {
    /// Queries `[batch, heads, tq, dk]`.
    pub q: ArrayView4<'a, f32>,
    /// Keys `[batch, heads, tk, dk]`.
    pub k: ArrayView4<'a, f32>,
    /// Values `[batch, heads, tk, dv]`.
    pub v: ArrayView4<'a, f32>,
    /// `true` = hidden, `[mask_rows, tq, tk]`; head `i` (of `batch · heads`, batch-major)
    /// reads row `i / heads_per_mask_row`.
    pub mask: Option<ArrayView3<'a, bool>>,
    /// Heads that share one mask row.
    pub heads_per_mask_row: usize,
    /// Multiplies `q·kᵀ` before the softmax.
    pub scale: f32,
}

impl<'a> Heads<'a> {
    /// `batch · heads`.
    fn count(&self) -> usize {
        let (b, h, _, _) = self.q.dim();
        b * h
    }

    /// Head `i` (batch-major) of `a`, `[t, d]`.
    fn head(a: ArrayView4<'a, f32>, i: usize) -> ArrayView2<'a, f32> {
        let h = a.dim().1;
        a.index_axis_move(Axis(0), i / h)
            .index_axis_move(Axis(0), i % h)
    }
}

/// Every head of `a` (`[batch, heads, t, d]`, batch-major) as its own mutable `[t, d]` view.
fn heads_mut(a: ArrayViewMut4<'_, f32>) -> Vec<ArrayViewMut2<'_, f32>> {
    a.into_outer_iter_mut()
        .flat_map(|batch| batch.into_outer_iter_mut())
        .collect()
}

/// The keys one query row can see lie in `start..end`; when `dense`, every key in between is
/// visible (causal, windowed and document masks), otherwise the mask must be read per key.
#[derive(Debug, Clone, Copy)]
struct RowSpan {
    start: usize,
    end: usize,
    dense: bool,
}

type Ranges = Vec<RowSpan>;

fn visible_ranges(mask: Option<ArrayView2<'_, bool>>, tq: usize, tk: usize) -> Ranges {
    let Some(mask) = mask else {
        let all = RowSpan {
            start: 0,
            end: tk,
            dense: true,
        };
        return vec![all; tq];
    };
    mask.outer_iter()
        .map(|row| {
            let Some(start) = row.iter().position(|&hidden| !hidden) else {
                return RowSpan {
                    start: 0,
                    end: 0,
                    dense: true,
                };
            };
            let end = row.iter().rposition(|&hidden| !hidden).unwrap_or(start) + 1;
            let visible = row.iter().filter(|&&hidden| !hidden).count();
            RowSpan {
                start,
                end,
                dense: visible == end - start,
            }
        })
        .collect()
}

/// Spans per mask row (shared by that row's heads).
fn all_ranges(heads: &Heads<'_>) -> Vec<Ranges> {
    let (tq, tk) = (heads.q.dim().2, heads.k.dim().2);
    match heads.mask {
        None => vec![visible_ranges(None, tq, tk)],
        Some(mask) => mask
            .outer_iter()
            .into_par_iter()
            .map(|m| visible_ranges(Some(m), tq, tk))
            .collect(),
    }
}

/// Key span of a block of rows: the union of the rows' spans.
fn block_span(ranges: &[RowSpan]) -> (usize, usize) {
    ranges
        .iter()
        .filter(|r| r.start < r.end)
        .fold((usize::MAX, 0), |(lo, hi), r| {
            (lo.min(r.start), hi.max(r.end))
        })
}

/// `c = alpha · a · b + beta · c`.
fn gemm(
    alpha: f32,
    a: &ArrayView2<'_, f32>,
    b: &ArrayView2<'_, f32>,
    beta: f32,
    c: &mut ArrayViewMut2<'_, f32>,
) {
    let (m, k) = a.dim();
    let n = b.dim().1;
    if m * k * n >= SMALL_PRODUCT {
        // Heads already run in parallel: one thread per product.
        gemm_into(alpha, a, b, beta, c, Threads::One);
        return;
    }
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f32;
            for p in 0..k {
                acc += a[[i, p]] * b[[p, j]];
            }
            let old = if beta == 0.0 { 0.0 } else { beta * c[[i, j]] };
            c[[i, j]] = old + alpha * acc;
        }
    }
}

/// One block's view of the problem: rows `i0..i0 + rows` against keys `lo..lo + width`.
struct Block<'a> {
    i0: usize,
    rows: usize,
    lo: usize,
    width: usize,
    ranges: &'a [RowSpan],
    mask: Option<ArrayView2<'a, bool>>,
}

impl Block<'_> {
    /// Zeroes row `r`'s block columns outside its key span and sets the hidden keys inside it
    /// (masks with gaps) to −∞; returns the span `a..b` in block columns, or `None` (row
    /// untouched) when the row sees no key.
    #[inline(always)]
    fn hide(&self, r: usize, row: &mut [f32]) -> Option<(usize, usize)> {
        let span = self.ranges[r];
        if span.start >= span.end {
            return None;
        }
        let (a, b) = (span.start - self.lo, span.end - self.lo);
        row[..a].fill(0.0);
        row[b..].fill(0.0);
        if let Some(mask) = self.mask.filter(|_| !span.dense) {
            let hidden = mask.row(self.i0 + r);
            for (j, x) in row[a..b].iter_mut().enumerate() {
                if hidden[span.start + j] {
                    *x = f32::NEG_INFINITY;
                }
            }
        }
        Some((a, b))
    }
}

/// Turns a block's scaled scores (`[rows, width]`, row-major) into probabilities in place and
/// writes each row's log-sum-exp; rows that see no key become zeros with a log-sum-exp of −∞.
struct SoftmaxRows<'s, 'b> {
    block: &'s Block<'b>,
    scores: &'s mut [f32],
    lse: &'s mut [f32],
}

impl WithSimd for SoftmaxRows<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let rows = self.scores.chunks_exact_mut(self.block.width);
        for (r, (row, lse)) in rows.zip(self.lse.iter_mut()).enumerate() {
            let Some((a, b)) = self.block.hide(r, row) else {
                row.fill(0.0);
                *lse = f32::NEG_INFINITY;
                continue;
            };
            // Hidden keys hold −∞, whose exponential is exactly 0.
            let visible = &mut row[a..b];
            let max = simd::max(visible);
            let sum = simd::exp_shifted_sum(visible, max);
            simd::scale(visible, 1.0 / sum);
            *lse = max + sum.ln();
        }
    }
}

/// The backward pass's probabilities: `exp(score − lse)` on visible keys, 0 elsewhere.
struct Probabilities<'s, 'b> {
    block: &'s Block<'b>,
    scores: &'s mut [f32],
    lse: &'s [f32],
}

impl WithSimd for Probabilities<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let rows = self.scores.chunks_exact_mut(self.block.width);
        for (r, (row, &lse)) in rows.zip(self.lse).enumerate() {
            match self.block.hide(r, row) {
                Some((a, b)) if lse != f32::NEG_INFINITY => {
                    simd::exp_shifted_sum(&mut row[a..b], lse);
                }
                _ => row.fill(0.0),
            }
        }
    }
}

/// The softmax backward step in place: `dP ← P ∘ (dP − δ)` with `δ = Σⱼ Pⱼ·dPⱼ` per row (the
/// block spans every visible key, and hidden ones have `P = 0`).
struct ScoreGradients<'s> {
    width: usize,
    probs: &'s [f32],
    grads: &'s mut [f32],
}

impl WithSimd for ScoreGradients<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let rows = self.grads.chunks_exact_mut(self.width);
        for (g, p) in rows.zip(self.probs.chunks_exact(self.width)) {
            let delta = simd::dot(p, g);
            g.iter_mut()
                .zip(p)
                .for_each(|(g, &p)| *g = p * (*g - delta));
        }
    }
}

/// Splits a head's query rows into blocks with their key spans.
fn blocks<'a>(
    ranges: &'a [RowSpan],
    mask: Option<ArrayView2<'a, bool>>,
) -> impl Iterator<Item = Option<Block<'a>>> {
    let tq = ranges.len();
    (0..tq).step_by(BLOCK).map(move |i0| {
        let i1 = (i0 + BLOCK).min(tq);
        let (lo, hi) = block_span(&ranges[i0..i1]);
        (lo < hi).then(|| Block {
            i0,
            rows: i1 - i0,
            lo,
            width: hi - lo,
            ranges: &ranges[i0..i1],
            mask,
        })
    })
}

fn mask_row<'a>(heads: &Heads<'a>, head: usize) -> Option<ArrayView2<'a, bool>> {
    heads
        .mask
        .map(|m| m.index_axis_move(Axis(0), head / heads.heads_per_mask_row))
}

fn ranges_of<'a>(heads: &Heads<'_>, ranges: &'a [Ranges], head: usize) -> &'a [RowSpan] {
    if heads.mask.is_some() {
        &ranges[head / heads.heads_per_mask_row]
    } else {
        &ranges[0]
    }
}

/// Softmax of one head's attention into its `[tq, dv]` output (zeros on entry) and `[tq]`
/// log-sum-exp (−∞ on entry, which rows outside every block keep).
fn forward_head(
    heads: &Heads<'_>,
    head: usize,
    ranges: &[RowSpan],
    (mut out, lse): (ArrayViewMut2<'_, f32>, &mut [f32]),
    scratch: &mut Vec<f32>,
) {
    let q = Heads::head(heads.q, head);
    let k = Heads::head(heads.k, head);
    let v = Heads::head(heads.v, head);
    for block in blocks(ranges, mask_row(heads, head)).flatten() {
        let (i0, rows, lo, width) = (block.i0, block.rows, block.lo, block.width);
        scratch.resize(rows * width, 0.0);
        let scores = &mut scratch[..rows * width];
        let qb = q.slice_axis(Axis(0), Slice::from(i0..i0 + rows));
        let kb = k.slice_axis(Axis(0), Slice::from(lo..lo + width));
        let mut p = ArrayViewMut2::from_shape((rows, width), &mut *scores)
            .expect("scratch holds rows × width");
        gemm(heads.scale, &qb, &kb.t(), 0.0, &mut p);
        simd::dispatch(SoftmaxRows {
            block: &block,
            scores,
            lse: &mut lse[i0..i0 + rows],
        });
        let p = ArrayView2::from_shape((rows, width), &scratch[..rows * width])
            .expect("scratch holds rows × width");
        let vb = v.slice_axis(Axis(0), Slice::from(lo..lo + width));
        let mut ob = out.slice_axis_mut(Axis(0), Slice::from(i0..i0 + rows));
        gemm(1.0, &p, &vb, 0.0, &mut ob);
    }
}

/// Forward pass over every head, each written straight into its part of `out`
/// (`[batch, heads, tq, dv]`, zeros on entry, any strides); returns each query's log-sum-exp
/// `[batch · heads, tq]` (−∞ for a query that sees no key).
pub(crate) fn forward(heads: &Heads<'_>, out: ArrayViewMut4<'_, f32>) -> Array2<f32> {
    let (n, tq) = (heads.count(), heads.q.dim().2);
    let ranges = all_ranges(heads);
    let mut lse = vec![f32::NEG_INFINITY; n * tq];
    if n * tq > 0 {
        heads_mut(out)
            .into_par_iter()
            .zip(lse.par_chunks_mut(tq))
            .enumerate()
            .for_each_init(Vec::new, |scratch, (head, parts)| {
                forward_head(heads, head, ranges_of(heads, &ranges, head), parts, scratch);
            });
    }
    Array2::from_shape_vec((n, tq), lse).expect("the buffer holds [n, tq]")
}

/// Everything the backward pass reads besides the forward inputs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Saved<'a> {
    /// The forward log-sum-exp `[n, tq]`.
    pub lse: ArrayView2<'a, f32>,
    /// The gradient of the loss with respect to the output, `[batch, heads, tq, dv]`.
    pub grad: ArrayView4<'a, f32>,
}

/// One head's parts of dq, dk and dv (zeros on entry).
type HeadGradients<'a> = (
    ArrayViewMut2<'a, f32>,
    ArrayViewMut2<'a, f32>,
    ArrayViewMut2<'a, f32>,
);

fn backward_head(
    heads: &Heads<'_>,
    saved: &Saved<'_>,
    head: usize,
    ranges: &[RowSpan],
    (mut dq, mut dk, mut dv): HeadGradients<'_>,
    scratch: &mut (Vec<f32>, Vec<f32>),
) {
    let q = Heads::head(heads.q, head);
    let k = Heads::head(heads.k, head);
    let v = Heads::head(heads.v, head);
    let grad = Heads::head(saved.grad, head);
    let lse = saved.lse.row(head).to_vec();
    let (probs, dprobs) = scratch;
    for block in blocks(ranges, mask_row(heads, head)).flatten() {
        let (i0, rows, lo, width) = (block.i0, block.rows, block.lo, block.width);
        probs.resize(rows * width, 0.0);
        dprobs.resize(rows * width, 0.0);
        let mut p = ArrayViewMut2::from_shape((rows, width), &mut probs[..rows * width])
            .expect("scratch holds rows × width");
        let mut dp = ArrayViewMut2::from_shape((rows, width), &mut dprobs[..rows * width])
            .expect("scratch holds rows × width");
        let qb = q.slice_axis(Axis(0), Slice::from(i0..i0 + rows));
        let kb = k.slice_axis(Axis(0), Slice::from(lo..lo + width));
        let vb = v.slice_axis(Axis(0), Slice::from(lo..lo + width));
        let gb = grad.slice_axis(Axis(0), Slice::from(i0..i0 + rows));
        // P = exp(scale · q·kᵀ − lse), zero where hidden.
        gemm(heads.scale, &qb, &kb.t(), 0.0, &mut p);
        simd::dispatch(Probabilities {
            block: &block,
            scores: p.as_slice_mut().expect("scratch is contiguous"),
            lse: &lse[i0..i0 + rows],
        });
        // dV += Pᵀ·dO; dP = dO·Vᵀ; dS = P ∘ (dP − δ).
        gemm(
            1.0,
            &p.view().t(),
            &gb,
            1.0,
            &mut dv.slice_axis_mut(Axis(0), Slice::from(lo..lo + width)),
        );
        gemm(1.0, &gb, &vb.t(), 0.0, &mut dp);
        simd::dispatch(ScoreGradients {
            width,
            probs: p.as_slice().expect("scratch is contiguous"),
            grads: dp.as_slice_mut().expect("scratch is contiguous"),
        });
        // dQ = scale · dS·K; dK += scale · dSᵀ·Q.
        gemm(
            heads.scale,
            &dp.view(),
            &kb,
            0.0,
            &mut dq.slice_axis_mut(Axis(0), Slice::from(i0..i0 + rows)),
        );
        gemm(
            heads.scale,
            &dp.view().t(),
            &qb,
            1.0,
            &mut dk.slice_axis_mut(Axis(0), Slice::from(lo..lo + width)),
        );
    }
}

/// Gradients of the queries, keys and values (`[batch, heads, t, d]` each, zeros on entry,
/// any strides), every head written straight into its parts.
pub(crate) fn backward(
    heads: &Heads<'_>,
    saved: &Saved<'_>,
    [dq, dk, dv]: [ArrayViewMut4<'_, f32>; 3],
) {
    let (n, tq, tk) = (heads.count(), heads.q.dim().2, heads.k.dim().2);
    let ranges = all_ranges(heads);
    if n * tq * tk > 0 {
        heads_mut(dq)
            .into_par_iter()
            .zip(heads_mut(dk))
            .zip(heads_mut(dv))
            .enumerate()
            .for_each_init(
                || (Vec::new(), Vec::new()),
                |scratch, (head, ((dq, dk), dv))| {
                    let ranges = ranges_of(heads, &ranges, head);
                    backward_head(heads, saved, head, ranges, (dq, dk, dv), scratch);
                },
            );
    }
}
