//! The incremental decoding path (reference §10, our derivation; neither the original code nor
//! the Hugging Face port has one): KV caches for the entropy model and the local encoder and
//! decoder (bounded by their windows), streaming patch decisions, and exactly one cached global
//! step per patch, run when the patch closes.
//!
//! At byte `t`: the entropy model gives H[t]; the streaming patcher decides whether byte `t+1`
//! opens a patch; if so, the current patch is complete — its bytes' encoder states are pooled and
//! the global transformer advances by one patch. The decoder for byte `t` then reads the slots of
//! the most recently completed patch, which is `dec(t)` in both cases.

use blt_core::KvCache;
use blt_patching::{NgramStream, StreamingPatcher};
use burn::tensor::{Bool, Int, Tensor, TensorData, backend::Backend};

use super::{Generator, Step, StepDecoder};
use crate::{
    blt::Blt,
    error::{ModelError, Result},
    input::PoolingLayout,
};

/// Incremental [`StepDecoder`].
#[derive(Debug)]
pub struct Incremental<'g, 'a, B: Backend> {
    generator: &'g Generator<'a, B>,
    ngrams: NgramStream,
    patcher: StreamingPatcher,
    entropy_caches: Vec<KvCache<B>>,
    entropy_segment: u32,
    encoder_caches: Vec<KvCache<B>>,
    global_caches: Vec<KvCache<B>>,
    decoder_caches: Vec<KvCache<B>>,
    /// Encoder states of the bytes of the open patch, each `[1, 1, d]`.
    open_patch: Vec<Tensor<B, 3>>,
    /// Decoder slots of the last completed patch, `[1, k, d]`.
    last_slots: Option<Tensor<B, 3>>,
    global_steps: usize,
    positions: usize,
    /// Whether each position consumed, and the next, opens a patch.
    starts: Vec<bool>,
}

impl<'g, 'a, B: Backend> Incremental<'g, 'a, B> {
    /// A decoder with empty caches.
    pub fn new(generator: &'g Generator<'a, B>) -> Result<Self> {
        let config = generator.config;
        let model = generator.model;
        let window = Some(config.window_size);
        let local = |n: usize| (0..n).map(|_| KvCache::new(window)).collect::<Vec<_>>();
        Ok(Self {
            generator,
            ngrams: config.ngram_hasher()?.stream(),
            patcher: StreamingPatcher::new(config.patcher_config())?,
            entropy_caches: generator
                .entropy_model
                .map(|e| e.new_caches())
                .unwrap_or_default(),
            entropy_segment: 0,
            encoder_caches: local(model.encoder.blocks.len()),
            global_caches: model.global.new_caches(),
            decoder_caches: local(model.decoder.blocks.len()),
            open_patch: Vec::new(),
            last_slots: None,
            global_steps: 0,
            positions: 0,
            starts: vec![true],
        })
    }

    fn entropy(&mut self, id: u32, device: &B::Device) -> Option<f32> {
        let model = self.generator.entropy_model?;
        let segments = [vec![self.entropy_segment]];
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![id as i64], [1, 1]), device);
        let logits = model.forward_cached(ids, &mut self.entropy_caches, Some(&segments), None);
        if self.generator.config.entropy_resets().ends_segment(id) {
            self.entropy_segment += 1;
        }
        let h: f32 = crate::entropy::entropy_of_logits(logits)
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("f32 entropy")[0];
        Some(h)
    }

    /// Pools the open patch's bytes and advances the global model by one patch.
    fn close_patch(&mut self, device: &B::Device) {
        let model = self.generator.model;
        let pooled = pool_patch(model, std::mem::take(&mut self.open_patch), device);
        let global = model
            .global
            .forward_cached(pooled, &mut self.global_caches, None, None);
        self.last_slots = Some(model.decoder.patch_slots(global));
        self.global_steps += 1;
    }
}

/// Pools one patch from its bytes' encoder states (each `[1, 1, d]`) into the global model's
/// input, `[1, 1, k·d]`.
pub(super) fn pool_patch<B: Backend>(
    model: &Blt<B>,
    bytes: Vec<Tensor<B, 3>>,
    device: &B::Device,
) -> Tensor<B, 3> {
    let len = bytes.len();
    let layout = PoolingLayout {
        index: Tensor::<B, 1, Int>::arange(0..len as i64, device),
        valid: Tensor::<B, 3, Bool>::from_data(
            TensorData::new(vec![true; len], [1, 1, len]),
            device,
        ),
        max_len: len,
    };
    model.encoder.pool(Tensor::cat(bytes, 1), &layout)
}

impl<B: Backend> StepDecoder for Incremental<'_, '_, B> {
    fn push(&mut self, id: u32) -> Result<Step> {
        let generator = self.generator;
        let config = generator.config;
        if self.positions >= config.max_position_embeddings {
            return Err(ModelError::InvalidInput(format!(
                "the sequence is full (max_position_embeddings {})",
                config.max_position_embeddings
            )));
        }
        let device = generator.device.clone();
        let model = generator.model;
        let entropy = self.entropy(id, &device);

        let ngram_ids: Vec<i64> = self.ngrams.push(id).into_iter().map(i64::from).collect();
        let sizes = ngram_ids.len();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![id as i64], [1, 1]), &device);
        let ngrams =
            Tensor::<B, 3, Int>::from_data(TensorData::new(ngram_ids, [1, sizes, 1]), &device);
        let mut h = model.embedding.forward(ids, ngrams);
        for (block, cache) in model.encoder.blocks.iter().zip(&mut self.encoder_caches) {
            h = block.forward_cached(h, cache, None);
        }
        self.open_patch.push(h.clone());

        let step = self.patcher.try_push(id, entropy)?;
        if step.next_starts_patch {
            self.close_patch(&device);
        }
        let slots = self
            .last_slots
            .clone()
            .expect("position 1 always starts a patch, so patch 0 closes after BOS");
        let group = Tensor::<B, 2, Int>::zeros([1, 1], &device);
        let logits =
            model
                .decoder
                .forward_cached(h, slots, group, &mut self.decoder_caches, None, None);
        self.positions += 1;
        self.starts.push(step.next_starts_patch);
        Ok(Step {
            logits: logits
                .into_data()
                .convert::<f32>()
                .to_vec()
                .expect("f32 logits"),
            entropy,
            next_starts_patch: step.next_starts_patch,
        })
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
