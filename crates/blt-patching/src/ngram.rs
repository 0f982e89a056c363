//! Hash n-gram ids: for each position and each size n, a table row for the n ids ending there.
//!
//! Follows `byte_group_hash_function` / `rolling_polynomial_hash` in `bytelatent/model/blt.py`
//! of the official BLT code (reference §4). The window of size n at position i is
//! `[t_{i-n+1}, …, t_i]`, left-padded with id 0 before position 0 (short n-grams are *not*
//! skipped). Its hash is `h = Σ_{j=0}^{n-1} w_j · p^j` with `w_0` the oldest id, computed in
//! `i64` with two's-complement wraparound (the powers of `p` wrap too), then
//! `h.rem_euclid(table_size)` (torch's floor-mod `remainder`).
//!
//! Windows end at the current position, so the ids are causal: they never read a later byte.

use crate::error::PatchingError;

/// The n-gram sizes of the released models: 3, 4, 5, 6, 7, 8.
pub const DEFAULT_NGRAM_SIZES: [usize; 6] = [3, 4, 5, 6, 7, 8];
/// Rows per hash table in the released models (`encoder_hash_byte_group_vocab`).
pub const DEFAULT_NGRAM_TABLE_SIZE: usize = 500_002;
/// The first prime of the original code's list, the only one the released models use.
pub const DEFAULT_NGRAM_PRIME: i64 = 1_000_000_007;
/// The largest n-gram size [`NgramHasher::new`] accepts (the released models use 8).
pub const MAX_NGRAM_SIZE: usize = 64;

/// Hashes the n-grams ending at every position into table rows.
///
/// The window of size n at position i is `[t_{i-n+1}, …, t_i]`, left-padded with id 0 before
/// position 0. Its hash is `h = Σ_{j=0}^{n-1} w_j · p^j` with `w_0` the oldest id, in `i64`
/// with two's-complement wraparound (powers of `p` included), reduced with
/// `h.rem_euclid(table_size)`, as `byte_group_hash_function` of the original (reference §4).
/// Windows end at the current position, so ids never read a later byte.
///
/// ```
/// use blt_patching::NgramHasher;
/// let hasher = NgramHasher::new(vec![3, 4], 500_002)?;
/// let ids = [1, 72, 101, 105];
/// let rows = hasher.hash_ids(&ids); // [sizes][positions]
/// assert_eq!(rows.len(), 2);
/// assert_eq!(rows[0].len(), ids.len());
/// assert_eq!(rows[0][0], 443_987); // reference §15
/// # Ok::<(), blt_patching::PatchingError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NgramHasher {
    sizes: Vec<usize>,
    table_size: usize,
    prime: i64,
    /// The largest size: how many past ids a window reaches.
    max_size: usize,
    reducer: RowReducer,
}

impl Default for NgramHasher {
    /// Sizes 3..=8, 500 002 rows per table, prime 1 000 000 007: the released models.
    fn default() -> Self {
        Self::build(
            DEFAULT_NGRAM_SIZES.to_vec(),
            DEFAULT_NGRAM_TABLE_SIZE,
            DEFAULT_NGRAM_PRIME,
        )
    }
}

impl NgramHasher {
    /// A hasher for the given n-gram `sizes` (non-empty, each in `1..=`[`MAX_NGRAM_SIZE`], in
    /// table order) with `table_size` rows per table (in `1..=2^32`), using
    /// [`DEFAULT_NGRAM_PRIME`].
    pub fn new(sizes: Vec<usize>, table_size: usize) -> Result<Self, PatchingError> {
        if sizes.is_empty() || sizes.iter().any(|n| !(1..=MAX_NGRAM_SIZE).contains(n)) {
            return Err(PatchingError::InvalidNgramSizes { sizes });
        }
        if table_size == 0 || table_size as u64 > 1 << 32 {
            return Err(PatchingError::InvalidTableSize { table_size });
        }
        Ok(Self::build(sizes, table_size, DEFAULT_NGRAM_PRIME))
    }

    /// The same hasher with another prime (any `i64`; the original lists eleven).
    pub fn with_prime(self, prime: i64) -> Self {
        Self::build(self.sizes, self.table_size, prime)
    }

    fn build(sizes: Vec<usize>, table_size: usize, prime: i64) -> Self {
        Self {
            max_size: sizes.iter().copied().max().unwrap_or(0),
            reducer: RowReducer::new(table_size as u64),
            sizes,
            table_size,
            prime,
        }
    }

    /// The n-gram sizes, in table order.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// Rows per hash table.
    pub fn table_size(&self) -> usize {
        self.table_size
    }

    /// The hash prime.
    pub fn prime(&self) -> i64 {
        self.prime
    }

    /// Hashes of every window size `1..=hashes.len()` ending at one position, from the ids
    /// `newest_first` (`t_i`, `t_{i−1}`, …; padding 0s included where the window reaches
    /// before position 0).
    ///
    /// Horner over the window length: `h_1 = t_i` and `h_{m+1} = t_{i−m} + p · h_m`, because
    /// growing the window by one older id shifts every weight up by one power of `p` and adds
    /// the new oldest id with weight `p^0`. This is exact in wrapping `i64` arithmetic.
    #[inline]
    fn window_hashes<'a>(&self, newest_first: impl Iterator<Item = &'a u32>, hashes: &mut [i64]) {
        let mut h = 0i64;
        for (slot, &w) in hashes.iter_mut().zip(newest_first) {
            h = i64::from(w).wrapping_add(self.prime.wrapping_mul(h));
            *slot = h;
        }
    }

    /// Ids for every size and position, laid out `[sizes.len()][ids.len()]`.
    pub fn hash_ids(&self, ids: &[u32]) -> Vec<Vec<u32>> {
        if ids.is_empty() {
            return vec![Vec::new(); self.sizes.len()];
        }
        let mut flat = vec![0u32; self.sizes.len() * ids.len()];
        self.write_ids(ids, &mut flat);
        flat.chunks_exact(ids.len()).map(<[u32]>::to_vec).collect()
    }

    /// Ids for every size and position, written size-major into `out`
    /// (`out[k * ids.len() + i]` is size `sizes[k]` at position `i`); allocates only a scratch
    /// of `max(sizes)` hashes per call.
    ///
    /// Errors if `out.len() != sizes.len() * ids.len()`.
    pub fn hash_ids_into(&self, ids: &[u32], out: &mut [u32]) -> Result<(), PatchingError> {
        let expected = self.sizes.len() * ids.len();
        if out.len() != expected {
            return Err(PatchingError::OutputLength {
                expected,
                got: out.len(),
            });
        }
        self.write_ids(ids, out);
        Ok(())
    }

    /// `out.len() == sizes.len() * ids.len()`.
    fn write_ids(&self, ids: &[u32], out: &mut [u32]) {
        let len = ids.len();
        let mut hashes = vec![0i64; self.max_size];
        // Windows that reach before position 0 get padding from `window_hashes`; the others
        // read exactly `max_size` ids.
        let head = len.min(self.max_size - 1);
        for i in 0..len {
            if i < head {
                let padded = ids[..=i].iter().rev().chain(std::iter::repeat(&0));
                self.window_hashes(padded, &mut hashes);
            } else {
                let window = &ids[i + 1 - self.max_size..=i];
                self.window_hashes(window.iter().rev(), &mut hashes);
            }
            for (k, &n) in self.sizes.iter().enumerate() {
                out[k * len + i] = self.reducer.reduce(hashes[n - 1]);
            }
        }
    }

    /// An incremental hasher for generation, starting before position 0.
    pub fn stream(&self) -> NgramStream {
        NgramStream {
            hasher: self.clone(),
            history: vec![0; self.max_size],
            hashes: vec![0; self.max_size],
        }
    }
}

/// `h.rem_euclid(d)` for a fixed `d` in `1..=2^32`, without a division per call.
///
/// Lemire, Kaser & Kurz, "Faster Remainder by Direct Computation" (2019), Theorem 1 with
/// `F = 128`, `N = 64`: with `m = ⌈2^128 / d⌉`, `u mod d = ⌊((m · u) mod 2^128) · d / 2^128⌋`
/// for every `u < 2^64`, since `m · d − 2^128 < d ≤ 2^64`. A negative `h` is
/// `u − 2^64` with `u = h as u64`, so its floor-mod is `(u mod d − 2^64 mod d) mod d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RowReducer {
    d: u64,
    /// `⌈2^128 / d⌉` (wrapping to 0 for `d = 1`, where every remainder is 0 anyway).
    m: u128,
    /// `2^64 mod d`.
    wrap: u64,
}

impl RowReducer {
    fn new(d: u64) -> Self {
        debug_assert!((1..=1 << 32).contains(&d), "table size out of range");
        let m = if d == 1 {
            0
        } else {
            u128::MAX / u128::from(d) + 1
        };
        Self {
            d,
            m,
            wrap: (u64::MAX % d + 1) % d,
        }
    }

    #[inline]
    fn reduce(&self, h: i64) -> u32 {
        let u = h as u64;
        let low = self.m.wrapping_mul(u128::from(u));
        let d = u128::from(self.d);
        // High 128 bits of the 192-bit product low · d (both partial products < 2^96).
        let r = (((low >> 64) * d + (((low & u128::from(u64::MAX)) * d) >> 64)) >> 64) as u64;
        // For negative h add d − wrap (< 2d in total), then reduce once. Branch-free on
        // purpose: hash signs are random, so a branch would mispredict half the time.
        let negative = (h >> 63) as u64;
        let r = r + ((self.d - self.wrap) & negative);
        let r = if r >= self.d { r - self.d } else { r };
        // r < d ≤ 2^32.
        r as u32
    }
}

/// Incremental n-gram ids: push one id at a time, get that position's id for every size.
///
/// Gives exactly what [`NgramHasher::hash_ids`] gives for the same sequence.
///
/// ```
/// use blt_patching::NgramHasher;
/// let hasher = NgramHasher::default();
/// let ids = [1, 72, 101, 105, 114];
/// let batch = hasher.hash_ids(&ids);
/// let mut stream = hasher.stream();
/// for (i, &id) in ids.iter().enumerate() {
///     let step = stream.push(id);
///     for (k, row) in batch.iter().enumerate() {
///         assert_eq!(step[k], row[i]);
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct NgramStream {
    hasher: NgramHasher,
    /// The last `max_size` ids, newest first (0 before position 0).
    history: Vec<u32>,
    /// Scratch: window hashes of every length.
    hashes: Vec<i64>,
}

impl NgramStream {
    /// Consumes the next id and returns its n-gram ids, one per size (in `sizes` order).
    pub fn push(&mut self, id: u32) -> Vec<u32> {
        let mut out = vec![0; self.hasher.sizes.len()];
        self.push_with(id, &mut out);
        out
    }

    /// Like [`push`](Self::push), writing into `out` (length `sizes.len()`).
    pub fn push_into(&mut self, id: u32, out: &mut [u32]) -> Result<(), PatchingError> {
        if out.len() != self.hasher.sizes.len() {
            return Err(PatchingError::OutputLength {
                expected: self.hasher.sizes.len(),
                got: out.len(),
            });
        }
        self.push_with(id, out);
        Ok(())
    }

    fn push_with(&mut self, id: u32, out: &mut [u32]) {
        self.history.rotate_right(1);
        self.history[0] = id;
        self.hasher
            .window_hashes(self.history.iter(), &mut self.hashes);
        for (&n, slot) in self.hasher.sizes.iter().zip(out.iter_mut()) {
            *slot = self.hasher.reducer.reduce(self.hashes[n - 1]);
        }
    }

    /// Forgets everything pushed: the next id is position 0 again.
    pub fn reset(&mut self) {
        self.history.fill(0);
    }

    /// The hasher this stream uses.
    pub fn hasher(&self) -> &NgramHasher {
        &self.hasher
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, written out: window with explicit zero padding, powers from scratch.
    fn reference(ids: &[u32], n: usize, table: usize, prime: i64) -> Vec<u32> {
        (0..ids.len())
            .map(|i| {
                let mut h = 0i64;
                for j in 0..n {
                    let pos = i as i64 + 1 + j as i64 - n as i64;
                    let w = if pos < 0 {
                        0
                    } else {
                        i64::from(ids[pos as usize])
                    };
                    let mut p = 1i64;
                    for _ in 0..j {
                        p = p.wrapping_mul(prime);
                    }
                    h = h.wrapping_add(w.wrapping_mul(p));
                }
                h.rem_euclid(table as i64) as u32
            })
            .collect()
    }

    #[test]
    fn batch_matches_definition() {
        let ids: Vec<u32> = (0..40).map(|i| (i * 37 + 11) % 260).collect();
        let hasher = NgramHasher::new(vec![1, 3, 8, 12], 97)
            .unwrap()
            .with_prime(-5_915_587_277);
        let rows = hasher.hash_ids(&ids);
        for (k, &n) in hasher.sizes().iter().enumerate() {
            assert_eq!(rows[k], reference(&ids, n, 97, hasher.prime()), "n = {n}");
        }
        let mut flat = vec![0; 4 * ids.len()];
        hasher.hash_ids_into(&ids, &mut flat).unwrap();
        assert_eq!(flat, rows.concat());
    }

    #[test]
    fn bad_configs_and_buffers_error() {
        assert!(NgramHasher::new(vec![], 10).is_err());
        assert!(NgramHasher::new(vec![3, 0], 10).is_err());
        assert!(NgramHasher::new(vec![MAX_NGRAM_SIZE + 1], 10).is_err());
        assert!(NgramHasher::new(vec![MAX_NGRAM_SIZE], 10).is_ok());
        assert!(NgramHasher::new(vec![3], 0).is_err());
        assert!(NgramHasher::new(vec![3], (1 << 32) + 1).is_err());
        let hasher = NgramHasher::new(vec![3], 1 << 32).unwrap();
        assert!(hasher.hash_ids_into(&[1, 2], &mut [0; 3]).is_err());
        assert!(hasher.stream().push_into(1, &mut [0; 2]).is_err());
        assert!(hasher.hash_ids_into(&[], &mut []).is_ok());
        assert!(hasher.hash_ids(&[]).iter().all(Vec::is_empty));
    }

    #[test]
    fn reducer_is_floor_mod() {
        let values = [
            0,
            1,
            -1,
            2,
            -2,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
            1 << 40,
            -(1 << 40),
        ];
        let divisors = [
            1u64,
            2,
            3,
            7,
            500_002,
            (1 << 31) - 1,
            1 << 31,
            (1 << 32) - 1,
            1 << 32,
        ];
        for &d in &divisors {
            let r = RowReducer::new(d);
            for &h in &values {
                assert_eq!(
                    u64::from(r.reduce(h)),
                    h.rem_euclid(d as i64) as u64,
                    "{h} mod {d}"
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn reducer_matches_rem_euclid(h in proptest::prelude::any::<i64>(), d in 1u64..=1 << 32) {
            let expected = h.rem_euclid(d as i64) as u64;
            proptest::prop_assert_eq!(u64::from(RowReducer::new(d).reduce(h)), expected);
        }
    }

    #[test]
    fn stream_resets() {
        let hasher = NgramHasher::default();
        let mut s = hasher.stream();
        let first = s.push(1);
        s.push(2);
        s.reset();
        assert_eq!(s.push(1), first);
    }
}
