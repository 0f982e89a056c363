//! The causal start rule: one state machine shared by the batch patcher, the streaming
//! patcher and calibration, so that all three make the very same decisions.
//!
//! The decision for position `t` is made from ids at positions `≤ t − 1` and entropies
//! `H[0..=t−1]` only; consuming position `t` yields the decision for `t + 1`.

use crate::scheme::{PatcherConfig, PatchingScheme};
use crate::tokenizer::id_to_byte;

/// The class of an id for the space rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpaceClass {
    /// Not a byte (special id < 4, or ≥ 260).
    Special,
    /// Not `[0-9A-Za-z]` and not a UTF-8 continuation byte.
    SpaceLike,
    /// `[0-9A-Za-z]` or a UTF-8 continuation byte.
    Word,
}

fn space_class(id: u32) -> SpaceClass {
    match id_to_byte(id) {
        None => SpaceClass::Special,
        Some(b) if b.is_ascii_alphanumeric() || (0x80..=0xbf).contains(&b) => SpaceClass::Word,
        Some(_) => SpaceClass::SpaceLike,
    }
}

/// Incremental start decisions for one sequence.
#[derive(Debug, Clone)]
pub(crate) struct StartRule {
    scheme: PatchingScheme,
    min: usize,
    /// `usize::MAX` when unbounded.
    max: usize,
    /// The last position that always starts (1, or 2 for the monotonic rule).
    last_forced: usize,
    /// The next position to consume; its decision is `pending`.
    pos: usize,
    /// Whether `pos` starts a patch.
    pending: bool,
    /// Positions of the current patch before `pos`.
    run: usize,
    /// `H[pos − 1]` (monotonic rule).
    prev_entropy: f32,
    /// Whether the id at `pos − 1` is not a word byte (space rule); true before position 0.
    prev_spacey: bool,
}

impl StartRule {
    /// A rule before position 0. `config` must be valid.
    pub(crate) fn new(config: &PatcherConfig) -> Self {
        Self {
            scheme: config.scheme,
            min: config.min_patch_size,
            max: config.max_patch_size.unwrap_or(usize::MAX),
            last_forced: config.scheme.last_forced_start(),
            pos: 0,
            pending: true,
            run: 0,
            prev_entropy: 0.0,
            prev_spacey: true,
        }
    }

    /// The next position to consume.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Whether the next position to consume starts a patch.
    pub(crate) fn pending(&self) -> bool {
        self.pending
    }

    /// Consumes position `t = self.position()` with its id and entropy `H[t]` (ignored unless
    /// the scheme is `entropy`) and returns whether `t + 1` starts a patch.
    #[inline]
    pub(crate) fn consume(&mut self, id: u32, entropy: f32) -> bool {
        let t = self.pos;
        self.run = if self.pending { 1 } else { self.run + 1 };
        let raw = match self.scheme {
            PatchingScheme::Entropy {
                threshold,
                monotonic: false,
            } => entropy > threshold,
            PatchingScheme::Entropy {
                threshold,
                monotonic: true,
            } => {
                // Only read for t + 1 ≥ 3, where prev_entropy is H[t − 1].
                let rise = entropy - self.prev_entropy > threshold;
                self.prev_entropy = entropy;
                rise
            }
            PatchingScheme::Fixed { stride } => t.is_multiple_of(stride),
            PatchingScheme::Space => {
                let class = space_class(id);
                let end = class == SpaceClass::Special
                    || (class == SpaceClass::SpaceLike && !self.prev_spacey);
                self.prev_spacey = class != SpaceClass::Word;
                end
            }
            PatchingScheme::Byte => true,
        };
        let next = t + 1;
        let start =
            next <= self.last_forced || self.run >= self.max || (raw && self.run >= self.min);
        self.pos = next;
        self.pending = start;
        start
    }

    /// Decisions for positions `0..=ids.len()` (the last is the virtual next slot).
    /// `entropies`, when given, has the length of `ids`; when absent, entropies read as 0.
    pub(crate) fn decisions<'a>(
        config: &PatcherConfig,
        ids: &'a [u32],
        entropies: Option<&'a [f32]>,
    ) -> impl Iterator<Item = bool> + 'a {
        let mut rule = Self::new(config);
        let first = rule.pending;
        std::iter::once(first).chain(ids.iter().enumerate().map(move |(t, &id)| {
            let e = entropies.map_or(0.0, |h| h[t]);
            rule.consume(id, e)
        }))
    }

    /// Start mask over positions `0..=ids.len()`; see [`decisions`](Self::decisions).
    pub(crate) fn start_mask(
        config: &PatcherConfig,
        ids: &[u32],
        entropies: Option<&[f32]>,
    ) -> Vec<bool> {
        Self::decisions(config, ids, entropies).collect()
    }

    /// Number of patches holding at least one input position (starts at positions `< T`), for
    /// an entropy scheme where ids do not matter.
    pub(crate) fn count_entropy_patches(config: &PatcherConfig, entropies: &[f32]) -> usize {
        let mut rule = Self::new(config);
        let Some((_, head)) = entropies.split_last() else {
            return 0;
        };
        // Position 0 always starts; the decision for position T is not counted.
        1 + head.iter().filter(|&&e| rule.consume(0, e)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::{BOS_ID, byte_to_id};

    fn mask(scheme: PatchingScheme, text: &[u8]) -> Vec<usize> {
        let mut ids = vec![BOS_ID];
        ids.extend(text.iter().map(|&b| byte_to_id(b)));
        let m = StartRule::start_mask(&PatcherConfig::new(scheme), &ids, None);
        m.iter()
            .enumerate()
            .filter(|&(_, &s)| s)
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn space_rule_merges_runs_and_ends_after_them() {
        // positions: 0 BOS, 1 ' ', 2 'a', 3 'b', 4 ' ', 5 ' ', 6 'c', 7 ','  8 'd'
        // ends: 0 (special), 4 (space after word), 7 (comma after word); 5 follows a space.
        assert_eq!(mask(PatchingScheme::Space, b" ab  c,d"), vec![0, 1, 5, 8]);
        // "é" = C3 A9: the lead byte is space-like, the continuation is a word byte.
        assert_eq!(
            mask(PatchingScheme::Space, "aé b".as_bytes()),
            vec![0, 1, 3, 5]
        );
    }

    #[test]
    fn fixed_and_byte() {
        assert_eq!(
            mask(PatchingScheme::Fixed { stride: 3 }, b"abcdefg"),
            vec![0, 1, 4, 7]
        );
        assert_eq!(mask(PatchingScheme::Byte, b"ab"), vec![0, 1, 2, 3]);
    }

    #[test]
    fn min_and_max_sizes() {
        let config = PatcherConfig::new(PatchingScheme::Byte).with_min_patch_size(3);
        let m = StartRule::start_mask(&config, &[1, 5, 5, 5, 5, 5, 5, 5], None);
        let starts: Vec<usize> = (0..m.len()).filter(|&i| m[i]).collect();
        assert_eq!(starts, vec![0, 1, 4, 7]);
        let config = PatcherConfig::new(PatchingScheme::entropy(10.0)).with_max_patch_size(Some(2));
        let h = [0.0; 6];
        let m = StartRule::start_mask(&config, &[1, 5, 5, 5, 5, 5], Some(&h));
        let starts: Vec<usize> = (0..m.len()).filter(|&i| m[i]).collect();
        assert_eq!(starts, vec![0, 1, 3, 5]);
    }
}
