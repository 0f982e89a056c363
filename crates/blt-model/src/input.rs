//! The model's named input: everything [`Blt::forward`](crate::Blt::forward) needs, built from
//! bytes on the host (patching and hashing are plain Rust) and moved to the device once.

use blt_core::mask::{local_causal_mask, segment_ids};
use blt_patching::{
    BOS_ID, ByteTokenizer, EOS_ID, EncodeOptions, NgramHasher, PAD_ID, Patcher, Patches,
};
use burn::tensor::{Bool, Int, Tensor, TensorData, backend::Backend};

use crate::{
    config::BltConfig,
    error::{ModelError, Result},
};

/// One row prepared on the host: its ids, n-gram ids and patches.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedRow {
    /// Input ids (`ids[0]` is BOS); one per position.
    pub ids: Vec<u32>,
    /// n-gram table ids, size-major: `ngram_ids[s · len + t]`.
    pub ngram_ids: Vec<u32>,
    /// Patches over the positions, with the next slot included.
    pub patches: Patches,
}

impl PreparedRow {
    /// Number of positions.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the row is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Turns id rows into [`PreparedRow`]s for one model config.
#[derive(Debug, Clone)]
pub struct RowPreparer {
    hasher: NgramHasher,
    patcher: Patcher,
    max_len: usize,
}

impl RowPreparer {
    /// A preparer for the model's n-gram sizes, patching scheme and maximum length.
    pub fn new(config: &BltConfig) -> Result<Self> {
        Ok(Self {
            hasher: config.ngram_hasher()?,
            patcher: Patcher::new(config.patcher_config())?,
            max_len: config.max_position_embeddings,
        })
    }

    /// The n-gram hasher.
    pub fn hasher(&self) -> &NgramHasher {
        &self.hasher
    }

    /// The patcher.
    pub fn patcher(&self) -> &Patcher {
        &self.patcher
    }

    /// Hashes and patches one row. `entropies` (one per position) are required for entropy
    /// patching.
    pub fn prepare(&self, ids: Vec<u32>, entropies: Option<&[f32]>) -> Result<PreparedRow> {
        self.check_ids(&ids)?;
        let patches = self.patcher.patch(&ids, entropies)?;
        self.hashed(ids, patches)
    }

    /// Hashes one row and takes its patching as given: `patch_lengths` start with BOS alone and
    /// sum to the row's length `T` (transformers' single-row convention: a trailing 0 when
    /// position `T` opens a patch) or to `T + 1` (Meta's, and transformers' for the shorter
    /// rows of a batch: the last patch counts the slot after the row, and is that slot alone
    /// when position `T` opens a patch).
    pub fn prepare_with_lengths(
        &self,
        ids: Vec<u32>,
        patch_lengths: &[usize],
    ) -> Result<PreparedRow> {
        self.check_ids(&ids)?;
        let total: usize = patch_lengths.iter().sum();
        let patches = if total == ids.len() + 1 && patch_lengths.last().is_some_and(|&l| l > 0) {
            // Without the slot after the row, the last patch is one shorter: empty (a trailing
            // 0, "T opens a patch") when it held that slot alone.
            let mut lengths = patch_lengths.to_vec();
            *lengths.last_mut().expect("not empty") -= 1;
            Patches::from_lengths(&lengths)?
        } else if total == ids.len() {
            Patches::from_lengths(patch_lengths)?
        } else {
            return Err(ModelError::InvalidInput(format!(
                "patch lengths sum to {total}; the row has {} positions, so they must sum to \
                 {0} or {}",
                ids.len(),
                ids.len() + 1
            )));
        };
        self.hashed(ids, patches)
    }

    fn hashed(&self, ids: Vec<u32>, patches: Patches) -> Result<PreparedRow> {
        let mut ngram_ids = vec![0; self.hasher.sizes().len() * ids.len()];
        self.hasher.hash_ids_into(&ids, &mut ngram_ids)?;
        Ok(PreparedRow {
            ids,
            ngram_ids,
            patches,
        })
    }

    fn check_ids(&self, ids: &[u32]) -> Result<()> {
        if ids.is_empty() {
            return Err(ModelError::InvalidInput(
                "a row needs at least one id".into(),
            ));
        }
        if ids[0] != BOS_ID {
            return Err(ModelError::InvalidInput(format!(
                "a row must start with BOS ({BOS_ID}), found {}",
                ids[0]
            )));
        }
        if ids.len() > self.max_len {
            return Err(ModelError::InvalidInput(format!(
                "row of {} positions exceeds max_position_embeddings ({})",
                ids.len(),
                self.max_len
            )));
        }
        Ok(())
    }
}

/// Rounds a patch count up to one of a few sizes per octave (at most 12.5% waste), so GPU
/// backends compile few distinct shapes.
pub fn bucket_size(n: usize) -> usize {
    if n <= 8 {
        return 8;
    }
    let floor_power = 1usize << (usize::BITS - 1 - n.leading_zeros());
    let step = (floor_power / 8).max(1);
    n.div_ceil(step) * step
}

/// Where each patch's bytes sit, for pooling: patch `p` of row `b` reads positions
/// `index[(b·P + p)·L + j]` (flat over `[batch · seq]`) for `j < L` where valid.
#[derive(Debug, Clone)]
pub struct PoolingLayout<B: Backend> {
    /// Flat positions, `[batch · patches · max_len]`.
    pub index: Tensor<B, 1, Int>,
    /// Which gathered positions belong to the patch, `[batch, patches, max_len]`.
    pub valid: Tensor<B, 3, Bool>,
    /// Bytes gathered per patch (the longest patch, bucketed).
    pub max_len: usize,
}

/// The model input for a batch of rows (right-padded).
#[derive(Debug, Clone)]
pub struct BltInput<B: Backend> {
    /// Byte ids, `[batch, seq]`; padding is PAD (0).
    pub ids: Tensor<B, 2, Int>,
    /// Hash n-gram ids, `[batch, sizes, seq]`.
    pub ngram_ids: Tensor<B, 3, Int>,
    /// Patch of each position, `[batch, seq]`; padding is −1.
    pub encoder_patch_ids: Tensor<B, 2, Int>,
    /// Global patch each position's decoder reads, `dec(i) = enc(i+1) − 1`, `[batch, seq]`.
    pub decoder_patch_ids: Tensor<B, 2, Int>,
    /// Patches per row after padding (the global sequence length).
    pub num_patches: usize,
    /// Real patches of each row.
    pub patch_counts: Vec<usize>,
    /// Real positions of each row.
    pub lengths: Vec<usize>,
    /// `true` at real positions, `[batch, seq]`.
    pub byte_mask: Tensor<B, 2, Bool>,
    /// Local block-causal mask of the byte-level models, `[batch, seq, seq]`, `true` = masked.
    pub local_mask: Tensor<B, 3, Bool>,
    /// Causal mask over patches, `[batch, patches, patches]`.
    pub global_mask: Tensor<B, 3, Bool>,
    /// Gather layout of each patch's bytes.
    pub pooling: PoolingLayout<B>,
}

impl<B: Backend> BltInput<B> {
    /// Encodes raw byte strings (BOS added, no EOS), patches and hashes them, and builds the
    /// batch. `entropies` (one vector per text, one value per position including BOS) are
    /// required for entropy patching.
    pub fn from_bytes(
        config: &BltConfig,
        texts: &[&[u8]],
        entropies: Option<&[Vec<f32>]>,
        device: &B::Device,
    ) -> Result<Self> {
        let preparer = RowPreparer::new(config)?;
        let tokenizer = ByteTokenizer;
        let options = EncodeOptions {
            add_bos: true,
            add_eos: false,
        };
        let rows = texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let h = entropies.map(|e| e[i].as_slice());
                preparer.prepare(tokenizer.encode(text, options), h)
            })
            .collect::<Result<Vec<_>>>()?;
        Self::from_rows(config, &rows, device)
    }

    /// Builds the batch from prepared rows.
    pub fn from_rows(config: &BltConfig, rows: &[PreparedRow], device: &B::Device) -> Result<Self> {
        if rows.is_empty() {
            return Err(ModelError::InvalidInput(
                "a batch needs at least one row".into(),
            ));
        }
        let batch = rows.len();
        let seq = rows.iter().map(PreparedRow::len).max().unwrap_or(0);
        let sizes = config.ngram_sizes.len();
        let patch_counts: Vec<usize> = rows.iter().map(|r| r.patches.num_patches()).collect();
        let patches = bucket_size(patch_counts.iter().copied().max().unwrap_or(1));

        let mut ids = vec![PAD_ID as i64; batch * seq];
        let mut ngrams = vec![0i64; batch * sizes * seq];
        let mut enc = vec![-1i64; batch * seq];
        let mut dec = vec![0i64; batch * seq];
        let mut real = vec![false; batch * seq];
        for (b, row) in rows.iter().enumerate() {
            let len = row.len();
            for t in 0..len {
                ids[b * seq + t] = row.ids[t] as i64;
                enc[b * seq + t] = row.patches.encoder_ids[t] as i64;
                dec[b * seq + t] = row.patches.decoder_ids[t] as i64;
                real[b * seq + t] = true;
            }
            for s in 0..sizes {
                for t in 0..len {
                    ngrams[(b * sizes + s) * seq + t] = row.ngram_ids[s * len + t] as i64;
                }
            }
        }

        // Documents: a segment ends at each EOS (reference §5); patches that hold an EOS end a
        // global segment (reference §6, block-causal). Without `document_mask`, plainly causal.
        let has_eos = config.document_mask && rows.iter().any(|r| r.ids.contains(&EOS_ID));
        let byte_segments: Option<Vec<Vec<u32>>> = has_eos.then(|| {
            rows.iter()
                .map(|r| {
                    let mut s = segment_ids(r.ids.iter().map(|&id| id == EOS_ID));
                    s.resize(seq, u32::MAX);
                    s
                })
                .collect()
        });
        let patch_segments: Option<Vec<Vec<u32>>> = has_eos.then(|| {
            rows.iter()
                .map(|r| {
                    let mut ends = vec![false; patches];
                    for (t, &id) in r.ids.iter().enumerate() {
                        if id == EOS_ID {
                            ends[r.patches.encoder_ids[t] as usize] = true;
                        }
                    }
                    segment_ids(ends)
                })
                .collect()
        });

        let pooling = pooling_layout(rows, seq, patches, device);
        Ok(Self {
            ids: Tensor::from_data(TensorData::new(ids, [batch, seq]), device),
            ngram_ids: Tensor::from_data(TensorData::new(ngrams, [batch, sizes, seq]), device),
            encoder_patch_ids: Tensor::from_data(TensorData::new(enc, [batch, seq]), device),
            decoder_patch_ids: Tensor::from_data(TensorData::new(dec, [batch, seq]), device),
            num_patches: patches,
            patch_counts,
            lengths: rows.iter().map(PreparedRow::len).collect(),
            byte_mask: Tensor::from_data(TensorData::new(real, [batch, seq]), device),
            local_mask: local_causal_mask(
                batch,
                seq,
                Some(config.window_size),
                byte_segments.as_deref(),
                device,
            ),
            global_mask: local_causal_mask(batch, patches, None, patch_segments.as_deref(), device),
            pooling,
        })
    }

    /// Batch size.
    pub fn batch_size(&self) -> usize {
        self.lengths.len()
    }

    /// Padded sequence length.
    pub fn seq_len(&self) -> usize {
        self.ids.dims()[1]
    }

    /// Mean patch length over the batch: real positions per real patch.
    pub fn mean_patch_len(&self) -> f64 {
        let positions: usize = self.lengths.iter().sum();
        let patches: usize = self.patch_counts.iter().sum();
        positions as f64 / patches.max(1) as f64
    }

    /// Moves every tensor to `device`.
    pub fn to_device(self, device: &B::Device) -> Self {
        Self {
            ids: self.ids.to_device(device),
            ngram_ids: self.ngram_ids.to_device(device),
            encoder_patch_ids: self.encoder_patch_ids.to_device(device),
            decoder_patch_ids: self.decoder_patch_ids.to_device(device),
            byte_mask: self.byte_mask.to_device(device),
            local_mask: self.local_mask.to_device(device),
            global_mask: self.global_mask.to_device(device),
            pooling: PoolingLayout {
                index: self.pooling.index.to_device(device),
                valid: self.pooling.valid.to_device(device),
                max_len: self.pooling.max_len,
            },
            ..self
        }
    }
}

/// Gather indices of every patch's input positions.
fn pooling_layout<B: Backend>(
    rows: &[PreparedRow],
    seq: usize,
    patches: usize,
    device: &B::Device,
) -> PoolingLayout<B> {
    let batch = rows.len();
    let longest = rows
        .iter()
        .flat_map(|r| input_patch_lengths(&r.patches))
        .max()
        .unwrap_or(1);
    let max_len = longest.next_power_of_two();
    let mut index = vec![0i64; batch * patches * max_len];
    let mut valid = vec![false; batch * patches * max_len];
    for (b, row) in rows.iter().enumerate() {
        for (p, (&start, len)) in row
            .patches
            .starts
            .iter()
            .zip(input_patch_lengths(&row.patches))
            .enumerate()
        {
            for j in 0..len {
                let slot = (b * patches + p) * max_len + j;
                index[slot] = (b * seq + start + j) as i64;
                valid[slot] = true;
            }
        }
    }
    PoolingLayout {
        index: Tensor::from_data(TensorData::new(index, [batch * patches * max_len]), device),
        valid: Tensor::from_data(TensorData::new(valid, [batch, patches, max_len]), device),
        max_len,
    }
}

/// Lengths of the patches restricted to the input positions (the next slot excluded); patches
/// that hold only the next slot are dropped.
fn input_patch_lengths(patches: &Patches) -> impl Iterator<Item = usize> + '_ {
    let len = patches.len();
    patches
        .starts
        .iter()
        .zip(&patches.lengths)
        .filter(move |&(&s, _)| s < len)
        .map(move |(&s, &l)| l.min(len - s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_few_and_tight() {
        assert_eq!(bucket_size(1), 8);
        assert_eq!(bucket_size(9), 9);
        assert_eq!(bucket_size(17), 18);
        assert_eq!(bucket_size(257), 288);
        for n in 1..5000 {
            let b = bucket_size(n);
            assert!(
                b >= n && (b as f64) <= (n as f64 * 1.125).max(8.0),
                "{n} -> {b}"
            );
        }
        let distinct: std::collections::BTreeSet<_> = (512..1024).map(bucket_size).collect();
        assert!(distinct.len() <= 9);
    }

    /// Patch lengths over `T` and over `T + 1` (the slot after the row counted) describe the
    /// same patching: with position `T` opening a patch (a trailing 0, or a last patch of the
    /// slot alone) and without (the last patch one longer); other sums are refused.
    #[test]
    fn patch_lengths_may_count_the_slot_after_the_row() {
        let preparer = RowPreparer::new(&BltConfig {
            patching: crate::PatchingKind::Fixed,
            ..BltConfig::default()
        })
        .unwrap();
        let ids = vec![BOS_ID, 10, 11, 12, 13, 14];
        let starts = |lengths: &[usize]| {
            preparer
                .prepare_with_lengths(ids.clone(), lengths)
                .map(|row| row.patches.starts)
        };
        // T opens a patch.
        assert_eq!(starts(&[1, 2, 3, 0]).unwrap(), vec![0, 1, 3, 6]);
        assert_eq!(starts(&[1, 2, 3, 1]).unwrap(), vec![0, 1, 3, 6]);
        // It does not.
        assert_eq!(starts(&[1, 2, 3]).unwrap(), vec![0, 1, 3]);
        assert_eq!(starts(&[1, 2, 4]).unwrap(), vec![0, 1, 3]);
        for wrong in [&[1, 2, 2][..], &[1, 2, 5], &[1, 2, 3, 2]] {
            let err = starts(wrong).unwrap_err().to_string();
            assert!(err.contains("must sum to 6 or 7"), "{wrong:?}: {err}");
        }
    }
}
