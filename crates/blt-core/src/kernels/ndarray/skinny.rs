//! Products with only a few rows on the left, `[m ≤ 4, k] · [k, n]`: what a linear layer does in
//! incremental generation, one byte (or one patch) per row.
//!
//! Such a product reads the whole weight once and does two flops per weight element, so it runs
//! at the speed of memory, not of the multiply units. `gemm`'s own path for it runs on the
//! calling thread only, leaving the second core's share of the memory bandwidth unused; here
//! the output columns are split into blocks that rayon's threads compute side by side, each
//! streaming its block of the weight's rows once for all left rows.

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use super::simd::{Simd, WithSimd, dispatch};

/// The most left rows this path takes: above it the packed product reuses each weight block
/// for enough rows to be faster.
pub(super) const MAX_ROWS: usize = 4;

/// Below this many weight elements the product is done on one thread: splitting it costs more
/// than it saves.
const PARALLEL_FROM: usize = 1 << 15;

/// Output columns per task: a multiple of the vector width, large enough that each task
/// streams long runs of each weight row.
const BLOCK: usize = 256;

/// Whether [`product`] takes these operands: a few rows, and a right operand whose rows are
/// contiguous (a linear layer's `[in, out]` weight).
pub(super) fn takes(a: &ArrayView2<'_, f32>, b: &ArrayView2<'_, f32>) -> bool {
    a.nrows() <= MAX_ROWS && b.ncols() > 0 && (b.ncols() == 1 || b.strides()[1] == 1)
}

/// `a · b` for operands that [`takes`] accepts, over rayon's threads when the weight is large.
pub(super) fn product(a: &ArrayView2<'_, f32>, b: &ArrayView2<'_, f32>) -> Array2<f32> {
    let (m, k) = a.dim();
    let n = b.ncols();
    assert_eq!(b.nrows(), k, "matmul: inner dimensions differ");
    assert!(takes(a, b), "skinny product: operands it does not take");
    let mut out = Array2::<f32>::zeros((m, n));
    if m == 0 || k == 0 {
        return out;
    }
    // Column blocks of the output and the matching column blocks of `b`.
    let blocks: Vec<(usize, ArrayViewMut2<'_, f32>)> = out
        .axis_chunks_iter_mut(Axis(1), BLOCK)
        .enumerate()
        .map(|(i, block)| (i * BLOCK, block))
        .collect();
    let run = |(start, mut block): (usize, ArrayViewMut2<'_, f32>)| {
        let width = block.ncols();
        let rhs = b.slice(ndarray::s![.., start..start + width]);
        dispatch(Block {
            a,
            b: &rhs,
            out: &mut block,
        });
    };
    if k * n >= PARALLEL_FROM && rayon::current_num_threads() > 1 {
        blocks.into_par_iter().for_each(run);
    } else {
        blocks.into_iter().for_each(run);
    }
    out
}

/// One block of output columns: `out[r, ..] = Σᵢ a[r, i] · b[i, ..]`, four weight rows at a
/// time so that each output element is loaded and stored once per four rows.
struct Block<'x, 'a, 'b, 'o> {
    a: &'x ArrayView2<'a, f32>,
    b: &'x ArrayView2<'b, f32>,
    out: &'x mut ArrayViewMut2<'o, f32>,
}

impl WithSimd for Block<'_, '_, '_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let Block { a, b, out } = self;
        let k = b.nrows();
        let row = |i: usize| -> &[f32] {
            b.row(i)
                .to_slice()
                .expect("the right operand's rows are contiguous")
        };
        // Weight rows outermost, so that each is read once for all left rows; each output
        // element still sums over `i` in order.
        let mut i = 0;
        while i + 4 <= k {
            let (w0, w1, w2, w3) = (row(i), row(i + 1), row(i + 2), row(i + 3));
            for (x, mut out_row) in a.rows().into_iter().zip(out.rows_mut()) {
                let y = out_row
                    .as_slice_mut()
                    .expect("a fresh standard-layout output");
                let (x0, x1, x2, x3) = (x[i], x[i + 1], x[i + 2], x[i + 3]);
                for ((((y, &w0), &w1), &w2), &w3) in y.iter_mut().zip(w0).zip(w1).zip(w2).zip(w3) {
                    *y += x0 * w0 + x1 * w1 + x2 * w2 + x3 * w3;
                }
            }
            i += 4;
        }
        for i in i..k {
            let w = row(i);
            for (x, mut out_row) in a.rows().into_iter().zip(out.rows_mut()) {
                let y = out_row
                    .as_slice_mut()
                    .expect("a fresh standard-layout output");
                let xi = x[i];
                for (y, &w) in y.iter_mut().zip(w) {
                    *y += xi * w;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, s};

    use super::{MAX_ROWS, product, takes};

    fn filled(rows: usize, cols: usize, seed: usize) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            ((i * 31 + j * 17 + seed * 7) % 23) as f32 / 8.0 - 1.375
        })
    }

    /// Against an f64 product, on sizes that leave partial column blocks and a remainder of
    /// weight rows, small (one thread) and large (split over the pool), and a weight that is a
    /// column slice of a wider one (rows contiguous, row stride larger than the width).
    #[test]
    fn matches_f64_on_both_paths() {
        let wide = filled(515, 1200, 3);
        for (m, k, n) in [
            (1, 3, 5),
            (2, 7, 17),
            (4, 130, 300),
            (1, 515, 1100),
            (3, 515, 700),
        ] {
            let a = filled(m, k, 1);
            let b_owned = filled(k, n, 2);
            let b_slice = wide.slice(s![..k, 13..13 + n]);
            for b in [b_owned.view(), b_slice] {
                assert!(takes(&a.view(), &b));
                let got = product(&a.view(), &b);
                for i in 0..m {
                    for j in 0..n {
                        let want: f64 = (0..k)
                            .map(|p| f64::from(a[[i, p]]) * f64::from(b[[p, j]]))
                            .sum();
                        let scale = (k as f64).max(1.0);
                        assert!(
                            (f64::from(got[[i, j]]) - want).abs() <= 1e-5 * scale,
                            "[{m}, {k}] x [{k}, {n}] at ({i}, {j}): {} vs {want}",
                            got[[i, j]]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn refuses_tall_or_column_strided_operands() {
        let a = filled(MAX_ROWS + 1, 8, 1);
        let b = filled(8, 8, 2);
        assert!(!takes(&a.view(), &b.view()));
        let a = filled(1, 8, 1);
        assert!(!takes(&a.view(), &b.t()));
        assert!(takes(&a.view(), &b.view()));
    }
}
