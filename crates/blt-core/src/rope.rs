//! Rotary position encoding (Su et al., 2021, "RoFormer") with interleaved pairs
//! `(x[2i], x[2i+1])`, the GPT-J / Meta convention used by the original BLT (reference §8),
//! not the half-split `rotate_half` of Hugging Face Llama.
//!
//! The cosine and sine tables are computed once, in f64 on the host, for `max_seq_len`
//! positions; [`Rope::apply`] takes a position offset so that a KV cache can encode new tokens
//! at their absolute positions.

use burn::{
    config::Config,
    module::Module,
    tensor::{Tensor, TensorData, backend::Backend},
};

use crate::kernels;

/// Configuration of a [`Rope`].
#[derive(Config, Debug)]
pub struct RopeConfig {
    /// Per-head dimension; must be even.
    pub head_dim: usize,
    /// Number of positions the tables cover. Default: 4096.
    #[config(default = 4096)]
    pub max_seq_len: usize,
    /// Base θ of the frequencies `θ^(−2i/head_dim)`. Default: 5e5 (BLT local and global
    /// models); the entropy model uses 1e4.
    #[config(default = 5e5)]
    pub theta: f64,
}

impl RopeConfig {
    /// Precomputes the cosine and sine tables.
    ///
    /// # Panics
    /// If `head_dim` is odd (an internal invariant: callers validate their configs first).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Rope<B> {
        assert!(
            self.head_dim.is_multiple_of(2),
            "rotary head_dim {} must be even",
            self.head_dim
        );
        let d = self.head_dim;
        let mut cos = Vec::with_capacity(self.max_seq_len * d);
        let mut sin = Vec::with_capacity(self.max_seq_len * d);
        for pos in 0..self.max_seq_len {
            for i in 0..d / 2 {
                let freq = self.theta.powf(-2.0 * i as f64 / d as f64);
                let angle = pos as f64 * freq;
                let (s, c) = angle.sin_cos();
                cos.extend([c as f32, c as f32]);
                sin.extend([s as f32, s as f32]);
            }
        }
        let shape = [self.max_seq_len, d];
        Rope {
            cos: Tensor::from_data(TensorData::new(cos, shape), device),
            sin: Tensor::from_data(TensorData::new(sin, shape), device),
            max_seq_len: self.max_seq_len,
            head_dim: d,
        }
    }
}

/// Rotary position encoding with precomputed tables (constants, not saved in records).
#[derive(Module, Debug)]
pub struct Rope<B: Backend> {
    cos: Tensor<B, 2>,
    sin: Tensor<B, 2>,
    max_seq_len: usize,
    head_dim: usize,
}

impl<B: Backend> Rope<B> {
    /// Rotates each interleaved pair of every head by its position's angle; token `t` of `x` is
    /// at absolute position `offset + t`.
    ///
    /// # Shapes
    /// - x: `[batch, heads, seq, head_dim]`
    /// - output: `[batch, heads, seq, head_dim]`
    ///
    /// # Panics
    /// If `offset + seq > max_seq_len`; callers check sequence lengths against their config.
    pub fn apply(&self, x: Tensor<B, 4>, offset: usize) -> Tensor<B, 4> {
        let [_, _, t, d] = x.dims();
        self.check(d, offset + t);
        let cos = self.cos.clone().narrow(0, offset, t).reshape([1, 1, t, d]);
        let sin = self.sin.clone().narrow(0, offset, t).reshape([1, 1, t, d]);
        rotate(x, cos, sin)
    }

    /// Like [`Rope::apply`], with each batch row at its own position: token `t` of row `r` is
    /// at absolute position `positions[r] + t`. Batched decoding of sequences of different
    /// lengths uses it to give every row the positions it would have alone.
    ///
    /// # Shapes
    /// - x: `[batch, heads, seq, head_dim]`; positions: `batch` entries
    /// - output: `[batch, heads, seq, head_dim]`
    ///
    /// # Panics
    /// If `positions` does not have one entry per row, or a row runs past `max_seq_len`.
    pub fn apply_at(&self, x: Tensor<B, 4>, positions: &[usize]) -> Tensor<B, 4> {
        let [b, _, t, d] = x.dims();
        if let Some(offset) = shared_position(positions, b) {
            return self.apply(x, offset);
        }
        self.check(d, end_of(positions, t));
        let table = |table: &Tensor<B, 2>| rows_at(table, positions, t).reshape([b, 1, t, d]);
        rotate(x, table(&self.cos), table(&self.sin))
    }

    /// Rotates tokens laid out flat, as a projection emits them: the first `rotated` features
    /// of each token are heads of `head_dim` side by side (say queries, then keys), each rotated
    /// exactly as [`Rope::apply`] rotates it at positions `offset..offset + seq`; the remaining
    /// features pass through unchanged.
    ///
    /// Same values as splitting heads and calling [`Rope::apply`], without the split: the
    /// 90° pair rotation is a matmul with a constant signed permutation, and everything else is
    /// elementwise on contiguous data. On NdArray, where slicing a strided view copies element by
    /// element, the head-split form cost about 13% of a forward pass.
    ///
    /// # Shapes
    /// - x: `[batch, seq, features]`, `rotated ≤ features`, `rotated` a multiple of `head_dim`
    /// - output: `[batch, seq, features]`
    ///
    /// # Panics
    /// If `offset + seq > max_seq_len`, or `rotated` is not a multiple of `head_dim` within
    /// `features`.
    pub fn apply_flat(&self, x: Tensor<B, 3>, rotated: usize, offset: usize) -> Tensor<B, 3> {
        let [_, t, features] = x.dims();
        self.check_flat(rotated, features, offset + t);
        let rows = |table: &Tensor<B, 2>| table.clone().narrow(0, offset, t).unsqueeze_dim(0);
        rotate_flat_rows(x, rows(&self.cos), rows(&self.sin), rotated)
    }

    /// [`Rope::apply_flat`] with each batch row at its own position, as [`Rope::apply_at`].
    ///
    /// # Shapes
    /// - x: `[batch, seq, features]`; positions: `batch` entries
    /// - output: `[batch, seq, features]`
    ///
    /// # Panics
    /// As [`Rope::apply_flat`], and if `positions` does not have one entry per row.
    pub fn apply_flat_at(
        &self,
        x: Tensor<B, 3>,
        rotated: usize,
        positions: &[usize],
    ) -> Tensor<B, 3> {
        let [b, t, features] = x.dims();
        if let Some(offset) = shared_position(positions, b) {
            return self.apply_flat(x, rotated, offset);
        }
        self.check_flat(rotated, features, end_of(positions, t));
        let rows = |table: &Tensor<B, 2>| rows_at(table, positions, t);
        rotate_flat_rows(x, rows(&self.cos), rows(&self.sin), rotated)
    }

    fn check_flat(&self, rotated: usize, features: usize, end: usize) {
        assert!(
            rotated.is_multiple_of(self.head_dim) && rotated <= features,
            "rotating {rotated} of {features} features in heads of {}",
            self.head_dim
        );
        self.check_end(end);
    }

    /// The cosine and sine tables, `[max_seq_len, head_dim]`.
    pub(crate) fn tables(&self) -> (Tensor<B, 2>, Tensor<B, 2>) {
        (self.cos.clone(), self.sin.clone())
    }

    /// The per-head dimension it rotates.
    pub(crate) fn head_dim(&self) -> usize {
        self.head_dim
    }

    fn check(&self, head_dim: usize, end: usize) {
        assert_eq!(head_dim, self.head_dim, "rope head_dim mismatch");
        self.check_end(end);
    }

    fn check_end(&self, end: usize) {
        assert!(
            end <= self.max_seq_len,
            "position {end} beyond the rotary table ({} positions)",
            self.max_seq_len
        );
    }

    /// Number of positions the tables cover.
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }
}

/// `x·cos + rot90(x)·sin` for each interleaved pair; `cos` and `sin` broadcast over `x`.
fn rotate<B: Backend>(x: Tensor<B, 4>, cos: Tensor<B, 4>, sin: Tensor<B, 4>) -> Tensor<B, 4> {
    let [b, h, t, d] = x.dims();
    let pairs = x.clone().reshape([b, h, t, d / 2, 2]);
    let even = pairs.clone().narrow(4, 0, 1);
    let odd = pairs.narrow(4, 1, 1);
    // (x0, x1) -> (−x1, x0): the 90° rotation of each pair.
    let rotated = Tensor::cat(vec![odd.neg(), even], 4).reshape([b, h, t, d]);
    x * cos + rotated * sin
}

/// The one position every row starts at, if they all share it (then the per-row forms take the
/// cheaper shared-offset path).
///
/// # Panics
/// If `positions` does not have one entry per batch row.
fn shared_position(positions: &[usize], batch: usize) -> Option<usize> {
    assert_eq!(positions.len(), batch, "one rotary position per batch row");
    let first = *positions.first()?;
    positions.iter().all(|&p| p == first).then_some(first)
}

/// One past the last position any row reaches.
fn end_of(positions: &[usize], seq: usize) -> usize {
    positions.iter().max().copied().unwrap_or(0) + seq
}

/// Rows `positions[r]..positions[r] + seq` of a `[positions, head_dim]` table for each batch
/// row: `[batch, seq, head_dim]`.
fn rows_at<B: Backend>(table: &Tensor<B, 2>, positions: &[usize], seq: usize) -> Tensor<B, 3> {
    let rows = positions
        .iter()
        .map(|&p| table.clone().narrow(0, p, seq).unsqueeze_dim(0))
        .collect();
    Tensor::cat(rows, 0)
}

/// Flat tokens `x: [batch, seq, features]` rotated with the table rows `cos`, `sin: [1 or batch,
/// seq, head_dim]`: our kernel where one takes the inputs, else [`composed_flat`].
fn rotate_flat_rows<B: Backend>(
    x: Tensor<B, 3>,
    cos: Tensor<B, 3>,
    sin: Tensor<B, 3>,
    rotated: usize,
) -> Tensor<B, 3> {
    match kernels::rope_flat(x.clone(), cos.clone(), sin.clone(), rotated) {
        Some(out) => out,
        None => composed_flat(x, cos, sin, rotated),
    }
}

/// [`rotate_flat_rows`] from Burn ops: the tables tiled over the heads (ones and zeros for the
/// features that pass through), then [`rotate_flat`].
pub(crate) fn composed_flat<B: Backend>(
    x: Tensor<B, 3>,
    cos: Tensor<B, 3>,
    sin: Tensor<B, 3>,
    rotated: usize,
) -> Tensor<B, 3> {
    let features = x.dims()[2];
    let cos = flat_table(cos, rotated, features, 1.0);
    let sin = flat_table(sin, rotated, features, 0.0);
    rotate_flat(x, cos, sin)
}

/// A per-head table `[n, seq, head_dim]` tiled over `rotated` features, then `pass` (1 for
/// cosines, 0 for sines) for the features that are not rotated: `[n, seq, features]`.
fn flat_table<B: Backend>(
    rows: Tensor<B, 3>,
    rotated: usize,
    features: usize,
    pass: f32,
) -> Tensor<B, 3> {
    let [n, t, head_dim] = rows.dims();
    let tiled = rows.repeat_dim(2, rotated / head_dim);
    if rotated == features {
        return tiled;
    }
    let rest = Tensor::full(
        [n, t, features - rotated],
        pass,
        (&tiled.device(), tiled.dtype()),
    );
    Tensor::cat(vec![tiled, rest], 2)
}

/// [`rotate`] on flat tokens `[batch, seq, features]`: the pair rotation `(x0, x1) -> (−x1, x0)`
/// is `x·P` for a block-diagonal signed permutation `P`, applied in blocks of up to 64
/// features (pairs never straddle a block: blocks are even). Exact: each output is one input
/// times ±1 plus zeros.
fn rotate_flat<B: Backend>(x: Tensor<B, 3>, cos: Tensor<B, 3>, sin: Tensor<B, 3>) -> Tensor<B, 3> {
    let [b, t, features] = x.dims();
    // The largest power of two dividing `features`, capped at 64: at least 2, as head
    // dimensions are even.
    let block = (1usize << features.trailing_zeros()).min(64);
    let mut swap = vec![0.0f32; block * block];
    for i in (0..block).step_by(2) {
        swap[(i + 1) * block + i] = -1.0; // out[i] = −x[i+1]
        swap[i * block + i + 1] = 1.0; // out[i+1] = x[i]
    }
    let swap = Tensor::<B, 2>::from_data(
        TensorData::new(swap, [block, block]).convert_dtype(x.dtype()),
        (&x.device(), x.dtype()),
    );
    let rotated = x
        .clone()
        .reshape([b * t * features / block, block])
        .matmul(swap)
        .reshape([b, t, features]);
    x * cos + rotated * sin
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{TestBackend, max_abs_diff};
    use burn::tensor::Distribution;

    fn dot_at(
        rope: &Rope<TestBackend>,
        q: &Tensor<TestBackend, 4>,
        k: &Tensor<TestBackend, 4>,
        m: usize,
        n: usize,
    ) -> f32 {
        let qm = rope.apply(q.clone(), m);
        let kn = rope.apply(k.clone(), n);
        (qm * kn).sum().into_scalar()
    }

    #[test]
    fn score_depends_only_on_position_difference() {
        let device = Default::default();
        let rope = RopeConfig::new(16)
            .with_max_seq_len(256)
            .with_theta(1e4)
            .init::<TestBackend>(&device);
        let q = Tensor::random([1, 1, 1, 16], Distribution::Normal(0.0, 1.0), &device);
        let k = Tensor::random([1, 1, 1, 16], Distribution::Normal(0.0, 1.0), &device);
        for (m, n) in [(5usize, 2usize), (17, 0), (3, 9)] {
            let base = dot_at(&rope, &q, &k, m, n);
            for shift in [1usize, 40, 200] {
                let shifted = dot_at(&rope, &q, &k, m + shift, n + shift);
                assert!(
                    (base - shifted).abs() < 1e-4,
                    "({m},{n})+{shift}: {base} vs {shifted}"
                );
            }
        }
        // And it does depend on the difference.
        let a = dot_at(&rope, &q, &k, 5, 2);
        let b = dot_at(&rope, &q, &k, 9, 2);
        assert!((a - b).abs() > 1e-3);
    }

    #[test]
    fn position_zero_is_identity_and_pairs_are_interleaved() {
        let device = Default::default();
        let rope = RopeConfig::new(4)
            .with_max_seq_len(8)
            .with_theta(1e4)
            .init::<TestBackend>(&device);
        let x = Tensor::<TestBackend, 4>::from_floats(
            [[[[1.0, 2.0, 3.0, 4.0], [1.0, 0.0, 0.0, 1.0]]]],
            &device,
        );
        let y = rope.apply(x.clone(), 0);
        // Row 0 is at position 0: unchanged.
        let row0 = y.clone().narrow(2, 0, 1);
        assert!(max_abs_diff(row0, x.narrow(2, 0, 1)) < 1e-7);
        // Row 1 is at position 1: pair 0 rotates by 1 rad, pair 1 by 1e4^(-1/2) = 0.01 rad.
        let (s0, c0) = 1.0f64.sin_cos();
        let (s1, c1) = 0.01f64.sin_cos();
        let expected = Tensor::<TestBackend, 4>::from_floats(
            [[[[c0 as f32, s0 as f32, -s1 as f32, c1 as f32]]]],
            &device,
        );
        assert!(max_abs_diff(y.narrow(2, 1, 1), expected) < 1e-6);
    }

    #[test]
    fn offset_equals_slice_of_full_application() {
        let device = Default::default();
        let rope = RopeConfig::new(8)
            .with_max_seq_len(32)
            .init::<TestBackend>(&device);
        let x = Tensor::<TestBackend, 4>::random(
            [2, 3, 10, 8],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let full = rope.apply(x.clone(), 0);
        let tail = rope.apply(x.narrow(2, 6, 4), 6);
        assert!(max_abs_diff(full.narrow(2, 6, 4), tail) < 1e-6);
    }

    /// Heads split out of `[b, t, h·d]` as `[b, h, t, d]`.
    fn heads(x: Tensor<TestBackend, 3>, h: usize) -> Tensor<TestBackend, 4> {
        let [b, t, f] = x.dims();
        x.reshape([b, t, h, f / h]).swap_dims(1, 2)
    }

    #[test]
    fn flat_application_equals_per_head_application() {
        let device = Default::default();
        let rope = RopeConfig::new(8)
            .with_max_seq_len(32)
            .init::<TestBackend>(&device);
        // 3 heads rotated (24 features) and 2 passed through, as queries + keys + values.
        let x =
            Tensor::<TestBackend, 3>::random([2, 5, 40], Distribution::Normal(0.0, 1.0), &device);
        let flat = rope.apply_flat(x.clone(), 24, 3);
        let rotated = rope.apply(heads(x.clone().narrow(2, 0, 24), 3), 3);
        assert_eq!(
            max_abs_diff(heads(flat.clone().narrow(2, 0, 24), 3), rotated),
            0.0
        );
        assert_eq!(
            max_abs_diff(flat.narrow(2, 24, 16), x.clone().narrow(2, 24, 16)),
            0.0
        );

        let positions = [0, 9, 27];
        let x3 =
            Tensor::<TestBackend, 3>::random([3, 5, 40], Distribution::Normal(0.0, 1.0), &device);
        let flat = rope.apply_flat_at(x3.clone(), 40, &positions);
        let rotated = rope.apply_at(heads(x3, 5), &positions);
        assert_eq!(max_abs_diff(heads(flat, 5), rotated), 0.0);
    }

    #[test]
    fn per_row_positions_equal_each_row_applied_alone() {
        let device = Default::default();
        let rope = RopeConfig::new(8)
            .with_max_seq_len(32)
            .init::<TestBackend>(&device);
        let x =
            Tensor::<TestBackend, 4>::random([3, 2, 4, 8], Distribution::Normal(0.0, 1.0), &device);
        let positions = [0, 7, 28];
        let together = rope.apply_at(x.clone(), &positions);
        for (row, &p) in positions.iter().enumerate() {
            let alone = rope.apply(x.clone().narrow(0, row, 1), p);
            assert!(max_abs_diff(together.clone().narrow(0, row, 1), alone) < 1e-6);
        }
    }
}
