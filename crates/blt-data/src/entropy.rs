//! Per-byte entropies of rows under the entropy model (reference §2.3), computed **one row at a
//! time in meaning**: rows are batched as separate batch elements, right-padded, and never
//! concatenated into one stream, so a row never conditions on another (the official code's bug,
//! reference §14, issue #123). Attention is causal, limited to the model's `window_size` keys,
//! and restarts after every EOS (unless `document_mask` is off), and also after every newline
//! when `reset_entropy_context` is set (the paper's 8B entropy run, reference §2.4): the
//! [`EntropyResets`] passed in. The pass itself is [`EntropyModel::entropies`], the one every
//! other caller uses.

use blt_model::{EntropyModel, EntropyResets};
use burn::tensor::backend::Backend;

use crate::{
    dataset::Row,
    error::{DataError, Result},
    progress::Progress,
};

/// Entropies (nats) at every input position of every row (`row.input()`, i.e. `ids[..n − 1]`),
/// `batch_rows` rows per forward pass. Rows are grouped by length to limit padding; the result
/// is in the order of `rows` and does not depend on `batch_rows`. Run it on an inner (not
/// autodiff) backend.
///
/// The rows done are reported to `progress` (task `"entropy rows"`; `&()` reports nothing,
/// [`LogProgress`](crate::LogProgress) logs), which is asked before each forward pass whether to stop; the pass
/// then gives up with [`DataError::Interrupted`]: a whole corpus takes minutes, and Ctrl-C
/// should not have to wait for it.
///
/// # Shapes
/// - output: one `Vec` per row, `row.ids.len() − 1` values each
pub fn compute_entropies<B: Backend>(
    model: &EntropyModel<B>,
    rows: &[Row],
    resets: EntropyResets,
    batch_rows: usize,
    device: &B::Device,
    progress: &dyn Progress,
) -> Result<Vec<Vec<f32>>> {
    let limit = model.max_positions();
    for row in rows {
        let len = row.num_targets();
        if len == 0 || len > limit {
            return Err(DataError::InvalidRow {
                row: row.index,
                reason: format!(
                    "{len} input positions; the entropy model reads 1..={limit} positions"
                ),
            });
        }
    }
    progress.start("entropy rows", rows.len());
    // Longest rows first; each row's entropies land at its index.
    let pass = || {
        let mut out = vec![Vec::new(); rows.len()];
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(rows[i].num_ids()));
        let mut done = 0;
        for chunk in order.chunks(batch_rows.max(1)) {
            if progress.should_stop() {
                return Err(DataError::Interrupted {
                    done,
                    total: rows.len(),
                });
            }
            let ids: Vec<Vec<u32>> = chunk.iter().map(|&i| rows[i].input()).collect();
            let inputs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
            let entropies = model.entropies(&inputs, resets, device)?;
            for (&i, h) in chunk.iter().zip(entropies) {
                out[i] = h;
            }
            done += chunk.len();
            progress.update(done);
        }
        Ok(out)
    };
    let result = pass();
    progress.finish();
    result
}
