//! The batcher agrees with blt-patching row by row, batch plans respect their budget, and the
//! plans cover every target once.

use std::{collections::BTreeSet, sync::Arc};

use blt_data::{
    BatchPlan, BatchPlanConfig, BltBatch, BltBatcher, ByteDataset, DataError, DatasetConfig,
    EntropyCache, Row, SplitMix64,
};
use blt_model::{BltConfig, PatchingKind};
use blt_patching::{NgramHasher, Patcher};
use burn::{
    data::dataset::Dataset,
    tensor::{Int, Tensor},
};

type TestBackend = burn::backend::NdArray;

fn corpus() -> Vec<Vec<u8>> {
    let mut rng = SplitMix64::new(11);
    (0..24)
        .map(|i| {
            let words = 5 + rng.below(40) as usize;
            let mut doc = format!("Doc {i}\n");
            for w in 0..words {
                doc.push_str(["the ", "Byte ", "latent\n", "transformer, ", "patches. "][w % 5]);
            }
            doc.into_bytes()
        })
        .collect()
}

fn dataset(max_length: usize) -> ByteDataset {
    let config = DatasetConfig {
        min_length: 1,
        max_length,
        valid_fraction: 0.25,
        seed: 5,
    };
    ByteDataset::new(corpus(), config).unwrap()
}

fn ints(t: Tensor<TestBackend, 2, Int>) -> Vec<i64> {
    t.into_data().convert::<i64>().into_vec::<i64>().unwrap()
}

fn fake_entropies(rows: &[Row]) -> Vec<Vec<f32>> {
    let mut rng = SplitMix64::new(3);
    rows.iter()
        .map(|r| {
            r.input()
                .iter()
                .map(|_| (rng.below(300) as f32) / 100.0)
                .collect()
        })
        .collect()
}

fn config(patching: PatchingKind) -> BltConfig {
    BltConfig {
        patching,
        max_patch_size: 6,
        ..BltConfig::tiny()
    }
}

/// Checks every tensor of a batch against blt-patching on each row.
fn check_batch(
    config: &BltConfig,
    cache: Option<&EntropyCache>,
    rows: &[Row],
    batch: BltBatch<TestBackend>,
) {
    let patcher = Patcher::new(config.patcher_config()).unwrap();
    let hasher = NgramHasher::new(config.ngram_sizes.clone(), config.ngram_vocab_size).unwrap();
    let seq = rows.iter().map(|r| r.input().len()).max().unwrap();
    let sizes = config.ngram_sizes.len();
    assert_eq!(batch.input.seq_len(), seq);
    let ids = ints(batch.input.ids.clone());
    let enc = ints(batch.input.encoder_patch_ids.clone());
    let dec = ints(batch.input.decoder_patch_ids.clone());
    let ngrams: Vec<i64> = batch
        .input
        .ngram_ids
        .clone()
        .into_data()
        .convert::<i64>()
        .into_vec()
        .unwrap();
    let targets = ints(batch.targets.clone());
    let mask: Vec<bool> = batch.target_mask.clone().into_data().into_vec().unwrap();
    let (mut positions, mut patches) = (0, 0);
    for (b, row) in rows.iter().enumerate() {
        let input = row.input();
        let h = match config.patching {
            PatchingKind::Entropy => Some(cache.unwrap().get(row.index).unwrap().into_owned()),
            _ => None,
        };
        let p = patcher.patch(&input, h.as_deref()).unwrap();
        let grams = hasher.hash_ids(&input);
        for t in 0..seq {
            let at = b * seq + t;
            if t < input.len() {
                assert_eq!(ids[at], i64::from(input[t]));
                assert_eq!(enc[at], i64::from(p.encoder_ids[t]), "row {b} pos {t}");
                assert_eq!(dec[at], i64::from(p.decoder_ids[t]), "row {b} pos {t}");
                assert_eq!(targets[at], i64::from(row.targets()[t]));
                assert!(mask[at]);
                for (s, gram) in grams.iter().enumerate() {
                    assert_eq!(ngrams[(b * sizes + s) * seq + t], i64::from(gram[t]));
                }
            } else {
                assert_eq!(ids[at], 0);
                assert_eq!(targets[at], 0);
                assert!(!mask[at]);
            }
        }
        assert_eq!(batch.input.patch_counts[b], p.num_patches());
        positions += input.len();
        patches += p.num_patches();
    }
    assert_eq!(batch.num_targets, positions);
    assert_eq!(
        batch.input.num_patches,
        blt_model::bucket_size(*batch.input.patch_counts.iter().max().unwrap())
    );
    assert!((batch.mean_patch_len - positions as f64 / patches as f64).abs() < 1e-12);
}

#[test]
fn batcher_agrees_with_blt_patching_for_every_scheme() {
    let data = dataset(48);
    let device = Default::default();
    let rows: Vec<Row> = data.rows().to_vec();
    let cache = Arc::new(
        EntropyCache::new(
            &rows,
            "fake",
            blt_model::EntropyResets {
                at_eos: true,
                at_newline: false,
            },
            fake_entropies(&rows),
        )
        .unwrap(),
    );
    for patching in [
        PatchingKind::Entropy,
        PatchingKind::Fixed,
        PatchingKind::Space,
        PatchingKind::Byte,
    ] {
        let config = config(patching);
        let batcher = BltBatcher::new(&config, Some(cache.clone())).unwrap();
        // Rows of different lengths in one batch (a document's last row is short).
        for chunk in rows.chunks(7) {
            let batch = batcher.try_batch::<TestBackend>(chunk, &device).unwrap();
            check_batch(&config, Some(&cache), chunk, batch);
        }
    }
}

#[test]
fn entropy_patching_needs_every_row_in_the_cache() {
    let data = dataset(48);
    let rows = data.rows();
    let config = config(PatchingKind::Entropy);
    let err = BltBatcher::new(&config, None).unwrap_err();
    assert!(err.to_string().contains("entropy cache"), "{err}");

    let partial = &rows[..rows.len() - 1];
    let cache = EntropyCache::new(
        partial,
        "fake",
        blt_model::EntropyResets {
            at_eos: true,
            at_newline: false,
        },
        fake_entropies(partial),
    )
    .unwrap();
    let batcher = BltBatcher::new(&config, Some(Arc::new(cache))).unwrap();
    let last = rows.last().unwrap();
    let err = batcher
        .try_batch::<TestBackend>(std::slice::from_ref(last), &Default::default())
        .unwrap_err();
    assert!(
        matches!(err, DataError::MissingEntropies { row } if row == last.index),
        "{err:?}"
    );
    assert!(batcher.check_rows(rows).is_err());
    assert!(batcher.check_rows(partial).is_ok());

    let mismatched = EntropyCache::new(
        rows,
        "fake",
        blt_model::EntropyResets {
            at_eos: true,
            at_newline: true,
        },
        fake_entropies(rows),
    )
    .unwrap();
    let err = BltBatcher::new(&config, Some(Arc::new(mismatched))).unwrap_err();
    assert!(err.to_string().contains("reset_entropy_context"), "{err}");
}

#[test]
fn rows_longer_than_the_model_are_rejected() {
    let data = dataset(64);
    let config = BltConfig {
        max_position_embeddings: 32,
        ..config(PatchingKind::Space)
    };
    let batcher = BltBatcher::new(&config, None).unwrap();
    let err = batcher.check_rows(data.rows()).unwrap_err();
    assert!(err.to_string().contains("max_position_embeddings"), "{err}");
}

#[test]
fn plans_cover_each_row_once_and_respect_the_budget() {
    let data = dataset(40);
    let split = data.split();
    let by_count = BatchPlan::new(
        &split.train,
        &BatchPlanConfig {
            batch_size: 5,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(by_count.groups().iter().all(|g| g.len() <= 5));
    assert_eq!(by_count.len(), split.train.len().div_ceil(5));

    let budget = 200;
    let config = BatchPlanConfig {
        batch_size: 1,
        max_batch_bytes: Some(budget),
        seed: Some(9),
    };
    let plan = BatchPlan::new(&split.train, &config).unwrap();
    assert_eq!(plan, BatchPlan::new(&split.train, &config).unwrap());
    let mut seen = BTreeSet::new();
    for g in 0..plan.len() {
        let group = plan.group(&split.train, g).unwrap();
        let longest = group.iter().map(|r| r.input().len()).max().unwrap();
        assert!(group.len() * longest <= budget);
        for row in &group {
            assert!(seen.insert(row.index));
        }
    }
    assert_eq!(seen.len(), split.train.len());
    assert!(plan.len() < split.train.len());
    assert!(plan.efficiency() > 0.5 && plan.efficiency() <= 1.0);

    let err = BatchPlan::new(
        &split.train,
        &BatchPlanConfig {
            max_batch_bytes: Some(10),
            ..config
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("max_batch_bytes"), "{err}");
}

#[test]
fn a_byte_budget_plan_covers_every_target_once() {
    let data = dataset(40);
    let split = data.split();
    let config = config(PatchingKind::Fixed);
    let batcher = BltBatcher::new(&config, None).unwrap();
    batcher.check_rows(split.train.rows()).unwrap();
    let plan_config = BatchPlanConfig {
        max_batch_bytes: Some(160),
        seed: Some(1),
        ..Default::default()
    };
    let plan = BatchPlan::new(&split.train, &plan_config).unwrap();
    let mut targets = 0;
    let mut count = 0;
    for batch in plan.batches::<TestBackend, _>(&split.train, &batcher, &Default::default()) {
        let batch = batch.unwrap();
        assert!(batch.input.batch_size() * batch.input.seq_len() <= 160);
        targets += batch.num_targets;
        count += 1;
    }
    assert_eq!(count, plan.len());
    assert_eq!(targets, split.train.num_targets());
}
