//! Elementwise loops compiled for the widest vector unit the CPU has, chosen at run time.
//!
//! The default `x86_64` target only promises SSE2, so libm's `expf` runs one element at a time
//! and a polynomial `exp` cannot use fused multiply-adds. [`dispatch`] runs an op inside a
//! function compiled for AVX-512 or AVX2+FMA (through `pulp`'s safe dispatch, the same the
//! `gemm` crate uses).
//!
//! The loop must be the body of the op's `#[inline(always)]` [`WithSimd::with_simd`], calling
//! only `#[inline(always)]` helpers such as the ones here. A closure handed to the dispatch is
//! not inlined into the feature-enabled function, so it runs as plain SSE2 scalar code, which
//! is what an earlier version of these kernels did without anyone noticing: the disassembly
//! showed `mulss` where `vmulps` on `zmm` registers were expected.
//!
//! Sums and maxima use [`LANES`] independent accumulators, because the compiler may not
//! reorder a floating-point reduction by itself and a single accumulator is one long chain.

pub(crate) use pulp::{Simd, WithSimd};

/// Independent accumulators in the reductions: one AVX-512 register of f32.
const LANES: usize = 16;

/// Runs `op` compiled for the best instruction set this CPU supports.
#[inline(always)]
pub(crate) fn dispatch<Op: WithSimd>(op: Op) -> Op::Output {
    pulp::Arch::new().dispatch(op)
}

/// `eˣ` to within 2.5·2⁻²³ relative error (tested against f64) for `x` in `[−87.3, 88.3]`;
/// 0 below that range (where `eˣ` is subnormal; `exp(−∞) = 0` is what masked softmax entries
/// need), `e^88.3` above it, NaN for NaN. Branch-free and without float-to-int conversions, so
/// loops over it vectorise.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split into a part exact in f32 and the rest (Cody–Waite reduction).
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5·2²³: adding it rounds a float of magnitude < 2²² to an integer (ties to even), and
    // that integer then sits in the low bits of the sum's mantissa.
    const ROUND: f32 = 12_582_912.0;
    let clamped = x.clamp(-87.3, 88.3);
    let shifted = clamped * LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = (clamped - n * LN2_HI) - n * LN2_LO;
    // e^r for |r| ≤ ln2/2: Taylor coefficients through r⁷ (remainder below 2⁻²⁷ relative).
    let p = 1.0 / 5040.0;
    let p = p * r + 1.0 / 720.0;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    // 2ⁿ built from n's bits (n is in −126..=127, so the biased exponent is in 1..=254).
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    let scale = f32::from_bits(n_bits.wrapping_add(127) << 23);
    let y = if x < -87.3 { 0.0 } else { p * scale };
    if x.is_nan() { x } else { y }
}

/// The largest element (−∞ for an empty slice; NaN is ignored, as `f32::max` does).
#[inline(always)]
pub(crate) fn max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a = a.max(x);
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    acc.iter().fold(tail, |m, &a| m.max(a))
}

/// Replaces every `x` by `exp(x − shift)` and returns their sum.
#[inline(always)]
pub(crate) fn exp_shifted_sum(xs: &mut [f32], shift: f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = xs.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (a, x) in acc.iter_mut().zip(chunk) {
            *x = exp(*x - shift);
            *a += *x;
        }
    }
    let mut tail = 0.0;
    for x in chunks.into_remainder() {
        *x = exp(*x - shift);
        tail += *x;
    }
    tail + acc.iter().sum::<f32>()
}

/// Multiplies every element by `factor`.
#[inline(always)]
pub(crate) fn scale(xs: &mut [f32], factor: f32) {
    xs.iter_mut().for_each(|x| *x *= factor);
}

/// `Σ aᵢ·bᵢ` over the common length.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let (mut ca, mut cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    for (x, y) in (&mut ca).zip(&mut cb) {
        for ((s, &x), &y) in acc.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    tail + acc.iter().sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::{Simd, WithSimd, dispatch, dot, exp, exp_shifted_sum, max};

    /// `exp` over a slice, through the dispatch (the vectorised code path).
    struct ExpAll<'a>(&'a [f32]);

    impl WithSimd for ExpAll<'_> {
        type Output = Vec<f32>;

        #[inline(always)]
        fn with_simd<S: Simd>(self, _simd: S) -> Vec<f32> {
            self.0.iter().map(|&x| exp(x)).collect()
        }
    }

    /// Relative error against f64's `exp` over the range, the edges, and the special values,
    /// through the dispatched and the plain code.
    #[test]
    fn exp_is_within_f32_rounding_of_f64() {
        let mut xs: Vec<f32> = (0..200_001)
            .map(|i| -87.3 + i as f32 * (175.6 / 200_000.0))
            .collect();
        xs.extend([0.0, -0.0, 1e-30, -1e-30, 0.5, -0.5, 1.0, -1.0, 88.3, -87.3]);
        let got = dispatch(ExpAll(&xs));
        for (&x, &y) in xs.iter().zip(&got) {
            let want = f64::from(x).exp();
            let err = ((f64::from(y) - want) / want).abs();
            assert!(
                err < 2.5 * f64::from(f32::EPSILON),
                "exp({x}) = {y}, want {want}: {err:e}"
            );
            assert_eq!(y, exp(x), "the vector and scalar code agree at {x}");
        }
        let special = [f32::NEG_INFINITY, -100.0, f32::NAN, f32::INFINITY];
        let got = dispatch(ExpAll(&special));
        assert_eq!(got[0], 0.0);
        assert_eq!(got[1], 0.0);
        assert!(got[2].is_nan());
        assert_eq!(got[3], exp(88.3));
    }

    /// The reductions against plain sequential ones, on lengths around the lane count.
    #[test]
    fn reductions_match_sequential_ones() {
        for n in [0, 1, 15, 16, 17, 33, 100] {
            let a: Vec<f32> = (0..n)
                .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.25)
                .collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 11 % 7) as f32 - 3.0) * 0.5).collect();
            let want_max = a.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
            assert_eq!(max(&a), want_max, "max, n = {n}");
            let want_dot: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(x * y)).sum();
            assert!(
                (f64::from(dot(&a, &b)) - want_dot).abs() < 1e-4,
                "dot, n = {n}"
            );
            let mut e = a.clone();
            let sum = exp_shifted_sum(&mut e, want_max);
            let want: Vec<f64> = a.iter().map(|&x| f64::from(x - want_max).exp()).collect();
            for (got, want) in e.iter().zip(&want) {
                assert!(
                    (f64::from(*got) - want).abs() <= 3e-7 * want,
                    "exp, n = {n}"
                );
            }
            let want_sum: f64 = want.iter().sum();
            assert!((f64::from(sum) - want_sum).abs() <= 1e-6 * want_sum.max(1.0));
        }
    }
}
