//! Entropy-threshold calibration: pick θ so that entropy patching reaches a target mean patch
//! length on some data (design §4, `blt-cli calibrate`).
//!
//! **Mean patch length** of a set of rows is `Σ T_r / Σ P_r`: total input positions over total
//! patches, where a row of `T_r` input positions has `P_r` patches holding at least one input
//! position ([`Patches::num_patches`](crate::Patches::num_patches); the virtual next slot is
//! not counted). Empty rows contribute nothing.
//!
//! Raising θ can only remove raw starts, and with the causal min/max rules fewer raw starts
//! never give more patches (the k-th start can only move later), so the mean is a
//! non-decreasing step function of θ. It changes only at the signal values (`H[t−1]` for the
//! global rule, `H[t−1] − H[t−2]` for the monotonic one), so the bisection runs over the
//! sorted distinct signals and is exact.

use crate::error::PatchingError;
use crate::rule::StartRule;
use crate::scheme::{PatcherConfig, PatchingScheme};

/// The entropy-rule options calibration keeps fixed while it searches θ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalibrationOptions {
    /// Use the monotonic (difference) rule. Default `false` (global rule).
    pub monotonic: bool,
    /// See [`PatcherConfig::min_patch_size`]. Default 1.
    pub min_patch_size: usize,
    /// See [`PatcherConfig::max_patch_size`]. Default `None`.
    pub max_patch_size: Option<usize>,
}

impl Default for CalibrationOptions {
    fn default() -> Self {
        Self {
            monotonic: false,
            min_patch_size: 1,
            max_patch_size: None,
        }
    }
}

impl CalibrationOptions {
    /// The patcher configuration these options give with threshold `threshold`.
    pub fn config(&self, threshold: f32) -> PatcherConfig {
        PatcherConfig {
            scheme: PatchingScheme::Entropy {
                threshold,
                monotonic: self.monotonic,
            },
            min_patch_size: self.min_patch_size,
            max_patch_size: self.max_patch_size,
        }
    }
}

/// The result of [`calibrate_threshold`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    /// The chosen threshold θ.
    pub threshold: f32,
    /// The mean patch length θ gives on the calibration data.
    pub mean_patch_len: f64,
}

/// Mean patch length of entropy patching with `threshold` over `entropies` (one slice per row).
///
/// Defined as `Σ T_r / Σ P_r`: total input positions over total patches, where a row of `T_r`
/// positions has `P_r` patches holding at least one input position
/// ([`Patches::num_patches`](crate::Patches::num_patches); the virtual next slot is not
/// counted). Empty rows contribute nothing. Errors on invalid options or when no row has a
/// position.
pub fn mean_patch_len(
    entropies: &[&[f32]],
    threshold: f32,
    options: &CalibrationOptions,
) -> Result<f64, PatchingError> {
    let config = options.config(threshold);
    config.validate()?;
    let positions: usize = entropies.iter().map(|r| r.len()).sum();
    if positions == 0 {
        return Err(PatchingError::EmptyCalibrationData);
    }
    Ok(mean_of(&config, entropies, positions))
}

fn mean_of(config: &PatcherConfig, entropies: &[&[f32]], positions: usize) -> f64 {
    let patches: usize = entropies
        .iter()
        .map(|row| StartRule::count_entropy_patches(config, row))
        .sum();
    positions as f64 / patches as f64
}

/// Finds the threshold whose mean patch length on `entropies` (one slice per row, `H[t]` per
/// position) is closest to `target_mean_patch_len`, by bisection over the threshold.
///
/// The mean patch length is the one of [`mean_patch_len`] (total positions / total patches).
/// It is a non-decreasing step function of θ (fewer raw starts never give more patches, min and
/// max sizes included) that changes only at the data's signal values (`H[t−1]`, or
/// `H[t−1] − H[t−2]` for the monotonic rule), so the bisection runs over the sorted distinct
/// signals and is exact; of the two levels around the target, the closer wins. The returned
/// θ is the middle of the interval of thresholds that behave alike on this data, and
/// `mean_patch_len` is what it achieves.
///
/// Errors when the target is not finite, when it lies outside what any threshold reaches on
/// this data (`UnreachableTarget` names the reachable range; a target below 1 never is), when
/// the data has no position or a non-finite entropy, and for invalid options.
///
/// ```
/// use blt_patching::{calibrate_threshold, CalibrationOptions};
/// let row: Vec<f32> = (0..64).map(|i| (i % 4) as f32).collect(); // 0,1,2,3,0,1,2,3,…
/// let cal = calibrate_threshold(&[&row], 4.0, &CalibrationOptions::default())?;
/// assert!(cal.threshold >= 2.0 && cal.threshold < 3.0); // only H = 3 opens a patch
/// assert!((cal.mean_patch_len - 64.0 / 17.0).abs() < 1e-12);
/// assert!(calibrate_threshold(&[&row], 0.5, &CalibrationOptions::default()).is_err());
/// # Ok::<(), blt_patching::PatchingError>(())
/// ```
pub fn calibrate_threshold(
    entropies: &[&[f32]],
    target_mean_patch_len: f64,
    options: &CalibrationOptions,
) -> Result<Calibration, PatchingError> {
    let target = target_mean_patch_len;
    if !target.is_finite() {
        return Err(PatchingError::InvalidTarget { target });
    }
    options.config(0.0).validate()?;
    let positions: usize = entropies.iter().map(|r| r.len()).sum();
    if positions == 0 {
        return Err(PatchingError::EmptyCalibrationData);
    }
    for (row, h) in entropies.iter().enumerate() {
        if let Some(position) = h.iter().position(|e| !e.is_finite()) {
            return Err(PatchingError::NonFiniteEntropy {
                row,
                position,
                value: h[position],
            });
        }
    }

    let levels = threshold_levels(entropies, options.monotonic);
    let mean = |i: usize| mean_of(&options.config(levels[i]), entropies, positions);
    let last = levels.len() - 1;
    let (min_reachable, max_reachable) = (mean(0), mean(last));
    // Means are ratios of integers; allow for their rounding when the target sits on a bound.
    let tol = 1e-9 * target.abs().max(1.0);
    if target < min_reachable - tol || target > max_reachable + tol {
        return Err(PatchingError::UnreachableTarget {
            target,
            min_reachable,
            max_reachable,
        });
    }

    // Smallest level whose mean reaches the target (mean(last) does, within tol).
    let (mut lo, mut hi) = (0, last);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if mean(mid) >= target - tol {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let mut pick = lo;
    if lo > 0 && (target - mean(lo - 1)).abs() < (mean(lo) - target).abs() {
        pick = lo - 1;
    }

    // Any θ in [levels[pick], levels[pick + 1]) behaves the same on this data; return the
    // middle of that interval so that nearby values on other data are not on a knife edge.
    let mut threshold = levels[pick];
    if let Some(&next) = levels.get(pick + 1) {
        let mid = ((f64::from(threshold) + f64::from(next)) / 2.0) as f32;
        if mid >= threshold && mid < next {
            threshold = mid;
        }
    }
    Ok(Calibration {
        threshold,
        mean_patch_len: mean_of(&options.config(threshold), entropies, positions),
    })
}

/// Sorted distinct finite thresholds covering every behaviour: one below every signal (all
/// raw starts), then each signal value (all signals up to it stop opening patches).
fn threshold_levels(entropies: &[&[f32]], monotonic: bool) -> Vec<f32> {
    let mut levels: Vec<f32> = Vec::new();
    for h in entropies {
        if monotonic {
            levels.extend(h.windows(2).map(|w| w[1] - w[0]));
        } else {
            levels.extend_from_slice(h);
        }
    }
    levels.retain(|v| v.is_finite());
    levels.sort_by(f32::total_cmp);
    levels.dedup();
    let bottom = match levels.first() {
        Some(&m) if m.next_down().is_finite() => m.next_down(),
        Some(&m) => m,
        None => 0.0,
    };
    if levels.first() != Some(&bottom) {
        levels.insert(0, bottom);
    }
    levels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaches_the_bounds_and_rejects_beyond() {
        let row: Vec<f32> = (0..100).map(|i| ((i * 7919) % 101) as f32 / 20.0).collect();
        let opts = CalibrationOptions::default();
        let all = calibrate_threshold(&[&row], 1.0, &opts).unwrap();
        assert_eq!(all.mean_patch_len, 1.0);
        // No entropy-triggered start: patches [BOS] and the rest.
        let none = calibrate_threshold(&[&row], 50.0, &opts).unwrap();
        assert_eq!(none.mean_patch_len, 50.0);
        for bad in [0.99, 50.5, f64::NAN, f64::INFINITY] {
            assert!(calibrate_threshold(&[&row], bad, &opts).is_err(), "{bad}");
        }
        let err = calibrate_threshold(&[&row], 0.5, &opts)
            .unwrap_err()
            .to_string();
        assert!(err.contains("[1, 50]"), "{err}");
    }

    #[test]
    fn closest_and_consistent() {
        let rows: Vec<Vec<f32>> = (0..5)
            .map(|r| {
                (0..300)
                    .map(|i| (((i * 31 + r * 17) % 97) as f32).sqrt() / 2.0)
                    .collect()
            })
            .collect();
        let rows: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        for monotonic in [false, true] {
            for (min, max) in [(1, None), (2, Some(6))] {
                let opts = CalibrationOptions {
                    monotonic,
                    min_patch_size: min,
                    max_patch_size: max,
                };
                for target in [2.0, 3.3, 4.5] {
                    let Ok(cal) = calibrate_threshold(&rows, target, &opts) else {
                        continue;
                    };
                    let again = mean_patch_len(&rows, cal.threshold, &opts).unwrap();
                    assert_eq!(again, cal.mean_patch_len);
                    // No level does better.
                    for level in threshold_levels(&rows, monotonic) {
                        let m = mean_patch_len(&rows, level, &opts).unwrap();
                        assert!((m - target).abs() >= (cal.mean_patch_len - target).abs() - 1e-12);
                    }
                }
            }
        }
    }

    #[test]
    fn bad_data() {
        let opts = CalibrationOptions::default();
        assert_eq!(
            calibrate_threshold(&[&[]], 2.0, &opts),
            Err(PatchingError::EmptyCalibrationData)
        );
        assert!(matches!(
            calibrate_threshold(&[&[1.0, f32::NAN]], 2.0, &opts),
            Err(PatchingError::NonFiniteEntropy {
                row: 0,
                position: 1,
                ..
            })
        ));
        let bad_opts = CalibrationOptions {
            min_patch_size: 0,
            ..opts
        };
        assert!(calibrate_threshold(&[&[1.0]], 1.0, &bad_opts).is_err());
        // Rows of one position: always one patch each, any target but 1 is unreachable.
        assert_eq!(
            calibrate_threshold(&[&[3.0], &[0.0]], 1.0, &opts)
                .unwrap()
                .mean_patch_len,
            1.0
        );
    }
}
