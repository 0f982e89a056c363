//! The last position under entropy patching, against transformers on a checkpoint that holds
//! its patcher, sets `max_patch_length`, is stored in bf16 and split into shards
//! (`tests/fixtures/hf-patcher`, made by `scripts/make_hf_patcher_fixture.py`). The row ends
//! where the entropy clears the threshold, so position T opens a patch:
//! - with Meta's patch lengths (over T + 1, the slot after the row counted) transformers' logits
//!   and ours agree at every position;
//! - with transformers' own patcher's lengths (its `max_patch_length` filter drops the start at
//!   T) they agree too, and differ from Meta's at the last position only;
//! - our own patcher (the imported one) follows Meta's rule: without lengths our logits are
//!   Meta's at every position, and transformers' own differ from them at the last one only.

use std::path::PathBuf;

use blt_model::hf::{ReferenceRow, load_hf, logit_diffs_by_position};
use burn::backend::NdArray;
use serde_json::Value;

type B = NdArray;

/// transformers' logits are rounded to 5 decimals.
const TOLERANCE: f32 = 1e-4;

fn expected() -> Value {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf-patcher");
    serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap()
}

fn row(expected: &Value, which: &str, with_lengths: bool) -> ReferenceRow {
    let ints = |v: &Value| -> Vec<usize> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect()
    };
    ReferenceRow {
        input_ids: ints(&expected["input_ids"])
            .into_iter()
            .map(|x| x as u32)
            .collect(),
        patch_lengths: with_lengths.then(|| ints(&expected[which]["patch_lengths"])),
        logits: expected[which]["logits"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
            })
            .collect(),
    }
}

/// The positions of each row whose logits differ by more than [`TOLERANCE`].
fn differing(diffs: &[Vec<f32>]) -> Vec<Vec<usize>> {
    diffs
        .iter()
        .map(|d| (0..d.len()).filter(|&t| d[t] > TOLERANCE).collect())
        .collect()
}

#[test]
fn the_last_position_follows_metas_rule() {
    let expected = expected();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf-patcher");
    let device = Default::default();
    let loaded = load_hf::<B>(&dir, &device).expect("a sharded bf16 checkpoint with a patcher");
    assert_eq!(loaded.config.max_patch_size, 6);
    let entropy = loaded.entropy_model.as_ref();
    let t = expected["input_ids"].as_array().unwrap().len();
    let meta = row(&expected, "meta", true);
    let theirs = row(&expected, "transformers", true);
    let lengths_sum = |r: &ReferenceRow| r.patch_lengths.as_ref().unwrap().iter().sum::<usize>();
    assert_eq!((lengths_sum(&meta), lengths_sum(&theirs)), (t + 1, t));

    let run = |rows: &[ReferenceRow]| {
        logit_diffs_by_position(&loaded.model, &loaded.config, entropy, rows, &device).unwrap()
    };
    // Given lengths, both conventions match transformers everywhere.
    let given = run(&[meta.clone(), theirs.clone()]);
    assert_eq!(differing(&given), vec![Vec::<usize>::new(); 2], "{given:?}");
    // Our own patcher: Meta's logits at every position; transformers' own differ at the last.
    let ours = run(&[
        ReferenceRow {
            patch_lengths: None,
            ..meta
        },
        ReferenceRow {
            patch_lengths: None,
            ..theirs
        },
    ]);
    assert_eq!(
        differing(&ours),
        vec![Vec::<usize>::new(), vec![t - 1]],
        "{ours:?}"
    );
    assert!(
        ours[1][t - 1] > 0.1,
        "the last position moves: {}",
        ours[1][t - 1]
    );
}
