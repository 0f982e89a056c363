//! Rotary encoding of one position, from the tables of a [`Rope`].

use burn::tensor::backend::Backend;

use super::values;
use crate::rope::Rope;

/// A [`Rope`]'s cosine and sine tables (`[max_seq_len, head_dim]`) on the host.
#[derive(Clone, PartialEq)]
pub struct HostRope {
    cos: Vec<f32>,
    sin: Vec<f32>,
    head_dim: usize,
}

impl std::fmt::Debug for HostRope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostRope")
            .field("head_dim", &self.head_dim)
            .field("positions", &self.positions())
            .finish()
    }
}

impl HostRope {
    /// Copies `rope`'s tables to the host.
    pub fn from_rope<B: Backend>(rope: &Rope<B>) -> Self {
        let (cos, sin) = rope.tables();
        Self {
            cos: values(cos),
            sin: values(sin),
            head_dim: rope.head_dim(),
        }
    }

    /// Positions the tables cover.
    pub fn positions(&self) -> usize {
        self.cos.len() / self.head_dim
    }

    /// Rotates every head of `x` (heads of `head_dim` side by side) as [`Rope::apply`] does at
    /// `position`.
    ///
    /// # Panics
    /// If `position` is past the tables or `x` is not a whole number of heads.
    pub fn rotate(&self, x: &mut [f32], position: usize) {
        let d = self.head_dim;
        assert!(x.len().is_multiple_of(d), "rotary input is whole heads");
        let cos = &self.cos[position * d..(position + 1) * d];
        let sin = &self.sin[position * d..(position + 1) * d];
        for head in x.chunks_exact_mut(d) {
            for ((pair, c), s) in head
                .chunks_exact_mut(2)
                .zip(cos.chunks_exact(2))
                .zip(sin.chunks_exact(2))
            {
                let (a, b) = (pair[0], pair[1]);
                pair[0] = a * c[0] - b * s[0];
                pair[1] = b * c[1] + a * s[1];
            }
        }
    }
}
