//! The module configs of a BLT, derived from its [`BltConfig`] in this one place: the local
//! encoder, the global transformer, the local decoder and their blocks. (The entropy model's
//! is [`crate::EntropyModelConfig::from_blt`].)

use blt_core::TransformerBlockConfig;

use crate::{
    config::BltConfig, decoder::LocalDecoderConfig, encoder::LocalEncoderConfig,
    global::GlobalTransformerConfig,
};

impl BltConfig {
    /// The local encoder's config.
    pub fn encoder_config(&self) -> LocalEncoderConfig {
        LocalEncoderConfig::new(
            self.local_blocks(self.encoder_layers, self.intermediate_size),
            self.hidden_size,
            self.num_heads,
            self.cross_attn_k,
            self.pooling,
        )
        .with_norm_eps(self.norm_eps)
        .with_attention_dropout(self.attention_dropout)
    }

    /// The global transformer's config.
    pub fn global_config(&self) -> GlobalTransformerConfig {
        GlobalTransformerConfig::new(
            self.global_blocks(),
            self.global_input_size(),
            self.global_hidden_size,
        )
        .with_hierarchical_memory(self.hierarchical_memory)
    }

    /// The local decoder's config.
    pub fn decoder_config(&self) -> LocalDecoderConfig {
        LocalDecoderConfig::new(
            self.local_blocks(self.decoder_layers, self.decoder_ffn()),
            self.hidden_size,
            self.global_hidden_size,
            self.num_heads,
            self.cross_attn_k,
        )
        .with_norm_eps(self.norm_eps)
        .with_attention_dropout(self.attention_dropout)
    }

    /// `layers` local (byte-level) blocks: width `hidden_size`, SwiGLU hidden size `ffn`,
    /// windowed attention.
    fn local_blocks(&self, layers: usize, ffn: usize) -> Vec<TransformerBlockConfig> {
        (0..layers)
            .map(|layer| {
                TransformerBlockConfig::new(self.hidden_size, self.num_heads)
                    .with_ffn_hidden_size(Some(ffn))
                    .with_attention(self.attention)
                    .with_rope_theta(self.rope_theta)
                    .with_max_seq_len(self.max_position_embeddings)
                    .with_attention_dropout(self.attention_dropout)
                    .with_resid_dropout(self.resid_dropout)
                    .with_norm_eps(self.norm_eps)
                    .with_layer_index(layer)
            })
            .collect()
    }

    /// The global blocks: width `global_hidden_size`, causal over patches.
    fn global_blocks(&self) -> Vec<TransformerBlockConfig> {
        (0..self.global_layers)
            .map(|layer| {
                TransformerBlockConfig::new(self.global_hidden_size, self.global_num_heads)
                    .with_ffn_hidden_size(Some(self.global_intermediate_size))
                    .with_attention(self.attention)
                    .with_rope_theta(self.rope_theta)
                    // At most one patch per byte, plus the BOS patch.
                    .with_max_seq_len(self.max_position_embeddings + 1)
                    .with_attention_dropout(self.attention_dropout)
                    .with_resid_dropout(self.resid_dropout)
                    .with_norm_eps(self.norm_eps)
                    .with_layer_index(layer)
            })
            .collect()
    }
}
