//! The incremental decoding path of [`super::Incremental`] on the host CPU: the same caches,
//! streaming patch decisions and one global step per patch, through the layers of
//! [`crate::host`] instead of Burn ops. Whatever backend holds the model, the steps run on the
//! CPU, on rayon's threads.

use blt_core::host::HostKvCache;
use blt_patching::{NgramStream, StreamingPatcher};
use burn::tensor::backend::Backend;

use super::{Generator, Step, StepDecoder, WeightPrecision};
use crate::{
    error::{ModelError, Result},
    host::{HostBlt, HostCaches, HostEntropyModel, entropy},
};

/// Host [`StepDecoder`] (see [`DecodeMode::Host`](super::DecodeMode::Host)).
#[derive(Debug)]
pub struct HostDecoder<'g> {
    model: &'g HostBlt,
    entropy_model: Option<&'g HostEntropyModel>,
    resets: crate::EntropyResets,
    max_positions: usize,
    ngrams: NgramStream,
    patcher: StreamingPatcher,
    caches: HostCaches,
    entropy_caches: Vec<HostKvCache>,
    entropy_segment: u32,
    /// Encoder states of the bytes of the open patch, row-major.
    open_patch: Vec<f32>,
    /// The decoder's view of the last completed patch.
    last_slots: Option<Vec<blt_core::host::HostContext>>,
    global_steps: usize,
    positions: usize,
    starts: Vec<bool>,
}

impl<'g> HostDecoder<'g> {
    /// A decoder with empty caches over `generator`'s host copy of its models with weight
    /// matrices in `precision` (made on first use and kept by the generator).
    pub fn new<B: Backend>(
        generator: &'g Generator<'_, B>,
        precision: WeightPrecision,
    ) -> Result<Self> {
        let config = generator.config;
        let (model, entropy_model) = generator.host_models(precision)?;
        Ok(Self {
            model,
            entropy_model,
            resets: config.entropy_resets(),
            max_positions: config.max_position_embeddings,
            ngrams: config.ngram_hasher()?.stream(),
            patcher: StreamingPatcher::new(config.patcher_config())?,
            caches: model.new_caches(config.window_size),
            entropy_caches: entropy_model.map(|e| e.new_caches()).unwrap_or_default(),
            entropy_segment: 0,
            open_patch: Vec::new(),
            last_slots: None,
            global_steps: 0,
            positions: 0,
            starts: vec![true],
        })
    }

    fn entropy(&mut self, id: u32) -> Option<f32> {
        let model = self.entropy_model?;
        let logits = model.step(id, &mut self.entropy_caches, self.entropy_segment);
        if self.resets.ends_segment(id) {
            self.entropy_segment += 1;
        }
        Some(entropy(&logits))
    }
}

impl HostDecoder<'_> {
    fn step(&mut self, id: u32) -> Result<Step> {
        if self.positions >= self.max_positions {
            return Err(ModelError::InvalidInput(format!(
                "the sequence is full (max_position_embeddings {})",
                self.max_positions
            )));
        }
        let entropy = self.entropy(id);
        let ngram_ids = self.ngrams.push(id);
        let mut h = self.model.embed(id, &ngram_ids);
        self.model.encode(&mut h, &mut self.caches);
        self.open_patch.extend_from_slice(&h);

        let step = self.patcher.try_push(id, entropy)?;
        if step.next_starts_patch {
            let pooled = self.model.pool(&std::mem::take(&mut self.open_patch));
            let global = self.model.global_step(&pooled, &mut self.caches);
            self.last_slots = Some(self.model.slots(&global));
            self.global_steps += 1;
        }
        let slots = self
            .last_slots
            .as_deref()
            .expect("position 1 always starts a patch, so patch 0 closes after BOS");
        let logits = self.model.decode(h, slots, &mut self.caches);
        self.positions += 1;
        self.starts.push(step.next_starts_patch);
        Ok(Step {
            logits,
            entropy,
            next_starts_patch: step.next_starts_patch,
        })
    }
}

impl StepDecoder for HostDecoder<'_> {
    /// Runs the step on one of rayon's threads: the products split over the pool are then
    /// handed between its workers, which are awake, instead of from a thread outside the pool
    /// that sleeps until each product is done (a wake-up per product, about as long as a
    /// local layer's product itself).
    fn push(&mut self, id: u32) -> Result<Step> {
        let mut step = None;
        rayon::scope(|_| step = Some(self.step(id)));
        step.expect("the scope ran the step")
    }

    fn patches(&self) -> usize {
        self.patcher.num_patches() + usize::from(self.patcher.next_starts_patch())
    }

    fn global_steps(&self) -> usize {
        self.global_steps
    }

    fn patch_starts(&self) -> &[bool] {
        &self.starts
    }
}
