//! Patching schemes and the patcher configuration (what goes in a TOML config).
//!
//! Design §4 and reference §2.4 (entropy rules), §2.6 (max length), §3 (other schemes).

use serde::{Deserialize, Serialize};

use crate::error::PatchingError;

/// The entropy threshold of the released models (`PatcherArgs.threshold`, Hugging Face
/// `patching_threshold`): 1.335442066192627, as `f32`.
pub const DEFAULT_ENTROPY_THRESHOLD: f32 = 1.335_442_1;

/// The name of a [`PatchingScheme`] without its parameters, which a model config stores beside
/// them (`patching = "entropy"` with `entropy_threshold = …`): one concept with two views, as
/// `std::io::ErrorKind` is to `std::io::Error`. [`PatchingScheme::kind`] gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatchingKind {
    /// [`PatchingScheme::Entropy`].
    #[default]
    Entropy,
    /// [`PatchingScheme::Fixed`].
    Fixed,
    /// [`PatchingScheme::Space`].
    Space,
    /// [`PatchingScheme::Byte`].
    Byte,
}

/// How patch starts are chosen. Positions 0 (BOS) and 1 always start a patch, whatever the
/// scheme, so the first patch is exactly `[BOS]`.
///
/// Serialised with an internal `scheme` tag, e.g. in TOML:
///
/// ```toml
/// scheme = "entropy"
/// threshold = 1.33
/// monotonic = false
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "snake_case")]
pub enum PatchingScheme {
    /// Entropy patching (the original's `entropy` mode with a threshold).
    ///
    /// Global rule (`monotonic = false`, the released models): `t ≥ 2` starts iff
    /// `H[t−1] > threshold`. Approximate-monotonic rule (`monotonic = true`, reference §2.4 as
    /// coded): position 2 is also forced, and `t ≥ 3` starts iff
    /// `H[t−1] − H[t−2] > threshold`. `H[t]` is the entropy (nats) of the next byte given the
    /// bytes up to `t`. Comparisons run in `f32`, like torch comparing an `f32` tensor to a
    /// Python float; a NaN entropy never opens a patch.
    Entropy {
        /// θ (`entropy_threshold`); must be finite.
        threshold: f32,
        /// Use the difference rule instead of the global one (`use_monotonic`,
        /// original `monotonicity`). Default `false`.
        #[serde(default)]
        monotonic: bool,
    },
    /// Fixed stride: `t ≥ 2` starts iff `(t − 1) % stride == 0`. The BOS patch stays length 1,
    /// then patches of `stride` follow.
    Fixed {
        /// Patch length after BOS; at least 1.
        stride: usize,
    },
    /// SpaceByte rule (reference §3): position `s` ends a patch when its id is not a byte
    /// (a special id < 4, or an id ≥ 260), or when its byte is space-like and the id at `s − 1`
    /// is a byte that is not space-like; `t ≥ 2` starts iff `t − 1` ends a patch. A byte is
    /// space-like when it is not `[0-9A-Za-z]` and not a UTF-8 continuation byte
    /// (`0x80..=0xBF`); UTF-8 lead bytes count as space-like. A non-byte predecessor counts as
    /// space-like (as in the original, where `id − 4 < 0` falls in the space-like class), so a
    /// space right after BOS does not form a patch of its own: runs of space-like bytes merge,
    /// and every patch after BOS holds a non-space-like byte unless a special id or the end of
    /// the input cuts it short.
    Space,
    /// Every position is its own patch: BLT degenerates to a byte transformer.
    Byte,
}

impl Default for PatchingScheme {
    /// The released models' rule: global entropy threshold [`DEFAULT_ENTROPY_THRESHOLD`].
    fn default() -> Self {
        Self::Entropy {
            threshold: DEFAULT_ENTROPY_THRESHOLD,
            monotonic: false,
        }
    }
}

impl PatchingScheme {
    /// The scheme's name, without its parameters.
    pub fn kind(&self) -> PatchingKind {
        match self {
            Self::Entropy { .. } => PatchingKind::Entropy,
            Self::Fixed { .. } => PatchingKind::Fixed,
            Self::Space => PatchingKind::Space,
            Self::Byte => PatchingKind::Byte,
        }
    }

    /// The global entropy rule with threshold `threshold`.
    pub fn entropy(threshold: f32) -> Self {
        Self::Entropy {
            threshold,
            monotonic: false,
        }
    }

    /// Whether this scheme reads entropies.
    pub fn needs_entropies(&self) -> bool {
        matches!(self, Self::Entropy { .. })
    }

    /// The last position that always starts a patch: 1, or 2 for the monotonic rule.
    pub fn last_forced_start(&self) -> usize {
        match self {
            Self::Entropy {
                monotonic: true, ..
            } => 2,
            _ => 1,
        }
    }

    /// Checks the scheme's own parameters.
    pub fn validate(&self) -> Result<(), PatchingError> {
        match *self {
            Self::Entropy { threshold, .. } if !threshold.is_finite() => {
                Err(PatchingError::InvalidThreshold { threshold })
            }
            Self::Fixed { stride: 0 } => Err(PatchingError::InvalidStride { stride: 0 }),
            _ => Ok(()),
        }
    }
}

fn default_min_patch_size() -> usize {
    1
}

/// A patching scheme plus patch-size limits. The scheme's fields sit at the top level when
/// serialised (`scheme = "fixed"`, `stride = 4`, `min_patch_size = 1`).
///
/// ```
/// use blt_patching::{PatcherConfig, PatchingScheme};
/// let config = PatcherConfig::new(PatchingScheme::Fixed { stride: 4 }).with_max_patch_size(Some(8));
/// config.validate()?;
/// let json = serde_json::to_string(&config).unwrap();
/// assert_eq!(json, r#"{"scheme":"fixed","stride":4,"min_patch_size":1,"max_patch_size":8}"#);
/// # Ok::<(), blt_patching::PatchingError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PatcherConfig {
    /// The start rule. Default: global entropy rule at [`DEFAULT_ENTROPY_THRESHOLD`].
    #[serde(flatten)]
    pub scheme: PatchingScheme,
    /// A non-forced start is suppressed while the current patch is shorter than this.
    /// At least 1; default 1 (no effect).
    #[serde(default = "default_min_patch_size")]
    pub min_patch_size: usize,
    /// A start is forced once the current patch holds this many positions (the original's
    /// `max_patch_length`). At least `min_patch_size` when set; default `None` (unbounded).
    #[serde(default)]
    pub max_patch_size: Option<usize>,
}

impl Default for PatcherConfig {
    /// The released models' rule ([`PatchingScheme::default`]) with no size limits.
    fn default() -> Self {
        Self::new(PatchingScheme::default())
    }
}

impl PatcherConfig {
    /// `scheme` with no size limits.
    pub fn new(scheme: PatchingScheme) -> Self {
        Self {
            scheme,
            min_patch_size: 1,
            max_patch_size: None,
        }
    }

    /// The same config with `min_patch_size` set.
    pub fn with_min_patch_size(mut self, min_patch_size: usize) -> Self {
        self.min_patch_size = min_patch_size;
        self
    }

    /// The same config with `max_patch_size` set.
    pub fn with_max_patch_size(mut self, max_patch_size: Option<usize>) -> Self {
        self.max_patch_size = max_patch_size;
        self
    }

    /// Checks every field: stride ≥ 1, threshold finite, min ≥ 1, max ≥ min when set.
    pub fn validate(&self) -> Result<(), PatchingError> {
        self.scheme.validate()?;
        if self.min_patch_size == 0 {
            return Err(PatchingError::InvalidMinPatchSize { min: 0 });
        }
        if let Some(max) = self.max_patch_size
            && max < self.min_patch_size
        {
            return Err(PatchingError::MaxBelowMin {
                min: self.min_patch_size,
                max,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert!(PatcherConfig::default().validate().is_ok());
        let bad = [
            PatcherConfig::new(PatchingScheme::Fixed { stride: 0 }),
            PatcherConfig::new(PatchingScheme::entropy(f32::NAN)),
            PatcherConfig::new(PatchingScheme::entropy(f32::INFINITY)),
            PatcherConfig::new(PatchingScheme::Byte).with_min_patch_size(0),
            PatcherConfig::new(PatchingScheme::Space)
                .with_min_patch_size(3)
                .with_max_patch_size(Some(2)),
        ];
        for config in bad {
            assert!(config.validate().is_err(), "{config:?}");
        }
        let msg = bad[4].validate().unwrap_err().to_string();
        assert_eq!(
            msg,
            "max_patch_size (2) must be at least min_patch_size (3)"
        );
    }

    #[test]
    fn serde_flat_layout_and_defaults() {
        let config: PatcherConfig =
            serde_json::from_str(r#"{"scheme":"entropy","threshold":1.33}"#).unwrap();
        assert_eq!(config, PatcherConfig::new(PatchingScheme::entropy(1.33)));
        let config: PatcherConfig = serde_json::from_str(
            r#"{"scheme":"entropy","threshold":0.5,"monotonic":true,"min_patch_size":2,
                "max_patch_size":9}"#,
        )
        .unwrap();
        assert_eq!(
            config.scheme,
            PatchingScheme::Entropy {
                threshold: 0.5,
                monotonic: true
            }
        );
        assert_eq!((config.min_patch_size, config.max_patch_size), (2, Some(9)));
        for scheme in [
            PatchingScheme::default(),
            PatchingScheme::Fixed { stride: 3 },
            PatchingScheme::Space,
            PatchingScheme::Byte,
        ] {
            let config = PatcherConfig::new(scheme).with_max_patch_size(Some(4));
            let json = serde_json::to_string(&config).unwrap();
            assert_eq!(
                serde_json::from_str::<PatcherConfig>(&json).unwrap(),
                config
            );
        }
        assert!(serde_json::from_str::<PatcherConfig>(r#"{"scheme":"bpe"}"#).is_err());
        let space: PatcherConfig = serde_json::from_str(r#"{"scheme":"space"}"#).unwrap();
        assert_eq!(space, PatcherConfig::new(PatchingScheme::Space));
    }
}
