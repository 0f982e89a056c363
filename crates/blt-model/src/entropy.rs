//! The entropy model (reference §2): a small windowed causal byte LM — embedding, pre-norm
//! blocks, RMSNorm, a 260-way head — whose next-byte entropy (nats) drives entropy patching.

use blt_core::{
    KvCache, RmsNorm, RmsNormConfig, TransformerBlock, TransformerBlockConfig,
    init::{linear_no_bias, trunc_normal_param},
    kernels::linear,
};
use blt_patching::VOCAB_SIZE;
use burn::{
    module::Module,
    nn::{Embedding, Linear},
    tensor::{Bool, Int, Tensor, activation::log_softmax, backend::Backend},
};
use serde::{Deserialize, Serialize};

use crate::{
    config::BltConfig,
    error::{ModelError, Result},
};

/// Shape of an entropy model, derived from a [`BltConfig`] by
/// [`EntropyModelConfig::from_blt`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntropyModelConfig {
    /// Width.
    pub hidden_size: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Blocks.
    pub layers: usize,
    /// SwiGLU hidden size.
    pub intermediate_size: usize,
    /// Attention window in bytes (`entropy_context_size`).
    pub window_size: usize,
    /// Longest sequence.
    pub max_seq_len: usize,
    /// RoPE θ.
    pub rope_theta: f64,
    /// RMSNorm epsilon.
    pub norm_eps: f64,
}

impl EntropyModelConfig {
    /// The entropy model a BLT config asks for.
    pub fn from_blt(config: &BltConfig) -> Self {
        Self {
            hidden_size: config.entropy_hidden_size,
            num_heads: config.entropy_num_heads,
            layers: config.entropy_model_layers,
            intermediate_size: config.entropy_intermediate_size,
            window_size: config.entropy_context_size,
            max_seq_len: config.max_position_embeddings,
            rope_theta: config.entropy_rope_theta,
            norm_eps: config.norm_eps,
        }
    }

    /// Builds the model (σ = d^-1/2 truncated normals).
    pub fn init<B: Backend>(&self, device: &B::Device) -> EntropyModel<B> {
        let d = self.hidden_size;
        let std = (d as f64).powf(-0.5);
        EntropyModel {
            embedding: Embedding {
                weight: trunc_normal_param([VOCAB_SIZE, d], std, device),
            },
            blocks: (0..self.layers)
                .map(|layer| {
                    TransformerBlockConfig::new(d, self.num_heads)
                        .with_ffn_hidden_size(Some(self.intermediate_size))
                        .with_rope_theta(self.rope_theta)
                        .with_max_seq_len(self.max_seq_len)
                        .with_norm_eps(self.norm_eps)
                        .with_layer_index(layer)
                        .init(device)
                })
                .collect(),
            norm: RmsNormConfig::new(d).with_eps(self.norm_eps).init(device),
            head: linear_no_bias(d, VOCAB_SIZE, std, device),
            window_size: self.window_size,
        }
    }
}

/// The entropy model.
#[derive(Module, Debug)]
pub struct EntropyModel<B: Backend> {
    /// Byte embedding `[260, d]`.
    pub embedding: Embedding<B>,
    /// Blocks.
    pub blocks: Vec<TransformerBlock<B>>,
    /// Final norm.
    pub norm: RmsNorm<B>,
    /// Head `Linear(d → 260)`.
    pub head: Linear<B>,
    /// Attention window.
    pub window_size: usize,
}

impl<B: Backend> EntropyModel<B> {
    /// Next-byte logits at every position.
    ///
    /// # Shapes
    /// - ids: `[batch, seq]`; mask: `[batch, seq, seq]` (windowed causal)
    /// - output: `[batch, seq, 260]`
    pub fn forward(&self, ids: Tensor<B, 2, Int>, mask: Tensor<B, 3, Bool>) -> Tensor<B, 3> {
        let mut h = self.embedding.forward(ids);
        for block in &self.blocks {
            h = block.forward(h, mask.clone());
        }
        linear(&self.head, self.norm.forward(h))
    }

    /// Logits for new positions continuing the cached ones. `positions` gives each row's
    /// rotary position when rows are not aligned (see `TransformerBlock::forward_cached_at`).
    ///
    /// # Shapes
    /// - ids: `[batch, new]`; positions: `batch` entries; output: `[batch, new, 260]`
    pub fn forward_cached(
        &self,
        ids: Tensor<B, 2, Int>,
        caches: &mut [KvCache<B>],
        segments: Option<&[Vec<u32>]>,
        positions: Option<&[usize]>,
    ) -> Tensor<B, 3> {
        let mut h = self.embedding.forward(ids);
        for (block, cache) in self.blocks.iter().zip(caches.iter_mut()) {
            h = block.forward_cached_at(h, cache, segments, positions);
        }
        linear(&self.head, self.norm.forward(h))
    }

    /// Fresh caches holding at most `window_size` keys each.
    pub fn new_caches(&self) -> Vec<KvCache<B>> {
        self.blocks
            .iter()
            .map(|_| KvCache::new(Some(self.window_size)))
            .collect()
    }
}

/// Shannon entropy (nats) of `softmax(logits)` over the last dimension.
///
/// # Shapes
/// - logits: `[batch, seq, vocab]`; output: `[batch, seq]`
pub fn entropy_of_logits<B: Backend>(logits: Tensor<B, 3>) -> Tensor<B, 2> {
    let [batch, seq, _] = logits.dims();
    let log_p = log_softmax(logits, 2);
    (log_p.clone().exp() * log_p)
        .sum_dim(2)
        .neg()
        .reshape([batch, seq])
}

/// The id of a newline byte, where `reset_context` restarts the entropy model's context.
pub const NEWLINE_ID: u32 = b'\n' as u32 + blt_patching::BYTE_OFFSET;

/// Where the entropy model's context restarts (see [`BltConfig::entropy_resets`]).
///
/// [`BltConfig::entropy_resets`]: crate::BltConfig::entropy_resets
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntropyResets {
    /// After every EOS: documents are kept apart (`document_mask`).
    pub at_eos: bool,
    /// After every newline (`reset_entropy_context`, paper §4.4).
    pub at_newline: bool,
}

impl Default for EntropyResets {
    /// Documents apart, no newline resets: the config defaults.
    fn default() -> Self {
        Self {
            at_eos: true,
            at_newline: false,
        }
    }
}

impl EntropyResets {
    /// Whether `id` ends an entropy-model segment. The token itself belongs to the segment it
    /// ends. Training, the entropy cache and both generation paths all decide segments with
    /// this one rule.
    pub fn ends_segment(self, id: u32) -> bool {
        (self.at_eos && id == blt_patching::EOS_ID) || (self.at_newline && id == NEWLINE_ID)
    }

    /// Segment ids of a row: the spans the entropy model attends within.
    pub fn segments(self, ids: &[u32]) -> Vec<u32> {
        blt_core::mask::segment_ids(ids.iter().map(|&id| self.ends_segment(id)))
    }
}

impl<B: Backend> EntropyModel<B> {
    /// Longest row the model reads (its RoPE table).
    pub fn max_positions(&self) -> usize {
        self.blocks
            .first()
            .map_or(usize::MAX, |b| b.attention.rope.max_seq_len())
    }

    /// Next-byte entropies (nats) of each row, one per position. Rows are separate batch
    /// elements (right-padded), never concatenated (reference §14, issue #123), so a row's
    /// entropies do not depend on the other rows. A row longer than
    /// [`max_positions`](Self::max_positions) is an error.
    pub fn entropies(
        &self,
        rows: &[&[u32]],
        resets: EntropyResets,
        device: &B::Device,
    ) -> Result<Vec<Vec<f32>>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let limit = self.max_positions();
        if let Some((i, row)) = rows.iter().enumerate().find(|(_, r)| r.len() > limit) {
            return Err(ModelError::InvalidInput(format!(
                "row {} has {} positions; the entropy model reads at most {limit}",
                i + 1,
                row.len()
            )));
        }
        let batch = rows.len();
        let seq = rows.iter().map(|r| r.len()).max().unwrap_or(0).max(1);
        let mut ids = vec![0i64; batch * seq];
        let mut segments = Vec::with_capacity(batch);
        for (b, row) in rows.iter().enumerate() {
            for (t, &id) in row.iter().enumerate() {
                ids[b * seq + t] = id as i64;
            }
            let mut seg = resets.segments(row);
            seg.resize(seq, u32::MAX);
            segments.push(seg);
        }
        let ids = Tensor::<B, 2, Int>::from_data(
            burn::tensor::TensorData::new(ids, [batch, seq]),
            device,
        );
        let mask = blt_core::mask::local_causal_mask(
            batch,
            seq,
            Some(self.window_size),
            Some(&segments),
            device,
        );
        let h = entropy_of_logits(self.forward(ids, mask));
        let values: Vec<f32> = h
            .into_data()
            .convert::<f32>()
            .to_vec()
            .expect("f32 entropies");
        Ok(rows
            .iter()
            .enumerate()
            .map(|(b, row)| values[b * seq..b * seq + row.len()].to_vec())
            .collect())
    }
}
