//! Every patching scheme as a test config, with entropy thresholds that fall between the model's
//! own entropies (shared by the model tests and blt-train's wgpu suite).

use super::common;

use blt_model::{BltConfig, PatchingKind};
use common::*;

/// Every scheme, with entropy thresholds set from the fresh model's own entropies on `prompt`
/// (near the median, or the median rise for the monotonic rule) so that boundaries vary.
pub fn schemes(prompt: &[u8], seed: u64) -> Vec<(&'static str, BltConfig)> {
    let mut entropy = test_config(PatchingKind::Entropy);
    let h = TestModel::new(entropy.clone(), seed)
        .entropies(&[prompt])
        .unwrap()
        .remove(0);
    tune_threshold(&mut entropy, &h);
    let mut monotonic = entropy.clone();
    monotonic.monotonic_entropy = true;
    monotonic.reset_entropy_context = true;
    tune_threshold(&mut monotonic, &h);
    let mut fixed = test_config(PatchingKind::Fixed);
    fixed.patch_stride = 3;
    let mut space = test_config(PatchingKind::Space);
    space.max_patch_size = 6;
    space.pooling = blt_model::Pooling::Max;
    let mut byte = test_config(PatchingKind::Byte);
    byte.attention = blt_core::AttentionKind::Differential;
    byte.hierarchical_memory = true;
    vec![
        ("entropy", entropy),
        ("monotonic", monotonic),
        ("fixed", fixed),
        ("space", space),
        ("byte", byte),
    ]
}

/// Sets `config`'s entropy threshold between the values of `entropies` (one row's), or between
/// its rises for the monotonic rule, near the median.
pub fn tune_threshold(config: &mut BltConfig, entropies: &[f32]) {
    config.entropy_threshold = if config.monotonic_entropy {
        let rises = entropies
            .windows(2)
            .map(|w| w[1] - w[0])
            .filter(|d| *d > 0.0);
        threshold_between(rises.collect())
    } else {
        threshold_between(entropies.to_vec())
    };
}

/// A threshold in the middle of the widest gap between neighbouring values of the middle half.
/// A threshold equal to (or within rounding of) some entropy would make a boundary depend on
/// the last bit of a float, which differs between a full forward and a cached step.
fn threshold_between(mut values: Vec<f32>) -> f32 {
    values.sort_by(f32::total_cmp);
    let n = values.len();
    let (i, _) = (n / 4..(3 * n / 4).max(n / 4 + 1))
        .map(|i| (i, values[i + 1] - values[i]))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("at least two values");
    (values[i] + values[i + 1]) / 2.0
}
