//! One-pass prefill equals byte-by-byte prefill: under every patching scheme, with a prompt
//! longer than the local windows and with document boundaries in it (EOS and reset newlines),
//! the host decoder's batched prefill gives the same patch decisions, the same last step, and
//! caches that decode every later byte as the byte-by-byte caches do (logits within 1e-4,
//! the same greedy bytes), in `f32` and in `int8`.

use super::common;

use super::schemes::schemes;
use blt_core::AttentionKind;
use blt_model::{
    Generator, Pooling, WeightPrecision,
    generate::{HostDecoder, Incremental, StepDecoder, argmax},
};
use common::*;

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// BOS, `prompt`'s bytes, an EOS in the middle (a document boundary for the entropy model).
fn ids_with_boundaries(prompt: &[u8]) -> Vec<u32> {
    let mut ids: Vec<u32> = std::iter::once(1)
        .chain(prompt.iter().map(|&b| u32::from(b) + 4))
        .collect();
    ids.insert(ids.len() / 2, blt_patching::EOS_ID);
    ids
}

#[test]
fn one_pass_prefill_equals_byte_by_byte() {
    // Longer than the local windows (12); the alphabet has newlines.
    let prompt = text(53, 45);
    let ids = ids_with_boundaries(&prompt);
    for (name, mut config) in schemes(&prompt, 61) {
        match name {
            "byte" => config.attention = AttentionKind::Standard,
            "fixed" => config.pooling = Pooling::Mean,
            _ => {}
        }
        config.reset_entropy_context = true;
        let m = TestModel::new(config.clone(), 61);
        let generator = Generator::new(&m.model, m.entropy.as_ref(), &config, device()).unwrap();
        for precision in [WeightPrecision::F32, WeightPrecision::Int8] {
            let what = format!("{name}, {precision:?}");
            let mut one_pass = HostDecoder::new(&generator, precision).unwrap();
            let mut by_byte = HostDecoder::new(&generator, precision).unwrap();
            let a = one_pass.prefill(&ids).unwrap();
            let mut b = None;
            for &id in &ids {
                b = Some(by_byte.push(id).unwrap());
            }
            let b = b.unwrap();
            assert_eq!(one_pass.patch_starts(), by_byte.patch_starts(), "{what}");
            assert_eq!(one_pass.global_steps(), by_byte.global_steps(), "{what}");
            assert_eq!(a.next_starts_patch, b.next_starts_patch, "{what}");
            let diff = max_diff(&a.logits, &b.logits);
            assert!(diff < 1e-4, "{what}: last prompt step differs by {diff}");
            if let (Some(x), Some(y)) = (a.entropy, b.entropy) {
                assert!((x - y).abs() < 1e-4, "{what}: entropy {x} vs {y}");
            }
            // Decode on from both sets of caches, greedily, across several patches.
            let mut next = argmax(&a.logits);
            for t in 0..24 {
                let id = if next < 4 { 4 + t } else { next };
                let (a, b) = (one_pass.push(id).unwrap(), by_byte.push(id).unwrap());
                assert_eq!(a.next_starts_patch, b.next_starts_patch, "{what}: step {t}");
                let diff = max_diff(&a.logits, &b.logits);
                assert!(diff < 1e-4, "{what}: decode step {t} differs by {diff}");
                assert_eq!(argmax(&a.logits), argmax(&b.logits), "{what}: step {t}");
                next = argmax(&a.logits);
            }
            assert_eq!(one_pass.patch_starts(), by_byte.patch_starts(), "{what}");
        }
        // The Burn path prefills byte by byte through the same state: it agrees too.
        let mut burn = Incremental::new(&generator).unwrap();
        let mut host = HostDecoder::new(&generator, WeightPrecision::F32).unwrap();
        let (a, b) = (burn.prefill(&ids).unwrap(), host.prefill(&ids).unwrap());
        assert_eq!(burn.patch_starts(), host.patch_starts(), "{name}");
        let diff = max_diff(&a.logits, &b.logits);
        assert!(
            diff < 1e-4,
            "{name}: Burn and host prefill differ by {diff}"
        );
    }
}
