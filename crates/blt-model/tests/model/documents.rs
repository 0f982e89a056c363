//! `document_mask`: with it (the default) bytes after an EOS do not read the document before
//! it, in any of the three models; without it (transformers' plain causal masks) they do.
//! The whole model is checked, so a leak in any mask (local, global, entropy) fails it.

use super::common;

use blt_model::{BltInput, PatchingKind, RowPreparer};
use blt_patching::{BOS_ID, EOS_ID};
use burn::tensor::Tensor;
use common::*;

/// Logits of `[BOS] first [EOS] second`.
fn logits(model: &TestModel, first: &[u8], second: &[u8]) -> Tensor<B, 3> {
    let ids: Vec<u32> = std::iter::once(BOS_ID)
        .chain(first.iter().map(|&b| u32::from(b) + 4))
        .chain(std::iter::once(EOS_ID))
        .chain(second.iter().map(|&b| u32::from(b) + 4))
        .collect();
    let entropies = model.entropy.as_ref().map(|e| {
        e.entropies(&[&ids], model.config.entropy_resets(), &device())
            .unwrap()
            .remove(0)
    });
    let row = RowPreparer::new(&model.config)
        .unwrap()
        .prepare(ids, entropies.as_deref())
        .unwrap();
    let input = BltInput::<B>::from_rows(&model.config, &[row], &device()).unwrap();
    model.model.forward(&input).logits
}

fn model(kind: PatchingKind, document_mask: bool) -> TestModel {
    let mut config = test_config(kind);
    // Windows wider than the rows: only the document mask can keep documents apart.
    config.window_size = 128;
    config.entropy_context_size = 128;
    config.document_mask = document_mask;
    TestModel::new(config, 5)
}

/// With one-byte patches every byte's decoder reads its own patch, so a document is strictly
/// apart from the one before it: no byte after the EOS reads it (with the mask), where plain
/// causal masks let every byte read it.
#[test]
fn documents_are_apart_only_with_the_document_mask() {
    // Two first documents that differ but end alike: the hash n-grams of the bytes just after
    // the EOS reach back over it (up to 7 bytes, as in the original BLT), so only earlier
    // bytes may differ for the documents to be strictly apart.
    let a = text(1, 24);
    let mut a2 = text(2, 16);
    a2.extend_from_slice(&a[16..]);
    let second = text(3, 40);
    let after_eos = 1 + a.len() + 1;
    for document_mask in [true, false] {
        let model = model(PatchingKind::Byte, document_mask);
        let x = logits(&model, &a, &second).narrow(1, after_eos, second.len());
        let y = logits(&model, &a2, &second).narrow(1, after_eos, second.len());
        let diff = max_abs_diff(x, y);
        if document_mask {
            assert!(diff < 1e-5, "the earlier document leaked in by {diff}");
        } else {
            assert!(diff > 1e-4, "plain causal masks must read across the EOS");
        }
    }
}

/// With longer patches the bytes of a document's first patch read the global state of the
/// patch before it (the decoder's one-patch shift), which holds the EOS and so belongs to the
/// earlier document, as in the original BLT; what the mask guarantees there is the rest: the
/// switch changes nothing on rows without an EOS (where transformers' logits are ours) and
/// changes the logits after an EOS, for every scheme.
#[test]
fn the_document_mask_matters_only_after_an_eos() {
    let (a, second) = (text(1, 24), text(3, 40));
    let plain: Vec<u8> = a.iter().chain(&second).copied().collect();
    for kind in [
        PatchingKind::Byte,
        PatchingKind::Fixed,
        PatchingKind::Entropy,
    ] {
        let on = model(kind, true);
        // The same weights: the switch lives in the config, which builds the masks. (Burn
        // initialises parameters lazily, so run the model once before cloning it.)
        let with_mask = on.logits(&[&plain]);
        let mut off = TestModel {
            config: on.config.clone(),
            model: on.model.clone(),
            entropy: on.entropy.clone(),
        };
        off.config.document_mask = false;
        let diff = max_abs_diff(with_mask, off.logits(&[&plain]));
        assert_eq!(
            diff, 0.0,
            "{kind:?}: no EOS, yet the switch changed the logits by {diff}"
        );
        let after_eos = 1 + a.len() + 1;
        let x = logits(&on, &a, &second).narrow(1, after_eos, second.len());
        let y = logits(&off, &a, &second).narrow(1, after_eos, second.len());
        assert!(
            max_abs_diff(x, y) > 1e-4,
            "{kind:?}: the switch did nothing after an EOS"
        );
    }
}
