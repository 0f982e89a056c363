//! The keys and values a self-attention layer has seen, on the host.

/// Cached keys (after RoPE) and values of one self-attention layer, one slot per position.
///
/// With a window of `w` keys the slots form a ring of `w` entries: the query at position `p`
/// sees keys in `(p − w, p]`, which are exactly the ring's contents once `p` is written, so
/// memory stays bounded and nothing is ever moved. Without a window the slots grow. Each slot
/// keeps its segment (document) id for the block-causal mask.
#[derive(Clone)]
pub struct HostKvCache {
    width: usize,
    window: Option<usize>,
    keys: Vec<f32>,
    values: Vec<f32>,
    segments: Vec<u32>,
    next: usize,
}

impl std::fmt::Debug for HostKvCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostKvCache")
            .field("width", &self.width)
            .field("window", &self.window)
            .field("len", &self.len())
            .field("position", &self.next)
            .finish_non_exhaustive()
    }
}

impl HostKvCache {
    /// An empty cache for keys and values of `width` features (all heads) and a layer that
    /// attends to at most `window` keys (`None`: all earlier ones).
    ///
    /// # Panics
    /// If `window` is `Some(0)`.
    pub fn new(width: usize, window: Option<usize>) -> Self {
        assert!(
            window != Some(0),
            "an attention window holds at least one key"
        );
        Self {
            width,
            window,
            keys: Vec::new(),
            values: Vec::new(),
            segments: Vec::new(),
            next: 0,
        }
    }

    /// Absolute position of the next key.
    pub fn position(&self) -> usize {
        self.next
    }

    /// Filled slots.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Stores the key and value of the next position, in document `segment`.
    pub(super) fn push(&mut self, key: &[f32], value: &[f32], segment: u32) {
        debug_assert_eq!(key.len(), self.width);
        debug_assert_eq!(value.len(), self.width);
        let slot = match self.window {
            Some(w) if self.segments.len() == w => self.next % w,
            _ => {
                self.keys.extend_from_slice(key);
                self.values.extend_from_slice(value);
                self.segments.push(segment);
                self.next += 1;
                return;
            }
        };
        let range = slot * self.width..(slot + 1) * self.width;
        self.keys[range.clone()].copy_from_slice(key);
        self.values[range].copy_from_slice(value);
        self.segments[slot] = segment;
        self.next += 1;
    }

    /// The slots a query of document `segment` at the latest position may see.
    pub(super) fn visible(&self, segment: u32) -> Vec<usize> {
        (0..self.segments.len())
            .filter(|&s| self.segments[s] == segment)
            .collect()
    }

    /// Keys, slot-major (`len × width`).
    pub(super) fn keys(&self) -> &[f32] {
        &self.keys
    }

    /// Values, slot-major (`len × width`).
    pub(super) fn values(&self) -> &[f32] {
        &self.values
    }
}
