//! Cross-attention from one query row to a small context (a patch's bytes, or its slots).

use burn::tensor::backend::Backend;

use super::{
    HostCopier, HostLinear, HostRmsNorm,
    attention::{Heads, attend},
};
use crate::attention::CrossAttention;

/// A [`CrossAttention`] on the host.
#[derive(Debug, Clone)]
pub struct HostCrossAttention {
    query_norm: HostRmsNorm,
    kv_norm: HostRmsNorm,
    wq: HostLinear,
    wk: HostLinear,
    wv: HostLinear,
    wo: HostLinear,
    heads: usize,
}

/// A context's keys and values, projected once for every query that reads it.
#[derive(Clone)]
pub struct HostContext {
    keys: Vec<f32>,
    values: Vec<f32>,
    len: usize,
}

impl std::fmt::Debug for HostContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostContext")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl HostCrossAttention {
    /// Copies `attention`'s weights to the host.
    pub fn from_attention<B: Backend>(attention: &CrossAttention<B>, copier: &HostCopier) -> Self {
        Self {
            query_norm: HostRmsNorm::from_norm(&attention.query_norm),
            kv_norm: HostRmsNorm::from_norm(&attention.kv_norm),
            wq: copier.linear(&attention.wq),
            wk: copier.linear(&attention.wk),
            wv: copier.linear(&attention.wv),
            wo: copier.linear(&attention.wo),
            heads: attention.num_heads(),
        }
    }

    /// Bytes of its weight matrices and biases.
    pub fn bytes(&self) -> usize {
        self.wq.bytes() + self.wk.bytes() + self.wv.bytes() + self.wo.bytes()
    }

    /// Normalises and projects context rows (row-major, `d_kv` features each).
    pub fn context(&self, rows: &[f32]) -> HostContext {
        let normed: Vec<f32> = rows
            .chunks_exact(self.wk.d_in())
            .flat_map(|row| self.kv_norm.apply(row))
            .collect();
        HostContext {
            keys: self.wk.apply_rows(&normed),
            values: self.wv.apply_rows(&normed),
            len: rows.len() / self.wk.d_in(),
        }
    }

    /// Attends from `query` to every row of `context`; the attention output only (no
    /// residual), as [`CrossAttention::forward`] with nothing masked. An empty context gives
    /// zeros.
    pub fn attend(&self, query: &[f32], context: &HostContext) -> Vec<f32> {
        self.attend_rows(query, &[context])
    }

    /// [`attend`](Self::attend) for several queries (row-major), query `i` reading
    /// `contexts[i]`; the projections run over all rows at once.
    pub fn attend_rows(&self, queries: &[f32], contexts: &[&HostContext]) -> Vec<f32> {
        let q = self.wq.apply_rows(&self.query_norm.apply_rows(queries));
        let d = self.wq.d_out();
        let mut out = vec![0.0; q.len()];
        for ((q, out), context) in q.chunks_exact(d).zip(out.chunks_exact_mut(d)).zip(contexts) {
            let slots: Vec<usize> = (0..context.len).collect();
            attend(
                Heads {
                    count: self.heads,
                    dim: d / self.heads,
                },
                q,
                &context.keys,
                &context.values,
                &slots,
                out,
            );
        }
        let mut projected = self.wo.apply_rows(&out);
        // An empty context reads nothing: zeros, not the output projection's bias.
        for (row, context) in projected.chunks_exact_mut(self.wo.d_out()).zip(contexts) {
            if context.len == 0 {
                row.fill(0.0);
            }
        }
        projected
    }
}
