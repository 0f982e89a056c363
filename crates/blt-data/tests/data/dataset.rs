//! Windowing, filtering statistics and the train/validation split.

use std::collections::BTreeSet;

use blt_data::{ByteDataset, DataError, DatasetConfig, Row, document_windows};
use blt_patching::{BOS_ID, ByteTokenizer, EOS_ID, EncodeOptions};
use burn::data::dataset::Dataset;
use proptest::prelude::*;

fn config(min_length: usize, max_length: usize) -> DatasetConfig {
    DatasetConfig {
        min_length,
        max_length,
        valid_fraction: 0.0,
        seed: 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every byte of every kept document, and its EOS, is a target of exactly one row, in
    /// order; every row starts with BOS and holds at most max_length ids.
    #[test]
    fn windows_cover_every_byte_once(
        docs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..12),
        max_length in 2usize..64,
    ) {
        let result = ByteDataset::new(docs.clone(), config(1, max_length));
        let kept: Vec<&Vec<u8>> = docs
            .iter()
            .filter(|d| !d.iter().all(u8::is_ascii_whitespace))
            .collect();
        let dataset = match result {
            Ok(d) => d,
            Err(DataError::NoDocuments { .. }) => {
                prop_assert!(kept.is_empty());
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        };
        prop_assert_eq!(dataset.num_documents(), kept.len());
        let mut seen_rows = 0;
        for (d, bytes) in kept.iter().enumerate() {
            let rows = dataset.rows_of(d);
            let mut targets = Vec::new();
            for row in rows {
                prop_assert_eq!(row.document, d);
                prop_assert_eq!(row.ids()[0], BOS_ID);
                prop_assert!(row.ids().len() >= 2 && row.ids().len() <= max_length);
                prop_assert_eq!(row.input().len() + 1, row.ids().len());
                prop_assert!(!row.input().contains(&EOS_ID));
                targets.extend_from_slice(&row.targets());
            }
            let mut expected = ByteTokenizer.encode(bytes, EncodeOptions::default());
            expected.push(EOS_ID);
            prop_assert_eq!(targets, expected);
            // Only the last row may be short.
            for row in &rows[..rows.len() - 1] {
                prop_assert_eq!(row.ids().len(), max_length);
            }
            seen_rows += rows.len();
        }
        prop_assert_eq!(seen_rows, dataset.len());
        for (i, row) in dataset.rows().iter().enumerate() {
            prop_assert_eq!(row.index, i);
        }
        let bytes: usize = kept.iter().map(|d| d.len()).sum();
        prop_assert_eq!(dataset.stats().total_bytes, bytes);
    }
}

#[test]
fn stats_match_hand_counts() {
    let docs: Vec<Vec<u8>> = vec![
        b"".to_vec(),                          // empty
        b" \n\t ".to_vec(),                    // whitespace only
        b"short".to_vec(),                     // 5 bytes < 8: too short
        b"exactly8".to_vec(),                  // 8 bytes: 9 ids -> rows of <= 4 ids -> 3 rows
        b"a much longer document".to_vec(),    // 22 bytes: 23 ids -> 8 rows
        b"  \xff\xfe invalid utf8  ".to_vec(), // 19 bytes, kept as is: 20 ids -> 7 rows
        b"tiny\n".to_vec(),                    // 5 bytes: too short
    ];
    let dataset = ByteDataset::new(docs, config(8, 4)).unwrap();
    let stats = dataset.stats();
    assert_eq!(stats.initial_documents, 7);
    assert_eq!(stats.empty_removed, 2);
    assert_eq!(stats.too_short_removed, 2);
    assert_eq!(stats.kept_documents, 3);
    assert_eq!(stats.rows, 3 + 8 + 7);
    assert_eq!(stats.total_bytes, 8 + 22 + 19);
    assert_eq!(dataset.len(), 18);
    assert_eq!(
        dataset
            .rows_of(0)
            .iter()
            .map(|r| r.ids())
            .collect::<Vec<_>>(),
        document_windows(b"exactly8", 4)
    );
    assert_eq!(dataset.rows_of(2)[0].ids(), vec![BOS_ID, 36, 36, 0xff + 4]);
    assert!((stats.mean_document_bytes() - 49.0 / 3.0).abs() < 1e-12);
}

#[test]
fn config_is_validated() {
    for (config, field) in [
        (config(1, 1), "max_length"),
        (
            DatasetConfig {
                valid_fraction: 1.0,
                ..DatasetConfig::default()
            },
            "valid_fraction",
        ),
        (
            DatasetConfig {
                valid_fraction: f64::NAN,
                ..DatasetConfig::default()
            },
            "valid_fraction",
        ),
    ] {
        let err = ByteDataset::new(vec![b"some document text".to_vec()], config)
            .unwrap_err()
            .to_string();
        assert!(err.contains(field), "{err}");
    }
    let err = ByteDataset::new(vec![b"   ".to_vec(), b"ab".to_vec()], config(3, 8))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no document left"), "{err}");
}

fn corpus(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("document number {i} {}", "x".repeat(i % 37)).into_bytes())
        .collect()
}

fn documents_of(rows: impl Iterator<Item = Row>) -> BTreeSet<usize> {
    rows.map(|r| r.document).collect()
}

#[test]
fn split_is_deterministic_and_disjoint() {
    let make = |seed| {
        let config = DatasetConfig {
            min_length: 1,
            max_length: 16,
            valid_fraction: 0.2,
            seed,
        };
        ByteDataset::new(corpus(200), config).unwrap().split()
    };
    let a = make(7);
    let b = make(7);
    let c = make(8);
    assert_eq!(a.valid.documents(), b.valid.documents());
    assert_eq!(a.train.row_indices(), b.train.row_indices());
    assert_ne!(a.valid.documents(), c.valid.documents());
    assert_eq!(a.valid.documents().len(), 40);

    let train = documents_of(a.train.iter());
    let valid = documents_of(a.valid.iter());
    assert!(train.is_disjoint(&valid));
    assert_eq!(train.len() + valid.len(), 200);
    assert_eq!(train, a.train.documents().iter().copied().collect());
    assert_eq!(
        a.train.len() + a.valid.len(),
        make(7).train.len() + make(7).valid.len()
    );
    // Every row lands in exactly one split.
    let mut all: Vec<usize> = a
        .train
        .iter()
        .chain(a.valid.iter())
        .map(|r| r.index)
        .collect();
    all.sort_unstable();
    let total = a.train.len() + a.valid.len();
    assert_eq!(all, (0..total).collect::<Vec<_>>());
}

#[test]
fn small_corpora_keep_a_training_document() {
    // One row: nothing can be held out, and training keeps it.
    let one = ByteDataset::new(
        vec![b"only one document".to_vec()],
        DatasetConfig::default(),
    )
    .unwrap()
    .split();
    assert_eq!(one.train.documents(), &[0]);
    assert!(one.valid.is_empty());
    let two = ByteDataset::new(corpus(2), config_with_fraction(0.01))
        .unwrap()
        .split();
    assert_eq!(two.train.documents().len(), 1);
    assert_eq!(two.valid.documents().len(), 1);
}

/// A one-document corpus (a single text file) holds out its last rows: the fraction of them,
/// at least one and never all, with no row in both splits.
#[test]
fn one_document_holds_out_its_last_rows() {
    let book: Vec<u8> = (0..10_000u32).map(|i| b'a' + (i * 7 % 26) as u8).collect();
    for (fraction, want_valid) in [(0.05, 2), (0.2, 8), (0.001, 1), (0.99, 39)] {
        let dataset = ByteDataset::new(
            vec![book.clone()],
            DatasetConfig {
                max_length: 257,
                ..config_with_fraction(fraction)
            },
        )
        .unwrap();
        let rows = dataset.rows().len();
        assert_eq!(rows, 40, "10,000 bytes and EOS in rows of 256");
        let split = dataset.split();
        assert_eq!(split.valid.len(), want_valid, "fraction {fraction}");
        assert_eq!(split.train.len() + split.valid.len(), rows);
        let train: Vec<usize> = split.train.rows().map(|r| r.index).collect();
        let valid: Vec<usize> = split.valid.rows().map(|r| r.index).collect();
        assert_eq!(train, (0..rows - want_valid).collect::<Vec<_>>());
        assert_eq!(valid, (rows - want_valid..rows).collect::<Vec<_>>());
    }
}

fn config_with_fraction(valid_fraction: f64) -> DatasetConfig {
    DatasetConfig {
        min_length: 1,
        valid_fraction,
        ..DatasetConfig::default()
    }
}
