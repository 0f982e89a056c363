//! One sequence's streaming bookkeeping, shared by every incremental decoding path: the hash
//! n-gram stream, the streaming patcher, the entropy model's document, the positions consumed,
//! which of them open a patch, and the global steps run.
//!
//! The paths differ only in where the layers run (Burn's ops, the host loops, a batch); what
//! a byte does to this state is written once, here.

use blt_patching::{NgramStream, StreamingPatcher};

use crate::{
    EntropyResets,
    config::BltConfig,
    error::{ModelError, Result},
};

/// The streaming state of one sequence (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct SequenceState {
    ngrams: NgramStream,
    patcher: StreamingPatcher,
    resets: EntropyResets,
    entropy_segment: u32,
    max_positions: usize,
    positions: usize,
    /// Whether each position consumed, and the next, opens a patch.
    starts: Vec<bool>,
    global_steps: usize,
}

/// What the streaming state hands the layers for one new byte: its id, its entropy document
/// and its hash n-gram ids.
#[derive(Debug, Clone)]
pub struct ByteInput {
    /// The byte's id.
    pub id: u32,
    /// The entropy model's document (segment) of this byte.
    pub entropy_segment: u32,
    /// One id per hash n-gram table, in `0..rows`.
    pub ngrams: Vec<u32>,
}

impl SequenceState {
    /// An empty sequence for `config`'s n-grams, patching and context.
    pub fn new(config: &BltConfig) -> Result<Self> {
        Ok(Self {
            ngrams: config.ngram_hasher()?.stream(),
            patcher: StreamingPatcher::new(config.patcher_config())?,
            resets: config.entropy_resets(),
            entropy_segment: 0,
            max_positions: config.max_position_embeddings,
            positions: 0,
            starts: vec![true],
            global_steps: 0,
        })
    }

    /// Takes the next byte: fails when the context is full; otherwise returns its entropy
    /// document and n-gram ids, and moves the entropy document on after EOS or a reset
    /// newline (the next byte starts a new one).
    pub fn begin(&mut self, id: u32) -> Result<ByteInput> {
        if self.positions >= self.max_positions {
            return Err(ModelError::InvalidInput(format!(
                "the sequence is full (max_position_embeddings {})",
                self.max_positions
            )));
        }
        let entropy_segment = self.entropy_segment;
        if self.resets.ends_segment(id) {
            self.entropy_segment += 1;
        }
        Ok(ByteInput {
            id,
            entropy_segment,
            ngrams: self.ngrams.push(id),
        })
    }

    /// Finishes the byte [`begin`](Self::begin) took, with its entropy-model entropy: returns
    /// whether the next position opens a patch (the open patch then closes, and the caller runs
    /// its global step, counted by [`patch_closed`](Self::patch_closed)).
    pub fn finish(&mut self, id: u32, entropy: Option<f32>) -> Result<bool> {
        let next = self.patcher.try_push(id, entropy)?.next_starts_patch;
        self.positions += 1;
        self.starts.push(next);
        Ok(next)
    }

    /// Counts one global step.
    pub fn patch_closed(&mut self) {
        self.global_steps += 1;
    }

    /// Positions consumed.
    pub fn positions(&self) -> usize {
        self.positions
    }

    /// Patches so far, counting the one the next byte belongs to.
    pub fn patches(&self) -> usize {
        self.patcher.num_patches() + usize::from(self.patcher.next_starts_patch())
    }

    /// Whether each position consumed, and the next one, opens a patch.
    pub fn patch_starts(&self) -> &[bool] {
        &self.starts
    }

    /// Global steps run.
    pub fn global_steps(&self) -> usize {
        self.global_steps
    }
}
