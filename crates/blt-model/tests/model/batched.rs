//! Batched incremental decoding equals decoding each sequence alone: prompts of different
//! lengths (left-padded) under every patching scheme give, at every position, the logits,
//! entropies and patch decisions of the single-sequence path (1e-4); greedy batched generation
//! reproduces each prompt's own output; every row runs the global model once per patch.

use super::{common, schemes::schemes};

use blt_model::{
    GenerationConfig, Generator, SamplingConfig, StopReason,
    generate::{BatchedIncremental, Incremental, Step, StepDecoder},
};
use common::*;

fn ids(prompt: &[u8]) -> Vec<u32> {
    std::iter::once(1)
        .chain(prompt.iter().map(|&b| u32::from(b) + 4))
        .collect()
}

fn max_logit_diff(a: &Step, b: &Step) -> f32 {
    a.logits
        .iter()
        .zip(&b.logits)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn batched_steps_equal_each_sequence_alone() {
    // Different lengths (so rows start at different steps), one longer than the window (12).
    let prompts = [text(5, 3), text(6, 29), text(7, 11), text(8, 20)];
    for (name, config) in schemes(&prompts[1], 29) {
        let m = TestModel::new(config.clone(), 29);
        let generator = Generator::new(&m.model, m.entropy.as_ref(), &config, device()).unwrap();
        let alone: Vec<Vec<Step>> = prompts
            .iter()
            .map(|p| {
                let mut decoder = Incremental::new(&generator).unwrap();
                ids(p).iter().map(|&id| decoder.push(id).unwrap()).collect()
            })
            .collect();

        let rows: Vec<Vec<u32>> = prompts.iter().map(|p| ids(p)).collect();
        let longest = rows.iter().map(Vec::len).max().unwrap();
        let mut batched = BatchedIncremental::new(&generator, rows.len()).unwrap();
        let mut together: Vec<Vec<Step>> = vec![Vec::new(); rows.len()];
        for t in 0..longest {
            let step_ids: Vec<Option<u32>> = rows
                .iter()
                .map(|r| {
                    let pad = longest - r.len();
                    (t >= pad).then(|| r[t - pad])
                })
                .collect();
            let steps = batched.push(&step_ids).unwrap();
            for (r, step) in steps.into_iter().enumerate() {
                assert_eq!(step.is_some(), step_ids[r].is_some(), "{name}: row {r}");
                together[r].extend(step);
            }
        }
        for (r, (a, b)) in alone.iter().zip(&together).enumerate() {
            assert_eq!(a.len(), b.len());
            for (t, (x, y)) in a.iter().zip(b).enumerate() {
                assert_eq!(
                    x.next_starts_patch, y.next_starts_patch,
                    "{name}: row {r}, patch decision at {t}"
                );
                let diff = max_logit_diff(x, y);
                assert!(diff < 1e-4, "{name}: row {r}, step {t} differs by {diff}");
                match (x.entropy, y.entropy) {
                    (Some(p), Some(q)) => assert!((p - q).abs() < 1e-4, "{name}: entropy {t}"),
                    (p, q) => assert_eq!(p.is_some(), q.is_some(), "{name}"),
                }
            }
            // One global step per closed patch for every row, whatever the others did.
            let closed = b.iter().filter(|s| s.next_starts_patch).count();
            assert_eq!(batched.global_steps(r), closed, "{name}: row {r}");
        }
        let most = (0..rows.len())
            .map(|r| batched.global_steps(r))
            .max()
            .unwrap();
        let total: usize = (0..rows.len()).map(|r| batched.global_steps(r)).sum();
        let invocations = batched.global_invocations();
        assert!(
            (most..=total).contains(&invocations),
            "{name}: {invocations} global invocations for rows of {most}..{total} patches"
        );
    }
}

#[test]
fn greedy_batch_equals_each_prompt_generated_alone() {
    let prompts = [text(11, 9), text(12, 23), text(13, 1)];
    let prompt_refs: Vec<&[u8]> = prompts.iter().map(Vec::as_slice).collect();
    for (name, config) in schemes(&prompts[1], 31) {
        let m = TestModel::new(config.clone(), 31);
        let generator = Generator::new(&m.model, m.entropy.as_ref(), &config, device()).unwrap();
        let generation = |max_bytes| GenerationConfig {
            max_bytes,
            sampling: SamplingConfig::greedy(),
            stop: None,
            context_shift: true,
        };
        let alone = |r: usize, limit| {
            generator
                .generate(&prompts[r], &generation(limit), Default::default(), |_| {
                    true
                })
                .unwrap()
        };
        // One row is interrupted early while the others keep going around it: the row that
        // generates most alone, cut before it would end by itself (an untrained model may
        // well emit EOS early).
        let full: Vec<_> = (0..prompts.len()).map(|r| alone(r, 24)).collect();
        let (cut_row, longest) = (0..prompts.len())
            .map(|r| (r, full[r].bytes.len()))
            .max_by_key(|&(r, n)| (n, std::cmp::Reverse(r)))
            .unwrap();
        let cut = (longest - 1).min(7);
        assert!(cut >= 1, "{name}: no prompt generates two bytes");
        let mut streamed = vec![Vec::new(); prompts.len()];
        let batch = generator
            .generate_batch(&prompt_refs, &generation(24), |row, byte| {
                streamed[row].push(byte.byte);
                !(row == cut_row && streamed[row].len() == cut)
            })
            .unwrap();
        for r in 0..prompts.len() {
            let alone = if r == cut_row {
                alone(r, cut)
            } else {
                full[r].clone()
            };
            assert_eq!(batch[r].bytes, alone.bytes, "{name}: row {r}");
            assert_eq!(streamed[r], alone.bytes, "{name}: row {r} streamed");
            assert_eq!(batch[r].patches, alone.patches, "{name}: row {r}");
            assert_eq!(batch[r].global_steps, alone.global_steps, "{name}: row {r}");
            assert_eq!(
                batch[r].global_steps,
                batch[r].patches - 1,
                "{name}: row {r}"
            );
            if r != cut_row {
                assert_eq!(batch[r].stop, alone.stop, "{name}: row {r}");
            }
        }
        assert_eq!(batch[cut_row].stop, StopReason::Interrupted, "{name}");
    }
}

#[test]
fn batch_rows_sample_with_consecutive_seeds() {
    let config = test_config(blt_model::PatchingKind::Space);
    let m = TestModel::new(config.clone(), 3);
    let generator = Generator::new(&m.model, None, &config, device()).unwrap();
    let sampled = GenerationConfig {
        max_bytes: 20,
        sampling: SamplingConfig {
            temperature: 1.0,
            seed: 40,
            ..SamplingConfig::default()
        },
        stop: None,
        context_shift: true,
    };
    let prompt = b"the same prompt".as_slice();
    let batch = generator
        .generate_batch(&[prompt, prompt], &sampled, |_, _| true)
        .unwrap();
    for (r, row) in batch.iter().enumerate() {
        let mut seeded = sampled.clone();
        seeded.sampling.seed = 40 + r as u64;
        let alone = generator
            .generate(prompt, &seeded, Default::default(), |_| true)
            .unwrap();
        assert_eq!(row.bytes, alone.bytes, "row {r}");
    }
    assert_ne!(
        batch[0].bytes, batch[1].bytes,
        "equal prompts get their own samples"
    );
}

#[test]
fn bad_batches_are_errors() {
    let config = test_config(blt_model::PatchingKind::Space);
    let m = TestModel::new(config.clone(), 3);
    let generator = Generator::new(&m.model, None, &config, device()).unwrap();
    let generation = GenerationConfig::default();
    assert!(
        generator
            .generate_batch(&[], &generation, |_, _| true)
            .unwrap()
            .is_empty()
    );
    let too_long = vec![b'a'; config.max_position_embeddings];
    let fine = b"fine".as_slice();
    for prompts in [[fine, b"".as_slice()], [fine, too_long.as_slice()]] {
        let error = generator
            .generate_batch(&prompts, &generation, |_, _| true)
            .unwrap_err()
            .to_string();
        assert!(error.contains("prompt 2"), "{error}");
    }
    let mut batched = BatchedIncremental::new(&generator, 2).unwrap();
    assert!(batched.push(&[Some(1)]).is_err(), "one id for two rows");
    assert!(BatchedIncremental::new(&generator, 0).is_err());
}
