//! Incremental decoding over any set of layers (reference §10, our derivation; neither the
//! original code nor the Hugging Face port has one): KV caches for the entropy model and the
//! local encoder and decoder (bounded by their windows), streaming patch decisions, and exactly
//! one cached global step per patch, run when the patch closes.
//!
//! At byte `t`: the entropy model gives H[t]; the streaming patcher decides whether byte `t+1`
//! opens a patch; if so, the current patch is complete: its bytes' encoder states are pooled and
//! the global transformer advances by one patch. The decoder for byte `t` then reads the slots of
//! the most recently completed patch, which is `dec(t)` in both cases.
//!
//! [`Streaming`] holds that bookkeeping (a [`SequenceState`], the open patch and the last
//! patch's slots) once; a [`DecodeLayers`] says where the layers run and how their weights are
//! stored: Burn's ops ([`super::Incremental`]) or the host loops ([`super::HostDecoder`]).
//! A prompt is prefilled in one pass: every position's entropy, then the patches, then every
//! byte through the encoder, every closed patch through the global model and every byte
//! through the decoder, each stage over the whole prompt at once where the layers can batch.

use super::{Step, StepDecoder, state::SequenceState};
use crate::error::{ModelError, Result};

pub use super::state::ByteInput;

/// Where the layers of an incremental decoder run, with their caches: one byte (or one closed
/// patch) at a time, and optionally a whole prompt at once.
///
/// The prompt methods default to the one-byte methods in a loop; layers that batch override
/// them, and must leave their caches exactly as the loop would (the tests compare the two).
pub trait DecodeLayers {
    /// A byte's encoder output.
    type Byte: Clone;
    /// The decoder's view of one closed patch (its global output, projected into slots).
    type Slots;

    /// The entropy (nats) of the entropy model's next-byte distribution after `byte`, or
    /// `None` without an entropy model; caches the byte.
    fn entropy(&mut self, byte: &ByteInput) -> Option<f32>;
    /// The byte through the embeddings and the local encoder; caches it.
    fn encode(&mut self, byte: &ByteInput) -> Self::Byte;
    /// Pools a closed patch from its bytes and runs one global step; caches the patch.
    fn close_patch(&mut self, bytes: Vec<Self::Byte>) -> Self::Slots;
    /// Next-byte logits (260) for a byte decoded against the slots of its patch `dec(t)`;
    /// caches the byte.
    fn decode(&mut self, byte: Self::Byte, slots: &Self::Slots) -> Vec<f32>;

    /// [`entropy`](Self::entropy) of consecutive bytes.
    fn entropies(&mut self, bytes: &[ByteInput]) -> Vec<Option<f32>> {
        bytes.iter().map(|b| self.entropy(b)).collect()
    }
    /// [`encode`](Self::encode) of consecutive bytes.
    fn encode_all(&mut self, bytes: &[ByteInput]) -> Vec<Self::Byte> {
        bytes.iter().map(|b| self.encode(b)).collect()
    }
    /// [`close_patch`](Self::close_patch) of consecutive patches.
    fn close_patches(&mut self, patches: Vec<Vec<Self::Byte>>) -> Vec<Self::Slots> {
        patches.into_iter().map(|p| self.close_patch(p)).collect()
    }
    /// [`decode`](Self::decode) of consecutive bytes, byte `i` against `slots[reads[i]]`;
    /// returns the last byte's logits.
    fn decode_all(
        &mut self,
        bytes: Vec<Self::Byte>,
        slots: &[Self::Slots],
        reads: &[usize],
    ) -> Vec<f32> {
        let mut last = Vec::new();
        for (byte, &read) in bytes.into_iter().zip(reads) {
            last = self.decode(byte, &slots[read]);
        }
        last
    }
}

/// An incremental [`StepDecoder`] over `L` (see the module docs).
#[derive(Debug)]
pub struct Streaming<L: DecodeLayers> {
    state: SequenceState,
    layers: L,
    /// Encoder outputs of the bytes of the open patch.
    open_patch: Vec<L::Byte>,
    /// The decoder's view of the last closed patch.
    last_slots: Option<L::Slots>,
}

impl<L: DecodeLayers> Streaming<L> {
    pub(super) fn with_layers(state: SequenceState, layers: L) -> Self {
        Self {
            state,
            layers,
            open_patch: Vec::new(),
            last_slots: None,
        }
    }

    /// The layers, with their caches.
    pub fn layers(&self) -> &L {
        &self.layers
    }

    /// Prefills a fresh decoder in one pass (see the module docs).
    fn prefill_fresh(&mut self, ids: &[u32]) -> Result<Step> {
        let started = std::time::Instant::now();
        let inputs = ids
            .iter()
            .map(|&id| self.state.begin(id))
            .collect::<Result<Vec<_>>>()?;
        let entropies = self.layers.entropies(&inputs);
        let closes = inputs
            .iter()
            .zip(&entropies)
            .map(|(byte, &h)| self.state.finish(byte.id, h))
            .collect::<Result<Vec<bool>>>()?;
        let bytes = self.layers.encode_all(&inputs);
        let mut patches = Vec::new();
        let mut reads = Vec::with_capacity(bytes.len());
        for (byte, &closes) in bytes.iter().zip(&closes) {
            self.open_patch.push(byte.clone());
            if closes {
                patches.push(std::mem::take(&mut self.open_patch));
                self.state.patch_closed();
            }
            reads.push(patches.len().checked_sub(1).ok_or_else(no_first_patch)?);
        }
        let slots = self.layers.close_patches(patches);
        let logits = self.layers.decode_all(bytes, &slots, &reads);
        self.last_slots = slots.into_iter().last();
        tracing::debug!(
            positions = ids.len(),
            patches = self.state.global_steps(),
            seconds = started.elapsed().as_secs_f64(),
            "prefilled in one pass"
        );
        Ok(Step {
            logits,
            entropy: entropies.last().copied().flatten(),
            next_starts_patch: closes.last().copied().unwrap_or(false),
        })
    }
}

fn no_first_patch() -> ModelError {
    ModelError::InvalidInput("the patcher did not close a patch after BOS".into())
}

impl<L: DecodeLayers> StepDecoder for Streaming<L> {
    fn push(&mut self, id: u32) -> Result<Step> {
        let byte = self.state.begin(id)?;
        let entropy = self.layers.entropy(&byte);
        let h = self.layers.encode(&byte);
        self.open_patch.push(h.clone());
        let next_starts_patch = self.state.finish(id, entropy)?;
        if next_starts_patch {
            let bytes = std::mem::take(&mut self.open_patch);
            self.last_slots = Some(self.layers.close_patch(bytes));
            self.state.patch_closed();
        }
        let slots = self.last_slots.as_ref().ok_or_else(no_first_patch)?;
        let logits = self.layers.decode(h, slots);
        Ok(Step {
            logits,
            entropy,
            next_starts_patch,
        })
    }

    /// One pass over the whole prompt on a fresh decoder (byte by byte after earlier pushes).
    fn prefill(&mut self, ids: &[u32]) -> Result<Step> {
        if ids.is_empty() || self.state.positions() > 0 {
            return super::push_each(self, ids);
        }
        self.prefill_fresh(ids)
    }

    fn patches(&self) -> usize {
        self.state.patches()
    }

    fn patch_starts(&self) -> &[bool] {
        self.state.patch_starts()
    }

    fn global_steps(&self) -> usize {
        self.state.global_steps()
    }
}
