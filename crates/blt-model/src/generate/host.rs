//! [`HostDecoder`]: the streaming decoder (see [`super::streaming`]) with the layers of
//! [`crate::host`] instead of Burn ops. Whatever backend holds the model, the steps run on the
//! CPU, on rayon's threads; a prompt is prefilled with products over all its positions at once.

use blt_core::host::{HostContext, HostKvCache};
use burn::tensor::backend::Backend;

use super::{
    Generator, Step, StepDecoder, WeightPrecision,
    state::SequenceState,
    streaming::{ByteInput, DecodeLayers, Streaming},
};
use crate::{
    error::Result,
    host::{HostBlt, HostCaches, HostEntropyModel, entropy},
};

/// The host copy of a model and its entropy model, with one sequence's caches.
#[derive(Debug)]
pub struct HostLayers<'g> {
    model: &'g HostBlt,
    entropy_model: Option<&'g HostEntropyModel>,
    caches: HostCaches,
    entropy_caches: Vec<HostKvCache>,
}

/// Host [`StepDecoder`] (see [`DecodeMode::Host`](super::DecodeMode::Host)).
#[derive(Debug)]
pub struct HostDecoder<'g>(Streaming<HostLayers<'g>>);

impl<'g> HostDecoder<'g> {
    /// A decoder with empty caches over `generator`'s host copy of its models with weight
    /// matrices in `precision` (made on first use and kept by the generator).
    pub fn new<B: Backend>(
        generator: &'g Generator<'_, B>,
        precision: WeightPrecision,
    ) -> Result<Self> {
        let config = generator.config;
        let (model, entropy_model) = generator.host_models(precision)?;
        let layers = HostLayers {
            model,
            entropy_model,
            caches: model.new_caches(config.window_size),
            entropy_caches: entropy_model.map(|e| e.new_caches()).unwrap_or_default(),
        };
        Ok(Self(Streaming::with_layers(
            SequenceState::new(config)?,
            layers,
        )))
    }
}

impl DecodeLayers for HostLayers<'_> {
    /// The byte's encoder state, `d` values.
    type Byte = Vec<f32>;
    /// The patch's slots, projected once for every decoder layer.
    type Slots = Vec<HostContext>;

    fn entropy(&mut self, byte: &ByteInput) -> Option<f32> {
        let model = self.entropy_model?;
        let logits = model.step(byte.id, &mut self.entropy_caches, byte.entropy_segment);
        Some(entropy(&logits))
    }

    fn encode(&mut self, byte: &ByteInput) -> Vec<f32> {
        let mut h = self.model.embed(byte.id, &byte.ngrams);
        self.model.encode(&mut h, &mut self.caches);
        h
    }

    fn close_patch(&mut self, bytes: Vec<Vec<f32>>) -> Vec<HostContext> {
        let pooled = self.model.pool(&bytes.concat());
        let global = self.model.global_step(&pooled, &mut self.caches);
        self.model.slots(&global)
    }

    fn decode(&mut self, byte: Vec<f32>, slots: &Vec<HostContext>) -> Vec<f32> {
        self.model.decode(byte, slots, &mut self.caches)
    }

    fn entropies(&mut self, bytes: &[ByteInput]) -> Vec<Option<f32>> {
        let Some(model) = self.entropy_model else {
            return vec![None; bytes.len()];
        };
        let ids: Vec<u32> = bytes.iter().map(|b| b.id).collect();
        let segments: Vec<u32> = bytes.iter().map(|b| b.entropy_segment).collect();
        let logits = model.steps(&ids, &segments, &mut self.entropy_caches);
        logits
            .chunks_exact(blt_patching::VOCAB_SIZE)
            .map(|l| Some(entropy(l)))
            .collect()
    }

    fn encode_all(&mut self, bytes: &[ByteInput]) -> Vec<Vec<f32>> {
        let mut h: Vec<f32> = bytes
            .iter()
            .flat_map(|b| self.model.embed(b.id, &b.ngrams))
            .collect();
        self.model.encode_rows(&mut h, &mut self.caches);
        h.chunks_exact(self.model.width())
            .map(<[f32]>::to_vec)
            .collect()
    }

    fn close_patches(&mut self, patches: Vec<Vec<Vec<f32>>>) -> Vec<Vec<HostContext>> {
        let pooled: Vec<f32> = patches
            .iter()
            .flat_map(|bytes| self.model.pool(&bytes.concat()))
            .collect();
        let global = self.model.global_rows(&pooled, &mut self.caches);
        let width = global.len() / patches.len().max(1);
        global
            .chunks_exact(width.max(1))
            .map(|g| self.model.slots(g))
            .collect()
    }

    fn decode_all(
        &mut self,
        bytes: Vec<Vec<f32>>,
        slots: &[Vec<HostContext>],
        reads: &[usize],
    ) -> Vec<f32> {
        let h = bytes.concat();
        let slots: Vec<&[HostContext]> = reads.iter().map(|&r| slots[r].as_slice()).collect();
        self.model.decode_rows(h, &slots, &mut self.caches)
    }
}

/// Runs `f` on one of rayon's threads: the products split over the pool are then handed
/// between its workers, which are awake, instead of from a thread outside the pool that sleeps
/// until each product is done (a wake-up per product, about as long as a local layer's product
/// itself).
fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let mut out = None;
    rayon::scope(|_| out = Some(f()));
    out.expect("the scope ran the closure")
}

impl StepDecoder for HostDecoder<'_> {
    fn push(&mut self, id: u32) -> Result<Step> {
        on_pool(|| self.0.push(id))
    }

    fn prefill(&mut self, ids: &[u32]) -> Result<Step> {
        on_pool(|| self.0.prefill(ids))
    }

    fn patches(&self) -> usize {
        self.0.patches()
    }

    fn global_steps(&self) -> usize {
        self.0.global_steps()
    }

    fn patch_starts(&self) -> &[bool] {
        self.0.patch_starts()
    }
}
