//! Hugging Face `config.json` (`model_type: "blt"`, transformers 5.x) to [`BltConfig`].
//!
//! transformers describes a BLT as a top-level config with four sub-configs (`encoder_config`,
//! `decoder_config`, `global_config`, `patcher_config`). Where our config has one field for
//! something the sub-configs state separately (the local width, heads and SwiGLU size, RoPE θ,
//! the norm epsilon), the values must agree; anything we do not implement (grouped-query
//! attention, several hash functions, another activation or RoPE scaling) is refused with an
//! error that names the field.

use serde::Deserialize;

use crate::{
    config::{BltConfig, PatchingKind, Pooling},
    error::{ModelError, Result},
};

/// RoPE settings as transformers 5 writes them (`rope_parameters`); older files have a bare
/// `rope_theta`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RopeParameters {
    rope_theta: f64,
    #[serde(default = "default_rope_type")]
    rope_type: String,
}

fn default_rope_type() -> String {
    "default".into()
}

/// The fields of a sub-config that we read; the rest are ignored.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct HfSubConfig {
    hidden_size: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    num_hidden_layers: usize,
    intermediate_size: usize,
    #[serde(default = "default_eps")]
    rms_norm_eps: f64,
    rope_parameters: Option<RopeParameters>,
    rope_theta: Option<f64>,
    #[serde(default = "default_act")]
    hidden_act: String,
    head_dim: Option<usize>,
    max_position_embeddings: Option<usize>,
    sliding_window: Option<usize>,
    cross_attn_all_layers: Option<bool>,
    hidden_size_global: Option<usize>,
}

fn default_eps() -> f64 {
    1e-5
}

fn default_act() -> String {
    "silu".into()
}

/// A Hugging Face BLT `config.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct HfBltConfig {
    model_type: String,
    #[serde(default = "default_vocab")]
    vocab_size: usize,
    max_position_embeddings: Option<usize>,
    #[serde(default = "default_patch_size")]
    patch_size: usize,
    #[serde(default = "default_patching_mode")]
    patching_mode: String,
    patching_threshold: Option<f32>,
    max_patch_length: Option<usize>,
    local_attention_window_len: Option<usize>,
    cross_attn_k: usize,
    encoder_hash_byte_group_size: Vec<usize>,
    encoder_hash_byte_group_vocab: usize,
    #[serde(default = "one")]
    encoder_hash_byte_group_nb_functions: usize,
    #[serde(default)]
    tie_word_embeddings: bool,
    /// Not a transformers field: `export-hf` records a model's `document_mask` here so that
    /// importing the export again gives back the same model. transformers ignores it and
    /// masks plainly causally, which is what its absence means.
    #[serde(default)]
    blt_document_mask: bool,
    encoder_config: HfSubConfig,
    decoder_config: HfSubConfig,
    global_config: HfSubConfig,
    patcher_config: Option<HfSubConfig>,
}

fn default_vocab() -> usize {
    260
}

fn default_patch_size() -> usize {
    4
}

fn default_patching_mode() -> String {
    "entropy".into()
}

fn one() -> usize {
    1
}

fn invalid(message: String) -> ModelError {
    ModelError::InvalidConfig(message)
}

impl HfSubConfig {
    fn rope_theta(&self, name: &str) -> Result<f64> {
        match (&self.rope_parameters, self.rope_theta) {
            (Some(p), _) if p.rope_type != "default" => Err(invalid(format!(
                "{name}.rope_parameters.rope_type is {:?}; only \"default\" RoPE is supported",
                p.rope_type
            ))),
            (Some(p), _) => Ok(p.rope_theta),
            (None, Some(theta)) => Ok(theta),
            (None, None) => Ok(10_000.0),
        }
    }

    /// Checks what every transformer stack must satisfy.
    fn check_common(&self, name: &str) -> Result<()> {
        if let Some(kv) = self.num_key_value_heads
            && kv != self.num_attention_heads
        {
            return Err(invalid(format!(
                "{name}.num_key_value_heads ({kv}) differs from num_attention_heads ({}): \
                 grouped-query attention is not supported",
                self.num_attention_heads
            )));
        }
        if self.hidden_act != "silu" {
            return Err(invalid(format!(
                "{name}.hidden_act is {:?}; only \"silu\" (SwiGLU) is supported",
                self.hidden_act
            )));
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(invalid(format!(
                "{name}.hidden_size ({}) is not a multiple of num_attention_heads ({})",
                self.hidden_size, self.num_attention_heads
            )));
        }
        if let Some(head_dim) = self.head_dim
            && head_dim * self.num_attention_heads != self.hidden_size
        {
            return Err(invalid(format!(
                "{name}.head_dim ({head_dim}) × num_attention_heads ({}) is not hidden_size ({})",
                self.num_attention_heads, self.hidden_size
            )));
        }
        self.rope_theta(name)?;
        Ok(())
    }
}

/// `Ok(a)` when both sides agree, else an error naming both fields.
fn same<T: PartialEq + std::fmt::Debug + Copy>(field: &str, a: T, b: T) -> Result<T> {
    if a == b {
        Ok(a)
    } else {
        Err(invalid(format!(
            "encoder_config.{field} ({a:?}) and decoder_config.{field} ({b:?}) differ; blt shares \
             one value between the local encoder and decoder"
        )))
    }
}

impl HfBltConfig {
    /// Parses `config.json` text.
    pub fn parse(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| invalid(format!("config.json: {e}")))
    }

    /// Whether the checkpoint ties `lm_head` to the byte embedding.
    pub fn tie_word_embeddings(&self) -> bool {
        self.tie_word_embeddings
    }

    /// Whether a patcher (entropy model) sub-config is present.
    pub fn has_patcher(&self) -> bool {
        self.patcher_config.is_some()
    }

    /// The equivalent [`BltConfig`], validated.
    pub fn to_blt(&self) -> Result<BltConfig> {
        if self.model_type != "blt" {
            return Err(invalid(format!(
                "model_type is {:?}, expected \"blt\"",
                self.model_type
            )));
        }
        if self.vocab_size != 260 {
            return Err(invalid(format!(
                "vocab_size is {}; a byte-level BLT has 260 ids",
                self.vocab_size
            )));
        }
        if self.encoder_hash_byte_group_nb_functions != 1 {
            return Err(invalid(format!(
                "encoder_hash_byte_group_nb_functions is {}; only one hash function is supported",
                self.encoder_hash_byte_group_nb_functions
            )));
        }
        let (enc, dec, glob) = (
            &self.encoder_config,
            &self.decoder_config,
            &self.global_config,
        );
        enc.check_common("encoder_config")?;
        dec.check_common("decoder_config")?;
        glob.check_common("global_config")?;
        if enc.cross_attn_all_layers == Some(true) && enc.num_hidden_layers > 1 {
            return Err(invalid(
                "encoder_config.cross_attn_all_layers is true: blt pools with one \
                 cross-attention after the last encoder layer"
                    .into(),
            ));
        }
        if dec.cross_attn_all_layers == Some(false) {
            return Err(invalid(
                "decoder_config.cross_attn_all_layers is false: blt's decoder cross-attends \
                 before every layer"
                    .into(),
            ));
        }
        for (name, sub) in [("encoder_config", enc), ("decoder_config", dec)] {
            if let Some(g) = sub.hidden_size_global
                && g != glob.hidden_size
            {
                return Err(invalid(format!(
                    "{name}.hidden_size_global ({g}) differs from global_config.hidden_size ({})",
                    glob.hidden_size
                )));
            }
        }
        let theta = same(
            "rope_theta",
            enc.rope_theta("encoder_config")?,
            dec.rope_theta("decoder_config")?,
        )?;
        let global_theta = glob.rope_theta("global_config")?;
        if global_theta != theta {
            return Err(invalid(format!(
                "global_config RoPE θ ({global_theta}) differs from the local models' ({theta}); \
                 blt shares one value"
            )));
        }
        let eps = same("rms_norm_eps", enc.rms_norm_eps, dec.rms_norm_eps)?;
        if glob.rms_norm_eps != eps {
            return Err(invalid(format!(
                "global_config.rms_norm_eps ({}) differs from the local models' ({eps})",
                glob.rms_norm_eps
            )));
        }
        // transformers' sliding window keeps keys with `query − key < window`, the query
        // included: the same count as our window_size. It sets the encoder's window from
        // `local_attention_window_len` and the decoder reuses the encoder's mask, so the
        // decoder's own `sliding_window` is never read. `null` means no window.
        let local_window = self.local_attention_window_len.or(enc.sliding_window);
        let max_bytes = same(
            "max_position_embeddings",
            enc.max_position_embeddings,
            dec.max_position_embeddings,
        )?
        .or(self.max_position_embeddings)
        .unwrap_or(4096);
        let patching = match self.patching_mode.as_str() {
            "entropy" => PatchingKind::Entropy,
            "static" | "fixed" => PatchingKind::Fixed,
            "space" => PatchingKind::Space,
            "byte" => PatchingKind::Byte,
            other => {
                return Err(invalid(format!(
                    "patching_mode {other:?} is not supported (entropy, static, space or byte)"
                )));
            }
        };
        let defaults = BltConfig::default();
        let mut config = BltConfig {
            hidden_size: same("hidden_size", enc.hidden_size, dec.hidden_size)?,
            intermediate_size: enc.intermediate_size,
            decoder_intermediate_size: (dec.intermediate_size != enc.intermediate_size)
                .then_some(dec.intermediate_size),
            num_heads: same(
                "num_attention_heads",
                enc.num_attention_heads,
                dec.num_attention_heads,
            )?,
            encoder_layers: enc.num_hidden_layers,
            global_layers: glob.num_hidden_layers,
            decoder_layers: dec.num_hidden_layers,
            attention_dropout: 0.0,
            resid_dropout: 0.0,
            ngram_vocab_size: self.encoder_hash_byte_group_vocab,
            ngram_sizes: self.encoder_hash_byte_group_size.clone(),
            window_size: local_window.unwrap_or(max_bytes).min(max_bytes),
            max_position_embeddings: max_bytes,
            global_hidden_size: glob.hidden_size,
            global_intermediate_size: glob.intermediate_size,
            global_num_heads: glob.num_attention_heads,
            cross_attn_k: self.cross_attn_k,
            rope_theta: theta,
            norm_eps: eps,
            pooling: Pooling::CrossAttention,
            attention: Default::default(),
            hierarchical_memory: false,
            patching,
            patch_stride: self.patch_size,
            entropy_threshold: self
                .patching_threshold
                .unwrap_or(defaults.entropy_threshold),
            max_patch_size: self.max_patch_length.unwrap_or(0),
            min_patch_size: 1,
            // transformers' masks are plainly causal: an EOS inside a row does not separate
            // documents there (unless blt exported the checkpoint from a model that does).
            document_mask: self.blt_document_mask,
            ..defaults
        };
        if let Some(p) = &self.patcher_config {
            p.check_common("patcher_config")?;
            if p.rms_norm_eps != eps {
                return Err(invalid(format!(
                    "patcher_config.rms_norm_eps ({}) differs from the BLT's ({eps})",
                    p.rms_norm_eps
                )));
            }
            config.entropy_model_layers = p.num_hidden_layers;
            config.entropy_hidden_size = p.hidden_size;
            config.entropy_num_heads = p.num_attention_heads;
            config.entropy_intermediate_size = p.intermediate_size;
            config.entropy_rope_theta = p.rope_theta("patcher_config")?;
            config.entropy_context_size = p
                .sliding_window
                .unwrap_or(max_bytes)
                .min(config.max_position_embeddings);
        }
        config.validate()?;
        Ok(config)
    }
}
