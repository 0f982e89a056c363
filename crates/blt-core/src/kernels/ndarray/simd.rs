//! Elementwise loops compiled for the widest vector unit the CPU has, chosen at run time.
//!
//! The default `x86_64` target only promises SSE2, so libm's `expf` runs one element at a time
//! and a polynomial `exp` cannot use fused multiply-adds. [`vectorized`] runs a closure inside a
//! function compiled for AVX-512 or AVX2+FMA (through `pulp`'s safe dispatch, the same the
//! `gemm` crate uses), so that loops over [`exp`] inlined into it vectorise.

/// Runs `f` compiled for the best instruction set this CPU supports. Keep `f` a plain loop over
/// slices calling `#[inline(always)]` helpers such as [`exp`], so that all of it is inlined.
#[inline(always)]
pub(super) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// `eˣ` to within 2.5·2⁻²³ relative error (tested against f64) for `x` in `[−87.3, 88.3]`;
/// 0 below that range (where `eˣ` is subnormal; `exp(−∞) = 0` is what masked softmax entries
/// need), `e^88.3` above it, NaN for NaN. Branch-free, so loops over it vectorise.
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split into a part exact in f32 and the rest (Cody–Waite reduction).
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5·2²³: adding it rounds a float of magnitude < 2²² to an integer (ties to even).
    const ROUND: f32 = 12_582_912.0;
    let clamped = x.clamp(-87.3, 88.3);
    let n = (clamped * LOG2_E + ROUND) - ROUND;
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
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    let y = p * scale;
    if x.is_nan() {
        x
    } else if x < -87.3 {
        0.0
    } else {
        y
    }
}

#[cfg(test)]
mod tests {
    use super::{exp, vectorized};

    /// Relative error against f64's `exp` over the range, the edges, and the special values.
    #[test]
    fn exp_is_within_f32_rounding_of_f64() {
        let mut xs: Vec<f32> = (0..200_001)
            .map(|i| -87.3 + i as f32 * (175.6 / 200_000.0))
            .collect();
        xs.extend([0.0, -0.0, 1e-30, -1e-30, 0.5, -0.5, 1.0, -1.0, 88.3, -87.3]);
        let got = vectorized(|| xs.iter().map(|&x| exp(x)).collect::<Vec<_>>());
        for (&x, &y) in xs.iter().zip(&got) {
            let want = f64::from(x).exp();
            let err = ((f64::from(y) - want) / want).abs();
            assert!(
                err < 2.5 * f64::from(f32::EPSILON),
                "exp({x}) = {y}, want {want}: {err:e}"
            );
        }
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-100.0), 0.0);
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(f32::INFINITY), exp(88.3));
    }
}
