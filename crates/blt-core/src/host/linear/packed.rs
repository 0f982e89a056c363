//! Weight matrices packed by blocks of [`BLOCK`] output columns, in `f32`, `bf16` or `int8`.
//!
//! Block `b` holds `W[i, b·BLOCK..(b+1)·BLOCK]` for every row `i` in turn, the last block
//! padded with zeros. A product of one row then streams each block's memory once, front to
//! back, keeping the block's sums in registers; a product of many rows keeps one block in the
//! CPU's cache while every row reads it. (Row-major storage made each thread read four short
//! runs of separate rows at a time, which the prefetchers could not follow: from memory those
//! products ran at a half to two thirds of the packed speed.)

use super::{WeightPrecision, to_bf16};

/// Output columns per block: four AVX-512 registers of `f32`, which hold a block's sums for a
/// whole pass over the rows.
pub(super) const BLOCK: usize = 64;

/// Rows of an `int8` block that share one scale per column.
pub(super) const GROUP: usize = 32;

/// A packed weight matrix.
#[derive(Clone)]
pub(super) enum Matrix {
    F32(Vec<f32>),
    Bf16(Vec<u16>),
    Int8(Int8Matrix),
}

/// `W[i, j] ≈ q[i, j] · s[⌊i / GROUP⌋, j]`: symmetric `int8` values in the packed layout and
/// one `f32` scale per column for every [`GROUP`] rows (`blocks × groups × BLOCK` scales), the
/// largest magnitude of each group's column mapped to 127. 1.125 bytes per weight.
#[derive(Clone)]
pub(super) struct Int8Matrix {
    pub values: Vec<i8>,
    pub scales: Vec<f32>,
}

impl Matrix {
    /// Packs a row-major `[d_in, d_out]` matrix in `precision`.
    pub fn pack(weight: &[f32], d_in: usize, d_out: usize, precision: WeightPrecision) -> Self {
        let packed = pack(weight, d_in, d_out);
        match precision {
            WeightPrecision::F32 => Self::F32(packed),
            WeightPrecision::Bf16 => Self::Bf16(packed.into_iter().map(to_bf16).collect()),
            WeightPrecision::Int8 => Self::Int8(quantise(&packed, d_in)),
        }
    }

    pub fn precision(&self) -> WeightPrecision {
        match self {
            Self::F32(_) => WeightPrecision::F32,
            Self::Bf16(_) => WeightPrecision::Bf16,
            Self::Int8(_) => WeightPrecision::Int8,
        }
    }

    /// Bytes the matrix takes.
    pub fn bytes(&self) -> usize {
        match self {
            Self::F32(w) => w.len() * 4,
            Self::Bf16(w) => w.len() * 2,
            Self::Int8(w) => w.values.len() + w.scales.len() * 4,
        }
    }
}

/// A row-major `[d_in, d_out]` matrix in the blocked layout.
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

/// Quantises a packed `f32` matrix of `d_in` rows per block (see [`Int8Matrix`]).
fn quantise(packed: &[f32], d_in: usize) -> Int8Matrix {
    let groups = d_in.div_ceil(GROUP);
    let blocks = packed.len() / (d_in * BLOCK).max(1);
    let mut values = vec![0i8; packed.len()];
    let mut scales = vec![0.0f32; blocks * groups * BLOCK];
    for b in 0..blocks {
        for g in 0..groups {
            let rows = g * GROUP..((g + 1) * GROUP).min(d_in);
            let scale = &mut scales[(b * groups + g) * BLOCK..][..BLOCK];
            for i in rows.clone() {
                let row = &packed[(b * d_in + i) * BLOCK..][..BLOCK];
                for (s, &w) in scale.iter_mut().zip(row) {
                    *s = s.max(w.abs());
                }
            }
            scale.iter_mut().for_each(|s| *s /= 127.0);
            for i in rows {
                let at = (b * d_in + i) * BLOCK;
                for ((q, &w), &s) in values[at..at + BLOCK]
                    .iter_mut()
                    .zip(&packed[at..at + BLOCK])
                    .zip(&*scale)
                {
                    *q = if s > 0.0 {
                        (w / s).round().clamp(-127.0, 127.0) as i8
                    } else {
                        0
                    };
                }
            }
        }
    }
    Int8Matrix { values, scales }
}
