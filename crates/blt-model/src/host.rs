//! The model's layers on the host CPU for incremental decoding at batch 1 (see
//! [`blt_core::host`]): a [`HostBlt`] and a [`HostEntropyModel`] copied once from the Burn
//! modules, and the per-byte and per-patch steps [`crate::generate::HostDecoder`] chains.
//!
//! The steps follow [`Blt::forward`] position by position: embeddings, the encoder's blocks,
//! pooling a closed patch, one global step per patch, the decoder slots of that patch, then the
//! decoder's cross-attentions and blocks and the head.

use blt_core::host::{
    HostBlock, HostContext, HostCopier, HostCrossAttention, HostKvCache, HostLinear, HostRmsNorm,
    WeightPrecision, add_assign, values,
};
use std::sync::Arc;

use blt_patching::VOCAB_SIZE;
use burn::tensor::{Tensor, backend::Backend};

use crate::{
    blt::Blt,
    entropy::EntropyModel,
    error::{ModelError, Result},
    global::HierarchicalMemory,
};

/// One [`HostKvCache`] per block.
pub(crate) fn new_caches(blocks: &[HostBlock], window: Option<usize>) -> Vec<HostKvCache> {
    blocks.iter().map(|b| b.new_cache(window)).collect()
}

fn blocks<B: Backend>(
    blocks: &[blt_core::TransformerBlock<B>],
    copier: &mut HostCopier,
) -> Result<Vec<HostBlock>> {
    blocks
        .iter()
        .map(|b| HostBlock::from_block(b, copier))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| ModelError::InvalidInput(e.to_string()))
}

/// The rows of an embedding table, read where the table already lives: the host decoder
/// never copies the hash n-gram tables (3 B of BLT-1B's 4.5 B parameters), it reads the few
/// rows each byte needs.
pub trait TableRows: Send + Sync {
    /// Adds row `row` (`d` values) to `out`.
    fn add_row(&self, row: usize, out: &mut [f32]);
}

/// A [`TableRows`] over a Burn tensor `[rows, d]`, on any backend (one slice per row read).
struct TensorRows<B: Backend> {
    table: Tensor<B, 2>,
}

impl<B: Backend> TableRows for TensorRows<B> {
    fn add_row(&self, row: usize, out: &mut [f32]) {
        add_assign(out, &values(self.table.clone().narrow(0, row, 1)));
    }
}

/// A [`HierarchicalMemory`] on the host.
#[derive(Debug, Clone)]
struct HostMemory {
    memory: Vec<f32>,
    gate: HostLinear,
}

impl HostMemory {
    fn from_memory<B: Backend>(memory: &HierarchicalMemory<B>, copier: &HostCopier) -> Self {
        Self {
            memory: values(memory.memory.val()),
            gate: copier.linear(&memory.gate),
        }
    }

    /// `h + σ(W[h; m] + b) ⊙ m` for each row of `h`.
    fn apply_rows(&self, h: &mut [f32]) {
        for row in h.chunks_exact_mut(self.memory.len()) {
            self.apply(row);
        }
    }

    /// `h + σ(W[h; m] + b) ⊙ m`.
    fn apply(&self, h: &mut [f32]) {
        let joined: Vec<f32> = h.iter().chain(&self.memory).copied().collect();
        let gate = self.gate.apply(&joined);
        for ((h, g), m) in h.iter_mut().zip(gate).zip(&self.memory) {
            *h += m / (1.0 + (-g).exp());
        }
    }
}

/// A [`Blt`]'s weights on the host.
#[derive(Clone)]
pub struct HostBlt {
    width: usize,
    /// Byte embeddings, `[260, d]`.
    bytes: Vec<f32>,
    /// Fused n-gram tables, `[sizes · rows, d]`, where the model keeps them.
    ngrams: Option<Arc<dyn TableRows>>,
    table_rows: usize,
    encoder: Vec<HostBlock>,
    pool_projection: HostLinear,
    pool_attention: Option<HostCrossAttention>,
    mean_pooling: bool,
    global_input: Option<HostLinear>,
    global: Vec<HostBlock>,
    memories: Vec<HostMemory>,
    slot_projection: HostLinear,
    decoder_attention: Vec<HostCrossAttention>,
    decoder: Vec<HostBlock>,
    norm: HostRmsNorm,
    head: HostLinear,
}

impl std::fmt::Debug for HostBlt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostBlt")
            .field("width", &self.width)
            .field("ngram_tables", &self.ngrams.is_some())
            .field("encoder_layers", &self.encoder.len())
            .field("global_layers", &self.global.len())
            .field("decoder_layers", &self.decoder.len())
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

impl HostBlt {
    /// Copies `model`'s weights to the host, weight matrices in `precision` (byte embeddings
    /// and norms stay `f32`; the n-gram tables are read from the model's own tensor, not
    /// copied); fails for layers without a host step (differential attention).
    pub fn new<B: Backend>(model: &Blt<B>, precision: WeightPrecision) -> Result<Self> {
        let mut copier = HostCopier::new(precision);
        let c = &mut copier;
        let encoder = &model.encoder;
        let decoder = &model.decoder;
        Ok(Self {
            width: model.embedding.bytes.weight.dims()[1],
            bytes: values(model.embedding.bytes.weight.val()),
            ngrams: model.embedding.ngrams.as_ref().map(|e| {
                Arc::new(TensorRows {
                    table: e.weight.val(),
                }) as Arc<dyn TableRows>
            }),
            table_rows: model.embedding.table_rows,
            encoder: blocks(&encoder.blocks, c)?,
            pool_projection: c.linear(&encoder.patch_projection),
            pool_attention: encoder
                .cross_attention
                .as_ref()
                .map(|a| HostCrossAttention::from_attention(a, c)),
            mean_pooling: encoder.mean_pooling,

            global_input: model.global.input_projection.as_ref().map(|p| c.linear(p)),
            global: blocks(&model.global.blocks, c)?,
            memories: model
                .global
                .memories
                .iter()
                .map(|m| HostMemory::from_memory(m, c))
                .collect(),
            slot_projection: c.linear(&decoder.patch_projection),
            decoder_attention: decoder
                .cross_attentions
                .iter()
                .map(|a| HostCrossAttention::from_attention(a, c))
                .collect(),
            decoder: blocks(&decoder.blocks, c)?,
            norm: HostRmsNorm::from_norm(&decoder.norm),
            head: c.linear(&decoder.head),
        })
    }

    /// Width of the local models.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Bytes of the weights copied to the host (what a byte's steps read, at most).
    pub fn copied_bytes(&self) -> usize {
        let blocks = |b: &[HostBlock]| b.iter().map(HostBlock::bytes).sum::<usize>();
        let cross = |c: &HostCrossAttention| c.bytes();
        self.bytes.len() * 4
            + blocks(&self.encoder)
            + blocks(&self.global)
            + blocks(&self.decoder)
            + self.pool_projection.bytes()
            + self.pool_attention.as_ref().map_or(0, cross)
            + self.global_input.as_ref().map_or(0, HostLinear::bytes)
            + self
                .memories
                .iter()
                .map(|m| m.gate.bytes() + m.memory.len() * 4)
                .sum::<usize>()
            + self.slot_projection.bytes()
            + self.decoder_attention.iter().map(cross).sum::<usize>()
            + self.head.bytes()
    }

    /// Bytes of copied weights one byte's steps read, and one patch's global step reads: the
    /// local encoder, the decoder with its slots and head, against the pooling and the global
    /// model (the n-gram rows, a few kilobytes, are left out).
    pub fn bytes_per_step(&self) -> (usize, usize) {
        let blocks = |b: &[HostBlock]| b.iter().map(HostBlock::bytes).sum::<usize>();
        let per_byte = blocks(&self.encoder)
            + blocks(&self.decoder)
            + self
                .decoder_attention
                .iter()
                .map(|c| c.bytes())
                .sum::<usize>()
            + self.head.bytes();
        (
            per_byte,
            self.copied_bytes() - per_byte - self.bytes.len() * 4,
        )
    }

    /// Fresh caches of the encoder, the global model and the decoder; the local ones hold
    /// `window` bytes.
    pub fn new_caches(&self, window: usize) -> HostCaches {
        HostCaches {
            encoder: new_caches(&self.encoder, Some(window)),
            global: new_caches(&self.global, None),
            decoder: new_caches(&self.decoder, Some(window)),
        }
    }

    /// The embedding of byte id `id` with its hash n-gram ids (one per table, in `0..rows`).
    pub fn embed(&self, id: u32, ngram_ids: &[u32]) -> Vec<f32> {
        let d = self.width;
        let mut h = self.bytes[id as usize * d..(id as usize + 1) * d].to_vec();
        if let Some(ngrams) = &self.ngrams {
            for (table, &n) in ngram_ids.iter().enumerate() {
                ngrams.add_row(table * self.table_rows + n as usize, &mut h);
            }
        }
        h
    }

    /// Runs the encoder's blocks over the next byte's embedding, in place.
    pub fn encode(&self, h: &mut [f32], caches: &mut HostCaches) {
        for (block, cache) in self.encoder.iter().zip(&mut caches.encoder) {
            block.step(h, cache, 0);
        }
    }

    /// [`encode`](Self::encode) for consecutive bytes (row-major embeddings, in place), the
    /// products over all of them at once.
    pub fn encode_rows(&self, h: &mut [f32], caches: &mut HostCaches) {
        let segments = vec![0; h.len() / self.width];
        for (block, cache) in self.encoder.iter().zip(&mut caches.encoder) {
            block.steps(h, cache, &segments);
        }
    }

    /// Pools one patch from its bytes' encoder states (row-major, `len × d`) into the global
    /// model's input (`k · d`), as [`crate::LocalEncoder::pool`] does for a patch with every
    /// byte present.
    pub fn pool(&self, bytes: &[f32]) -> Vec<f32> {
        let d = self.width;
        let len = bytes.len() / d;
        let mut pooled = vec![
            if self.mean_pooling {
                0.0
            } else {
                f32::NEG_INFINITY
            };
            d
        ];
        for byte in bytes.chunks_exact(d) {
            for (p, &v) in pooled.iter_mut().zip(byte) {
                *p = if self.mean_pooling { *p + v } else { p.max(v) };
            }
        }
        if self.mean_pooling {
            pooled.iter_mut().for_each(|p| *p /= len.max(1) as f32);
        } else if len == 0 {
            pooled.fill(0.0);
        }
        let mut queries = self.pool_projection.apply(&pooled);
        let Some(attention) = &self.pool_attention else {
            return queries;
        };
        let context = attention.context(bytes);
        for query in queries.chunks_exact_mut(d) {
            let attended = attention.attend(query, &context);
            // The original's double residual (see `LocalEncoder::pool`).
            query.iter_mut().for_each(|q| *q *= 2.0);
            add_assign(query, &attended);
        }
        queries
    }

    /// Advances the global model by one patch (`k · d` pooled values); returns its output.
    pub fn global_step(&self, patch: &[f32], caches: &mut HostCaches) -> Vec<f32> {
        let mut h = match &self.global_input {
            Some(p) => p.apply(patch),
            None => patch.to_vec(),
        };
        for (layer, (block, cache)) in self.global.iter().zip(&mut caches.global).enumerate() {
            block.step(&mut h, cache, 0);
            if let Some(memory) = self.memories.get(layer) {
                memory.apply(&mut h);
            }
        }
        h
    }

    /// [`global_step`](Self::global_step) for consecutive patches (row-major pooled inputs);
    /// returns their outputs, row-major.
    pub fn global_rows(&self, patches: &[f32], caches: &mut HostCaches) -> Vec<f32> {
        let mut h = match &self.global_input {
            Some(p) => p.apply_rows(patches),
            None => patches.to_vec(),
        };
        let width = self.global.first().map_or(1, HostBlock::width);
        let segments = vec![0; h.len() / width];
        for (layer, (block, cache)) in self.global.iter().zip(&mut caches.global).enumerate() {
            block.steps(&mut h, cache, &segments);
            if let Some(memory) = self.memories.get(layer) {
                memory.apply_rows(&mut h);
            }
        }
        h
    }

    /// The decoder's view of a patch: its `k` slots, projected once for every decoder layer.
    pub fn slots(&self, global: &[f32]) -> Vec<HostContext> {
        let slots = self.slot_projection.apply(global);
        self.decoder_attention
            .iter()
            .map(|attention| attention.context(&slots))
            .collect()
    }

    /// Decodes the next byte from its encoder state `h` and the slots of its patch
    /// ([`HostBlt::slots`]); returns the 260 logits.
    pub fn decode(
        &self,
        mut h: Vec<f32>,
        slots: &[HostContext],
        caches: &mut HostCaches,
    ) -> Vec<f32> {
        let layers = self
            .decoder_attention
            .iter()
            .zip(&self.decoder)
            .zip(slots)
            .zip(&mut caches.decoder);
        for (((attention, block), slots), cache) in layers {
            let read = attention.attend(&h, slots);
            h.iter_mut().for_each(|v| *v *= 2.0);
            add_assign(&mut h, &read);
            block.step(&mut h, cache, 0);
        }
        let logits = self.head.apply(&self.norm.apply(&h));
        debug_assert_eq!(logits.len(), VOCAB_SIZE);
        logits
    }
}

impl HostBlt {
    /// [`decode`](Self::decode) for consecutive bytes (row-major encoder states), byte `i`
    /// against `slots[i]`; returns the last byte's logits. The products run over all bytes at
    /// once, and the head only for the last.
    pub fn decode_rows(
        &self,
        mut h: Vec<f32>,
        slots: &[&[HostContext]],
        caches: &mut HostCaches,
    ) -> Vec<f32> {
        let segments = vec![0; slots.len()];
        for (layer, ((attention, block), cache)) in self
            .decoder_attention
            .iter()
            .zip(&self.decoder)
            .zip(&mut caches.decoder)
            .enumerate()
        {
            let contexts: Vec<&HostContext> = slots.iter().map(|s| &s[layer]).collect();
            let read = attention.attend_rows(&h, &contexts);
            h.iter_mut().for_each(|v| *v *= 2.0);
            add_assign(&mut h, &read);
            block.steps(&mut h, cache, &segments);
        }
        let last = &h[h.len() - self.width..];
        self.head.apply(&self.norm.apply(last))
    }
}

/// The caches of one sequence decoded by a [`HostBlt`].
#[derive(Debug, Clone)]
pub struct HostCaches {
    encoder: Vec<HostKvCache>,
    global: Vec<HostKvCache>,
    decoder: Vec<HostKvCache>,
}

/// An [`EntropyModel`]'s weights on the host.
#[derive(Clone)]
pub struct HostEntropyModel {
    embedding: Vec<f32>,
    blocks: Vec<HostBlock>,
    norm: HostRmsNorm,
    head: HostLinear,
    window: usize,
}

impl std::fmt::Debug for HostEntropyModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostEntropyModel")
            .field("layers", &self.blocks.len())
            .field("window", &self.window)
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

impl HostEntropyModel {
    /// Copies `model`'s weights to the host, weight matrices in `precision`.
    pub fn new<B: Backend>(model: &EntropyModel<B>, precision: WeightPrecision) -> Result<Self> {
        let mut copier = HostCopier::new(precision);
        Ok(Self {
            embedding: values(model.embedding.weight.val()),
            blocks: blocks(&model.blocks, &mut copier)?,
            norm: HostRmsNorm::from_norm(&model.norm),
            head: copier.linear(&model.head),
            window: model.window_size,
        })
    }

    /// Bytes of the copied weights (what each byte's step reads).
    pub fn copied_bytes(&self) -> usize {
        self.embedding.len() * 4
            + self.blocks.iter().map(HostBlock::bytes).sum::<usize>()
            + self.head.bytes()
    }

    /// Fresh caches, one per block.
    pub fn new_caches(&self) -> Vec<HostKvCache> {
        new_caches(&self.blocks, Some(self.window))
    }

    /// Next-byte logits after each of consecutive ids, id `i` in document `segments[i]`
    /// (row-major, 260 per id); the products over all ids at once.
    pub fn steps(&self, ids: &[u32], segments: &[u32], caches: &mut [HostKvCache]) -> Vec<f32> {
        let d = self.head.d_in();
        let mut h: Vec<f32> = ids
            .iter()
            .flat_map(|&id| {
                self.embedding[id as usize * d..(id as usize + 1) * d]
                    .iter()
                    .copied()
            })
            .collect();
        for (block, cache) in self.blocks.iter().zip(caches) {
            block.steps(&mut h, cache, segments);
        }
        self.head.apply_rows(&self.norm.apply_rows(&h))
    }

    /// Next-byte logits after byte id `id` of document `segment`.
    pub fn step(&self, id: u32, caches: &mut [HostKvCache], segment: u32) -> Vec<f32> {
        let d = self.head.d_in();
        let mut h = self.embedding[id as usize * d..(id as usize + 1) * d].to_vec();
        for (block, cache) in self.blocks.iter().zip(caches) {
            block.step(&mut h, cache, segment);
        }
        self.head.apply(&self.norm.apply(&h))
    }
}

/// Entropy (nats) of the distribution `softmax(logits)`, as [`crate::entropy_of_logits`].
pub fn entropy(logits: &[f32]) -> f32 {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let sum: f32 = logits.iter().map(|&x| (x - max).exp()).sum();
    let log_sum = sum.ln();
    -logits
        .iter()
        .map(|&x| {
            let log_p = x - max - log_sum;
            log_p.exp() * log_p
        })
        .sum::<f32>()
}
