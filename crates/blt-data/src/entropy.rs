//! Per-byte entropies of rows under the entropy model (reference §2.3), computed **one row at a
//! time in meaning**: rows are batched as separate batch elements, right-padded, and never
//! concatenated into one stream, so a row never conditions on another (the official code's bug,
//! reference §14, issue #123). Attention is causal, limited to the model's `window_size` keys,
//! and restarts after every EOS, and also after every newline when `reset_context` is set (the
//! paper's 8B entropy run, reference §2.4).

use std::time::Instant;

use blt_core::mask::{local_causal_mask, segment_ids};
use blt_model::{EntropyModel, ends_entropy_segment, entropy_of_logits};
use blt_patching::PAD_ID;
use burn::tensor::{Int, Tensor, TensorData, backend::Backend};

use crate::{
    dataset::Row,
    error::{DataError, Result},
};

/// Longest sequence the model's rotary tables cover (`usize::MAX` without blocks).
/// Entropies (nats) at every input position of every row (`row.input()`, i.e. `ids[..n − 1]`),
/// `batch_rows` rows per forward pass. Rows are grouped by length to limit padding; the result
/// is in the order of `rows` and does not depend on `batch_rows`. Run it on an inner (not
/// autodiff) backend.
///
/// # Shapes
/// - output: one `Vec` per row, `row.ids.len() − 1` values each
pub fn compute_entropies<B: Backend>(
    model: &EntropyModel<B>,
    rows: &[Row],
    reset_context: bool,
    batch_rows: usize,
    device: &B::Device,
) -> Result<Vec<Vec<f32>>> {
    compute_entropies_until(model, rows, reset_context, batch_rows, device, || false)
}

/// [`compute_entropies`] that calls `stop` before each forward pass and gives up with
/// [`DataError::Interrupted`] once it returns true: a whole corpus takes minutes, and Ctrl-C
/// should not have to wait for it.
pub fn compute_entropies_until<B: Backend>(
    model: &EntropyModel<B>,
    rows: &[Row],
    reset_context: bool,
    batch_rows: usize,
    device: &B::Device,
    stop: impl Fn() -> bool,
) -> Result<Vec<Vec<f32>>> {
    let limit = model.max_positions();
    for row in rows {
        let len = row.input().len();
        if len == 0 || len > limit {
            return Err(DataError::InvalidRow {
                row: row.index,
                reason: format!(
                    "{len} input positions; the entropy model reads 1..={limit} positions"
                ),
            });
        }
    }
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(rows[i].ids.len()));
    let mut out = vec![Vec::new(); rows.len()];
    let started = Instant::now();
    let mut last_report = started;
    let mut done = 0;
    for chunk in order.chunks(batch_rows.max(1)) {
        if stop() {
            return Err(DataError::Interrupted {
                done,
                total: rows.len(),
            });
        }
        let inputs: Vec<&[u32]> = chunk.iter().map(|&i| rows[i].input()).collect();
        let entropies = sequence_entropies(model, &inputs, reset_context, device)?;
        for (&i, h) in chunk.iter().zip(entropies) {
            out[i] = h;
        }
        done += chunk.len();
        if last_report.elapsed().as_secs() >= 10 {
            last_report = Instant::now();
            tracing::info!(done, total = rows.len(), "computing entropies");
        }
    }
    tracing::info!(
        rows = rows.len(),
        seconds = started.elapsed().as_secs_f64(),
        reset_context,
        "computed entropies"
    );
    Ok(out)
}

/// Entropies (nats) at every position of each sequence, all in one forward pass as separate,
/// right-padded batch elements. Padding sits after every real position and attention is
/// causal, so a position never reads padding or another sequence; the values equal those of a
/// one-sequence pass up to float rounding (a longer padded length can change how the backend
/// blocks its sums, by about one ulp).
///
/// # Shapes
/// - sequences: `batch` id sequences of any lengths (each within the model's positions)
/// - output: one `Vec` per sequence, of its length
pub fn sequence_entropies<B: Backend>(
    model: &EntropyModel<B>,
    sequences: &[&[u32]],
    reset_context: bool,
    device: &B::Device,
) -> Result<Vec<Vec<f32>>> {
    let seq = sequences.iter().map(|s| s.len()).max().unwrap_or(0);
    if seq == 0 {
        return Ok(vec![Vec::new(); sequences.len()]);
    }
    let limit = model.max_positions();
    if let Some(i) = sequences.iter().position(|s| s.len() > limit) {
        return Err(DataError::InvalidRow {
            row: i,
            reason: format!(
                "{} positions; the entropy model reads at most {limit}",
                sequences[i].len()
            ),
        });
    }
    let batch = sequences.len();
    let mut ids = vec![i64::from(PAD_ID); batch * seq];
    for (b, s) in sequences.iter().enumerate() {
        for (t, &id) in s.iter().enumerate() {
            ids[b * seq + t] = i64::from(id);
        }
    }
    let needs_segments = sequences
        .iter()
        .any(|s| s.iter().any(|&id| ends_entropy_segment(id, reset_context)));
    let segments: Option<Vec<Vec<u32>>> = needs_segments.then(|| {
        sequences
            .iter()
            .map(|s| {
                let mut seg =
                    segment_ids(s.iter().map(|&id| ends_entropy_segment(id, reset_context)));
                seg.resize(seq, u32::MAX);
                seg
            })
            .collect()
    });
    let mask = local_causal_mask(
        batch,
        seq,
        Some(model.window_size),
        segments.as_deref(),
        device,
    );
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [batch, seq]), device);
    let entropies = entropy_of_logits(model.forward(ids, mask));
    let values: Vec<f32> = entropies
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| DataError::TensorData(format!("{e:?}")))?;
    Ok(sequences
        .iter()
        .enumerate()
        .map(|(b, s)| values[b * seq..b * seq + s.len()].to_vec())
        .collect())
}
