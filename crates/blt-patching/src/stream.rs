//! The streaming patcher: one position at a time, for generation.
//!
//! It runs the same start rule as [`Patcher`](crate::Patcher), so for every prefix it makes
//! exactly the batch decisions (reference §7.2: a byte's decoder patch depends on `H[i]`,
//! which is known before `x_{i+1}` is sampled, so incremental generation stays consistent).

use crate::error::PatchingError;
use crate::rule::StartRule;
use crate::scheme::PatcherConfig;

/// What the streaming patcher knows once position `position` is consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamStep {
    /// The position just consumed (`t`, 0 for the first push).
    pub position: usize,
    /// The patch index of position `t` (`enc(t)`).
    pub encoder_id: u32,
    /// Whether position `t + 1`, the byte to be generated next, starts a patch. When it does,
    /// patch `encoder_id` is complete and the global model can run on it.
    pub next_starts_patch: bool,
    /// The patch the decoder reads at `t`: `enc(t + 1) − 1` (equals `encoder_id` when
    /// `next_starts_patch`, else `encoder_id − 1`).
    pub decoder_id: u32,
}

/// Patches a sequence one position at a time, with the decisions of the batch patcher.
///
/// ```
/// use blt_patching::{Patcher, PatcherConfig, PatchingScheme};
/// let patcher = Patcher::new(PatcherConfig::new(PatchingScheme::entropy(1.0)))?;
/// let ids = [1, 10, 11, 12, 13];
/// let h = [0.0, 2.0, 0.0, 0.0, 2.0];
/// let batch = patcher.patch(&ids, Some(&h))?;
/// let mut stream = patcher.stream();
/// for (t, (&id, &e)) in ids.iter().zip(&h).enumerate() {
///     let step = stream.push(id, Some(e));
///     assert_eq!(step.position, t);
///     assert_eq!(step.encoder_id, batch.encoder_ids[t]);
///     assert_eq!(step.decoder_id, batch.decoder_ids[t]);
/// }
/// assert_eq!(stream.num_patches(), batch.num_patches());
/// # Ok::<(), blt_patching::PatchingError>(())
/// ```
#[derive(Debug, Clone)]
pub struct StreamingPatcher {
    config: PatcherConfig,
    rule: StartRule,
    /// Number of starts at positions `< rule.position()`.
    started: u32,
}

impl StreamingPatcher {
    /// A streaming patcher for a validated `config`, before position 0.
    pub fn new(config: PatcherConfig) -> Result<Self, PatchingError> {
        config.validate()?;
        Ok(Self::from_valid(config))
    }

    pub(crate) fn from_valid(config: PatcherConfig) -> Self {
        Self {
            rule: StartRule::new(&config),
            config,
            started: 0,
        }
    }

    /// Consumes position `t` (its id and its entropy `H[t]`, the entropy of the *next* byte).
    ///
    /// The entropy is ignored unless the scheme is `entropy`; there, a missing entropy counts
    /// as NaN: it opens no patch (and, for the monotonic rule, neither does the rise after it).
    /// Use [`try_push`](Self::try_push) to reject a missing entropy instead.
    pub fn push(&mut self, id: u32, entropy: Option<f32>) -> StreamStep {
        let position = self.rule.position();
        if self.rule.pending() {
            self.started += 1;
        }
        let encoder_id = self.started - 1;
        let next_starts_patch = self.rule.consume(id, entropy.unwrap_or(f32::NAN));
        // Position 1 always starts, so enc(t + 1) ≥ 1.
        let decoder_id = encoder_id + u32::from(next_starts_patch) - 1;
        StreamStep {
            position,
            encoder_id,
            next_starts_patch,
            decoder_id,
        }
    }

    /// Like [`push`](Self::push), but errors with [`PatchingError::MissingEntropies`] when the
    /// scheme needs an entropy and none is given (nothing is consumed then).
    pub fn try_push(&mut self, id: u32, entropy: Option<f32>) -> Result<StreamStep, PatchingError> {
        if entropy.is_none() && self.config.scheme.needs_entropies() {
            return Err(PatchingError::MissingEntropies);
        }
        Ok(self.push(id, entropy))
    }

    /// The next position to be pushed (= the number of positions consumed).
    pub fn position(&self) -> usize {
        self.rule.position()
    }

    /// Whether the next position to be pushed starts a patch.
    pub fn next_starts_patch(&self) -> bool {
        self.rule.pending()
    }

    /// Number of patches holding at least one consumed position.
    pub fn num_patches(&self) -> usize {
        self.started as usize
    }

    /// The configuration.
    pub fn config(&self) -> &PatcherConfig {
        &self.config
    }

    /// Forgets everything pushed: the next push is position 0 again.
    pub fn reset(&mut self) {
        *self = Self::from_valid(self.config);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::PatchingScheme;

    #[test]
    fn missing_entropy() {
        let mut s = StreamingPatcher::new(PatcherConfig::default()).unwrap();
        assert_eq!(s.try_push(1, None), Err(PatchingError::MissingEntropies));
        assert_eq!(s.position(), 0);
        let step = s.push(1, None);
        assert_eq!(
            (step.encoder_id, step.decoder_id, step.next_starts_patch),
            (0, 0, true)
        );
        // A NaN entropy opens nothing; position 2 does not start.
        assert!(!s.push(5, None).next_starts_patch);
        assert_eq!(s.num_patches(), 2);
        s.reset();
        assert_eq!(
            (s.position(), s.num_patches(), s.next_starts_patch()),
            (0, 0, true)
        );
    }

    #[test]
    fn invalid_config() {
        assert!(
            StreamingPatcher::new(PatcherConfig::new(PatchingScheme::Fixed { stride: 0 })).is_err()
        );
    }
}
