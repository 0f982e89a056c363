//! Forward-pass properties: batching with padding equals per-row forwards, every variant gives
//! finite, well-shaped logits, and the entropy model's batched entropies equal per-row ones.

use super::common;

use blt_core::AttentionKind;
use blt_model::{BltConfig, PatchingKind, Pooling};
use common::*;

#[test]
fn batched_forward_with_padding_equals_per_row_forwards() {
    for kind in [
        PatchingKind::Entropy,
        PatchingKind::Space,
        PatchingKind::Fixed,
    ] {
        let model = TestModel::new(test_config(kind), 3);
        let texts = [text(5, 9), text(6, 40), text(7, 23)];
        let refs: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
        let batched = model.logits(&refs);
        assert_eq!(batched.dims(), [3, 41, 260]);
        for (b, t) in texts.iter().enumerate() {
            let single = model.logits(&[t]);
            let len = t.len() + 1;
            let row = batched.clone().narrow(0, b, 1).narrow(1, 0, len);
            let diff = max_abs_diff(row, single);
            assert!(diff < 1e-4, "{kind:?} row {b}: batched differs by {diff}");
        }
    }
}

#[test]
fn every_variant_gives_finite_well_shaped_logits() {
    type Tweak = Box<dyn Fn(&mut BltConfig)>;
    let variants: Vec<(&str, Tweak)> = vec![
        ("byte", Box::new(|c| c.patching = PatchingKind::Byte)),
        (
            "differential",
            Box::new(|c| c.attention = AttentionKind::Differential),
        ),
        ("memory", Box::new(|c| c.hierarchical_memory = true)),
        ("mean", Box::new(|c| c.pooling = Pooling::Mean)),
        ("max", Box::new(|c| c.pooling = Pooling::Max)),
        ("projection", Box::new(|c| c.global_hidden_size = 96)),
        ("one-ngram-size", Box::new(|c| c.ngram_sizes = vec![2])),
        ("k=1", Box::new(|c| c.cross_attn_k = 1)),
    ];
    for (name, tweak) in variants {
        let mut config = test_config(PatchingKind::Space);
        tweak(&mut config);
        let model = TestModel::new(config, 4);
        let texts = [text(8, 30), text(9, 12)];
        let logits = model.logits(&[&texts[0], &texts[1]]);
        assert_eq!(logits.dims(), [2, 31, 260], "{name}");
        let values: Vec<f32> = logits.into_data().to_vec().unwrap();
        assert!(
            values.iter().all(|v| v.is_finite()),
            "{name}: non-finite logits"
        );
    }
}

#[test]
fn batched_entropies_equal_per_row_entropies() {
    for reset in [false, true] {
        let mut config = test_config(PatchingKind::Entropy);
        config.reset_entropy_context = reset;
        let model = TestModel::new(config, 5);
        let texts = [text(10, 50), text(11, 7)];
        let both = model.entropies(&[&texts[0], &texts[1]]).unwrap();
        for (i, t) in texts.iter().enumerate() {
            let single = model.entropies(&[t]).unwrap().remove(0);
            assert_eq!(both[i].len(), t.len() + 1);
            for (a, b) in both[i].iter().zip(&single) {
                assert!((a - b).abs() < 1e-5, "reset={reset}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn entropy_context_resets_at_newlines_when_asked() {
    let mut config = test_config(PatchingKind::Entropy);
    config.reset_entropy_context = true;
    let model = TestModel::new(config, 6);
    let a = b"abc def\nxyz".to_vec();
    let b = b"QQQ RRR\nxyz".to_vec();
    let h = model.entropies(&[&a, &b]).unwrap();
    // After the newline (index 8 → position 9 onward) the context is the same.
    for (p, (a, b)) in h[0].iter().zip(&h[1]).enumerate().skip(9) {
        assert!((a - b).abs() < 1e-5, "position {p}");
    }
    assert!((h[0][3] - h[1][3]).abs() > 1e-6);
}
