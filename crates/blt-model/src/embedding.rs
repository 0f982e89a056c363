//! Byte embeddings augmented with hash n-gram embeddings (reference §4): `e_i = E[t_i] +
//! Σ_n H_n[hash_n(t_{i−n+1..=i})]`, a plain sum as in the original code (the paper's
//! normalisation is not applied). The n-gram tables are fused into one `[S·V, d]` table with
//! table `s` at offset `s·V` (the Hugging Face layout), so one gather serves every size.

use burn::{
    module::Module,
    nn::Embedding,
    tensor::{Int, Tensor, backend::Backend},
};

use blt_core::init::trunc_normal_param;
use blt_patching::VOCAB_SIZE;

/// Byte plus hash n-gram embedding.
#[derive(Module, Debug)]
pub struct ByteEmbedding<B: Backend> {
    /// Byte-id table, `[260, d]`.
    pub bytes: Embedding<B>,
    /// Fused n-gram tables, `[sizes · rows, d]`; `None` when no n-gram sizes are configured.
    pub ngrams: Option<Embedding<B>>,
    /// Rows per n-gram table.
    pub table_rows: usize,
}

impl<B: Backend> ByteEmbedding<B> {
    /// Builds the tables with σ = d^-1/2 truncated normals (reference §4).
    pub fn new(d_model: usize, num_tables: usize, table_rows: usize, device: &B::Device) -> Self {
        let std = (d_model as f64).powf(-0.5);
        let table = |rows: usize| Embedding {
            weight: trunc_normal_param([rows, d_model], std, device),
        };
        Self {
            bytes: table(VOCAB_SIZE),
            ngrams: (num_tables > 0).then(|| table(num_tables * table_rows)),
            table_rows,
        }
    }

    /// Embeds bytes and their n-grams.
    ///
    /// # Shapes
    /// - ids: `[batch, seq]`
    /// - ngram_ids: `[batch, sizes, seq]`, raw per-table ids in `0..rows`
    /// - output: `[batch, seq, d]`
    pub fn forward(&self, ids: Tensor<B, 2, Int>, ngram_ids: Tensor<B, 3, Int>) -> Tensor<B, 3> {
        let embedded = self.bytes.forward(ids);
        let Some(ngrams) = &self.ngrams else {
            return embedded;
        };
        let [batch, sizes, seq] = ngram_ids.dims();
        let offsets = Tensor::<B, 1, Int>::arange(0..sizes as i64, &ngram_ids.device())
            .mul_scalar(self.table_rows as i64)
            .reshape([1, sizes, 1]);
        let flat = (ngram_ids + offsets).reshape([batch, sizes * seq]);
        let d = embedded.dims()[2];
        let summed = ngrams
            .forward(flat)
            .reshape([batch, sizes, seq, d])
            .sum_dim(1)
            .reshape([batch, seq, d]);
        embedded + summed
    }
}
