//! The batch patcher: ids (and entropies) of one model input row → patch starts, lengths,
//! encoder and decoder patch ids.
//!
//! Follows `bytelatent/data/patcher.py` (`find_entropy_patch_start_ids`,
//! `patch_lengths_from_start_ids` with `include_next_token=True`) and
//! `decoder_patch_ids_from_lengths` of the official BLT code (reference §2.4–§2.6, §7.2).
//!
//! Decisions are made for positions `0..=T`, where position `T` is the not-yet-seen next byte
//! (the "virtual slot"). The decision for `t` reads only ids at positions `≤ t − 1` and
//! entropies `H[0..=t−1]`, so patching a prefix gives the prefix of the patching.

use crate::error::PatchingError;
use crate::rule::StartRule;
use crate::scheme::PatcherConfig;
use crate::stream::StreamingPatcher;

/// The patching of one row of `T` ids, computed with the virtual next slot (position `T`).
///
/// Invariants: `starts[0] == 0`, `starts` strictly increases and ends `≤ T`;
/// `lengths.iter().sum() == T + 1`; `encoder_ids.len() == decoder_ids.len() == T`;
/// `decoder_ids[i] == enc(i + 1) − 1 ≤ encoder_ids[i]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Patches {
    /// Start positions over `0..=T`, strictly increasing; includes `T` when the virtual slot
    /// opens a patch of its own.
    pub starts: Vec<usize>,
    /// Patch lengths over positions `0..=T` (sum `T + 1`); the last patch holds the virtual
    /// slot.
    pub lengths: Vec<usize>,
    /// The patch index of each input position (length `T`).
    pub encoder_ids: Vec<u32>,
    /// The patch each input position's decoder reads: `dec(i) = enc(i + 1) − 1`, the patch just
    /// before the one that holds the byte position `i` predicts (length `T`). Always
    /// `< num_patches()`, and that patch ends at a position `≤ i`.
    pub decoder_ids: Vec<u32>,
}

impl Patches {
    /// Builds the patching of `len` positions from the decisions for positions `0..=len`
    /// (the first must be true), in one pass.
    pub(crate) fn from_decisions(len: usize, decisions: impl Iterator<Item = bool>) -> Self {
        let mut starts = Vec::new();
        let mut encoder_ids = Vec::with_capacity(len);
        let mut decoder_ids = Vec::with_capacity(len);
        let mut id = 0u32;
        for (t, start) in decisions.enumerate() {
            if start {
                if t > 0 {
                    id += 1;
                }
                starts.push(t);
            }
            // dec(t − 1) = enc(t) − 1; position 1 always starts, so enc(t) ≥ 1 for t ≥ 1.
            if t > 0 {
                decoder_ids.push(id - 1);
            }
            if t < len {
                encoder_ids.push(id);
            }
        }
        debug_assert_eq!(starts.first(), Some(&0), "position 0 must start a patch");
        debug_assert_eq!(decoder_ids.len(), len);
        let lengths = starts
            .iter()
            .zip(starts.iter().skip(1).chain(std::iter::once(&(len + 1))))
            .map(|(&s, &e)| e - s)
            .collect();
        Self {
            starts,
            lengths,
            encoder_ids,
            decoder_ids,
        }
    }

    /// The patching given by explicit patch lengths over the `T` input positions: the
    /// `patch_lengths` of Hugging Face's BLT (positive, summing to `T`, optionally followed by
    /// one zero-length patch). The first patch must be BOS alone (length 1), as every patcher
    /// here makes it; with a longer first patch, Hugging Face's decoder reads the global output
    /// of a patch that holds later bytes, which is not causal. A trailing zero-length patch is
    /// the next (virtual) slot opening a patch of its own, so the last position reads the last
    /// real patch; without it the slot joins the last patch.
    pub fn from_lengths(lengths: &[usize]) -> Result<Self, PatchingError> {
        let (body, next_opens) = match lengths.split_last() {
            Some((0, body)) => (body, true),
            _ => (lengths, false),
        };
        let shown = || format!("{:?}", &lengths[..lengths.len().min(8)]);
        if body.first() != Some(&1) {
            return Err(PatchingError::InvalidPatchLengths(format!(
                "the first patch must be BOS alone (length 1), got {}",
                shown()
            )));
        }
        if body.contains(&0) {
            return Err(PatchingError::InvalidPatchLengths(format!(
                "only the last patch may be empty, got {}",
                shown()
            )));
        }
        let len: usize = body.iter().sum();
        let mut starts = vec![false; len + 1];
        // With BOS alone the next slot must open a patch: the first prediction reads BOS's.
        starts[len] = next_opens || len == 1;
        let mut at = 0;
        for &l in body {
            starts[at] = true;
            at += l;
        }
        Ok(Self::from_decisions(len, starts.into_iter()))
    }

    /// Number of input positions `T`.
    pub fn len(&self) -> usize {
        self.encoder_ids.len()
    }

    /// Whether the row is empty (`T == 0`).
    pub fn is_empty(&self) -> bool {
        self.encoder_ids.is_empty()
    }

    /// Number of patches holding at least one input position (`enc[T − 1] + 1`; 0 when
    /// `T == 0`). The global model runs over exactly these.
    pub fn num_patches(&self) -> usize {
        self.encoder_ids.last().map_or(0, |&e| e as usize + 1)
    }

    /// Patch lengths over the input positions only (`include_next_token=False`, sum `T`): the
    /// virtual slot is removed from the last patch, and that patch is dropped when the slot
    /// was all it held.
    pub fn lengths_without_next(&self) -> Vec<usize> {
        let mut lengths = self.lengths.clone();
        match lengths.last_mut() {
            Some(1) => {
                lengths.pop();
            }
            Some(last) => *last -= 1,
            None => {}
        }
        lengths
    }
}

/// Splits rows of ids into patches with a fixed [`PatcherConfig`].
///
/// ```
/// use blt_patching::{Patcher, PatcherConfig, PatchingScheme};
/// // BOS then 7 bytes; entropies chosen so that positions 2 and 5 start patches and the
/// // next (virtual) byte opens a patch too: reference §7.2.
/// let patcher = Patcher::new(PatcherConfig::new(PatchingScheme::entropy(1.0)))?;
/// let ids = [1, 10, 11, 12, 13, 14, 15, 16];
/// let h = [0.0, 2.0, 0.0, 0.0, 2.0, 0.0, 0.0, 2.0];
/// let p = patcher.patch(&ids, Some(&h))?;
/// assert_eq!(p.starts, vec![0, 1, 2, 5, 8]);
/// assert_eq!(p.lengths, vec![1, 1, 3, 3, 1]);
/// assert_eq!(p.encoder_ids, vec![0, 1, 2, 2, 2, 3, 3, 3]);
/// assert_eq!(p.decoder_ids, vec![0, 1, 1, 1, 2, 2, 2, 3]);
/// assert_eq!(p.num_patches(), 4);
/// # Ok::<(), blt_patching::PatchingError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Patcher {
    config: PatcherConfig,
}

impl Patcher {
    /// A patcher for a validated `config`.
    pub fn new(config: PatcherConfig) -> Result<Self, PatchingError> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The configuration.
    pub fn config(&self) -> &PatcherConfig {
        &self.config
    }

    fn check_entropies(&self, ids: &[u32], entropies: Option<&[f32]>) -> Result<(), PatchingError> {
        match entropies {
            Some(h) if h.len() != ids.len() => Err(PatchingError::EntropyLengthMismatch {
                ids: ids.len(),
                entropies: h.len(),
            }),
            None if self.config.scheme.needs_entropies() => Err(PatchingError::MissingEntropies),
            _ => Ok(()),
        }
    }

    /// Whether each position `0..=T` starts a patch (length `T + 1`; the last entry is the
    /// virtual next slot).
    ///
    /// `entropies` (`H[t]`, one per id) is required for the entropy scheme and ignored by the
    /// others; when given, its length must equal `ids.len()`.
    ///
    /// ```
    /// use blt_patching::{Patcher, PatcherConfig, PatchingScheme};
    /// let patcher = Patcher::new(PatcherConfig::new(PatchingScheme::Fixed { stride: 2 }))?;
    /// let starts = patcher.patch_starts(&[1, 10, 11, 12], None)?;
    /// assert_eq!(starts, vec![true, true, false, true, false]);
    /// # Ok::<(), blt_patching::PatchingError>(())
    /// ```
    pub fn patch_starts(
        &self,
        ids: &[u32],
        entropies: Option<&[f32]>,
    ) -> Result<Vec<bool>, PatchingError> {
        self.check_entropies(ids, entropies)?;
        Ok(StartRule::start_mask(&self.config, ids, entropies))
    }

    /// Patches one row of ids (see [`Patches`]). `entropies` as in
    /// [`patch_starts`](Self::patch_starts).
    pub fn patch(&self, ids: &[u32], entropies: Option<&[f32]>) -> Result<Patches, PatchingError> {
        self.check_entropies(ids, entropies)?;
        let decisions = StartRule::decisions(&self.config, ids, entropies);
        Ok(Patches::from_decisions(ids.len(), decisions))
    }

    /// A streaming patcher with this configuration, before position 0.
    pub fn stream(&self) -> StreamingPatcher {
        StreamingPatcher::from_valid(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::PatchingScheme;

    #[test]
    fn tiny_inputs() {
        let patcher = Patcher::new(PatcherConfig::new(PatchingScheme::Byte)).unwrap();
        let empty = patcher.patch(&[], None).unwrap();
        assert_eq!(empty.starts, vec![0]);
        assert_eq!(empty.lengths, vec![1]);
        assert!(empty.is_empty());
        assert_eq!(empty.num_patches(), 0);
        assert!(empty.lengths_without_next().is_empty());

        let entropy = Patcher::new(PatcherConfig::default()).unwrap();
        let one = entropy.patch(&[1], Some(&[0.0])).unwrap();
        assert_eq!(one.starts, vec![0, 1]);
        assert_eq!(one.lengths, vec![1, 1]);
        assert_eq!(one.encoder_ids, vec![0]);
        assert_eq!(one.decoder_ids, vec![0]);
        assert_eq!(one.num_patches(), 1);
        assert_eq!(one.lengths_without_next(), vec![1]);
        assert_eq!(entropy.patch(&[], Some(&[])).unwrap().num_patches(), 0);
    }

    #[test]
    fn entropy_errors() {
        let patcher = Patcher::new(PatcherConfig::default()).unwrap();
        assert_eq!(
            patcher.patch(&[1, 5], None),
            Err(PatchingError::MissingEntropies)
        );
        assert_eq!(
            patcher.patch(&[1, 5], Some(&[0.0])),
            Err(PatchingError::EntropyLengthMismatch {
                ids: 2,
                entropies: 1
            })
        );
        let space = Patcher::new(PatcherConfig::new(PatchingScheme::Space)).unwrap();
        assert!(space.patch(&[1, 5], None).is_ok());
        assert!(space.patch(&[1, 5], Some(&[0.0])).is_err());
        assert!(Patcher::new(PatcherConfig::new(PatchingScheme::Fixed { stride: 0 })).is_err());
    }

    #[test]
    fn monotonic_rule() {
        let config = PatcherConfig::new(PatchingScheme::Entropy {
            threshold: 0.5,
            monotonic: true,
        });
        let patcher = Patcher::new(config).unwrap();
        // rises H[t-1] - H[t-2]: t=3: 0.1-3.0 no, t=4: 1.0-0.1 yes, t=5: 1.2-1.0 no,
        // t=6: 2.0-1.2 yes, t=7 (virtual): 0.0-2.0 no.
        let h = [5.0, 3.0, 0.1, 1.0, 1.2, 2.0, 0.0];
        let p = patcher.patch(&[1, 5, 6, 7, 8, 9, 10], Some(&h)).unwrap();
        assert_eq!(p.starts, vec![0, 1, 2, 4, 6]);
        assert_eq!(p.lengths, vec![1, 1, 2, 2, 2]);
    }
}
