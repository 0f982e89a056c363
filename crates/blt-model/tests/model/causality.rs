//! Causality: for every patching scheme, perturbing bytes after position i — including
//! perturbations that move later patch boundaries — leaves logits at positions ≤ i unchanged.

use super::common;

use blt_model::{PatchingKind, Pooling};
use blt_patching::Patcher;
use common::*;

fn check_scheme(kind: PatchingKind, tweak: impl Fn(&mut blt_model::BltConfig)) {
    let mut config = test_config(kind);
    tweak(&mut config);
    let mut model = TestModel::new(config.clone(), 11);
    let base = text(1, 60);
    if kind == PatchingKind::Entropy {
        // Put the threshold at the median entropy so that boundaries fall everywhere.
        let mut h = model.entropies(&[&base]).unwrap().remove(0);
        h.sort_by(f32::total_cmp);
        model.config.entropy_threshold = h[h.len() / 2];
    }
    let patcher = Patcher::new(model.config.patcher_config()).unwrap();
    let reference = model.logits(&[&base]);
    let mut boundaries_moved = false;
    for (trial, cut) in [3usize, 17, 30, 45, 58].into_iter().enumerate() {
        // Bytes at index ≥ cut (positions ≥ cut + 1) change; positions 0..=cut must not.
        let mut perturbed = base[..cut].to_vec();
        perturbed.extend(text(100 + trial as u64, 60 - cut + trial * 3));
        let logits = model.logits(&[&perturbed]);
        let keep = cut + 1;
        let diff = max_abs_diff(
            logits.clone().narrow(1, 0, keep),
            reference.clone().narrow(1, 0, keep),
        );
        assert!(
            diff < 1e-5,
            "{kind:?}: future bytes changed logits at positions ≤ {cut} by {diff}"
        );
        let n = (base.len() + 1 - keep).min(3);
        let later = max_abs_diff(
            logits.narrow(1, keep, n),
            reference.clone().narrow(1, keep, n),
        );
        assert!(
            later > 1e-4,
            "{kind:?}: the perturbation did not reach later positions"
        );

        let ids = |t: &[u8]| -> Vec<u32> {
            std::iter::once(1)
                .chain(t.iter().map(|&b| b as u32 + 4))
                .collect()
        };
        let (a, b) = (ids(&base), ids(&perturbed));
        let h = model.entropies(&[&base, &perturbed]);
        let pa = patcher
            .patch(&a, h.as_ref().map(|h| h[0].as_slice()))
            .unwrap();
        let pb = patcher
            .patch(&b, h.as_ref().map(|h| h[1].as_slice()))
            .unwrap();
        let later_starts = |p: &blt_patching::Patches| {
            p.starts
                .iter()
                .copied()
                .filter(|&s| s > keep)
                .take(4)
                .collect::<Vec<_>>()
        };
        boundaries_moved |= later_starts(&pa) != later_starts(&pb);
    }
    if matches!(kind, PatchingKind::Entropy | PatchingKind::Space) {
        assert!(
            boundaries_moved,
            "{kind:?}: no perturbation moved a later patch boundary"
        );
    }
}

#[test]
fn entropy_patching_is_causal() {
    check_scheme(PatchingKind::Entropy, |_| {});
}

#[test]
fn monotonic_entropy_patching_with_size_limits_is_causal() {
    check_scheme(PatchingKind::Entropy, |c| {
        c.monotonic_entropy = true;
        c.min_patch_size = 2;
        c.max_patch_size = 6;
    });
}

#[test]
fn fixed_space_and_byte_patching_are_causal() {
    check_scheme(PatchingKind::Fixed, |c| c.patch_stride = 3);
    check_scheme(PatchingKind::Space, |c| c.max_patch_size = 5);
    check_scheme(PatchingKind::Byte, |_| {});
}

#[test]
fn variants_are_causal() {
    check_scheme(PatchingKind::Space, |c| c.pooling = Pooling::Mean);
    check_scheme(PatchingKind::Fixed, |c| {
        c.pooling = Pooling::Max;
        c.hierarchical_memory = true;
    });
    check_scheme(PatchingKind::Space, |c| {
        c.attention = blt_core::AttentionKind::Differential
    });
}
