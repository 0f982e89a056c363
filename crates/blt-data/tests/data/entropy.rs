//! Entropies are computed per row (batching with padding changes nothing), newline resets work,
//! and the cache detects corrupt, truncated and stale files and rebuilds them.

use std::cell::Cell;

use blt_data::{
    ByteDataset, DataError, DatasetConfig, EntropyCache, Progress, Row, compute_entropies,
};
use blt_model::{BltConfig, EntropyModel, EntropyModelConfig, EntropyResets};

type TestBackend = burn::backend::NdArray;

fn model() -> EntropyModel<TestBackend> {
    let config = BltConfig {
        entropy_context_size: 16,
        ..BltConfig::tiny()
    };
    EntropyModelConfig::from_blt(&config).init::<TestBackend>(&Default::default())
}

/// Resets at EOS (documents apart), and at newlines when asked.
fn newlines(at_newline: bool) -> EntropyResets {
    EntropyResets {
        at_eos: true,
        at_newline,
    }
}

fn rows() -> Vec<Row> {
    let docs: Vec<Vec<u8>> = [
        "In the beginning God created the heaven and the earth.\nAnd the earth was without form.",
        "short doc\nwith lines\n",
        "A third document, long enough to be cut into several rows of forty bytes or fewer.",
        "x\ny\nz\n0123456789",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let config = DatasetConfig {
        min_length: 1,
        max_length: 40,
        valid_fraction: 0.0,
        seed: 0,
    };
    ByteDataset::new(docs, config).unwrap().rows().to_vec()
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f32::max)
}

#[test]
fn batched_entropies_equal_per_row_entropies() {
    let model = model();
    let rows = rows();
    let device = Default::default();
    for reset in [false, true] {
        let one_by_one: Vec<Vec<f32>> = rows
            .iter()
            .map(|r| {
                model
                    .entropies(&[&r.input()], newlines(reset), &device)
                    .unwrap()
                    .remove(0)
            })
            .collect();
        for batch_rows in [1, 3, 64] {
            let batched =
                compute_entropies(&model, &rows, newlines(reset), batch_rows, &device, &())
                    .unwrap();
            if batch_rows == 1 {
                assert_eq!(batched, one_by_one, "unpadded batches are bit-exact");
            }
            for (row, h) in rows.iter().zip(&batched) {
                assert_eq!(h.len(), row.ids().len() - 1);
                assert!(h.iter().all(|v| v.is_finite() && *v >= 0.0));
            }
            let diff = max_diff(&batched, &one_by_one);
            // Equal up to float rounding: a longer padded length changes how the backend blocks
            // its sums (about 1 ulp), never which bytes a row reads.
            assert!(diff <= 1e-5, "reset {reset}, batch {batch_rows}: {diff}");
        }
    }
}

#[test]
fn a_row_never_sees_another_row() {
    let model = model();
    let device = Default::default();
    let a: Vec<u32> = b"\x01the same row"
        .iter()
        .map(|&b| u32::from(b) + 4)
        .collect();
    let b: Vec<u32> = b"a much longer neighbour row here"
        .iter()
        .map(|&b| u32::from(b) + 4)
        .collect();
    let alone = model.entropies(&[&a], newlines(false), &device).unwrap();
    let together = model
        .entropies(&[&b, &a, &b], newlines(false), &device)
        .unwrap();
    assert!(max_diff(&alone, &together[1..2]) <= 1e-5);
}

#[test]
fn newline_reset_restarts_the_context() {
    let model = model();
    let device = Default::default();
    let ids = |s: &[u8]| -> Vec<u32> {
        std::iter::once(1)
            .chain(s.iter().map(|&b| u32::from(b) + 4))
            .collect()
    };
    // With reset, what follows a newline does not depend on what came before it.
    let x = ids(b"abc\nhello");
    let y = ids(b"xyz\nhello");
    let hx = model
        .entropies(&[&x], newlines(true), &device)
        .unwrap()
        .remove(0);
    let hy = model
        .entropies(&[&y], newlines(true), &device)
        .unwrap()
        .remove(0);
    assert!(max_diff(&[hx[5..].to_vec()], &[hy[5..].to_vec()]) <= 1e-6);
    // Without it they differ, as the model reads the first line.
    let gx = model
        .entropies(&[&x], newlines(false), &device)
        .unwrap()
        .remove(0);
    let gy = model
        .entropies(&[&y], newlines(false), &device)
        .unwrap()
        .remove(0);
    assert!(max_diff(&[gx[5..].to_vec()], &[gy[5..].to_vec()]) > 1e-6);
    // Before the newline, resetting changes nothing.
    assert!(max_diff(&[hx[..4].to_vec()], &[gx[..4].to_vec()]) <= 1e-6);
}

/// With documents apart (the default), what follows an EOS does not depend on the document
/// before it; with `document_mask` off (transformers' plain causal mask) it does.
#[test]
fn documents_are_apart_only_with_the_document_mask() {
    let model = model();
    let device = Default::default();
    let eos = 2;
    let ids = |first: &[u8]| -> Vec<u32> {
        let mut ids = vec![1];
        ids.extend(first.iter().map(|&b| u32::from(b) + 4));
        ids.push(eos);
        ids.extend(b"hello".iter().map(|&b| u32::from(b) + 4));
        ids
    };
    let (x, y) = (ids(b"abc"), ids(b"xyz"));
    let at = |resets: EntropyResets, row: &[u32]| {
        model.entropies(&[row], resets, &device).unwrap().remove(0)
    };
    let apart = newlines(false);
    let joined = EntropyResets {
        at_eos: false,
        at_newline: false,
    };
    assert!(
        max_diff(
            &[at(apart, &x)[5..].to_vec()],
            &[at(apart, &y)[5..].to_vec()]
        ) <= 1e-6
    );
    assert!(
        max_diff(
            &[at(joined, &x)[5..].to_vec()],
            &[at(joined, &y)[5..].to_vec()]
        ) > 1e-6
    );
    // Up to and including the EOS the two agree.
    assert!(
        max_diff(
            &[at(apart, &x)[..5].to_vec()],
            &[at(joined, &x)[..5].to_vec()]
        ) <= 1e-6
    );
}

fn fake(rows: &[Row], scale: f32) -> Vec<Vec<f32>> {
    rows.iter()
        .map(|r| (0..r.input().len()).map(|t| t as f32 * scale).collect())
        .collect()
}

#[test]
fn cache_round_trips_and_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run/entropies.bin");
    let rows = rows();
    let calls = Cell::new(0);
    let compute = |r: &[Row]| {
        calls.set(calls.get() + 1);
        Ok(fake(r, 0.5))
    };
    let first =
        EntropyCache::load_or_compute(&path, "model-a", &rows, newlines(false), &(), compute)
            .unwrap();
    // Computed a block of rows at a time, written as it came, and read back from the file.
    assert_eq!(calls.get(), rows.len().div_ceil(256));
    assert!(first.is_on_disk());
    let second =
        EntropyCache::load_or_compute(&path, "model-a", &rows, newlines(false), &(), compute)
            .unwrap();
    assert_eq!(
        calls.get(),
        rows.len().div_ceil(256),
        "a matching cache must be reused"
    );
    assert!(second.is_on_disk());
    assert_eq!(second.checksum(), first.checksum());
    for row in &rows {
        let expected = fake(std::slice::from_ref(row), 0.5).remove(0);
        assert_eq!(first.get(row.index).unwrap().as_ref(), expected);
        assert_eq!(second.get(row.index).unwrap().as_ref(), expected);
    }
    // A copy saved from the file-backed cache reads back the same.
    let copy = dir.path().join("copy.bin");
    second.save(&copy).unwrap();
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&path).unwrap());
    std::fs::remove_file(&copy).unwrap();
    assert_eq!(second.identity(), "model-a");
    assert!(second.get(rows.len() + 5).is_none());
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn corrupt_truncated_and_stale_caches_are_detected_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("entropies.bin");
    let rows = rows();
    let good = EntropyCache::new(&rows, "model-a", newlines(false), fake(&rows, 1.0)).unwrap();
    good.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();

    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    let mut bad_magic = bytes.clone();
    bad_magic[0] = b'X';
    for (name, content) in [
        ("flipped", flipped),
        ("truncated", bytes[..bytes.len() - 7].to_vec()),
        ("header only", bytes[..20].to_vec()),
        ("empty", Vec::new()),
        ("bad magic", bad_magic),
    ] {
        std::fs::write(&path, &content).unwrap();
        let err = EntropyCache::load(&path, "model-a", &rows, newlines(false)).unwrap_err();
        assert!(
            matches!(err, DataError::CorruptCache { .. }),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains("entropies.bin"), "{err}");
        let calls = Cell::new(0);
        let rebuilt =
            EntropyCache::load_or_compute(&path, "model-a", &rows, newlines(false), &(), |r| {
                calls.set(calls.get() + 1);
                Ok(fake(r, 2.0))
            })
            .unwrap();
        assert!(calls.get() > 0, "{name}: must be rebuilt");
        let values: Vec<f32> = rows
            .iter()
            .flat_map(|r| rebuilt.get(r.index).unwrap().into_owned())
            .collect();
        assert_eq!(values, fake(&rows, 2.0).concat());
        // The rebuilt file is valid now.
        EntropyCache::load(&path, "model-a", &rows, newlines(false)).unwrap();
    }

    // Stale: another model, other context resets (newlines; documents joined), other rows.
    good.save(&path).unwrap();
    let mut other_rows = rows.clone();
    let first = &other_rows[0];
    let mut changed = first.bytes().to_vec();
    changed[0] ^= 1;
    other_rows[0] = Row::new(first.document, first.index, &changed, first.ends_document());
    let joined = EntropyResets {
        at_eos: false,
        at_newline: false,
    };
    for (identity, reset, rows, needle) in [
        ("model-b", newlines(false), &rows, "entropy model"),
        ("model-a", newlines(true), &rows, "context resets"),
        ("model-a", joined, &rows, "context resets"),
        ("model-a", newlines(false), &other_rows, "other rows"),
    ] {
        let err = EntropyCache::load(&path, identity, rows, reset).unwrap_err();
        assert!(matches!(err, DataError::StaleCache { .. }), "{err:?}");
        assert!(err.to_string().contains(needle), "{err}");
        let calls = Cell::new(0);
        let rebuilt = EntropyCache::load_or_compute(&path, identity, rows, reset, &(), |r| {
            calls.set(calls.get() + 1);
            Ok(fake(r, 3.0))
        })
        .unwrap();
        assert!(calls.get() > 0);
        assert_eq!(rebuilt.identity(), identity);
        assert_eq!(rebuilt.resets(), reset);
        good.save(&path).unwrap();
    }
}

#[test]
fn wrong_entropy_shapes_are_errors() {
    let rows = rows();
    let mut entropies = fake(&rows, 1.0);
    entropies[2].pop();
    let err = EntropyCache::new(&rows, "m", newlines(false), entropies).unwrap_err();
    assert!(
        matches!(err, DataError::EntropyLength { row: 2, .. }),
        "{err:?}"
    );
    assert!(EntropyCache::new(&rows, "m", newlines(false), Vec::new()).is_err());
}

#[test]
fn rows_beyond_the_model_positions_are_rejected() {
    let model = model();
    let bytes: Vec<u8> = (0..600).map(|i| (i % 200) as u8).collect();
    let long = Row::new(0, 7, &bytes, false);
    let err = compute_entropies(
        &model,
        &[long],
        newlines(false),
        4,
        &Default::default(),
        &(),
    )
    .unwrap_err();
    assert!(
        matches!(err, DataError::InvalidRow { row: 7, .. }),
        "{err:?}"
    );
}

/// Records what a pass reports, and asks it to stop at a given check.
struct Recorder {
    stop_at_check: usize,
    checks: std::sync::atomic::AtomicUsize,
    events: std::sync::Mutex<Vec<String>>,
}

impl Recorder {
    fn new(stop_at_check: usize) -> Self {
        Self {
            stop_at_check,
            checks: Default::default(),
            events: Default::default(),
        }
    }

    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
}

impl Progress for Recorder {
    fn start(&self, task: &str, total: usize) {
        self.events
            .lock()
            .unwrap()
            .push(format!("start {task} {total}"));
    }
    fn update(&self, done: usize) {
        self.events.lock().unwrap().push(format!("{done}"));
    }
    fn finish(&self) {
        self.events.lock().unwrap().push("finish".into());
    }
    fn should_stop(&self) -> bool {
        let n = self
            .checks
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        n >= self.stop_at_check
    }
}

#[test]
fn progress_sees_every_batch_and_a_stop_ends_the_pass_with_nothing_cached() {
    let model = model();
    let rows = rows();
    let device = Default::default();
    let n = rows.len();
    assert!(n > 4, "the test needs more than two batches of two rows");
    // A full pass reports every batch of two rows, then finishes.
    let full = Recorder::new(usize::MAX);
    compute_entropies(&model, &rows, newlines(false), 2, &device, &full).unwrap();
    let mut expected = vec![format!("start entropy rows {n}")];
    expected.extend((1..=n.div_ceil(2)).map(|b| (2 * b).min(n).to_string()));
    expected.push("finish".into());
    assert_eq!(full.events(), expected);

    // Stop at the third check: two batches of two rows are done.
    let stopping = Recorder::new(3);
    let err = compute_entropies(&model, &rows, newlines(false), 2, &device, &stopping).unwrap_err();
    assert!(
        matches!(err, DataError::Interrupted { done: 4, total } if total == n),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("stopped while computing entropies (4 of")
    );
    assert_eq!(stopping.events().last().map(String::as_str), Some("finish"));

    // Through the cache: the stop propagates and no file is left behind.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.bin");
    let result = EntropyCache::load_or_compute(
        &path,
        "model",
        &rows,
        newlines(false),
        &Recorder::new(1),
        |rows| compute_entropies(&model, rows, newlines(false), 2, &device, &()),
    );
    assert!(matches!(
        result,
        Err(DataError::Interrupted { done: 0, .. })
    ));
    assert!(!path.exists());
}

#[test]
fn a_large_cache_is_computed_block_by_block_and_read_from_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.bin");
    // 600 rows of 3 to 9 bytes: three blocks of at most 256 rows.
    let rows: Vec<Row> = (0..600)
        .map(|i| {
            Row::new(
                i / 4,
                i,
                &vec![b'a' + (i % 26) as u8; 3 + i % 7],
                i % 4 == 3,
            )
        })
        .collect();
    let blocks = Cell::new(Vec::new());
    let progress = Recorder::new(usize::MAX);
    let cache =
        EntropyCache::load_or_compute(&path, "m", &rows, newlines(false), &progress, |block| {
            let mut seen = blocks.take();
            seen.push(block.len());
            blocks.set(seen);
            Ok(fake(block, 0.25))
        })
        .unwrap();
    assert_eq!(blocks.take(), [256, 256, 88]);
    assert_eq!(
        progress.events(),
        ["start entropy rows 600", "256", "512", "600", "finish"]
    );
    assert!(cache.is_on_disk());
    assert_eq!(
        cache.num_values(),
        rows.iter().map(Row::num_targets).sum::<usize>()
    );
    for row in [&rows[0], &rows[255], &rows[256], &rows[599]] {
        let expected = fake(std::slice::from_ref(row), 0.25).remove(0);
        assert_eq!(cache.get(row.index).unwrap().as_ref(), expected, "{row:?}");
    }
    // Reopened, the file passes its checks and holds the same values.
    let reopened = EntropyCache::load(&path, "m", &rows, newlines(false)).unwrap();
    assert_eq!(reopened.get(599), cache.get(599));
}
