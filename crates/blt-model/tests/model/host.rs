//! The host decoder (`DecodeMode::Host`) equals the full forward: at every step of a prompt
//! longer than the local window, under every patching scheme and pooling, with the entropy
//! model's context resets and the global model's hierarchical memory, the logits match a full
//! recompute (1e-4) and the patch decisions are the same; greedy generation, context shifts
//! included, gives the same bytes. Differential attention is refused with a clear error.

use super::common;

use super::schemes::schemes;
use blt_core::AttentionKind;
use blt_model::{
    BltConfig, DecodeMode, GenerationConfig, Generator, Pooling, SamplingConfig, WeightPrecision,
    generate::{FullRecompute, HostDecoder, StepDecoder},
};
use common::*;

/// Every scheme, with the byte scheme's differential attention made standard (it keeps its
/// hierarchical memory) and the fixed scheme pooling by mean: between them and the schemes'
/// own settings, every pooling and every global-model option the host path has.
fn host_schemes(prompt: &[u8], seed: u64) -> Vec<(&'static str, BltConfig)> {
    schemes(prompt, seed)
        .into_iter()
        .map(|(name, mut config)| {
            match name {
                "byte" => config.attention = AttentionKind::Standard,
                "fixed" => config.pooling = Pooling::Mean,
                _ => {}
            }
            (name, config)
        })
        .collect()
}

/// Largest absolute difference between two logit vectors.
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn host_logits_equal_full_forward_at_every_step() {
    let prompt = text(31, 40);
    let mut pools = Vec::new();
    for (name, config) in host_schemes(&prompt, 17) {
        pools.push(config.pooling);
        let m = TestModel::new(config.clone(), 17);
        let generator = Generator::new(&m.model, m.entropy.as_ref(), &config, device()).unwrap();
        let mut full = FullRecompute::new(&generator).unwrap();
        let mut host = HostDecoder::new(&generator, WeightPrecision::F32).unwrap();
        let ids: Vec<u32> = std::iter::once(1)
            .chain(prompt.iter().map(|&b| b as u32 + 4))
            .collect();
        for (t, &id) in ids.iter().enumerate() {
            let a = full.push(id).unwrap();
            let b = host.push(id).unwrap();
            assert_eq!(
                a.next_starts_patch, b.next_starts_patch,
                "{name}: patch decision at {t}"
            );
            let diff = max_diff(&a.logits, &b.logits);
            assert!(diff < 1e-4, "{name}: step {t} differs by {diff}");
            assert_eq!(a.entropy.is_some(), b.entropy.is_some(), "{name}");
            if let (Some(x), Some(y)) = (a.entropy, b.entropy) {
                assert!((x - y).abs() < 1e-4, "{name}: entropy at {t}: {x} vs {y}");
            }
        }
        assert_eq!(full.patches(), host.patches(), "{name}");
        assert_eq!(host.global_steps(), host.patches() - 1, "{name}");
    }
    for pooling in [Pooling::CrossAttention, Pooling::Max, Pooling::Mean] {
        assert!(pools.contains(&pooling), "{pooling:?} is exercised");
    }
}

/// With `bf16` or `int8` weight matrices the logits move by the rounding of the weights (2⁻⁹ of
/// each at most in bf16, half a step of 1/127 of its group's largest in int8), never by a
/// wiring error: within 3% (bf16) or 6% (int8) of the logits' scale of the `f32` host
/// decoder's, and entropies within 0.05 or 0.1 nats, under every scheme. Under entropy
/// patching a moved entropy may cross the threshold, and the two decoders then patch
/// differently from there on; the logits are compared while their patches agree, which for the
/// schemes that do not read entropies is every step, and for the others at least half of them.
#[test]
fn host_rounded_logits_stay_close_to_f32() {
    let prompt = text(5, 40);
    for (precision, logit_tolerance, entropy_tolerance) in [
        (WeightPrecision::Bf16, 0.03, 0.05),
        (WeightPrecision::Int8, 0.06, 0.1),
    ] {
        for (name, config) in host_schemes(&prompt, 29) {
            let what = format!("{name}, {precision:?}");
            let m = TestModel::new(config.clone(), 29);
            let generator =
                Generator::new(&m.model, m.entropy.as_ref(), &config, device()).unwrap();
            let mut exact = HostDecoder::new(&generator, WeightPrecision::F32).unwrap();
            let mut rounded = HostDecoder::new(&generator, precision).unwrap();
            let (mut worst, mut compared) = (0.0f32, 0);
            let ids: Vec<u32> = std::iter::once(1)
                .chain(prompt.iter().map(|&b| u32::from(b) + 4))
                .collect();
            for &id in &ids {
                let (a, b) = (exact.push(id).unwrap(), rounded.push(id).unwrap());
                if let (Some(x), Some(y)) = (a.entropy, b.entropy) {
                    assert!(
                        (x - y).abs() < entropy_tolerance,
                        "{what}: entropies {x} and {y}"
                    );
                }
                if a.next_starts_patch != b.next_starts_patch {
                    break;
                }
                let scale = a.logits.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                let diff = max_diff(&a.logits, &b.logits);
                worst = worst.max(diff / scale);
                assert!(
                    diff <= logit_tolerance * scale,
                    "{what}: logits off by {diff} (scale {scale})"
                );
                compared += 1;
            }
            let reads_entropy = config.patching == blt_model::PatchingKind::Entropy;
            let needed = if reads_entropy {
                ids.len() / 2
            } else {
                ids.len()
            };
            assert!(
                compared >= needed,
                "{what}: {compared} of {} steps",
                ids.len()
            );
            assert!(worst > 0.0, "{what}: rounded weights changed nothing");
        }
    }
}

#[test]
fn host_greedy_generation_is_identical_across_context_shifts() {
    let prompt = text(7, 40);
    for (name, mut config) in host_schemes(&prompt, 43) {
        config.max_position_embeddings = 64;
        config.window_size = config.window_size.min(64);
        config.entropy_context_size = config.entropy_context_size.min(64);
        let m = TestModel::new(config.clone(), 43);
        let generator = Generator::new(&m.model, m.entropy.as_ref(), &config, device()).unwrap();
        let greedy = GenerationConfig {
            max_bytes: 100,
            sampling: SamplingConfig {
                ignore_eos: true,
                ..SamplingConfig::greedy()
            },
            stop: None,
            context_shift: true,
        };
        let host = generator
            .generate(
                &prompt,
                &greedy,
                DecodeMode::Host(WeightPrecision::F32),
                |_| true,
            )
            .unwrap();
        let slow = generator
            .generate(&prompt, &greedy, DecodeMode::FullRecompute, |_| true)
            .unwrap();
        assert_eq!(host.bytes, slow.bytes, "{name}");
        assert_eq!(host.patches, slow.patches, "{name}");
        assert!(
            host.context_shifts >= 2,
            "{name}: {} shifts",
            host.context_shifts
        );
        assert_eq!(host.context_shifts, slow.context_shifts, "{name}");
    }
}

#[test]
fn host_decoding_refuses_differential_attention() {
    let mut config = test_config(blt_model::PatchingKind::Fixed);
    config.attention = AttentionKind::Differential;
    let m = TestModel::new(config.clone(), 3);
    let generator = Generator::new(&m.model, None, &config, device()).unwrap();
    let err = generator
        .generate(
            b"abc",
            &GenerationConfig::default(),
            DecodeMode::Host(WeightPrecision::F32),
            |_| true,
        )
        .unwrap_err();
    assert!(err.to_string().contains("differential attention"), "{err}");
}
