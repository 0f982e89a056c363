//! [`Incremental`]: the streaming decoder (see [`super::streaming`]) with the layers run
//! through the backend's own ops, on whatever device holds the model.

use blt_core::KvCache;
use burn::tensor::{Bool, Int, Tensor, TensorData, backend::Backend};

use super::{
    Generator,
    state::SequenceState,
    streaming::{ByteInput, DecodeLayers, Streaming},
};
use crate::{blt::Blt, entropy::EntropyModel, error::Result, input::PoolingLayout};

/// Incremental [`StepDecoder`](super::StepDecoder) on the backend's ops.
pub type Incremental<'g, 'a, B> = Streaming<BurnLayers<'g, 'a, B>>;

/// The model's layers through Burn, with one sequence's KV caches.
#[derive(Debug)]
pub struct BurnLayers<'g, 'a, B: Backend> {
    generator: &'g Generator<'a, B>,
    entropy_caches: Vec<KvCache<B>>,
    encoder_caches: Vec<KvCache<B>>,
    global_caches: Vec<KvCache<B>>,
    decoder_caches: Vec<KvCache<B>>,
}

impl<'g, 'a, B: Backend> Incremental<'g, 'a, B> {
    /// A decoder with empty caches.
    pub fn new(generator: &'g Generator<'a, B>) -> Result<Self> {
        let config = generator.config;
        let model = generator.model;
        let window = Some(config.window_size);
        let local = |n: usize| (0..n).map(|_| KvCache::new(window)).collect::<Vec<_>>();
        let layers = BurnLayers {
            generator,
            entropy_caches: generator
                .entropy_model
                .map(|e| e.new_caches())
                .unwrap_or_default(),
            encoder_caches: local(model.encoder.blocks.len()),
            global_caches: model.global.new_caches(),
            decoder_caches: local(model.decoder.blocks.len()),
        };
        Ok(Streaming::with_layers(SequenceState::new(config)?, layers))
    }
}

/// The entropy model's entropies after one new id per row (`ids: [batch, 1]`), each row in
/// its own document, at its own position when `positions` is given: the one cached entropy
/// step of the Burn paths.
pub(super) fn cached_entropies<B: Backend>(
    model: &EntropyModel<B>,
    ids: Tensor<B, 2, Int>,
    caches: &mut [KvCache<B>],
    segments: &[Vec<u32>],
    positions: Option<&[usize]>,
) -> Vec<f32> {
    let logits = model.forward_cached(ids, caches, Some(segments), positions);
    blt_core::host::values(crate::entropy::entropy_of_logits(logits).reshape([-1]))
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

impl<B: Backend> BurnLayers<'_, '_, B> {
    fn one_id(&self, id: u32) -> Tensor<B, 2, Int> {
        Tensor::from_data(
            TensorData::new(vec![i64::from(id)], [1, 1]),
            &self.generator.device,
        )
    }
}

impl<B: Backend> DecodeLayers for BurnLayers<'_, '_, B> {
    /// `[1, 1, d]`.
    type Byte = Tensor<B, 3>;
    /// `[1, k, d]`.
    type Slots = Tensor<B, 3>;

    fn entropy(&mut self, byte: &ByteInput) -> Option<f32> {
        let model = self.generator.entropy_model?;
        let ids = self.one_id(byte.id);
        let segments = [vec![byte.entropy_segment]];
        Some(cached_entropies(model, ids, &mut self.entropy_caches, &segments, None)[0])
    }

    fn encode(&mut self, byte: &ByteInput) -> Tensor<B, 3> {
        let model = self.generator.model;
        let sizes = byte.ngrams.len();
        let ngram_ids = byte.ngrams.iter().map(|&n| i64::from(n)).collect();
        let ngrams = Tensor::<B, 3, Int>::from_data(
            TensorData::new(ngram_ids, [1, sizes, 1]),
            &self.generator.device,
        );
        let mut h = model.embedding.forward(self.one_id(byte.id), ngrams);
        for (block, cache) in model.encoder.blocks.iter().zip(&mut self.encoder_caches) {
            h = block.forward_cached(h, cache, None);
        }
        h
    }

    fn close_patch(&mut self, bytes: Vec<Tensor<B, 3>>) -> Tensor<B, 3> {
        let model = self.generator.model;
        let pooled = pool_patch(model, bytes, &self.generator.device);
        let global = model
            .global
            .forward_cached(pooled, &mut self.global_caches, None, None);
        model.decoder.patch_slots(global)
    }

    fn decode(&mut self, byte: Tensor<B, 3>, slots: &Tensor<B, 3>) -> Vec<f32> {
        let group = Tensor::<B, 2, Int>::zeros([1, 1], &self.generator.device);
        let logits = self.generator.model.decoder.forward_cached(
            byte,
            slots.clone(),
            group,
            &mut self.decoder_caches,
            None,
            None,
        );
        blt_core::host::values(logits)
    }
}
