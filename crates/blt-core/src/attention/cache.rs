//! Key/value cache for one-token-at-a-time (or chunked) decoding with a sliding window.

use burn::tensor::{Tensor, backend::Backend};

/// Cached keys and values of one self-attention layer.
///
/// Keys are stored after RoPE, so they never need re-rotating. With a window of `w` keys, at
/// most `w` entries are kept: memory stays bounded however long generation runs. Segment ids
/// (documents) of the cached keys are kept on the host to rebuild the block-causal mask.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    pub(crate) keys: Option<Tensor<B, 4>>,
    pub(crate) values: Option<Tensor<B, 4>>,
    /// Absolute position of the first cached key.
    pub(crate) start: usize,
    /// Absolute position the next token will take.
    pub(crate) next: usize,
    pub(crate) window: Option<usize>,
    /// Per batch row, the segment id of each cached key.
    pub(crate) segments: Vec<Vec<u32>>,
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for a layer whose attention sees at most `window` keys (`None`: all).
    pub fn new(window: Option<usize>) -> Self {
        Self {
            keys: None,
            values: None,
            start: 0,
            next: 0,
            window,
            segments: Vec::new(),
        }
    }

    /// Absolute position of the next token.
    pub fn position(&self) -> usize {
        self.next
    }

    /// Number of cached keys (bounded by the window).
    pub fn len(&self) -> usize {
        self.next - self.start
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets everything (positions restart at 0).
    pub fn clear(&mut self) {
        *self = Self::new(self.window);
    }

    /// The cached keys and values followed by `keys` and `values` (`[batch, heads, n, d]`):
    /// what a query at the new positions attends over. Hand the result to [`KvCache::store`],
    /// so each step concatenates once.
    pub(crate) fn extended(
        &self,
        keys: Tensor<B, 4>,
        values: Tensor<B, 4>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        match (&self.keys, &self.values) {
            (Some(k), Some(v)) => (
                Tensor::cat(vec![k.clone(), keys], 2),
                Tensor::cat(vec![v.clone(), values], 2),
            ),
            _ => (keys, values),
        }
    }

    /// Replaces the cache with `keys`/`values` from [`KvCache::extended`], whose last `added`
    /// positions are new and carry `segments`, then drops entries that no future query can see.
    pub(crate) fn store(
        &mut self,
        mut keys: Tensor<B, 4>,
        mut values: Tensor<B, 4>,
        added: usize,
        segments: Vec<Vec<u32>>,
    ) {
        debug_assert_eq!(
            keys.dims()[2],
            self.len() + added,
            "store() takes extended() keys"
        );
        if self.segments.is_empty() {
            self.segments = segments;
        } else {
            for (row, new) in self.segments.iter_mut().zip(segments) {
                row.extend(new);
            }
        }
        self.next += added;
        let len = self.next - self.start;
        if let Some(window) = self.window {
            // The next query (position `next`) sees keys in (next − window, next]; the last
            // `window − 1` cached keys are all it can reach.
            let keep = window.saturating_sub(1).min(len);
            if keep < len {
                let drop = len - keep;
                keys = keys.narrow(2, drop, keep);
                values = values.narrow(2, drop, keep);
                for row in &mut self.segments {
                    row.drain(..drop);
                }
                self.start += drop;
            }
        }
        if self.next > self.start {
            self.keys = Some(keys);
            self.values = Some(values);
        }
    }
}
