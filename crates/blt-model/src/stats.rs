//! Parameter counts per component and an analytic estimate of forward FLOPs per byte
//! (Chinchilla-style accounting as in the paper §4.5: a multiply-add is 2 FLOPs, embedding
//! look-ups are free, a backward pass costs twice the forward).

use burn::{
    module::{Module, ModuleVisitor, Param},
    tensor::{Tensor, backend::Backend},
};
use serde::Serialize;

use crate::{Blt, BltConfig, EntropyModel};

/// Parameters of each component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ParameterCounts {
    /// Byte and hash n-gram embedding tables.
    pub embeddings: usize,
    /// Local encoder, including patch pooling.
    pub encoder: usize,
    /// Global transformer.
    pub global: usize,
    /// Local decoder, including the output head.
    pub decoder: usize,
    /// The entropy model (0 when there is none).
    pub entropy_model: usize,
}

/// Counts parameters from their (lazy) shapes, without initialising them.
struct Counter(usize);

impl<B: Backend> ModuleVisitor<B> for Counter {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.0 += param.lazy_shape().num_elements();
    }
}

fn count<B: Backend, M: Module<B>>(module: &M) -> usize {
    let mut counter = Counter(0);
    module.visit(&mut counter);
    counter.0
}

impl ParameterCounts {
    /// Counts the parameters of a model (and its entropy model).
    pub fn of<B: Backend>(model: &Blt<B>, entropy_model: Option<&EntropyModel<B>>) -> Self {
        Self {
            embeddings: count(&model.embedding),
            encoder: count(&model.encoder),
            global: count(&model.global),
            decoder: count(&model.decoder),
            entropy_model: entropy_model.map_or(0, count),
        }
    }

    /// Everything except the embedding tables (and the entropy model).
    pub fn non_embedding(&self) -> usize {
        self.encoder + self.global + self.decoder
    }

    /// The BLT's total (entropy model excluded).
    pub fn total(&self) -> usize {
        self.embeddings + self.non_embedding()
    }
}

/// Estimated forward FLOPs per byte of each component.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FlopsPerByte {
    /// Local encoder and patch pooling.
    pub encoder: f64,
    /// Global transformer (its per-patch cost divided by the mean patch length).
    pub global: f64,
    /// Local decoder and output head.
    pub decoder: f64,
}

impl FlopsPerByte {
    /// Forward FLOPs per byte.
    pub fn forward(&self) -> f64 {
        self.encoder + self.global + self.decoder
    }

    /// Forward + backward FLOPs per byte (3× forward).
    pub fn training(&self) -> f64 {
        3.0 * self.forward()
    }

    /// Estimates the cost of `config` for sequences of `seq_len` bytes cut into patches of
    /// `mean_patch_len` bytes on average. Attention is charged for its average causal context:
    /// `min(window, seq_len / 2)` keys locally and `seq_len / (2 · mean_patch_len)` patches
    /// globally.
    pub fn estimate(config: &BltConfig, mean_patch_len: f64, seq_len: usize) -> Self {
        let p = mean_patch_len.max(1.0);
        let d = config.hidden_size as f64;
        let k = config.cross_attn_k as f64;
        let dg = config.global_hidden_size as f64;
        let local_context = (config.window_size as f64).min(seq_len as f64 / 2.0);
        // One pre-norm block per token: QKV + output projections, SwiGLU, attention scores and
        // weighted sum over `context` keys.
        let block = |width: f64, ffn: f64, context: f64| {
            2.0 * (4.0 * width * width + 3.0 * width * ffn) + 4.0 * width * context
        };
        let local_block = block(d, config.intermediate_size as f64, local_context);
        let cross_q = 2.0 * 2.0 * d * d; // query and output projections
        let pooling = if config.pooling == crate::Pooling::CrossAttention {
            // Per patch: max-pool projection to k slots, then k queries over the patch's bytes;
            // per byte: its key and value projections.
            (2.0 * d * k * d + k * (cross_q + 4.0 * d * p)) / p + 2.0 * 2.0 * d * d
        } else {
            2.0 * d * k * d / p
        };
        let encoder = config.encoder_layers as f64 * local_block + pooling;

        let patch_context = seq_len as f64 / (2.0 * p);
        let projection = if (k * d - dg).abs() > 0.0 {
            2.0 * k * d * dg
        } else {
            0.0
        };
        let global_block = block(dg, config.global_intermediate_size as f64, patch_context);
        let global = (projection + config.global_layers as f64 * global_block) / p;

        // Per byte and decoder layer: cross-attention (query/output projections, k keys) and a
        // byte block; per patch: the slot projection and the slots' key/value projections.
        let per_patch = 2.0 * dg * k * d + config.decoder_layers as f64 * k * 2.0 * 2.0 * d * d;
        let decoder_block = block(d, config.decoder_ffn() as f64, local_context);
        let decoder = config.decoder_layers as f64 * (cross_q + 4.0 * d * k + decoder_block)
            + per_patch / p
            + 2.0 * d * blt_patching::VOCAB_SIZE as f64;
        Self {
            encoder,
            global,
            decoder,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    #[test]
    fn bench_preset_has_about_45m_parameters() {
        let config = BltConfig::bench();
        let model = Blt::<NdArray>::new(&config, &Default::default()).unwrap();
        let counts = ParameterCounts::of(&model, None);
        let total = counts.total() as f64 / 1e6;
        assert!((40.0..50.0).contains(&total), "{total} M parameters");
        assert_eq!(counts.embeddings, (260 + 6 * 10_000) * 256);
    }

    #[test]
    fn global_cost_falls_with_patch_length() {
        let config = BltConfig::bench();
        let short = FlopsPerByte::estimate(&config, 2.0, 1024);
        let long = FlopsPerByte::estimate(&config, 8.0, 1024);
        assert!(long.global < short.global / 3.0);
        assert!((long.decoder - short.decoder).abs() / short.decoder < 0.2);
        assert!(short.training() > 2.9 * short.forward());
    }
}
