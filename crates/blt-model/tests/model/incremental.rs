//! Incremental decoding equals the full forward: at every step of random prompts, under every
//! patching scheme, the logits of the cached path match a full recompute (1e-4); greedy output is
//! identical on both paths; the global model runs exactly once per patch.

use super::common;

use super::schemes::schemes;
use blt_model::{
    DecodeMode, GenerationConfig, Generator, SamplingConfig,
    generate::{FullRecompute, Incremental, StepDecoder},
};
use common::*;

#[test]
fn incremental_logits_equal_full_forward_at_every_step() {
    // Longer than the local window (12), so cache truncation is exercised.
    let prompt = text(31, 40);
    for (name, config) in schemes(&prompt, 17) {
        let m = TestModel::new(config.clone(), 17);
        let generator = Generator::new(&m.model, m.entropy.as_ref(), &config, device()).unwrap();
        let mut full = FullRecompute::new(&generator).unwrap();
        let mut fast = Incremental::new(&generator).unwrap();
        let ids: Vec<u32> = std::iter::once(1)
            .chain(prompt.iter().map(|&b| b as u32 + 4))
            .collect();
        let mut boundaries = 0;
        for (t, &id) in ids.iter().enumerate() {
            let a = full.push(id).unwrap();
            let b = fast.push(id).unwrap();
            assert_eq!(
                a.next_starts_patch, b.next_starts_patch,
                "{name}: patch decision at {t}"
            );
            boundaries += usize::from(a.next_starts_patch);
            let diff = a
                .logits
                .iter()
                .zip(&b.logits)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max);
            assert!(diff < 1e-4, "{name}: step {t} differs by {diff}");
            if let (Some(x), Some(y)) = (a.entropy, b.entropy) {
                assert!((x - y).abs() < 1e-4, "{name}: entropy at {t}");
            }
        }
        assert!(
            boundaries > 3 && boundaries < ids.len() || name == "byte",
            "{name}: {boundaries} boundaries"
        );
        assert_eq!(full.patches(), fast.patches(), "{name}");
    }
}

#[test]
fn greedy_generation_is_identical_and_global_runs_once_per_patch() {
    let prompt = text(41, 17);
    let mut longest = 0;
    for (name, config) in schemes(&prompt, 23) {
        let m = TestModel::new(config.clone(), 23);
        let generator = Generator::new(&m.model, m.entropy.as_ref(), &config, device()).unwrap();
        let greedy = GenerationConfig {
            max_bytes: 30,
            sampling: SamplingConfig::greedy(),
            stop: None,
            context_shift: true,
        };
        let slow = generator
            .generate(&prompt, &greedy, DecodeMode::FullRecompute, |_| true)
            .unwrap();
        let mut streamed = 0;
        let fast = generator
            .generate(&prompt, &greedy, DecodeMode::Incremental, |b| {
                streamed += usize::from(b.starts_patch);
                true
            })
            .unwrap();
        assert_eq!(slow.bytes, fast.bytes, "{name}");
        assert!(streamed <= fast.patches, "{name}");
        assert_eq!(slow.patches, fast.patches, "{name}");
        // `patches` counts every patch started so far plus the one the next byte would open
        // (if it opens one); all but that last one are complete, and each ran the global model
        // exactly once.
        assert_eq!(
            fast.global_steps,
            fast.patches - 1,
            "{name}: global steps vs patches"
        );
        // The full path runs the global model over every patch of the prefix for each byte;
        // an untrained model may emit EOS at once, leaving nothing to recompute.
        if slow.bytes.len() >= 2 {
            assert!(
                slow.global_steps > fast.global_steps,
                "{name}: the full path recomputes"
            );
        }
        longest = longest.max(fast.bytes.len());
    }
    assert!(
        longest >= 10,
        "every scheme stopped early: {longest} bytes at most"
    );
}

/// Generation past `max_position_embeddings`: the context shifts (keeping the most recent half,
/// or a little more to cut where a patch starts) instead of stopping; between shifts it stays
/// incremental, and the cached and recomputing paths still agree byte for byte, shift included.
#[test]
fn generation_shifts_the_context_instead_of_stopping() {
    let prompt = text(7, 40);
    let all = schemes(&prompt, 43);
    let count = all.len();
    let mut checked = 0;
    for (name, mut config) in all {
        config.max_position_embeddings = 64;
        config.window_size = config.window_size.min(64);
        config.entropy_context_size = config.entropy_context_size.min(64);
        let m = TestModel::new(config.clone(), 43);
        let generator = Generator::new(&m.model, m.entropy.as_ref(), &config, device()).unwrap();
        // An untrained model may pick EOS early; banning it makes every scheme run to the end.
        let mut greedy = GenerationConfig {
            max_bytes: 150,
            sampling: SamplingConfig {
                ignore_eos: true,
                ..SamplingConfig::greedy()
            },
            stop: None,
            context_shift: false,
        };
        let stopped = generator
            .generate(&prompt, &greedy, DecodeMode::Incremental, |_| true)
            .unwrap();
        assert_eq!(stopped.stop, blt_model::StopReason::ContextFull, "{name}");
        assert_eq!(stopped.bytes.len(), 64 - 1 - prompt.len(), "{name}");

        greedy.context_shift = true;
        let mut positions = Vec::new();
        let fast = generator
            .generate(&prompt, &greedy, DecodeMode::Incremental, |b| {
                positions.push(b.position);
                true
            })
            .unwrap();
        let slow = generator
            .generate(&prompt, &greedy, DecodeMode::FullRecompute, |_| true)
            .unwrap();
        assert_eq!(fast.bytes, slow.bytes, "{name}");
        assert_eq!(fast.context_shifts, slow.context_shifts, "{name}");
        assert_eq!(fast.stop, blt_model::StopReason::MaxBytes, "{name}");
        assert_eq!(fast.bytes.len(), 150, "{name}");
        // 40 prompt bytes + 150 over a 64-position context: at least three shifts, each
        // keeping no more than 48 positions.
        assert!(
            fast.context_shifts >= 3,
            "{name}: {} shifts",
            fast.context_shifts
        );
        // Each shift prefills the kept context once, half to three quarters of the 64
        // positions, and decoding stays incremental after it: one global step per patch of
        // the output and of each kept context, where recomputing runs the global model over
        // the whole prefix for every byte.
        let shifts = fast.context_shifts;
        let kept = fast.prefilled_positions - (prompt.len() + 1);
        assert_eq!(slow.prefilled_positions, fast.prefilled_positions, "{name}");
        assert!(
            (32 * shifts..=48 * shifts).contains(&kept),
            "{name}: {kept} positions prefilled again over {shifts} shifts"
        );
        assert!(
            fast.global_steps <= fast.patches + kept,
            "{name}: {} global steps for {} patches and {kept} re-prefilled positions",
            fast.global_steps,
            fast.patches
        );
        assert!(slow.global_steps > 5 * fast.global_steps, "{name}");
        // Up to the first shift it is the same generation as without shifting.
        assert_eq!(
            &fast.bytes[..stopped.bytes.len()],
            &stopped.bytes[..],
            "{name}"
        );
        // Positions stay absolute across shifts.
        let first = prompt.len() + 1;
        assert_eq!(
            positions,
            (first..first + 150).collect::<Vec<_>>(),
            "{name}"
        );
        checked += 1;
    }
    assert_eq!(checked, count);
}
