//! A linear layer applied to one row at a time: `y = x·W (+ b)`, with the weight kept in
//! `f32` or in `bf16`.

use burn::{nn::Linear, tensor::backend::Backend};
use rayon::prelude::*;

use super::values;
use crate::simd::{self, Simd, WithSimd};

/// Below this many weight elements a product runs on the calling thread: waking a second
/// thread costs more than it saves.
const PARALLEL_FROM: usize = 1 << 15;

/// Output columns per block of the packed weight: four AVX-512 registers of `f32`, which hold
/// a block's sums for the whole pass over the rows.
const BLOCK: usize = 64;

/// How a host layer stores its weight matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WeightPrecision {
    /// As trained: results equal the Burn layer's to float rounding.
    #[default]
    F32,
    /// Rounded to bfloat16 (8 bits of mantissa, round to nearest even), computed in `f32`. Half
    /// the bytes to read per product, which is what a product of one row costs once the weights
    /// outgrow the CPU's cache; each weight moves by at most 2⁻⁹ of itself.
    Bf16,
}

/// A weight matrix packed by blocks of [`BLOCK`] output columns: block `b` holds
/// `W[i, b·BLOCK..(b+1)·BLOCK]` for every row `i` in turn, the last block padded with zeros.
/// A product of one row then streams each block's memory once, front to back, keeping the
/// block's sums in registers. Row-major storage made each thread read four short runs of
/// separate rows at a time, which the CPU's prefetchers could not follow: from memory, the
/// products ran at a half to two thirds of the speed they now do.
#[derive(Clone)]
enum Matrix {
    F32(Vec<f32>),
    Bf16(Vec<u16>),
}

/// An element of a stored weight, widened to `f32` where it is used.
trait Element: Copy + Send + Sync {
    fn widen(self) -> f32;
}

impl Element for f32 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
}

impl Element for u16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        f32::from_bits(u32::from(self) << 16)
    }
}

/// `x` rounded to the nearest bfloat16 (ties to even); NaN stays NaN.
pub fn to_bf16(x: f32) -> u16 {
    if x.is_nan() {
        return 0x7fc0;
    }
    let bits = x.to_bits();
    let rounded = bits.wrapping_add(0x7fff + ((bits >> 16) & 1));
    (rounded >> 16) as u16
}

/// A [`Linear`] layer's weight `[d_in, d_out]` (row-major, as Burn stores it) and optional
/// bias, on the host.
#[derive(Clone)]
pub struct HostLinear {
    weight: Matrix,
    bias: Option<Vec<f32>>,
    d_in: usize,
    d_out: usize,
}

impl std::fmt::Debug for HostLinear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostLinear")
            .field("d_in", &self.d_in)
            .field("d_out", &self.d_out)
            .field("precision", &self.precision())
            .field("bias", &self.bias.is_some())
            .finish()
    }
}

impl HostLinear {
    /// Copies `layer`'s parameters to the host, the weight in `precision` (the bias stays
    /// `f32`).
    pub fn from_linear<B: Backend>(layer: &Linear<B>, precision: WeightPrecision) -> Self {
        let [d_in, d_out] = layer.weight.dims();
        let weight = pack(&values(layer.weight.val()), d_in, d_out);
        Self {
            weight: match precision {
                WeightPrecision::F32 => Matrix::F32(weight),
                WeightPrecision::Bf16 => Matrix::Bf16(weight.into_iter().map(to_bf16).collect()),
            },
            bias: layer.bias.as_ref().map(|b| values(b.val())),
            d_in,
            d_out,
        }
    }

    /// Input width.
    pub fn d_in(&self) -> usize {
        self.d_in
    }

    /// Output width.
    pub fn d_out(&self) -> usize {
        self.d_out
    }

    /// How the weight is stored.
    pub fn precision(&self) -> WeightPrecision {
        match self.weight {
            Matrix::F32(_) => WeightPrecision::F32,
            Matrix::Bf16(_) => WeightPrecision::Bf16,
        }
    }

    /// `x·W (+ b)` for one row `x` of `d_in` values.
    ///
    /// # Panics
    /// If `x` does not have `d_in` values.
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let mut y = vec![0.0; self.d_out];
        self.apply_into(x, &mut y);
        y
    }

    /// [`apply`](Self::apply) into `y` (`d_out` values, overwritten).
    ///
    /// # Panics
    /// If `x` or `y` has the wrong length.
    pub fn apply_into(&self, x: &[f32], y: &mut [f32]) {
        assert_eq!(x.len(), self.d_in, "linear input width");
        assert_eq!(y.len(), self.d_out, "linear output width");
        match &self.bias {
            Some(b) => y.copy_from_slice(b),
            None => y.fill(0.0),
        }
        match &self.weight {
            Matrix::F32(w) => product(x, w, self.d_out, y),
            Matrix::Bf16(w) => product(x, w, self.d_out, y),
        }
    }

    /// Applies the layer to each row of `x` (row-major, `d_in` values each), one after another.
    pub fn apply_rows(&self, x: &[f32]) -> Vec<f32> {
        let mut y = vec![0.0; x.len() / self.d_in * self.d_out];
        for (x, y) in x
            .chunks_exact(self.d_in)
            .zip(y.chunks_exact_mut(self.d_out))
        {
            self.apply_into(x, y);
        }
        y
    }
}

/// A row-major `[d_in, d_out]` matrix in the blocked layout of [`Matrix`].
fn pack(weight: &[f32], d_in: usize, d_out: usize) -> Vec<f32> {
    let blocks = d_out.div_ceil(BLOCK);
    let mut packed = vec![0.0; blocks * d_in * BLOCK];
    for (b, block) in packed.chunks_exact_mut(d_in * BLOCK).enumerate() {
        let cols = b * BLOCK..((b + 1) * BLOCK).min(d_out);
        for (i, row) in block.chunks_exact_mut(BLOCK).enumerate() {
            row[..cols.len()]
                .copy_from_slice(&weight[i * d_out + cols.start..i * d_out + cols.end]);
        }
    }
    packed
}

/// `y += x·W` for a packed weight, over rayon's threads when it is large: each thread takes a
/// run of consecutive blocks, one contiguous stretch of memory.
fn product<W: Element>(x: &[f32], weight: &[W], width: usize, y: &mut [f32]) {
    let rows = x.len();
    let blocks = width.div_ceil(BLOCK);
    let run = |first: usize, y: &mut [f32]| {
        for (b, y) in y.chunks_mut(BLOCK).enumerate() {
            let start = (first + b) * rows * BLOCK;
            simd::dispatch(Block {
                x,
                weight: &weight[start..start + rows * BLOCK],
                y,
            });
        }
    };
    let threads = rayon::current_num_threads();
    if weight.len() < PARALLEL_FROM || threads < 2 || blocks < 2 {
        run(0, y);
        return;
    }
    let per_task = blocks.div_ceil(threads);
    y.par_chunks_mut(per_task * BLOCK)
        .enumerate()
        .for_each(|(t, y)| run(t * per_task, y));
}

/// `y[j] += Σᵢ x[i]·W[i, j]` over one block of [`BLOCK`] columns (`y` may be shorter, for the
/// last block), the sums kept in registers.
struct Block<'a, W> {
    x: &'a [f32],
    weight: &'a [W],
    y: &'a mut [f32],
}

impl<W: Element> WithSimd for Block<'_, W> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let mut sums = [0.0f32; BLOCK];
        for (&xi, w) in self.x.iter().zip(self.weight.chunks_exact(BLOCK)) {
            for (s, w) in sums.iter_mut().zip(w) {
                *s += xi * w.widen();
            }
        }
        for (y, s) in self.y.iter_mut().zip(sums) {
            *y += s;
        }
    }
}
