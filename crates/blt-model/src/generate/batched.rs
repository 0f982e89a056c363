//! Batched incremental decoding: several sequences advance one position per step through the
//! same cached forward passes, each exactly as it would alone.
//!
//! Rows differ in length and in where their patches end, so three things keep them apart:
//! - **Left padding.** A shorter prompt starts later; its padding steps carry a segment id no
//!   real token has ([`PAD_SEGMENT`]), so no real query ever reads them.
//! - **Per-row rotary positions.** Every row's tokens (and patches) are rotated by the position
//!   they have in their own sequence, not by the shared step count. The masks use the shared
//!   step count, which keeps each row's order and distances.
//! - **Global steps for the rows that close a patch.** When any row closes a patch, the global
//!   model runs one cached step for the whole batch; rows that did not close one feed a padding
//!   slot (again hidden by [`PAD_SEGMENT`]) and keep their previous decoder slots. Each row's
//!   global model therefore sees exactly its own patches, at its own patch positions.
//!
//! A row that has finished keeps feeding padding until the batch ends.

use blt_core::KvCache;
use blt_patching::PAD_ID;
use burn::tensor::{Bool, Int, Tensor, TensorData, backend::Backend};

use super::{
    Generator, Step,
    incremental::{cached_entropies, pool_patch},
    state::{ByteInput, SequenceState},
};
use crate::error::{ModelError, Result};

/// Segment id of padding positions: real tokens use small document ids, so a real query never
/// matches it.
pub const PAD_SEGMENT: u32 = u32::MAX;

/// One sequence's streaming state and open patch.
#[derive(Debug)]
struct Row<B: Backend> {
    state: SequenceState,
    /// Encoder states of the bytes of the open patch, each `[1, 1, d]`.
    open_patch: Vec<Tensor<B, 3>>,
}

/// Incremental decoding of a batch of sequences (see the module docs).
#[derive(Debug)]
pub struct BatchedIncremental<'g, 'a, B: Backend> {
    generator: &'g Generator<'a, B>,
    rows: Vec<Row<B>>,
    entropy_caches: Vec<KvCache<B>>,
    encoder_caches: Vec<KvCache<B>>,
    global_caches: Vec<KvCache<B>>,
    decoder_caches: Vec<KvCache<B>>,
    /// Decoder slots of each row's last completed patch, `[batch, k, d]`.
    slots: Option<Tensor<B, 3>>,
    global_invocations: usize,
}

impl<'g, 'a, B: Backend> BatchedIncremental<'g, 'a, B> {
    /// A decoder for `batch` sequences with empty caches.
    pub fn new(generator: &'g Generator<'a, B>, batch: usize) -> Result<Self> {
        if batch == 0 {
            return Err(ModelError::InvalidInput(
                "a batch needs at least one sequence".into(),
            ));
        }
        let config = generator.config;
        let model = generator.model;
        let state = SequenceState::new(config)?;
        let window = Some(config.window_size);
        let local = |n: usize| (0..n).map(|_| KvCache::new(window)).collect::<Vec<_>>();
        Ok(Self {
            generator,
            rows: (0..batch)
                .map(|_| Row {
                    state: state.clone(),
                    open_patch: Vec::new(),
                })
                .collect(),
            entropy_caches: generator
                .entropy_model
                .map(|e| e.new_caches())
                .unwrap_or_default(),
            encoder_caches: local(model.encoder.blocks.len()),
            global_caches: model.global.new_caches(),
            decoder_caches: local(model.decoder.blocks.len()),
            slots: None,
            global_invocations: 0,
        })
    }

    /// Number of sequences.
    pub fn batch(&self) -> usize {
        self.rows.len()
    }

    /// Advances every row by one position: `Some(id)` feeds the row's next id, `None` feeds
    /// padding (before a row's first id, or after its last). Returns, for each row fed an id,
    /// the step that the single-row incremental decoder's `push` would return for it alone.
    ///
    /// A row's ids must be contiguous: once it has been fed an id, it may only get `None` when
    /// it is finished.
    pub fn push(&mut self, ids: &[Option<u32>]) -> Result<Vec<Option<Step>>> {
        let batch = self.rows.len();
        if ids.len() != batch {
            return Err(ModelError::InvalidInput(format!(
                "{} ids for a batch of {batch}",
                ids.len()
            )));
        }
        let config = self.generator.config;
        let limit = config.max_position_embeddings;
        if let Some(row) =
            (0..batch).find(|&r| ids[r].is_some() && self.rows[r].state.positions() >= limit)
        {
            return Err(ModelError::InvalidInput(format!(
                "sequence {row} is full (max_position_embeddings {limit})"
            )));
        }
        if ids.iter().all(Option::is_none) {
            return Ok(vec![None; batch]);
        }
        let device = self.generator.device.clone();
        let model = self.generator.model;
        // Padding rows sit at their current position: any in-table value works, as nothing
        // reads their outputs.
        let positions: Vec<usize> = self
            .rows
            .iter()
            .map(|r| r.state.positions().min(limit - 1))
            .collect();
        let inputs = self
            .rows
            .iter_mut()
            .zip(ids)
            .map(|(row, id)| id.map(|id| row.state.begin(id)).transpose())
            .collect::<Result<Vec<Option<ByteInput>>>>()?;
        let segments: Vec<Vec<u32>> = ids
            .iter()
            .map(|id| vec![if id.is_some() { 0 } else { PAD_SEGMENT }])
            .collect();
        let id_tensor = Tensor::<B, 2, Int>::from_data(
            TensorData::new(
                ids.iter()
                    .map(|id| i64::from(id.unwrap_or(PAD_ID)))
                    .collect(),
                [batch, 1],
            ),
            &device,
        );
        let entropies = self.entropies(&inputs, id_tensor.clone(), &positions);

        let sizes = config.ngram_sizes.len();
        let mut ngram_ids = vec![0i64; batch * sizes];
        for (r, input) in inputs.iter().enumerate() {
            if let Some(input) = input {
                for (s, &n) in input.ngrams.iter().enumerate() {
                    // Layout [batch, sizes, 1].
                    ngram_ids[r * sizes + s] = i64::from(n);
                }
            }
        }
        let ngrams =
            Tensor::<B, 3, Int>::from_data(TensorData::new(ngram_ids, [batch, sizes, 1]), &device);
        let mut h = model.embedding.forward(id_tensor, ngrams);
        for (block, cache) in model.encoder.blocks.iter().zip(&mut self.encoder_caches) {
            h = block.forward_cached_at(h, cache, Some(&segments), Some(&positions));
        }

        let mut next_starts = vec![false; batch];
        for (r, (row, id)) in self.rows.iter_mut().zip(ids).enumerate() {
            if let Some(id) = id {
                row.open_patch.push(h.clone().narrow(0, r, 1));
                next_starts[r] = row.state.finish(*id, entropies[r])?;
            }
        }
        if next_starts.iter().any(|&c| c) {
            self.close_patches(&next_starts, &device);
        }
        let slots = self.slots.clone().ok_or_else(|| {
            ModelError::InvalidInput("a row was fed padding before any row's first id".into())
        })?;
        let group = Tensor::<B, 2, Int>::zeros([batch, 1], &device);
        let logits = model.decoder.forward_cached(
            h,
            slots,
            group,
            &mut self.decoder_caches,
            Some(&segments),
            Some(&positions),
        );
        let vocab = logits.dims()[2];
        let values: Vec<f32> = logits
            .into_data()
            .convert::<f32>()
            .to_vec()
            .map_err(|e| ModelError::InvalidInput(format!("logits: {e:?}")))?;
        Ok(ids
            .iter()
            .enumerate()
            .map(|(r, id)| {
                id.map(|_| Step {
                    logits: values[r * vocab..(r + 1) * vocab].to_vec(),
                    entropy: entropies[r],
                    next_starts_patch: next_starts[r],
                })
            })
            .collect())
    }

    /// The entropy model's entropy at this position for each row fed an id (`None` without an
    /// entropy model), each row in its own entropy document.
    fn entropies(
        &mut self,
        inputs: &[Option<ByteInput>],
        id_tensor: Tensor<B, 2, Int>,
        positions: &[usize],
    ) -> Vec<Option<f32>> {
        let Some(model) = self.generator.entropy_model else {
            return vec![None; inputs.len()];
        };
        let segments: Vec<Vec<u32>> = inputs
            .iter()
            .map(|input| vec![input.as_ref().map_or(PAD_SEGMENT, |i| i.entropy_segment)])
            .collect();
        let h = cached_entropies(
            model,
            id_tensor,
            &mut self.entropy_caches,
            &segments,
            Some(positions),
        );
        inputs
            .iter()
            .zip(h)
            .map(|(input, h)| input.as_ref().map(|_| h))
            .collect()
    }

    /// Pools the open patch of every row in `closing` and runs one global step for the batch;
    /// the other rows feed a hidden padding slot and keep their decoder slots.
    fn close_patches(&mut self, closing: &[bool], device: &B::Device) {
        let model = self.generator.model;
        let width = self.generator.config.global_input_size();
        let inputs: Vec<Tensor<B, 3>> = self
            .rows
            .iter_mut()
            .zip(closing)
            .map(|(row, &close)| {
                if close {
                    pool_patch(model, std::mem::take(&mut row.open_patch), device)
                } else {
                    Tensor::zeros([1, 1, width], device)
                }
            })
            .collect();
        let segments: Vec<Vec<u32>> = closing
            .iter()
            .map(|&c| vec![if c { 0 } else { PAD_SEGMENT }])
            .collect();
        let positions: Vec<usize> = self.rows.iter().map(|r| r.state.global_steps()).collect();
        let global = model.global.forward_cached(
            Tensor::cat(inputs, 0),
            &mut self.global_caches,
            Some(&segments),
            Some(&positions),
        );
        let fresh = model.decoder.patch_slots(global);
        self.slots = Some(match self.slots.take() {
            None => fresh,
            Some(old) => {
                let [batch, k, d] = fresh.dims();
                let mask = Tensor::<B, 3, Bool>::from_data(
                    TensorData::new(closing.to_vec(), [batch, 1, 1]),
                    device,
                )
                .expand([batch, k, d]);
                old.mask_where(mask, fresh)
            }
        });
        for (row, &close) in self.rows.iter_mut().zip(closing) {
            if close {
                row.state.patch_closed();
            }
        }
        self.global_invocations += 1;
    }

    /// Patches of `row` so far (counting the one its next byte belongs to), as
    /// [`super::StepDecoder::patches`] counts them.
    pub fn patches(&self, row: usize) -> usize {
        self.rows[row].state.patches()
    }

    /// Global steps that included `row`'s patches: exactly one per closed patch.
    pub fn global_steps(&self, row: usize) -> usize {
        self.rows[row].state.global_steps()
    }

    /// Cached global steps run for the whole batch (at most the sum of the rows' patches;
    /// exactly one row's count when all rows close their patches together).
    pub fn global_invocations(&self) -> usize {
        self.global_invocations
    }
}
