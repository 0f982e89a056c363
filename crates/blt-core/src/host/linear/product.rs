//! Products of rows with a packed weight (see [`super::packed`]): one row (the decoder's
//! steps) or many (a prompt's prefill), split over rayon's threads by runs of column blocks.

use rayon::prelude::*;

use super::packed::{BLOCK, GROUP, Int8Matrix, Matrix};
use crate::simd::{self, Simd, WithSimd};

/// Below this many weight elements a product runs on the calling thread: waking a second
/// thread costs more than it saves.
const PARALLEL_FROM: usize = 1 << 15;

/// Rows of the input that one pass over a block serves in the many-row product: `TILE` rows
/// of `BLOCK` sums are sixteen AVX-512 registers.
const TILE: usize = 4;

/// Rows of the input kept in the cache while each of a thread's blocks is read.
const ROW_CHUNK: usize = 64;

/// A packed weight's blocks, each row widened to `f32` where it is used.
trait Blocks: Sync {
    /// Whether rows come in groups of [`GROUP`] that share one scale per column.
    const GROUPED: bool = false;
    /// Row `i` of block `b` (of a matrix with `d_in` rows) as `f32`.
    fn widen(&self, b: usize, i: usize, d_in: usize, out: &mut [f32; BLOCK]);
    /// Row `i` of block `b` before its group's scale (the row itself when not grouped).
    #[inline(always)]
    fn widen_unscaled(&self, b: usize, i: usize, d_in: usize, out: &mut [f32; BLOCK]) {
        self.widen(b, i, d_in, out);
    }
    /// The scales of group `g` of block `b` (ones when not grouped).
    #[inline(always)]
    fn scales(&self, _b: usize, _g: usize, _d_in: usize) -> &[f32] {
        &[1.0; BLOCK]
    }
}

impl Blocks for [f32] {
    #[inline(always)]
    fn widen(&self, b: usize, i: usize, d_in: usize, out: &mut [f32; BLOCK]) {
        out.copy_from_slice(&self[(b * d_in + i) * BLOCK..][..BLOCK]);
    }
}

impl Blocks for [u16] {
    #[inline(always)]
    fn widen(&self, b: usize, i: usize, d_in: usize, out: &mut [f32; BLOCK]) {
        let row = &self[(b * d_in + i) * BLOCK..][..BLOCK];
        for (o, &w) in out.iter_mut().zip(row) {
            *o = f32::from_bits(u32::from(w) << 16);
        }
    }
}

impl Blocks for Int8Matrix {
    const GROUPED: bool = true;

    #[inline(always)]
    fn widen_unscaled(&self, b: usize, i: usize, d_in: usize, out: &mut [f32; BLOCK]) {
        let row = &self.values[(b * d_in + i) * BLOCK..][..BLOCK];
        for (o, &q) in out.iter_mut().zip(row) {
            *o = f32::from(q);
        }
    }

    #[inline(always)]
    fn scales(&self, b: usize, g: usize, d_in: usize) -> &[f32] {
        &self.scales[(b * d_in.div_ceil(GROUP) + g) * BLOCK..][..BLOCK]
    }

    #[inline(always)]
    fn widen(&self, b: usize, i: usize, d_in: usize, out: &mut [f32; BLOCK]) {
        let row = &self.values[(b * d_in + i) * BLOCK..][..BLOCK];
        let groups = d_in.div_ceil(GROUP);
        let scale = &self.scales[(b * groups + i / GROUP) * BLOCK..][..BLOCK];
        for ((o, &q), &s) in out.iter_mut().zip(row).zip(scale) {
            *o = f32::from(q) * s;
        }
    }
}

/// From this many rows (with the `ndarray` feature, which brings the `gemm` crate) a product
/// widens the whole weight to a row-major `f32` matrix and runs as one `gemm` call: its packed
/// kernels run at about twice the speed of [`Tile`], and widening costs about what one row's
/// product does.
#[cfg(feature = "ndarray")]
const GEMM_FROM: usize = 24;

/// `y += x·W` for `rows` rows of `x` (`d_in` values each) and `y` (`d_out` values each).
pub(super) fn product(matrix: &Matrix, x: &[f32], rows: usize, d_out: usize, y: &mut [f32]) {
    #[cfg(feature = "ndarray")]
    if rows >= GEMM_FROM {
        let d_in = x.len() / rows;
        let w = match matrix {
            Matrix::F32(w) => unpack(w.as_slice(), d_in, d_out),
            Matrix::Bf16(w) => unpack(w.as_slice(), d_in, d_out),
            Matrix::Int8(w) => unpack(w, d_in, d_out),
        };
        crate::kernels::gemm_rows(x, &w, y, [rows, d_in, d_out]);
        return;
    }
    match matrix {
        Matrix::F32(w) => dispatch(w.as_slice(), w.len(), x, rows, d_out, y),
        Matrix::Bf16(w) => dispatch(w.as_slice(), w.len(), x, rows, d_out, y),
        Matrix::Int8(w) => dispatch(w, w.values.len(), x, rows, d_out, y),
    }
}

fn dispatch<W: Blocks + ?Sized>(
    weight: &W,
    elements: usize,
    x: &[f32],
    rows: usize,
    d_out: usize,
    y: &mut [f32],
) {
    let d_in = x.len() / rows.max(1);
    let blocks = d_out.div_ceil(BLOCK);
    let threads = rayon::current_num_threads();
    let serial = elements.saturating_mul(rows) < PARALLEL_FROM || threads < 2 || blocks < 2;
    if rows == 1 {
        let run = |first: usize, y: &mut [f32]| {
            for (b, y) in y.chunks_mut(BLOCK).enumerate() {
                simd::dispatch(Row {
                    weight,
                    block: first + b,
                    d_in,
                    x,
                    y,
                });
            }
        };
        if serial {
            run(0, y);
        } else {
            let per_task = blocks.div_ceil(threads);
            y.par_chunks_mut(per_task * BLOCK)
                .enumerate()
                .for_each(|(t, y)| run(t * per_task, y));
        }
        return;
    }
    // Each task computes its run of blocks for every row into its own buffer (`rows × width`),
    // then the runs are copied into place.
    let per_task = if serial {
        blocks
    } else {
        blocks.div_ceil(threads)
    };
    let run = |task: usize| -> Vec<f32> {
        let first = task * per_task;
        let cols = first * BLOCK..((first + per_task) * BLOCK).min(d_out);
        let width = cols.len();
        let mut out = vec![0.0f32; rows * width];
        for chunk in (0..rows).step_by(ROW_CHUNK) {
            let chunk = chunk..(chunk + ROW_CHUNK).min(rows);
            for b in first..(first + per_task).min(blocks) {
                let col = b * BLOCK - cols.start;
                let take = BLOCK.min(width - col);
                simd::dispatch(Tile {
                    weight,
                    block: b,
                    d_in,
                    x: &x[chunk.start * d_in..chunk.end * d_in],
                    out: &mut out[chunk.start * width..chunk.end * width],
                    width,
                    col,
                    take,
                });
            }
        }
        out
    };
    let tasks = blocks.div_ceil(per_task);
    let parts: Vec<Vec<f32>> = if serial {
        vec![run(0)]
    } else {
        (0..tasks).into_par_iter().map(run).collect()
    };
    for (task, part) in parts.iter().enumerate() {
        let start = task * per_task * BLOCK;
        let width = part.len() / rows;
        for (y, part) in y.chunks_exact_mut(d_out).zip(part.chunks_exact(width)) {
            for (y, &p) in y[start..start + width].iter_mut().zip(part) {
                *y += p;
            }
        }
    }
}

/// The packed weight as a row-major `f32` matrix `[d_in, d_out]`, its rows widened in
/// parallel.
#[cfg(feature = "ndarray")]
fn unpack<W: Blocks + ?Sized>(weight: &W, d_in: usize, d_out: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; d_in * d_out];
    let blocks = d_out.div_ceil(BLOCK);
    out.par_chunks_mut(d_out).enumerate().for_each(|(i, row)| {
        let mut w = [0.0f32; BLOCK];
        for b in 0..blocks {
            weight.widen(b, i, d_in, &mut w);
            let cols = b * BLOCK..((b + 1) * BLOCK).min(d_out);
            row[cols.clone()].copy_from_slice(&w[..cols.len()]);
        }
    });
    out
}

/// `y[j] += Σᵢ x[i]·W[i, j]` over one block (`y` may be shorter, for the last block), the
/// sums kept in registers.
struct Row<'a, W: ?Sized> {
    weight: &'a W,
    block: usize,
    d_in: usize,
    x: &'a [f32],
    y: &'a mut [f32],
}

impl<W: Blocks + ?Sized> WithSimd for Row<'_, W> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let mut sums = [0.0f32; BLOCK];
        let mut w = [0.0f32; BLOCK];
        if W::GROUPED {
            // Sum each group's unscaled products, then scale the group's sums once: one
            // multiply per column per group instead of one per weight.
            for (g, x) in self.x[..self.d_in].chunks(GROUP).enumerate() {
                let mut part = [0.0f32; BLOCK];
                for (r, &xi) in x.iter().enumerate() {
                    self.weight
                        .widen_unscaled(self.block, g * GROUP + r, self.d_in, &mut w);
                    for (p, &w) in part.iter_mut().zip(&w) {
                        *p += xi * w;
                    }
                }
                let scales = self.weight.scales(self.block, g, self.d_in);
                for ((s, &p), &scale) in sums.iter_mut().zip(&part).zip(scales) {
                    *s += p * scale;
                }
            }
        } else {
            for (i, &xi) in self.x.iter().enumerate().take(self.d_in) {
                self.weight.widen(self.block, i, self.d_in, &mut w);
                for (s, &w) in sums.iter_mut().zip(&w) {
                    *s += xi * w;
                }
            }
        }
        for (y, s) in self.y.iter_mut().zip(sums) {
            *y += s;
        }
    }
}

/// One block against a chunk of rows, [`TILE`] rows per pass over the block: `out[r, col + j]
/// = Σᵢ x[r, i]·W[i, b·BLOCK + j]` for the first `take` columns of the block, `out` having
/// `width` columns.
struct Tile<'a, W: ?Sized> {
    weight: &'a W,
    block: usize,
    d_in: usize,
    x: &'a [f32],
    out: &'a mut [f32],
    width: usize,
    col: usize,
    take: usize,
}

impl<W: Blocks + ?Sized> WithSimd for Tile<'_, W> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let d_in = self.d_in;
        let rows = self.x.len() / d_in;
        let mut w = [0.0f32; BLOCK];
        let mut first = 0;
        while first < rows {
            let n = TILE.min(rows - first);
            let mut sums = [[0.0f32; BLOCK]; TILE];
            if n == TILE {
                let xs: [&[f32]; TILE] =
                    std::array::from_fn(|r| &self.x[(first + r) * d_in..][..d_in]);
                for i in 0..d_in {
                    self.weight.widen(self.block, i, d_in, &mut w);
                    for (sums, x) in sums.iter_mut().zip(&xs) {
                        let xi = x[i];
                        for (s, &w) in sums.iter_mut().zip(&w) {
                            *s += xi * w;
                        }
                    }
                }
            } else {
                for i in 0..d_in {
                    self.weight.widen(self.block, i, d_in, &mut w);
                    for (r, sums) in sums.iter_mut().enumerate().take(n) {
                        let xi = self.x[(first + r) * d_in + i];
                        for (s, &w) in sums.iter_mut().zip(&w) {
                            *s += xi * w;
                        }
                    }
                }
            }
            for (r, sums) in sums.iter().enumerate().take(n) {
                let out = &mut self.out[(first + r) * self.width + self.col..][..self.take];
                out.copy_from_slice(&sums[..self.take]);
            }
            first += n;
        }
    }
}
