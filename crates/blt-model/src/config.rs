//! [`BltConfig`]: every hyper-parameter of a Byte Latent Transformer and of its entropy model,
//! as one TOML table. Field names follow the seed project's `BLTConfig`; where the original BLT
//! (facebookresearch/blt `ByteLatentTransformerArgs`) names a field differently, its name is
//! given in brackets.

use std::path::Path;

use blt_core::AttentionKind;
pub use blt_patching::PatchingKind;
use blt_patching::{PatcherConfig, PatchingScheme};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// How the local encoder turns a patch's bytes into the global model's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// Max-pooled queries projected to `cross_attn_k` slots cross-attend to the patch's bytes
    /// (the original BLT).
    #[default]
    CrossAttention,
    /// Mean of the patch's byte states, projected to `cross_attn_k` slots.
    Mean,
    /// Max of the patch's byte states, projected to `cross_attn_k` slots.
    Max,
}

/// Hyper-parameters of a BLT. Every field has a default (the `small` preset) and is checked by
/// [`BltConfig::validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BltConfig {
    /// Width of the local encoder and decoder (original: `dim_local_encoder`, `dim_local_decoder`). Default: 128.
    pub hidden_size: usize,
    /// SwiGLU hidden size of the local models. Default: 512.
    pub intermediate_size: usize,
    /// SwiGLU hidden size of the local decoder when it differs from the encoder's
    /// `intermediate_size` (transformers' default BLT config, which has BLT-1B's shapes: 2730
    /// and 2816). Default: unset (the same).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decoder_intermediate_size: Option<usize>,
    /// Attention heads of the local models (original: `n_heads_local_encoder`). Default: 4.
    pub num_heads: usize,
    /// Local encoder layers (original: `n_layers_local_encoder`). Default: 1.
    pub encoder_layers: usize,
    /// Global transformer layers (original: `n_layers_global`). Default: 4.
    pub global_layers: usize,
    /// Local decoder layers (original: `n_layers_local_decoder`). Default: 2.
    pub decoder_layers: usize,
    /// Dropout on attention probabilities, in [0, 1). Default: 0.
    pub attention_dropout: f64,
    /// Dropout on residual branches and embeddings, in [0, 1). Default: 0.
    pub resid_dropout: f64,
    /// Rows of each hash n-gram embedding table (original: `encoder_hash_byte_group_vocab`). Default: 4096.
    pub ngram_vocab_size: usize,
    /// n-gram sizes hashed at every byte (original: `encoder_hash_byte_group_size`). Default: 3..=8.
    pub ngram_sizes: Vec<usize>,
    /// Keys a local self-attention sees, the query included (original: `local_attention_window_len`).
    /// Default: 256.
    pub window_size: usize,
    /// Longest byte sequence (prompt plus generation) (original: `max_encoder_seq_length`). Default: 1024.
    pub max_position_embeddings: usize,
    /// Width of the global transformer (original: `dim_global`). Default: 256.
    pub global_hidden_size: usize,
    /// SwiGLU hidden size of the global transformer. Default: 768.
    pub global_intermediate_size: usize,
    /// Attention heads of the global transformer (original: `n_heads_global`). Default: 4.
    pub global_num_heads: usize,
    /// Query slots per patch in the encoder's cross-attention pooling. Default: 2.
    pub cross_attn_k: usize,
    /// RoPE base θ of the local and global models. Default: 5e5.
    pub rope_theta: f64,
    /// RMSNorm epsilon everywhere. Default: 1e-5.
    pub norm_eps: f64,
    /// Patch pooling: `cross_attention`, `mean` or `max`. Default: `cross_attention`.
    pub pooling: Pooling,
    /// Self-attention kind: `standard` or `differential`. Default: `standard`.
    pub attention: AttentionKind,
    /// Gated learned memory in every global layer (the seed's hierarchical memory). Default: false.
    pub hierarchical_memory: bool,
    /// Patching scheme: `entropy`, `fixed`, `space` or `byte` (original: `patching_mode`). Default: `entropy`.
    pub patching: PatchingKind,
    /// Patch length of `fixed` patching (original: `patch_size`). Default: 4.
    pub patch_stride: usize,
    /// Entropy threshold θ in nats for `entropy` patching (original: `patching_threshold`). Default: 1.335.
    pub entropy_threshold: f32,
    /// Use the approximate-monotonic rule H[t−1] − H[t−2] > θ instead of the global one.
    /// Default: false.
    pub monotonic_entropy: bool,
    /// Starting threshold of calibration before `entropy_threshold` is fitted. Default: 1.335.
    pub initial_entropy_threshold: f32,
    /// Shortest patch (except the forced BOS patches), ≥ 1. Default: 1.
    pub min_patch_size: usize,
    /// Longest patch; 0 means unbounded (original: `max_patch_length`). Default: 0.
    pub max_patch_size: usize,
    /// Reset the entropy model's context after every newline (paper §4.4). Default: false.
    pub reset_entropy_context: bool,
    /// Keep documents apart: a byte attends only to bytes of its own document (the bytes up
    /// to and including the EOS that ends it) in the local and entropy models, and a patch
    /// only to patches of its own documents in the global model, as the original BLT trains
    /// (reference §5, §6). As there, the hash n-grams of a document's first 7 bytes reach back
    /// over the EOS, and the bytes of its first patch read the global state of the patch that
    /// holds the EOS (the decoder's one-patch shift). Off, every mask is plainly causal over
    /// the whole row, as in transformers' BLT; `import-hf` sets it off. The two give the same
    /// logits on inputs without EOS. Default: true.
    pub document_mask: bool,
    /// Entropy model layers. Default: 2.
    pub entropy_model_layers: usize,
    /// Entropy model attention window in bytes. Default: 256.
    pub entropy_context_size: usize,
    /// Entropy model width. Default: 128.
    pub entropy_hidden_size: usize,
    /// Entropy model attention heads. Default: 4.
    pub entropy_num_heads: usize,
    /// Entropy model SwiGLU hidden size. Default: 512.
    pub entropy_intermediate_size: usize,
    /// Entropy model RoPE θ. Default: 1e4.
    pub entropy_rope_theta: f64,
}

impl Default for BltConfig {
    /// The `small` preset's model, without its patch-length cap: every field's documented
    /// default.
    fn default() -> Self {
        Self {
            max_patch_size: 0,
            ..Self::small()
        }
    }
}

impl BltConfig {
    /// Tests and CI: trains in about a minute on 2 cores.
    pub fn tiny() -> Self {
        Self {
            hidden_size: 64,
            intermediate_size: 192,
            num_heads: 2,
            encoder_layers: 1,
            global_layers: 2,
            decoder_layers: 1,
            ngram_vocab_size: 1024,
            window_size: 64,
            max_position_embeddings: 512,
            global_hidden_size: 128,
            global_intermediate_size: 384,
            global_num_heads: 2,
            entropy_model_layers: 1,
            entropy_context_size: 64,
            entropy_hidden_size: 64,
            entropy_num_heads: 2,
            entropy_intermediate_size: 192,
            // As `configs/tiny.toml` trains it (a test keeps the two equal).
            max_patch_size: 12,
            ..Self::small()
        }
    }

    /// A CPU run of minutes.
    pub fn small() -> Self {
        Self {
            hidden_size: 128,
            intermediate_size: 512,
            decoder_intermediate_size: None,
            num_heads: 4,
            encoder_layers: 1,
            global_layers: 4,
            decoder_layers: 2,
            attention_dropout: 0.0,
            resid_dropout: 0.0,
            ngram_vocab_size: 4096,
            ngram_sizes: (3..=8).collect(),
            window_size: 256,
            max_position_embeddings: 1024,
            global_hidden_size: 256,
            global_intermediate_size: 768,
            global_num_heads: 4,
            cross_attn_k: 2,
            rope_theta: 5e5,
            norm_eps: 1e-5,
            pooling: Pooling::CrossAttention,
            attention: AttentionKind::Standard,
            hierarchical_memory: false,
            patching: PatchingKind::Entropy,
            patch_stride: 4,
            entropy_threshold: blt_patching::DEFAULT_ENTROPY_THRESHOLD,
            monotonic_entropy: false,
            initial_entropy_threshold: blt_patching::DEFAULT_ENTROPY_THRESHOLD,
            min_patch_size: 1,
            // As `configs/small.toml` trains it (a test keeps the two equal).
            max_patch_size: 16,
            reset_entropy_context: false,
            document_mask: true,
            entropy_model_layers: 2,
            entropy_context_size: 256,
            entropy_hidden_size: 128,
            entropy_num_heads: 4,
            entropy_intermediate_size: 512,
            entropy_rope_theta: 1e4,
        }
    }

    /// The seed project's published basic configuration: 512 wide, 2048 FFN, 16 heads,
    /// 2/8/6 encoder/global/decoder layers, 150k n-gram rows, window 512, 4096 positions.
    pub fn seed_basic() -> Self {
        Self {
            hidden_size: 512,
            intermediate_size: 2048,
            num_heads: 16,
            encoder_layers: 2,
            global_layers: 8,
            decoder_layers: 6,
            attention_dropout: 0.1,
            resid_dropout: 0.1,
            ngram_vocab_size: 150_000,
            window_size: 512,
            max_position_embeddings: 4096,
            global_hidden_size: 512 * 2,
            global_intermediate_size: 4096,
            global_num_heads: 16,
            entropy_context_size: 512,
            entropy_hidden_size: 512,
            entropy_num_heads: 8,
            entropy_intermediate_size: 2048,
            ..Self::default()
        }
    }

    /// The seed project's published advanced configuration: 768 wide, 3072 FFN, 24 heads,
    /// 4/12/8 layers, 200k n-gram rows, window 1024, 8192 positions, a 3-layer entropy model with
    /// context 1024, threshold 0.6, patches of 64 to 1024 bytes.
    pub fn seed_advanced() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            num_heads: 24,
            encoder_layers: 4,
            global_layers: 12,
            decoder_layers: 8,
            ngram_vocab_size: 200_000,
            window_size: 1024,
            max_position_embeddings: 8192,
            global_hidden_size: 768 * 2,
            global_intermediate_size: 6144,
            global_num_heads: 24,
            entropy_model_layers: 3,
            entropy_context_size: 1024,
            entropy_hidden_size: 768,
            entropy_num_heads: 12,
            entropy_intermediate_size: 3072,
            entropy_threshold: 0.6,
            initial_entropy_threshold: 0.6,
            min_patch_size: 64,
            max_patch_size: 1024,
            ..Self::seed_basic()
        }
    }

    /// The shapes the benchmark peers were measured with (about 45 M parameters): local 256
    /// wide, 4 heads, 1 encoder and 2 decoder layers, FFN 1024; global 512 wide, 4 heads,
    /// 6 layers, FFN 2048; k = 2; n-grams 3..=8 with 10,000 rows; fixed stride-4 patching.
    pub fn bench() -> Self {
        Self {
            hidden_size: 256,
            intermediate_size: 1024,
            num_heads: 4,
            encoder_layers: 1,
            global_layers: 6,
            decoder_layers: 2,
            ngram_vocab_size: 10_000,
            window_size: 512,
            max_position_embeddings: 2048,
            global_hidden_size: 512,
            global_intermediate_size: 2048,
            global_num_heads: 4,
            patching: PatchingKind::Fixed,
            patch_stride: 4,
            ..Self::default()
        }
    }

    /// A preset by name: `tiny`, `small`, `seed-basic`, `seed-advanced` or `bench`.
    pub fn preset(name: &str) -> Option<Self> {
        Some(match name {
            "tiny" => Self::tiny(),
            "small" => Self::small(),
            "seed-basic" => Self::seed_basic(),
            "seed-advanced" => Self::seed_advanced(),
            "bench" => Self::bench(),
            _ => return None,
        })
    }

    /// SwiGLU hidden size of the local decoder.
    pub fn decoder_ffn(&self) -> usize {
        self.decoder_intermediate_size
            .unwrap_or(self.intermediate_size)
    }

    /// Checks every field; the error names the field and what it must satisfy.
    pub fn validate(&self) -> Result<()> {
        let fail = |msg: String| Err(ModelError::InvalidConfig(msg));
        if self.decoder_intermediate_size == Some(0) {
            return fail("decoder_intermediate_size must be positive when set".into());
        }
        let positive = [
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_heads", self.num_heads),
            ("global_layers", self.global_layers),
            ("decoder_layers", self.decoder_layers),
            ("ngram_vocab_size", self.ngram_vocab_size),
            ("window_size", self.window_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("global_hidden_size", self.global_hidden_size),
            ("global_intermediate_size", self.global_intermediate_size),
            ("global_num_heads", self.global_num_heads),
            ("cross_attn_k", self.cross_attn_k),
            ("patch_stride", self.patch_stride),
            ("min_patch_size", self.min_patch_size),
            ("entropy_model_layers", self.entropy_model_layers),
            ("entropy_context_size", self.entropy_context_size),
            ("entropy_hidden_size", self.entropy_hidden_size),
            ("entropy_num_heads", self.entropy_num_heads),
            ("entropy_intermediate_size", self.entropy_intermediate_size),
        ];
        for (field, value) in positive {
            if value == 0 {
                return fail(format!("{field} (0) must be at least 1"));
            }
        }
        let head_multiple = match self.attention {
            AttentionKind::Standard => 2,
            AttentionKind::Differential => 4,
        };
        for (heads, heads_field, width, width_field) in [
            (self.num_heads, "num_heads", self.hidden_size, "hidden_size"),
            (
                self.global_num_heads,
                "global_num_heads",
                self.global_hidden_size,
                "global_hidden_size",
            ),
            (
                self.entropy_num_heads,
                "entropy_num_heads",
                self.entropy_hidden_size,
                "entropy_hidden_size",
            ),
        ] {
            if width % heads != 0 {
                return fail(format!(
                    "{heads_field} ({heads}) must divide {width_field} ({width})"
                ));
            }
            if (width / heads) % head_multiple != 0 {
                return fail(format!(
                    "{width_field} / {heads_field} ({}) must be a multiple of {head_multiple} \
                     for {:?} attention",
                    width / heads,
                    self.attention
                ));
            }
        }
        for (field, value) in [
            ("attention_dropout", self.attention_dropout),
            ("resid_dropout", self.resid_dropout),
        ] {
            if !(0.0..1.0).contains(&value) {
                return fail(format!("{field} ({value}) must be in [0, 1)"));
            }
        }
        if self.ngram_sizes.is_empty() || self.ngram_sizes.iter().any(|&n| n == 0 || n > 64) {
            return fail(format!(
                "ngram_sizes ({:?}) must be non-empty, each in 1..=64",
                self.ngram_sizes
            ));
        }
        if u32::try_from(self.ngram_vocab_size).is_err() {
            return fail(format!(
                "ngram_vocab_size ({}) must fit in 32 bits",
                self.ngram_vocab_size
            ));
        }
        // The hash tables are the largest tensors of a BLT (BLT-1B: 6 tables of 500,002 rows ×
        // 1,024). Above 2³⁴ elements (64 GiB of f32) initialisation would abort on allocation
        // rather than report anything; no released configuration comes near.
        let table_elements = self
            .ngram_vocab_size
            .saturating_mul(self.ngram_sizes.len())
            .saturating_mul(self.hidden_size);
        if table_elements > 1 << 34 {
            return fail(format!(
                "ngram_vocab_size ({}) × {} n-gram sizes × hidden_size ({}) is {table_elements} \
                 hash-table parameters, more than the 2^34 (64 GiB of f32) a model may hold",
                self.ngram_vocab_size,
                self.ngram_sizes.len(),
                self.hidden_size
            ));
        }
        if !(self.rope_theta > 1.0 && self.rope_theta.is_finite()) {
            return fail(format!(
                "rope_theta ({}) must be a finite number above 1",
                self.rope_theta
            ));
        }
        if !(self.entropy_rope_theta > 1.0 && self.entropy_rope_theta.is_finite()) {
            return fail(format!(
                "entropy_rope_theta ({}) must be a finite number above 1",
                self.entropy_rope_theta
            ));
        }
        if !(self.norm_eps > 0.0 && self.norm_eps < 1.0) {
            return fail(format!("norm_eps ({}) must be in (0, 1)", self.norm_eps));
        }
        for (field, value) in [
            ("entropy_threshold", self.entropy_threshold),
            ("initial_entropy_threshold", self.initial_entropy_threshold),
        ] {
            if !value.is_finite() {
                return fail(format!("{field} ({value}) must be finite"));
            }
        }
        if self.max_patch_size != 0 && self.max_patch_size < self.min_patch_size {
            return fail(format!(
                "max_patch_size ({}) must be 0 (unbounded) or at least min_patch_size ({})",
                self.max_patch_size, self.min_patch_size
            ));
        }
        if self.max_position_embeddings < 2 {
            return fail("max_position_embeddings must be at least 2".into());
        }
        Ok(())
    }

    /// Where the entropy model's context restarts under this config.
    pub fn entropy_resets(&self) -> crate::EntropyResets {
        crate::EntropyResets {
            at_eos: self.document_mask,
            at_newline: self.reset_entropy_context,
        }
    }

    /// The patcher this config describes.
    pub fn patcher_config(&self) -> PatcherConfig {
        let scheme = match self.patching {
            PatchingKind::Entropy => PatchingScheme::Entropy {
                threshold: self.entropy_threshold,
                monotonic: self.monotonic_entropy,
            },
            PatchingKind::Fixed => PatchingScheme::Fixed {
                stride: self.patch_stride,
            },
            PatchingKind::Space => PatchingScheme::Space,
            PatchingKind::Byte => PatchingScheme::Byte,
        };
        PatcherConfig::new(scheme)
            .with_min_patch_size(self.min_patch_size)
            .with_max_patch_size((self.max_patch_size > 0).then_some(self.max_patch_size))
    }

    /// The n-gram hasher this config describes.
    pub fn ngram_hasher(&self) -> Result<blt_patching::NgramHasher> {
        Ok(blt_patching::NgramHasher::new(
            self.ngram_sizes.clone(),
            self.ngram_vocab_size,
        )?)
    }

    /// Width of the global model's input before projection: `cross_attn_k · hidden_size`.
    pub fn global_input_size(&self) -> usize {
        self.cross_attn_k * self.hidden_size
    }

    /// Parses a TOML table holding this config.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let config: Self = toml::from_str(text).map_err(|e| ModelError::ParseConfig {
            path: "<string>".into(),
            message: e.message().to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Renders the config as TOML.
    pub fn to_toml_string(&self) -> String {
        toml::to_string_pretty(self).expect("a BltConfig always serialises")
    }

    /// Reads and validates a TOML file holding only this table.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            action: "reading",
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text).map_err(|e| match e {
            ModelError::ParseConfig { message, .. } => ModelError::ParseConfig {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patcher_runs_the_scheme_the_config_names() {
        for kind in [
            PatchingKind::Entropy,
            PatchingKind::Fixed,
            PatchingKind::Space,
            PatchingKind::Byte,
        ] {
            let config = BltConfig {
                patching: kind,
                ..BltConfig::tiny()
            };
            assert_eq!(config.patcher_config().scheme.kind(), kind);
        }
    }

    #[test]
    fn presets_validate_and_round_trip_through_toml() {
        for name in ["tiny", "small", "seed-basic", "seed-advanced", "bench"] {
            let config = BltConfig::preset(name).unwrap();
            config.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
            let back = BltConfig::from_toml_str(&config.to_toml_string()).unwrap();
            assert_eq!(back, config, "{name}");
        }
        assert!(BltConfig::preset("huge").is_none());
    }

    #[test]
    fn invalid_fields_are_named() {
        type Tweak = Box<dyn Fn(&mut BltConfig)>;
        let cases: Vec<(Tweak, &str)> = vec![
            (
                Box::new(|c| c.num_heads = 3),
                "num_heads (3) must divide hidden_size (128)",
            ),
            (Box::new(|c| c.hidden_size = 0), "hidden_size (0)"),
            (Box::new(|c| c.resid_dropout = 1.5), "resid_dropout"),
            (Box::new(|c| c.ngram_sizes = vec![0]), "ngram_sizes"),
            (
                Box::new(|c| c.entropy_threshold = f32::NAN),
                "entropy_threshold",
            ),
            (
                Box::new(|c| {
                    c.min_patch_size = 8;
                    c.max_patch_size = 4
                }),
                "max_patch_size (4)",
            ),
            (Box::new(|c| c.global_num_heads = 5), "global_num_heads (5)"),
            (
                Box::new(|c| c.ngram_vocab_size = u32::MAX as usize),
                "hash-table parameters, more than the 2^34",
            ),
            (
                Box::new(|c| {
                    c.attention = AttentionKind::Differential;
                    c.num_heads = 64
                }),
                "multiple of 4",
            ),
        ];
        for (mutate, needle) in cases {
            let mut config = BltConfig::small();
            mutate(&mut config);
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "`{err}` does not mention `{needle}`");
        }
    }

    #[test]
    fn unknown_fields_and_bad_types_are_rejected() {
        let err = BltConfig::from_toml_str("hiden_size = 3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("hiden_size"), "{err}");
        let err = BltConfig::from_toml_str("pooling = \"avg\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("avg") || err.contains("pooling"), "{err}");
        // Missing fields take their defaults.
        let config = BltConfig::from_toml_str("hidden_size = 64\nnum_heads = 2").unwrap();
        assert_eq!(config.window_size, BltConfig::small().window_size);
    }
}
